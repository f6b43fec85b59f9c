"""The ``asyncrpc`` command, run as real processes."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import pytest

import asyncrpc
from tests.cli_helpers import answer_http, peer
from tests.rawpeer import RawPeer, pack

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "asyncrpc"]


@dataclass
class Served:
    process: asyncio.subprocess.Process
    address: str
    banner: list[str]


async def start_serving(*extra: str, target: str = "examples.demo_service:Demo") -> Served:
    process = await asyncio.create_subprocess_exec(
        *CLI,
        "serve",
        target,
        "--namespace",
        "demo",
        *extra,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    async with asyncio.timeout(20):
        first = (await process.stdout.readline()).decode()
        methods = [(await process.stdout.readline()).decode() for _ in range(2)]
    banner = [first, *methods]
    match = re.search(r"serving \d+ methods on (\S+)", first)
    assert match, f"unexpected banner: {first!r}"
    return Served(process, match[1], banner)


async def stop(served: Served, signum: int | None = signal.SIGTERM) -> tuple[int, str]:
    """Signal the server (unless it was signalled already) and collect its exit status and output."""
    if signum is not None:
        served.process.send_signal(signum)
    async with asyncio.timeout(20):
        out, _ = await served.process.communicate()
    return served.process.returncode or 0, out.decode()


@pytest.fixture
async def tcp_server() -> AsyncIterator[Served]:
    served = await start_serving("--port", "0")
    yield served
    if served.process.returncode is None:
        served.process.kill()
        await served.process.wait()


async def run_cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *CLI, *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(30):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_serve_lists_methods(tcp_server: Served) -> None:
    assert tcp_server.address.startswith("127.0.0.1:")
    listed = {line.strip() for line in tcp_server.banner[1:]}
    assert listed == {"demo.AsyncFunc", "demo.NonAsyncFunc"}


async def test_call_prints_result_as_json(tcp_server: Served) -> None:
    code, out, err = await run_cli("call", tcp_server.address, "demo.AsyncFunc", "0.01")
    assert (code, err) == (0, "")
    assert json.loads(out) == "AsyncFunc finished after 0.01s"
    code, out, _ = await run_cli("call", tcp_server.address, "demo.NonAsyncFunc", '"hello"')
    assert (code, json.loads(out)) == (0, None)


async def test_call_reports_remote_errors(tcp_server: Served) -> None:
    code, out, err = await run_cli("call", tcp_server.address, "demo.missing")
    assert code == 1
    assert out == ""
    assert "MethodNotFound" in err
    assert "demo.missing" in err


async def test_call_to_nothing_listening_fails_cleanly() -> None:
    server = asyncrpc.Server()
    server.register_function(abs)
    await server.start("127.0.0.1", 0)
    port = server.port
    await server.close()
    code, _, err = await run_cli("call", f"127.0.0.1:{port}", "abs", "-1")
    assert code == 2
    assert "cannot connect" in err


async def test_sigterm_lets_in_flight_calls_finish(tcp_server: Served) -> None:
    host, port = tcp_server.address.split(":")
    async with asyncrpc.connect(host, int(port)) as client:
        in_flight = client.call("demo.AsyncFunc", 0.3)
        await client.call("demo.NonAsyncFunc", "the server has read both requests")
        tcp_server.process.send_signal(signal.SIGTERM)
        assert await in_flight == "AsyncFunc finished after 0.3s"
    # One SIGTERM only: a second one could land after the loop has closed and
    # removed its handler, and the default action would kill the process.
    code, out = await stop(tcp_server, None)
    assert code == 0
    assert "shutting down" in out


async def test_sigterm_ends_within_the_grace_when_a_peer_does_not_read() -> None:
    served = await start_serving("--port", "0", "--grace", "0.5", target="tests.services:Demo")
    _, port = served.address.split(":")
    peer = await RawPeer.connect(int(port))
    try:
        # 300 echoes of 64 KiB: replies that fill every buffer between us, never read.
        # The server stops reading once its replies back up, so sending them all
        # blocks: keep sending in the background.
        blob = b"x" * 65536
        requests = b"".join(pack([0, msgid, "demo.echo", [blob]]) for msgid in range(300))
        sending = asyncio.ensure_future(peer.send(requests))
        async with asyncrpc.connect("127.0.0.1", int(port)) as other:
            assert await other.call("demo.echo", "up") == "up"  # serving, and reading our requests
        loop = asyncio.get_running_loop()
        started = loop.time()
        code, out = await stop(served)
        sending.cancel()
        assert code == 0
        assert "shutting down" in out
        assert loop.time() - started < 0.5 + 3.0  # the grace, a moment, and process exit
    finally:
        peer.close()
        if served.process.returncode is None:
            served.process.kill()
            await served.process.wait()


async def test_sigint_exits_cleanly(tcp_server: Served) -> None:
    code, out = await stop(tcp_server, signal.SIGINT)
    assert code == 0
    assert "shutting down" in out


async def test_serve_and_call_on_unix_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "cli.sock")
    served = await start_serving("--unix", path)
    try:
        assert served.address == path
        code, out, _ = await run_cli("call", path, "demo.AsyncFunc", "0")
        assert (code, json.loads(out)) == (0, "AsyncFunc finished after 0s")
    finally:
        code, _ = await stop(served)
    assert code == 0
    assert not Path(path).exists()


def test_demo_prints_the_timeline_and_points_to_the_modes_tour() -> None:
    result = subprocess.run(
        [*CLI, "demo", "--delay", "0.2"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    steps = [
        "AsyncFunc(0.2) called: handle PENDING",
        "NonAsyncFunc returned; AsyncFunc is still PENDING",
        "complete() too early -> CallPending (997)",
        "event set: AsyncFunc is COMPLETE",
        "complete() -> 'AsyncFunc finished after 0.2s'",
    ]
    positions = [next(i for i, line in enumerate(lines) if step in line) for step in steps]
    assert positions == sorted(positions), result.stdout
    assert "done." in lines
    assert "python examples/modes_tour.py" in lines[-1]


def test_help_names_every_command() -> None:
    result = subprocess.run([*CLI, "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    for command in ("serve", "call", "demo", "bench"):
        assert command in result.stdout


async def test_version_from_the_installed_command() -> None:
    code, out, err = await run_cli("--version")
    assert (code, out, err) == (0, f"asyncrpc {asyncrpc.__version__}\n", "")


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("call", "127.0.0.1", "add", "1", "2"),
            "error: '127.0.0.1' has no port: give HOST:PORT (e.g. 127.0.0.1:6000), "
            "or the path of a Unix socket (./NAME for one in this directory)",
        ),
        (
            ("serve", "nosuchmodule:X"),
            "error: cannot import 'nosuchmodule': No module named 'nosuchmodule' "
            "(asyncrpc serve looks in the current directory first, then on the Python path)",
        ),
    ],
    ids=["call-without-port", "serve-unknown-module"],
)
async def test_mistakes_are_one_line_and_status_2(args: tuple[str, ...], line: str) -> None:
    code, out, err = await run_cli(*args)
    assert (code, out, err) == (2, "", line + "\n")


async def test_http_server_is_one_line_without_the_librarys_warning() -> None:
    async with peer(answer_http) as address:
        code, out, err = await run_cli("call", address, "add", "1", "2")
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {address} does not speak msgpack-rpc: ")
    assert err.count("\n") == 1, err


async def test_serve_speaks_to_old_spec_clients_with_string_errors() -> None:
    """``--plain-errors string --raw-strings``: what msgpack-rpc-python's clients read."""
    served = await start_serving("--port", "0", "--plain-errors", "string", "--raw-strings")
    try:
        host, port = served.address.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        old_spec = msgpack.Packer(use_bin_type=False)
        writer.write(old_spec.pack([0, 1, "demo.missing", []]))
        writer.write(old_spec.pack([0, 2, "demo.NonAsyncFunc", ["text"]]))
        unpacker = msgpack.Unpacker(raw=True)
        replies: dict[int, Any] = {}
        async with asyncio.timeout(20):
            while len(replies) < 2:
                data = await reader.read(65536)
                assert data, "the server closed the connection"
                unpacker.feed(data)
                for _, msgid, error, result in unpacker:
                    replies[msgid] = (error, result)
        writer.close()
        await writer.wait_closed()
    finally:
        code, _ = await stop(served)
    assert replies == {1: (b"MethodNotFound: no method 'demo.missing'", None), 2: (None, None)}
    assert code == 0


async def test_serve_keepalive_lets_a_mute_client_go() -> None:
    """``--keepalive S``: a client that never answers the server's ping is disconnected."""
    served = await start_serving("--port", "0", "--keepalive", "0.2")
    try:
        host, port = served.address.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        received = b""
        async with asyncio.timeout(20):
            while data := await reader.read(65536):  # the ping, then the end
                received += data
        assert b"asyncrpc.ping" in received
        writer.close()
    finally:
        code, _ = await stop(served)
    assert code == 0


async def test_serve_refuses_a_nonsense_keepalive() -> None:
    code, _, err = await run_cli("serve", "tests.services:Demo", "--keepalive", "-1")
    assert code == 2
    assert "--keepalive" in err
