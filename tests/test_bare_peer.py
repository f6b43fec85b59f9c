"""Interop with bare msgpack-rpc peers (issue 2, item 7): asyncio sockets and msgpack, nothing else.

A bare peer knows message types 0, 1 and 2 and nothing of asyncrpc. Our server
must answer it in plain msgpack-rpc (Neovim-shaped errors, since it never
negotiated), and our client must send it nothing but ordinary requests, the
hello probe included, which is itself an ordinary request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgpack
import pytest

import asyncrpc
from asyncrpc.wire import extensions as ext
from tests.services import Demo

# -- a bare client -------------------------------------------------------------------------


class BareClient:
    """A msgpack-rpc client made of ``asyncio.open_connection`` and ``msgpack``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.unpacker = msgpack.Unpacker(raw=False)

    @classmethod
    async def connect(cls, port: int) -> BareClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def send(self, *messages: Any) -> None:
        self.writer.write(b"".join(msgpack.packb(message) for message in messages))

    async def receive(self) -> Any:
        while True:
            try:
                return next(self.unpacker)
            except StopIteration:
                pass
            data = await self.reader.read(65536)
            if not data:
                raise EOFError("server closed the connection")
            self.unpacker.feed(data)

    async def finish(self) -> list[Any]:
        """Close our side, then return every message the server still sent."""
        self.writer.write_eof()
        self.unpacker.feed(await self.reader.read())
        self.writer.close()
        await self.writer.wait_closed()
        return list(self.unpacker)


@pytest.fixture
async def demo_server() -> AsyncIterator[tuple[asyncrpc.Server, Demo]]:
    demo = Demo()
    server = asyncrpc.Server()
    server.register(demo, namespace="demo")
    server.register_function(lambda a, b: a + b, name="add")
    await server.start("127.0.0.1", 0)
    yield server, demo
    await server.close(grace=1.0)


async def test_bare_client_gets_results(demo_server: tuple[asyncrpc.Server, Demo]) -> None:
    server, _ = demo_server
    peer = await BareClient.connect(server.port)
    peer.send([0, 1, "add", [1, 2]], [0, 2, "demo.echo", [{"k": [b"\x00", 1.5, None]}]])
    assert await peer.receive() == [1, 1, None, 3]
    assert await peer.receive() == [1, 2, None, {"k": [b"\x00", 1.5, None]}]
    assert await peer.finish() == []


async def test_bare_client_gets_neovim_shaped_errors(demo_server: tuple[asyncrpc.Server, Demo]) -> None:
    server, _ = demo_server
    peer = await BareClient.connect(server.port)
    peer.send([0, 5, "demo.fail", ["bad input"]], [0, 6, "no.such.method", []], [0, 7, "add", [1]])
    assert await peer.receive() == [1, 5, [0, "ValueError: bad input"], None]
    msgid, error, result = (await peer.receive())[1:]
    assert (msgid, result) == (6, None)
    assert error[0] == 0
    assert error[1].startswith("MethodNotFound: ")
    assert "no.such.method" in error[1]
    msgid, error, result = (await peer.receive())[1:]
    assert (msgid, result) == (7, None)
    assert error[0] == 0
    assert error[1].startswith("TypeError: ")
    assert await peer.finish() == []


async def test_bare_client_notifications_run_and_are_never_answered(
    demo_server: tuple[asyncrpc.Server, Demo],
) -> None:
    server, demo = demo_server
    peer = await BareClient.connect(server.port)
    peer.send([2, "demo.NonAsyncFunc", ["first"]], [2, "demo.NonAsyncFunc", ["second"]], [2, "nobody", [1]])
    peer.send([0, 9, "demo.echo", ["after"]])
    # The only reply is the request's: the notifications got none, and ran in order before it.
    assert await peer.receive() == [1, 9, None, "after"]
    assert demo.messages == ["first", "second"]
    assert await peer.finish() == []


async def test_bare_client_gets_replies_out_of_order(demo_server: tuple[asyncrpc.Server, Demo]) -> None:
    server, _ = demo_server
    peer = await BareClient.connect(server.port)
    peer.send([0, 10, "demo.AsyncFunc", [0.3]], [0, 11, "add", [2, 3]])
    assert await peer.receive() == [1, 11, None, 5]
    assert await peer.receive() == [1, 10, None, "AsyncFunc slept 0.3s"]
    assert await peer.finish() == []


async def test_bare_client_may_reuse_and_wrap_msgids(demo_server: tuple[asyncrpc.Server, Demo]) -> None:
    server, _ = demo_server
    peer = await BareClient.connect(server.port)
    peer.send([0, 2**32 - 1, "add", [1, 1]], [0, 0, "add", [2, 2]], [0, 0, "add", [3, 3]])
    assert [await peer.receive() for _ in range(3)] == [
        [1, 2**32 - 1, None, 2],
        [1, 0, None, 4],
        [1, 0, None, 6],
    ]
    assert await peer.finish() == []


# -- a bare server --------------------------------------------------------------------------


class BareServer:
    """A msgpack-rpc server made of ``asyncio.start_server`` and ``msgpack``.

    It records every message it receives and answers like a plain peer:
    ``add``; ``fail`` (an error in Neovim's shape); ``slow``, held until a
    ``fast`` request comes and answered after it; ``hang``, never answered;
    any other method, an error like Neovim's "Invalid method".
    """

    def __init__(self) -> None:
        self.received: list[Any] = []
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        unpacker = msgpack.Unpacker(raw=False)
        held: list[tuple[int, Any]] = []

        def reply(msgid: int, error: Any, result: Any) -> None:
            writer.write(msgpack.packb([1, msgid, error, result]))

        while data := await reader.read(65536):
            unpacker.feed(data)
            for message in unpacker:
                self.received.append(message)
                if message[0] != 0:
                    continue
                msgid, method, params = message[1], message[2], message[3]
                if method == "add":
                    reply(msgid, None, params[0] + params[1])
                elif method == "fail":
                    reply(msgid, [0, "it failed"], None)
                elif method == "slow":
                    held.append((msgid, params))
                elif method == "fast":
                    reply(msgid, None, "fast")
                    for slow_id, slow_params in held:
                        reply(slow_id, None, f"slow:{slow_params[0]}")
                    held.clear()
                elif method != "hang":
                    reply(msgid, [0, f"Invalid method: {method}"], None)
        writer.close()
        if not self.closed.done():
            self.closed.set_result(None)


@pytest.fixture
async def bare_server() -> AsyncIterator[BareServer]:
    peer = BareServer()
    await peer.start()
    yield peer
    await peer.close()


async def test_client_against_bare_server_sends_only_plain_requests(bare_server: BareServer) -> None:
    client = await asyncrpc.connect("127.0.0.1", bare_server.port)
    assert client.features == frozenset()

    assert await client.call("add", 1, 2) == 3

    # Out of order: the peer answers "fast" before the "slow" sent first.
    order: list[str | None] = []
    slow = client.call("slow", 1)
    fast = client.call("fast")
    for call in (slow, fast):
        call.add_done_callback(lambda c: order.append(c.method))
    assert await slow == "slow:1"
    assert await fast == "fast"
    assert order == ["fast", "slow"]

    with pytest.raises(asyncrpc.RemoteError) as failed:
        await client.call("fail")
    assert failed.value.raw == [0, "it failed"]
    assert (failed.value.type, failed.value.message) == ("Exception", "it failed")
    with pytest.raises(asyncrpc.MethodNotFound) as missing:
        await client.call("nope")
    assert missing.value.raw == [0, "Invalid method: nope"]

    # Abortive cancel and deadline end the calls here; the peer must hear nothing of them.
    hung = client.call("hang")
    assert hung.cancel() is True
    assert hung.status() is asyncrpc.CallStatus.CANCELLED
    with pytest.raises(asyncrpc.CallCancelled):
        await hung
    with pytest.raises(asyncrpc.DeadlineExceeded):
        await client.call("hang", timeout=0.05)

    # A non-abortive cancel cannot reach a bare peer: the call ends when the peer answers.
    held = client.call("slow", 2)
    held.cancel(abort=False)
    assert held.status() is asyncrpc.CallStatus.PENDING
    assert await client.call("fast") == "fast"
    assert await held == "slow:2"

    # A last round trip: whatever we sent before it has reached the peer.
    assert await client.call("add", 2, 2) == 4
    await client.close()
    async with asyncio.timeout(5):
        await bare_server.closed

    received = bare_server.received
    assert all(type(m) is list and len(m) == 4 and m[0] == 0 for m in received), received
    assert [m[2] for m in received] == [
        ext.HELLO_METHOD,
        "add",
        "slow",
        "fast",
        "fail",
        "nope",
        "hang",
        "hang",
        "slow",
        "fast",
        "add",
    ]
    # The probe: an ordinary request with one map parameter.
    assert received[0][3] == [ext.hello_payload(max_message_size=asyncrpc.Limits().max_message_size)]
    assert len({m[1] for m in received}) == len(received)  # one msgid per request


async def test_client_with_extensions_off_sends_not_even_the_probe(bare_server: BareServer) -> None:
    client = await asyncrpc.connect("127.0.0.1", bare_server.port, extensions=False)
    assert client.features == frozenset()
    hung = client.call("hang")
    hung.cancel()
    with pytest.raises(asyncrpc.DeadlineExceeded):
        await client.call("hang", timeout=0.05)
    assert await client.call("add", 20, 22) == 42
    await client.close()
    async with asyncio.timeout(5):
        await bare_server.closed
    assert [m[2] for m in bare_server.received] == ["hang", "hang", "add"]
    assert all(len(m) == 4 and m[0] == 0 for m in bare_server.received)


async def test_client_notification_reaches_bare_server_as_type_2(bare_server: BareServer) -> None:
    client = await asyncrpc.connect("127.0.0.1", bare_server.port)
    client.notify("note", "x", 1)
    assert await client.call("add", 1, 1) == 2
    await client.close()
    async with asyncio.timeout(5):
        await bare_server.closed
    assert bare_server.received[1:] == [[2, "note", ["x", 1]], [0, bare_server.received[2][1], "add", [1, 1]]]
