"""Fixtures for the micro-benchmarks: event loops and an in-memory connection pair.

The pair is two real :class:`asyncrpc.Connection` objects joined by an
in-memory transport: what one writes reaches the other's ``data_received``
on the next turn of the loop, as bytes from a socket would, but with no
socket and no system call, so what is measured is asyncrpc's own work.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import asyncrpc
from asyncrpc.dispatch import Dispatcher

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
    uvloop = None  # type: ignore[assignment]

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
if uvloop is not None:
    LOOPS["uvloop"] = uvloop.new_event_loop


@pytest.fixture(params=sorted(LOOPS))
def loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    new_loop = LOOPS[request.param]()
    try:
        yield new_loop
    finally:
        new_loop.run_until_complete(new_loop.shutdown_asyncgens())
        new_loop.close()


class MemoryTransport(asyncio.Transport):
    """Delivers writes to the peer protocol on the next turn of the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._loop = loop
        self.peer: asyncio.Protocol | None = None
        self._closing = False
        self.writes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes += 1
        if self.peer is not None and not self._closing:
            self._loop.call_soon(self.peer.data_received, bytes(data))

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            peer = self.peer
            self._loop.call_soon(self._lost, peer)

    def _lost(self, peer: asyncio.Protocol | None) -> None:
        self._protocol.connection_lost(None)
        if peer is not None:
            peer.connection_lost(None)

    def abort(self) -> None:
        self.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol


def add(a: Any, b: Any) -> Any:
    return a + b


async def add_async(a: Any, b: Any) -> Any:
    return a + b


class Adder(asyncrpc.Interface):
    @abc.abstractmethod
    async def add(self, a: int, b: int) -> int: ...


class TypedAdder(Adder):
    # A plain def runs inline, as the untyped "plain" handler does (to a type
    # checker, an override of an async def must be one too).
    def add(self, a: int, b: int) -> int:  # type: ignore[override]
        return a + b


class Pair:
    """A client connection and a server connection joined in memory.

    ``server_handlers``: ``plain`` (a plain def), ``async`` (an async def) or
    ``typed`` (a typed interface's plain def, its arguments checked).
    """

    def __init__(self, server_handlers: str = "plain") -> None:
        loop = asyncio.get_running_loop()
        served = Dispatcher()
        if server_handlers == "typed":
            served.register(TypedAdder())
        else:
            served.register_function(add if server_handlers == "plain" else add_async, name="add")
        self.server = asyncrpc.Connection(served)
        self.client_connection = asyncrpc.Connection()
        self.client = asyncrpc.Client(self.client_connection)
        self.client_transport = MemoryTransport(loop)
        self.server_transport = MemoryTransport(loop)
        self.client_transport.set_protocol(self.client_connection)
        self.server_transport.set_protocol(self.server)
        self.client_transport.peer = self.server
        self.server_transport.peer = self.client_connection
        self.server.connection_made(self.server_transport)
        self.client_connection.connection_made(self.client_transport)

    async def open(self) -> Pair:
        """Negotiate the extensions, as ``asyncrpc.connect`` does."""
        await self.client_connection.negotiate(wait=5.0)
        return self

    async def close(self) -> None:
        self.client_connection.close()
        await self.client_connection.wait_closed()


async def open_pair(server_handlers: str = "plain") -> Pair:
    return await Pair(server_handlers).open()
