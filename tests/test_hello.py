"""The hello probe costs a plain peer nothing (issue 9, item 2).

Plain msgpack-rpc servers treat a method they do not know in one of three ways:
they answer with an error (Neovim, Go's net/rpc: covered in
``test_extension_wire.py``), they never answer (aiorpc), or they hang up
(mprpc). Each peer here is a real server on 127.0.0.1 that answers ordinary
calls and does one of those things with the probe.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import msgpack
import pytest

import asyncrpc
from asyncrpc.options import DEFAULT_HELLO_TIMEOUT
from asyncrpc.wire import extensions as ext
from tests.services import BOUND

Writer = asyncio.StreamWriter
OnHello = Callable[["Peer", Writer, int, Any], Awaitable[bool]]
"""What a peer does with the probe: ``(peer, writer, msgid, payload)``; False hangs up."""


@dataclass
class Peer:
    """A plain server; ``connections[i]`` lists the messages the i-th connection sent."""

    on_hello: OnHello
    connections: list[list[Any]] = field(default_factory=list)
    port: int = 0
    held: list[bytes] = field(default_factory=list)
    """Answers the peer writes just before its next reply to a call."""

    async def serve(self, reader: asyncio.StreamReader, writer: Writer) -> None:
        received: list[Any] = []
        self.connections.append(received)
        unpacker = msgpack.Unpacker(raw=False)
        try:
            while data := await reader.read(65536):
                unpacker.feed(data)
                for message in unpacker:
                    received.append(message)
                    msgid, method, params = message[1:4]
                    if method == ext.HELLO_METHOD:
                        if not await self.on_hello(self, writer, msgid, params[0]):
                            return
                        continue
                    for answer in self.held:
                        writer.write(answer)
                    self.held.clear()
                    writer.write(msgpack.packb([1, msgid, None, ["plain", method, params]]))
        finally:
            writer.close()


@asynccontextmanager
async def plain_server(on_hello: OnHello) -> AsyncIterator[Peer]:
    peer = Peer(on_hello)
    server = await asyncio.start_server(peer.serve, "127.0.0.1", 0)
    peer.port = int(server.sockets[0].getsockname()[1])
    try:
        yield peer
    finally:
        server.close()
        await server.wait_closed()


async def never_answer(peer: Peer, writer: Writer, msgid: int, payload: Any) -> bool:
    return True


async def hang_up(peer: Peer, writer: Writer, msgid: int, payload: Any) -> bool:
    return False


async def answer_after_the_first_call(peer: Peer, writer: Writer, msgid: int, payload: Any) -> bool:
    """An asyncrpc peer slow to answer the hello: its answer comes just before its first reply."""
    peer.held.append(msgpack.packb([1, msgid, None, payload]))
    return True


async def test_a_peer_that_never_answers_the_probe_is_plain_after_hello_timeout() -> None:
    """aiorpc ignores an unknown method: connect() returns after hello_timeout, not 5 s."""
    async with plain_server(never_answer) as peer:
        started = time.monotonic()
        async with asyncrpc.connect("127.0.0.1", peer.port) as client:
            waited = time.monotonic() - started
            assert client.features == frozenset()
            assert await client.call("add", 1, 2, timeout=BOUND) == ["plain", "add", [1, 2]]
    assert DEFAULT_HELLO_TIMEOUT <= 1.0
    assert waited < DEFAULT_HELLO_TIMEOUT + 1.0  # the wait, not a multiple of it
    [messages] = peer.connections
    assert [m[2] for m in messages] == [ext.HELLO_METHOD, "add"]
    assert len(messages[1]) == 4  # a plain request: no deadline extension field


async def test_a_peer_that_hangs_up_over_the_probe_is_connected_to_again_without_it() -> None:
    """mprpc closes the connection on an unknown method: connect() tries once more, plainly."""
    async with plain_server(hang_up) as peer, asyncrpc.connect("127.0.0.1", peer.port) as client:
        assert client.features == frozenset()
        assert await client.call("echo", "x") == ["plain", "echo", ["x"]]
    first, second = peer.connections
    assert [m[2] for m in first] == [ext.HELLO_METHOD]
    assert [m[2] for m in second] == ["echo"]  # no probe the second time


async def test_calls_before_a_late_hello_answer_go_plain_and_after_it_use_the_extensions() -> None:
    async with (
        plain_server(answer_after_the_first_call) as peer,
        asyncrpc.connect("127.0.0.1", peer.port, hello_timeout=0.05) as client,
    ):
        assert client.features == frozenset()  # not answered within hello_timeout
        assert await client.call("first", timeout=BOUND) == ["plain", "first", []]
        # The probe's answer was written before the reply to "first": it counts.
        assert client.features == ext.FEATURES
        assert await client.call("second", timeout=BOUND) == ["plain", "second", []]
    [messages] = peer.connections
    assert [m[2] for m in messages] == [ext.HELLO_METHOD, "first", "second"]
    first, second = messages[1], messages[2]
    assert len(first) == 4  # plain: the peer had not said it reads deadlines
    assert len(second) == 5
    assert second[4] == {ext.EXT_TIMEOUT: pytest.approx(BOUND, abs=1.0)}


async def test_a_peer_that_speaks_garbage_over_the_probe_is_not_tried_again() -> None:
    async def garbage(peer: Peer, writer: Writer, msgid: int, payload: Any) -> bool:
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        return False

    async with plain_server(garbage) as peer:
        with pytest.raises(asyncrpc.ConnectionLost) as raised:
            await asyncrpc.connect("127.0.0.1", peer.port)
    assert isinstance(raised.value.__cause__, asyncrpc.ProtocolError)
    assert len(peer.connections) == 1


async def test_a_peer_that_always_hangs_up_gives_a_client_whose_first_call_fails() -> None:
    """Twice closed: the second connection is plain, and the call on it says the connection is gone."""

    async def close_at_once(reader: asyncio.StreamReader, writer: Writer) -> None:
        writer.close()

    server = await asyncio.start_server(close_at_once, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    try:
        async with asyncrpc.connect("127.0.0.1", port) as client:
            assert client.connection.bytes_received == 0
            with pytest.raises(asyncrpc.ConnectionLost):
                await client.call("add", 1, 2, timeout=BOUND)
    finally:
        server.close()
        await server.wait_closed()


async def test_the_sync_client_gets_the_same_hello() -> None:
    async with plain_server(hang_up) as peer:

        def use() -> Any:
            with asyncrpc.sync.connect("127.0.0.1", peer.port) as client:
                return client.call("echo", 1)

        assert await asyncio.to_thread(use) == ["plain", "echo", [1]]
    assert len(peer.connections) == 2
