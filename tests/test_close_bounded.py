"""Closing is bounded in time, even when the peer does not read (behaviour 17).

``Server.close(grace)`` returns within its grace and a moment more, and
``client.close()`` within its ``close_timeout``: what the peer has not taken by
then is dropped, the socket is aborted, and pending calls fail with
``ConnectionLost``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import cast

import pytest

import asyncrpc
from tests.rawpeer import RawPeer, pack

BLOB = b"x" * 65536


class Blobs:
    def blob(self) -> bytes:
        return BLOB


@pytest.fixture
async def blob_server() -> AsyncIterator[asyncrpc.Server]:
    server = asyncrpc.Server()
    server.register(Blobs(), namespace="b")
    await server.start("127.0.0.1", 0)
    yield server
    await server.close(grace=0.1)


async def test_server_close_is_bounded_by_its_grace_when_a_peer_does_not_read(
    blob_server: asyncrpc.Server,
) -> None:
    peer = await RawPeer.connect(blob_server.port)
    try:
        await peer.send(b"".join(pack([0, msgid, "b.blob", []]) for msgid in range(300)))
        async with asyncrpc.connect("127.0.0.1", blob_server.port) as good:
            assert await good.call("b.blob") == BLOB  # the server is up and answering
            loop = asyncio.get_running_loop()
            started = loop.time()
            async with asyncio.timeout(5):
                await blob_server.close(grace=0.5)
            assert loop.time() - started < 0.5 + 1.0
            assert blob_server.connections == 0
            assert not good.is_open
    finally:
        peer.close()


class SilentServer:
    """Accepts connections and never reads a byte."""

    def __init__(self) -> None:
        self.accepted = asyncio.Event()
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> SilentServer:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, limit=1024)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for writer in self._writers:
            writer.transport.abort()
        self._server.close()
        await self._server.wait_closed()

    @property
    def port(self) -> int:
        return int(self._server.sockets[0].getsockname()[1])

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        # A read transport on both loops (uvloop's do not subclass asyncio's).
        transport = cast(asyncio.ReadTransport, writer.transport)
        transport.pause_reading()
        self.accepted.set()


async def test_client_close_is_bounded_when_the_server_does_not_read() -> None:
    async with SilentServer() as silent:
        client = await asyncrpc.connect("127.0.0.1", silent.port, extensions=False, close_timeout=0.5)
        await silent.accepted.wait()
        calls = [client.call("store", b"y" * (1 << 20)) for _ in range(16)]  # 16 MiB nobody reads
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with asyncio.timeout(5):
            await client.close()
        assert loop.time() - started < 0.5 + 1.0
        for call in calls:
            with pytest.raises(asyncrpc.ConnectionLost, match="did not read"):
                call.complete()


async def test_concurrent_drains_all_return(blob_server: asyncrpc.Server) -> None:
    """Two waits for a connection's calls to be answered: both return (the first used to hang)."""
    gate = asyncio.Event()
    served: list[asyncrpc.Connection] = []

    async def hold() -> str:
        served.append(asyncrpc.current_call().peer.connection)
        await gate.wait()
        return "done"

    blob_server.register_function(hold, name="hold")
    async with asyncrpc.connect("127.0.0.1", blob_server.port) as client:
        call = client.call("hold")
        await client.call("b.blob")  # the hold request has been read by now
        await asyncio.sleep(0)
        (connection,) = served
        first = asyncio.ensure_future(connection.drain_serving())
        second = asyncio.ensure_future(connection.drain_serving())
        await asyncio.sleep(0)
        assert not first.done()
        assert not second.done()
        gate.set()
        async with asyncio.timeout(5):
            await asyncio.gather(first, second)
        assert await call == "done"


async def test_calls_to_a_peer_that_closed_fail_at_once_saying_so() -> None:
    accepted: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put(writer)

    half = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    try:
        port = int(half.sockets[0].getsockname()[1])
        client = await asyncrpc.connect("127.0.0.1", port, extensions=False)
        call = client.call("never.answered")
        writer = await accepted.get()
        writer.write_eof()  # the peer's last byte; it does not even read what we send
        async with asyncio.timeout(5):
            with pytest.raises(asyncrpc.ConnectionLost, match="closed by peer"):
                await call
        with pytest.raises(asyncrpc.ConnectionLost):
            client.call("after")
        await client.close()
        writer.close()
    finally:
        half.close()
        await half.wait_closed()
