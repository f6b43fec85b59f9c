"""Keepalive (``connect(keepalive=)``, ``Server(keepalive=)``): a silent peer is pinged,
and one that does not answer is let go, its calls failed and its handlers freed.

Silence is made for real: a proxy that swallows one direction's bytes (the
half-open network), a raw socket that never answers, a server that stops
reading. Each test is bounded: the dead connection must be noticed within
about two intervals, never "eventually".
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import socket
from typing import Any

import msgpack
import pytest

import asyncrpc
from asyncrpc.wire.extensions import PING_METHOD
from tests.faultproxy import FaultProxy
from tests.services import BOUND, make_server, open_gate

INTERVAL = 0.2
# Silence is noticed after 1 to 1.25 intervals, the ping then has one more:
# the connection must be gone within this, counted from the last byte heard.
NOTICED_WITHIN = INTERVAL * 2.25 + 0.3


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf, "1", True])
async def test_nonsense_keepalive_is_refused_at_once(bad: Any) -> None:
    with pytest.raises(ValueError, match="keepalive"):
        asyncrpc.connect("127.0.0.1", 1, keepalive=bad)
    with pytest.raises(ValueError, match="keepalive"):
        asyncrpc.Server(keepalive=bad)
    with pytest.raises(ValueError, match="keepalive"), asyncrpc.sync.connect("127.0.0.1", 1, keepalive=bad):
        pass


async def test_a_call_through_a_network_gone_silent_fails_instead_of_hanging(
    server: asyncrpc.Server, caplog: pytest.LogCaptureFixture
) -> None:
    """The half-open case: both sockets stay up, the server's replies never arrive."""
    async with (
        FaultProxy("127.0.0.1", server.port) as proxy,
        asyncrpc.connect("127.0.0.1", proxy.port, keepalive=INTERVAL) as client,
    ):
        assert await client.call("add", 1, 2) == 3
        proxy.downstream.drop = True
        loop = asyncio.get_running_loop()
        started = loop.time()
        call = client.call("demo.wait_for", "never")  # no timeout of its own
        with caplog.at_level(logging.WARNING, logger="asyncrpc"):
            async with asyncio.timeout(BOUND):
                with pytest.raises(asyncrpc.ConnectionLost, match=r"keepalive ping within 0\.2s"):
                    await call
        assert loop.time() - started < NOTICED_WITHIN
        assert call.status() is asyncrpc.CallStatus.FAILED
        assert not client.is_open
    assert any("keepalive ping" in record.getMessage() for record in caplog.records)


async def test_a_live_peer_is_pinged_and_kept(server: asyncrpc.Server) -> None:
    """Through a quiet connection pings go out and come back; nothing is lost."""
    async with (
        FaultProxy("127.0.0.1", server.port) as proxy,
        asyncrpc.connect("127.0.0.1", proxy.port, keepalive=INTERVAL) as client,
    ):
        await client.call("add", 0, 0)
        before = proxy.upstream.seen
        # Three pings, each sent after an interval of silence and answered.
        ping = len(msgpack.packb([0, 0, PING_METHOD, []]))
        async with asyncio.timeout(BOUND):
            await proxy.upstream.wait_seen(before + 3 * ping)
        assert client.is_open
        assert await client.call("add", 1, 2) == 3


async def test_no_ping_while_the_peer_talks() -> None:
    """Bytes arriving are proof enough: a busy connection carries no pings."""
    peer, port, seen = await _plain_peer()
    try:
        async with asyncrpc.connect("127.0.0.1", port, keepalive=INTERVAL, extensions=False) as client:
            loop = asyncio.get_running_loop()
            end = loop.time() + INTERVAL * 3
            while loop.time() < end:
                assert await client.call("add", 1, 2) == 3
        assert seen["add"] > 10
        assert seen[PING_METHOD] == 0
    finally:
        peer.close()
        await peer.wait_closed()


async def _plain_peer(
    pinged: asyncio.Event | None = None,
) -> tuple[asyncio.Server, int, collections.Counter[str]]:
    """A plain msgpack-rpc server that knows only ``add``, counting what it is asked
    (``pinged`` is set at the third ping)."""
    seen: collections.Counter[str] = collections.Counter()

    async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        unpacker = msgpack.Unpacker()
        while data := await reader.read(65536):
            unpacker.feed(data)
            for _, msgid, method, params in unpacker:
                seen[method] += 1
                if pinged is not None and seen[PING_METHOD] == 3:
                    pinged.set()
                if method == "add":
                    writer.write(msgpack.packb([1, msgid, None, sum(params)]))
                else:
                    writer.write(msgpack.packb([1, msgid, f"no such method {method}", None]))
        writer.close()

    peer = await asyncio.start_server(plain, "127.0.0.1", 0)
    return peer, peer.sockets[0].getsockname()[1], seen


async def test_a_plain_peer_answering_with_an_error_counts_as_alive() -> None:
    """A plain msgpack-rpc peer answers the ping "no such method": it is reading, so it stays."""
    pinged = asyncio.Event()
    peer, port, _ = await _plain_peer(pinged)
    try:
        async with asyncrpc.connect("127.0.0.1", port, keepalive=INTERVAL, extensions=False) as client:
            async with asyncio.timeout(BOUND):
                await pinged.wait()  # each answered ping is followed by another
            assert client.is_open
            assert await client.call("add", 1, 2) == 3
    finally:
        peer.close()
        await peer.wait_closed()


async def test_a_peer_that_never_answers_is_let_go_with_every_pending_call() -> None:
    """A raw socket that reads and never answers anything: all pending calls fail, once each."""

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass
        writer.close()

    peer = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = peer.sockets[0].getsockname()[1]
    try:
        async with asyncrpc.connect("127.0.0.1", port, keepalive=INTERVAL, extensions=False) as client:
            done = asyncrpc.notify.Event()
            waiting = [client.call("anything", i) for i in range(5)]
            noted = client.call("noted", notify=done)
            async with asyncio.timeout(BOUND):
                results = await asyncio.gather(*waiting, return_exceptions=True)
                await done.wait()
            assert all(isinstance(r, asyncrpc.ConnectionLost) for r in results)
            assert "keepalive" in str(noted.exception())
            assert client.connection.pending_count == 0
    finally:
        peer.close()
        await peer.wait_closed()


async def test_server_lets_a_silent_client_go_and_frees_its_handlers() -> None:
    """A client that went away without a word (its network half-open): the server's
    ping goes unanswered, the connection is closed and the handler sees the disconnect."""
    server = make_server(keepalive=INTERVAL)
    await server.start("127.0.0.1", 0)
    try:
        async with FaultProxy("127.0.0.1", server.port) as proxy:
            client = await asyncrpc.connect("127.0.0.1", proxy.port)
            try:
                call = client.call("demo.wait_for", "held")
                await client.call("add", 0, 0)  # requests start in order: wait_for is running
                (served,) = server._connections
                assert served.serving_count == 1
                proxy.upstream.drop = True  # the client's answers to pings vanish
                async with asyncio.timeout(BOUND):
                    await served.wait_closed()
                assert served.serving_count == 0
                assert not server._connections
            finally:
                call.cancel()
                client.connection.abort()
    finally:
        open_gate("held")
        await server.close(grace=1.0)


async def test_tcp_keepalive_is_set_on_the_socket(server: asyncrpc.Server) -> None:
    async with asyncrpc.connect("127.0.0.1", server.port, keepalive=2.5) as client:
        sock = client.connection.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 3
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 3
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
    async with asyncrpc.connect("127.0.0.1", server.port) as client:
        sock = client.connection.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0


async def test_asyncrpc_peers_answer_the_ping(server: asyncrpc.Server) -> None:
    async with asyncrpc.connect("127.0.0.1", server.port) as client:
        assert await client.call(PING_METHOD) is None


async def test_sync_client_takes_keepalive(server: asyncrpc.Server) -> None:
    def from_a_thread() -> Any:
        with asyncrpc.sync.connect("127.0.0.1", server.port, keepalive=INTERVAL) as client:
            assert client.client.connection._keepalive is not None
            return client.call("add", 1, 2)

    async with asyncio.timeout(BOUND):
        assert await asyncio.to_thread(from_a_thread) == 3


async def test_a_peer_answering_the_ping_with_garbage_costs_only_its_connection(
    server: asyncrpc.Server,
) -> None:
    """Bytes that are not msgpack in place of the ping's answer: a protocol error for
    that connection, logged; the other connections go on."""

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if PING_METHOD.encode() in data:
                writer.write(b"\xc1\xc1\xc1")  # 0xc1 is never used in msgpack
        writer.close()

    peer = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = peer.sockets[0].getsockname()[1]
    try:
        async with asyncrpc.connect("127.0.0.1", server.port, keepalive=INTERVAL) as good:
            async with asyncrpc.connect("127.0.0.1", port, keepalive=INTERVAL, extensions=False) as bad:
                call = bad.call("anything")
                async with asyncio.timeout(BOUND):
                    with pytest.raises(asyncrpc.ConnectionLost) as info:
                        await call
                assert isinstance(info.value.__cause__, asyncrpc.ProtocolError)
            assert await good.call("add", 1, 2) == 3
    finally:
        peer.close()
        await peer.wait_closed()
