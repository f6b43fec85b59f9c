"""asyncrpc against real third-party msgpack-rpc implementations, both directions.

- ``to_peer``: an asyncrpc client calls the peer's server (``peer serve``), here in pytest.
- ``from_peer``: the peer's client (``peer client HOST PORT CHECK``) calls an asyncrpc server
  started by the test; each of its JSON lines is asserted, and so is what reached our server.

One test per peer, direction and check, parametrized over :data:`tests.interop.peers.PEERS`.
A check a peer cannot do is skipped with the reason its registry entry gives. A peer that is not
installed skips (``bash tests/interop/install_peers.sh`` installs them all), and fails in CI.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import asyncrpc
from tests.interop.battery import (
    BIN,
    CONCURRENT,
    INT64,
    LARGE_BIN,
    LARGE_STR,
    NOTE,
    STR,
    UNICODE,
    delay_ms,
    same,
)
from tests.interop.peers import (
    CHECKS,
    CLIENT_TIMEOUT,
    GO,
    PEERS,
    ROOT,
    START_TIMEOUT,
    Direction,
    Peer,
    PeerServer,
    Report,
    environment,
    parse_reports,
    start_server,
)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(30)]

CALL_TIMEOUT = 10.0  # any one call of the battery
TO_PEER_CHECKS = (*CHECKS, "unknown_notification", "hello")
# Connecting with the hello probe on (asyncrpc's hello_timeout is 0.5 s): a plain peer that
# answers the probe (with an unknown-method error) costs a round trip, one that never answers it
# costs hello_timeout.
HELLO_ANSWERED_BOUND = 0.3
HELLO_SILENT_BOUND = 1.0
_unique = itertools.count()


def cases(checks: tuple[str, ...]) -> list[Any]:
    return [
        pytest.param(peer, check, id=f"{peer.name}-{check}")
        for peer, check in itertools.product(PEERS, checks)
    ]


def skip_if_cannot(peer: Peer, direction: Direction, check: str) -> None:
    reason = peer.cannot.get((direction, check))
    if reason is not None:
        pytest.skip(f"{peer.name} cannot ({direction} {check}): {reason}")


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 200 else f"{text[:200]}... ({len(text)} chars)"


# -- to_peer: asyncrpc's client, the peer's server ------------------------------------------------


class Servers:
    """The peers' servers, one per peer for the whole module, started when first needed."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.running: dict[str, PeerServer] = {}

    def get(self, peer: Peer) -> PeerServer:
        server = self.running.get(peer.name)
        if server is None or server.process.poll() is not None:
            server = start_server(peer, self.workdir / f"{peer.name}.stderr")
            self.running[peer.name] = server
        return server

    def stop(self) -> None:
        for server in self.running.values():
            server.stop()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    running = Servers(tmp_path_factory.mktemp("interop-servers"))
    yield running
    running.stop()


class ToPeer:
    """An asyncrpc client connected to one peer's server, calling it by the battery's names."""

    def __init__(self, peer: Peer, client: asyncrpc.Client) -> None:
        self.peer = peer
        self.client = client

    def start(self, method: str, *params: Any) -> asyncrpc.AsyncCall[Any]:
        return self.client.call(
            self.peer.method(method), *self.peer.args(method, *params), timeout=CALL_TIMEOUT
        )

    async def call(self, method: str, *params: Any) -> Any:
        return await self.start(method, *params)

    def notify(self, method: str, *params: Any) -> None:
        self.client.notify(self.peer.method(method), *self.peer.args(method, *params))

    async def echoes(self, value: Any) -> None:
        expected = self.peer.arrives(value)
        result = await self.call("echo", value)
        assert same(result, expected), f"echo({short(value)}) gave {short(result)}, not {short(expected)}"


async def to_one_call(peer: ToPeer) -> None:
    assert await peer.call("add", 40, 2) == 42
    await peer.echoes(STR)


async def to_concurrent(peer: ToPeer) -> None:
    order: list[int] = []

    async def one(i: int) -> Any:
        result = await peer.start("delayed_echo", delay_ms(i), i)
        order.append(i)
        return result

    results = await asyncio.gather(*(one(i) for i in range(CONCURRENT)))
    assert results == list(range(CONCURRENT))  # each reply reached its own caller
    # The peer answered them out of order: the last call, with the shortest delay, came back first
    # or nearly (every peer that can take calls in flight at once handles them concurrently).
    assert order != list(range(CONCURRENT))
    assert order[0] >= CONCURRENT // 2, order


async def to_handler_error(peer: ToPeer) -> None:
    with pytest.raises(asyncrpc.RemoteError) as info:
        await peer.call("fail", "boom")
    error = info.value
    assert type(error) is asyncrpc.RemoteError
    assert peer.peer.handler_error(error.raw, "boom"), short(error.raw)
    assert "boom" in error.message
    await peer.echoes(STR)  # the connection is still good


async def to_unknown_method(peer: ToPeer) -> None:
    if not peer.peer.answers_unknown_method:  # then the call can only end at its deadline
        with pytest.raises(asyncrpc.DeadlineExceeded):
            await peer.client.call(peer.peer.method("no_such_method"), timeout=0.5)
        await peer.echoes(STR)
        return
    with pytest.raises(asyncrpc.MethodNotFound) as info:
        await peer.call("no_such_method")
    assert info.value.raw == peer.peer.unknown_method_raw
    await peer.echoes(STR)


async def _closes_on_notification(peer: ToPeer, method: str) -> None:
    """A peer that reads requests only: the notification makes it close the connection."""
    peer.notify(method, NOTE)
    with pytest.raises(asyncrpc.ConnectionLost):
        await peer.call("echo", STR)
    assert not peer.client.is_open


async def to_notification(peer: ToPeer) -> None:
    if peer.peer.notification_closes:
        await _closes_on_notification(peer, "note")
        return
    note = f"{NOTE}-{next(_unique)}"  # the peer's server lives for the module: a note of our own
    peer.notify("note", note)
    notes = await peer.call("notes")  # answered after the notification was handled
    assert notes.count(peer.peer.arrives(note)) == 1, short(notes)


async def to_unknown_notification(peer: ToPeer) -> None:
    """A notification of a method the peer does not have: the connection must carry on.

    msgpack-rpc-lite answers it with a stray ``[1, -1, "Not Implemented", nil]`` response.
    """
    if peer.peer.notification_closes:
        await _closes_on_notification(peer, "no_such_method")
        return
    peer.notify("no_such_method", NOTE)
    await peer.echoes(STR)
    await peer.echoes(BIN)
    assert peer.client.is_open


async def to_bin_and_str(peer: ToPeer) -> None:
    await peer.echoes(BIN)
    await peer.echoes(STR)
    await peer.echoes([BIN, STR])


async def to_large(peer: ToPeer) -> None:
    await peer.echoes(LARGE_STR)
    await peer.echoes(LARGE_BIN)


async def to_unicode(peer: ToPeer) -> None:
    await peer.echoes(UNICODE)


async def to_int64(peer: ToPeer) -> None:
    for name, value in INT64.items():
        if ("to_peer", f"int64:{name}") not in peer.peer.cannot:
            await peer.echoes(value)


TO_PEER: dict[str, Callable[[ToPeer], Awaitable[None]]] = {
    "one_call": to_one_call,
    "concurrent": to_concurrent,
    "handler_error": to_handler_error,
    "unknown_method": to_unknown_method,
    "notification": to_notification,
    "unknown_notification": to_unknown_notification,
    "bin_and_str": to_bin_and_str,
    "large": to_large,
    "unicode": to_unicode,
    "int64": to_int64,
}


async def to_hello(peer: Peer, server: PeerServer) -> None:
    """asyncrpc's hello probe (``extensions=True``, the default) against a plain peer: connecting
    stays quick, no extension is agreed, and the connection works."""
    options = {k: v for k, v in peer.connect_options.items() if k != "extensions"}
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with asyncrpc.connect("127.0.0.1", server.port, connect_timeout=10, **options) as client:
        took = loop.time() - start
        assert client.features == frozenset()
        await ToPeer(peer, client).echoes(STR)
    bound = HELLO_ANSWERED_BOUND if peer.answers_unknown_method else HELLO_SILENT_BOUND
    assert took < bound, f"connecting took {took:.2f}s"


@contextlib.asynccontextmanager
async def called_back(peer: Peer, workdir: Path) -> AsyncIterator[asyncrpc.Client]:
    """For a peer with no server: our server, its client connected (``callee``), and a client
    for calling it back on that connection (``current_call().peer`` of its ``ready`` call)."""
    peer.require()
    ready: asyncio.Future[asyncrpc.Client] = asyncio.get_running_loop().create_future()

    def on_ready() -> None:
        if not ready.done():
            ready.set_result(asyncrpc.current_call().peer)

    server = asyncrpc.Server(**peer.server_options)
    server.register_function(on_ready, name="ready")
    await server.start("127.0.0.1", 0)
    stderr_path = workdir / "callee.stderr"
    try:
        with stderr_path.open("w") as stderr:
            process = await asyncio.create_subprocess_exec(
                *peer.program(),
                "callee",
                "127.0.0.1",
                str(server.port),
                stdin=subprocess.DEVNULL,
                stderr=stderr,
                env=environment(peer),
                cwd=ROOT,
            )
        try:
            async with asyncio.timeout(START_TIMEOUT):
                client = await ready
            yield client
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()
    finally:
        await server.close(grace=1.0)


@pytest.mark.parametrize(("peer", "check"), cases(TO_PEER_CHECKS))
async def test_to_peer(peer: Peer, check: str, servers: Servers, tmp_path: Path) -> None:
    skip_if_cannot(peer, "to_peer", check)
    if peer.calls_back:
        async with called_back(peer, tmp_path) as client:
            await TO_PEER[check](ToPeer(peer, client))
        return
    server = servers.get(peer)
    if check == "hello":
        await to_hello(peer, server)
        return
    async with asyncrpc.connect(
        "127.0.0.1", server.port, connect_timeout=5, **peer.connect_options
    ) as client:
        await TO_PEER[check](ToPeer(peer, client))


# -- from_peer: the peer's client, asyncrpc's server ------------------------------------------------


class Battery:
    """The battery's methods on our side, recording what arrived."""

    def __init__(self) -> None:
        self.received: list[Any] = []  # echo's arguments, as they arrived
        self.notes: list[Any] = []
        self.arrived: list[Any] = []  # delayed_echo's values, in the order the calls arrived
        self.completed: list[Any] = []  # ... and in the order they were answered

    def register(self, server: asyncrpc.Server) -> None:
        server.register_function(self.echo, name="echo")
        server.register_function(self.add, name="add")
        server.register_function(self.delayed_echo, name="delayed_echo")
        server.register_function(self.fail, name="fail")
        server.register_function(self.notes.append, name="note")
        server.register_function(lambda: self.notes, name="notes")

    def echo(self, value: Any) -> Any:
        self.received.append(value)
        return value

    def add(self, a: int, b: int) -> int:
        return a + b

    async def delayed_echo(self, ms: int, value: Any) -> Any:
        self.arrived.append(value)
        await asyncio.sleep(ms / 1000)  # the delay is what is tested: replies in another order
        self.completed.append(value)
        return value

    def fail(self, message: str | bytes) -> None:
        # From an old-spec peer (raw_strings=True) a str arrives as bytes: text for the message.
        raise ValueError(message.decode() if isinstance(message, bytes) else message)


@contextlib.asynccontextmanager
async def battery_server(peer: Peer) -> AsyncIterator[tuple[asyncrpc.Server, Battery]]:
    """Our server for the peer's client, with the options it needs (made in the test, so that
    an option asyncrpc does not have yet fails the test rather than erroring its setup)."""
    battery = Battery()
    server = asyncrpc.Server(**peer.server_options)
    battery.register(server)
    await server.start("127.0.0.1", 0)
    try:
        yield server, battery
    finally:
        await server.close(grace=1.0)


async def run_client(peer: Peer, port: int, check: str, stderr_path: Path) -> dict[str, Report]:
    """``peer client 127.0.0.1 PORT CHECK``, bounded; its reports by check name."""
    with stderr_path.open("w") as stderr:
        process = await asyncio.create_subprocess_exec(
            *peer.program(),
            "client",
            "127.0.0.1",
            str(port),
            check,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=environment(peer),
            cwd=ROOT,
        )
        try:
            async with asyncio.timeout(CLIENT_TIMEOUT):
                stdout, _ = await process.communicate()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.returncode == 0, (
        f"{peer.name} client exited {process.returncode}\n{stderr_path.read_text()}"
    )
    return parse_reports(stdout.decode())


def expect_reports(peer: Peer, reports: dict[str, Report], names: list[str]) -> dict[str, Report]:
    expected = [name for name in names if ("from_peer", name) not in peer.cannot]
    assert sorted(reports) == sorted(expected), reports
    failed = [report for report in reports.values() if not report.ok]
    assert not failed, failed
    return reports


FROM_PEER_NAMES = {
    "bin_and_str": ["bin_and_str:bin", "bin_and_str:str"],
    "large": ["large:str", "large:bin"],
    "int64": [f"int64:{name}" for name in INT64],
}


@pytest.mark.parametrize(("peer", "check"), cases(CHECKS))
async def test_from_peer(peer: Peer, check: str, tmp_path: Path) -> None:
    skip_if_cannot(peer, "from_peer", check)
    peer.require()
    async with battery_server(peer) as (server, battery):
        reports = await run_client(peer, server.port, check, tmp_path / "client.stderr")
    reports = expect_reports(peer, reports, FROM_PEER_NAMES.get(check, [check]))
    arrives = peer.arrives

    if check == "concurrent":
        assert sorted(battery.completed) == list(range(CONCURRENT))
        assert battery.completed != battery.arrived  # we answered out of order: replies matched
    elif check == "handler_error":
        assert reports[check].detail == peer.client_error("boom")
    elif check == "unknown_method":
        assert reports[check].detail == peer.client_unknown_method
    elif check == "notification":
        assert same(battery.notes, [arrives(NOTE)])
    elif check == "bin_and_str":
        assert same(battery.received, [arrives(BIN), arrives(STR)])
    elif check == "large":
        assert same(battery.received, [arrives(LARGE_STR), arrives(LARGE_BIN)]), "1 MiB values differ"
    elif check == "unicode":
        assert same(battery.received, [arrives(UNICODE)]), short(battery.received)
    elif check == "int64":
        sent = [value for name, value in INT64.items() if ("from_peer", f"int64:{name}") not in peer.cannot]
        assert same(battery.received, sent)


# -- peer-specific --------------------------------------------------------------------------------


async def test_go_name_without_service_is_method_not_found(servers: Servers) -> None:
    """Go's net/rpc names are ``Service.Method``: for a flat name (Neovim's style, ``echo``) it
    answers ``rpc: service/method request ill-formed: NAME``, which means it has no such method."""
    GO.require()
    server = servers.get(GO)
    async with asyncrpc.connect("127.0.0.1", server.port, connect_timeout=5) as client:
        with pytest.raises(asyncrpc.MethodNotFound) as info:
            await client.call("no_such_method", timeout=CALL_TIMEOUT)
        assert info.value.raw == "rpc: service/method request ill-formed: no_such_method"
        assert await client.call("Peer.Echo", STR, timeout=CALL_TIMEOUT) == STR


async def test_go_client_cannot_read_a_neovim_shaped_error(tmp_path: Path) -> None:
    """Why the Go peer needs ``plain_errors="string"``: net/rpc's client reads the error as a
    string, and given asyncrpc's default ``[0, "Type: message"]`` its codec fails the call."""
    GO.require()
    neovim_errors = dataclasses.replace(GO, server_options={})
    async with battery_server(neovim_errors) as (server, _battery):
        reports = await run_client(neovim_errors, server.port, "handler_error", tmp_path / "client.stderr")
    report = reports["handler_error"]
    assert not report.ok
    assert report.detail.startswith("msgpack decode error"), report.detail
