"""Running ``asyncrpc.cli.main`` in-process, ``asyncrpc serve`` as a process, and peers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgpack
import pytest

from asyncrpc.cli import main
from asyncrpc.wire.extensions import HELLO_METHOD

BOUND = 20.0  # seconds any one in-process run may take before it counts as a hang

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Ran:
    """What one run of the command did."""

    status: int
    out: str
    err: str
    seconds: float

    @property
    def error_line(self) -> str:
        """The one ``error: ...`` line on stderr; fails unless that is all there is."""
        assert self.err.startswith("error: "), self.err
        assert self.err.count("\n") == 1, self.err
        assert self.err.endswith("\n"), self.err
        return self.err.rstrip("\n")


def same_loop() -> list[str]:
    """The options that run the command on the same kind of loop as the test (conftest runs each on both)."""
    return [] if "uvloop" in type(asyncio.get_running_loop()).__module__ else ["--no-uvloop"]


async def cli(capsys: pytest.CaptureFixture[str], *argv: str, loop_flags: bool = True) -> Ran:
    """Run ``asyncrpc ARGV`` in-process, in a worker thread (it runs an event loop of its own).

    The test's loop stays free to run the peers the command talks to.
    """
    args = [*(same_loop() if loop_flags else []), *argv]
    started = time.perf_counter()
    async with asyncio.timeout(BOUND):
        status = await asyncio.to_thread(main, args)
    seconds = time.perf_counter() - started
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err, captured.err
    return Ran(status, captured.out, captured.err, seconds)


@contextlib.asynccontextmanager
async def peer(handler: Handler) -> AsyncIterator[str]:
    """A TCP server on 127.0.0.1 that runs ``handler`` for each connection; yields HOST:PORT."""

    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The command aborts connections it gives up on; that is not the peer's failure.
        with contextlib.suppress(ConnectionError):
            await handler(reader, writer)
        writer.close()

    server = await asyncio.start_server(guarded, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


HTTP_400 = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nBad Request"


async def answer_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An HTTP server's answer to bytes that are not HTTP: 400, then close."""
    await reader.read(1)
    writer.write(HTTP_400)
    await writer.drain()


async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept, read everything, send nothing, until the client goes."""
    while await reader.read(65536):
        pass


async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept and close at once."""


async def _plain_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, drop: bool) -> None:
    """A plain msgpack-rpc peer: the hello gets Neovim's error; then other requests are
    dropped with the connection (``drop``) or never answered."""
    unpacker = msgpack.Unpacker()
    while data := await reader.read(65536):
        unpacker.feed(data)
        for message in unpacker:
            if message[0] != 0:
                continue
            if message[2] == HELLO_METHOD:
                writer.write(msgpack.packb([1, message[1], [0, f"Invalid method: {HELLO_METHOD}"], None]))
            elif drop:
                return
        await writer.drain()


async def drop_on_call(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A plain msgpack-rpc peer that closes the connection when it gets a call."""
    await _plain_peer(reader, writer, drop=True)


async def answer_only_hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A plain msgpack-rpc peer that answers the hello and no call."""
    await _plain_peer(reader, writer, drop=False)


@dataclass
class Serving:
    """An ``asyncrpc serve`` process, serving: where, what, and (once it ends) what it said."""

    process: asyncio.subprocess.Process
    address: str
    methods: list[str]
    stderr: str = ""

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.address.rpartition(":")
        return host.strip("[]"), int(port)


@contextlib.asynccontextmanager
async def serving(
    *argv: str, cwd: Path, env: dict[str, str] | None = None, options: Sequence[str] = ()
) -> AsyncIterator[Serving]:
    """``python -m asyncrpc OPTIONS serve ARGV`` in a process, once its banner is out; SIGTERM on
    the way out.

    ``stderr`` holds what it wrote there once the block is left.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "asyncrpc",
        *options,
        "serve",
        *argv,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        async with asyncio.timeout(BOUND):
            first = (await process.stdout.readline()).decode()
            match = re.search(r"serving (\d+) methods on (\S+)", first)
            if match is None:
                err = (await process.stderr.read()).decode()
                pytest.fail(f"asyncrpc serve did not start: {first!r}, stderr: {err!r}")
            methods = [(await process.stdout.readline()).decode().strip() for _ in range(int(match[1]))]
        served = Serving(process, match[2], methods)
        yield served
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(BOUND):
                _, err_bytes = await process.communicate()
        except TimeoutError:
            process.kill()
            _, err_bytes = await process.communicate()
    served.stderr = err_bytes.decode()
