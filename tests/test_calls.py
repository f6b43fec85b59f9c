"""Client and server through real loopback sockets: the core of issue 2."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

import asyncrpc
from asyncrpc import CallStatus
from asyncrpc.wire.events import MAX_MSGID
from tests.services import Demo, make_server, open_gate


async def test_call_returns_result(client: asyncrpc.Client) -> None:
    assert await client.call("add", 2, 3) == 5
    assert await client.call("demo.echo", {"k": [1, b"x", None]}) == {"k": [1, b"x", None]}


async def test_call_handle_is_pending_before_reply(client: asyncrpc.Client) -> None:
    call = client.call("demo.wait_for", "gate")
    assert call.status() is CallStatus.PENDING
    assert not call.done()
    assert call.method == "demo.wait_for"
    assert call.msgid is not None
    open_gate("gate")
    assert await call == "gate"
    assert call.done()
    assert call.complete() == "gate"


async def test_stub_attribute_access_and_options(client: asyncrpc.Client) -> None:
    demo = client.stub("demo")
    assert await demo.add(1, 2) == 3
    assert await client.stub().add(4, 5) == 9
    with pytest.raises(asyncrpc.DeadlineExceeded):
        await demo.wait_for.options(timeout=0.05)("never")
    with pytest.raises(AttributeError):
        _ = demo._private  # names starting with "_" are never remote


async def test_private_methods_are_not_registered(client: asyncrpc.Client) -> None:
    with pytest.raises(asyncrpc.MethodNotFound):
        await client.call("demo._private")


def test_register_takes_public_methods_only() -> None:
    server = asyncrpc.Server()
    names = server.register(Demo(), namespace="demo")
    assert "demo.AsyncFunc" in names
    assert "demo.NonAsyncFunc" in names
    assert all(not name.split(".")[1].startswith("_") for name in names)
    assert "demo.messages" not in names  # attributes that are not callable


def test_register_rejects_object_without_methods() -> None:
    with pytest.raises(ValueError, match="no public methods"):
        asyncrpc.Server().register(object())


async def test_unknown_method_is_method_not_found(client: asyncrpc.Client) -> None:
    with pytest.raises(asyncrpc.MethodNotFound) as info:
        await client.call("no.such.method")
    assert "no.such.method" in info.value.message
    assert isinstance(info.value, asyncrpc.RemoteError)


async def test_handler_exception_becomes_remote_error(client: asyncrpc.Client) -> None:
    with pytest.raises(asyncrpc.RemoteError) as info:
        await client.call("demo.fail", "bad input")
    assert info.value.type == "ValueError"
    assert info.value.message == "bad input"
    assert info.value.raw == {"type": "ValueError", "message": "bad input"}
    # The connection is fine afterwards.
    assert await client.call("add", 1, 1) == 2


async def test_wrong_argument_count_is_a_remote_type_error(client: asyncrpc.Client) -> None:
    with pytest.raises(asyncrpc.RemoteError) as info:
        await client.call("add", 1)
    assert info.value.type == "TypeError"


async def test_sync_call_runs_while_async_call_pending(client: asyncrpc.Client) -> None:
    """Behaviour 4: an awaited call completes while an asynchronous one is pending."""
    pending = client.call("demo.wait_for", "slow")
    for i in range(5):
        assert await client.stub("demo").add(i, i) == 2 * i
        assert pending.status() is CallStatus.PENDING
    open_gate("slow")
    assert await pending == "slow"


async def test_responses_arrive_out_of_order(client: asyncrpc.Client) -> None:
    """Behaviour 4: replies are matched by msgid, whatever order they come in."""
    first = client.call("demo.wait_for", "a")
    second = client.call("demo.wait_for", "b")
    finished: list[str] = []
    first.add_done_callback(lambda c: finished.append("a"))
    second.add_done_callback(lambda c: finished.append("b"))
    await client.call("add", 0, 0)
    open_gate("b")
    assert await second == "b"
    assert first.status() is CallStatus.PENDING
    open_gate("a")
    assert await first == "a"
    assert finished == ["b", "a"]


async def test_slow_async_handler_never_delays_a_fast_one(client: asyncrpc.Client) -> None:
    slow = [client.call("demo.wait_for", f"g{i}") for i in range(10)]
    assert await asyncio.gather(*(client.call("add", i, 1) for i in range(50))) == [i + 1 for i in range(50)]
    assert all(call.status() is CallStatus.PENDING for call in slow)
    for i in range(10):
        open_gate(f"g{i}")
    assert await asyncio.gather(*slow) == [f"g{i}" for i in range(10)]


async def test_many_concurrent_calls(client: asyncrpc.Client) -> None:
    results = await asyncio.gather(*(client.call("add", i, i) for i in range(2000)))
    assert results == [2 * i for i in range(2000)]
    assert client.connection.pending_count == 0


async def test_notification_reaches_server_handler(server: asyncrpc.Server) -> None:
    received: asyncio.Queue[Any] = asyncio.Queue()
    server.register_function(received.put_nowait, name="log")
    async with asyncrpc.connect("127.0.0.1", server.port) as client:
        client.notify("log", "hello")
        assert await received.get() == "hello"


async def test_server_calls_client_back_on_same_connection(server: asyncrpc.Server) -> None:
    async def ask_client(x: int) -> Any:
        peer = asyncrpc.current_call().peer
        return await peer.call("client.double", x)

    server.register_function(ask_client, name="ask_client")
    async with asyncrpc.connect("127.0.0.1", server.port) as client:
        client.register_function(lambda x: 2 * x, name="client.double")
        assert await client.call("ask_client", 21) == 42


async def test_connect_is_awaitable_and_closes(server: asyncrpc.Server) -> None:
    client = await asyncrpc.connect("127.0.0.1", server.port)
    open_before = client.is_open
    assert client.features == frozenset({"cancel", "deadline", "errors"})
    await client.close()
    assert (open_before, client.is_open) == (True, False)
    await client.close()  # idempotent
    with pytest.raises(asyncrpc.ConnectionLost):
        client.call("add", 1, 2)


def test_connect_needs_an_address() -> None:
    with pytest.raises(ValueError, match="host and port"):
        asyncrpc.connect("127.0.0.1")
    with pytest.raises(ValueError, match="not both"):
        asyncrpc.connect("127.0.0.1", 1, path="/tmp/x.sock")


async def test_connect_refused_raises_oserror() -> None:
    server = make_server()
    await server.start("127.0.0.1", 0)
    port = server.port
    await server.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncrpc.connect("127.0.0.1", port)


@pytest.fixture
async def unix_server(tmp_path: Path) -> AsyncIterator[asyncrpc.Server]:
    srv = make_server()
    await srv.start(path=str(tmp_path / "rpc.sock"))
    yield srv
    await srv.close()


async def test_unix_socket_calls(unix_server: asyncrpc.Server) -> None:
    assert unix_server.path is not None
    async with asyncrpc.connect(path=unix_server.path) as client:
        pending = client.call("demo.wait_for", "u")
        assert await client.call("add", 1, 2) == 3
        open_gate("u")
        assert await pending == "u"


async def test_unix_socket_file_removed_on_close(tmp_path: Path) -> None:
    path = tmp_path / "gone.sock"
    srv = make_server()
    await srv.start(path=str(path))
    assert path.exists()
    await srv.close()
    assert not path.exists()


async def test_too_many_pending_calls_raises_at_call_site(server: asyncrpc.Server) -> None:
    async with asyncrpc.connect("127.0.0.1", server.port, max_pending=3) as client:
        calls = [client.call("demo.wait_for", "full") for _ in range(3)]
        with pytest.raises(asyncrpc.TooManyPendingCalls):
            client.call("add", 1, 2)
        open_gate("full")
        await asyncio.gather(*calls)
        assert await client.call("add", 1, 2) == 3


async def test_msgid_wraps_and_skips_ids_in_use(client: asyncrpc.Client) -> None:
    connection = client.connection
    held = client.call("demo.wait_for", "held")  # holds some msgid
    assert held.msgid is not None
    # Pretend MAX_MSGID calls went by: the next id wraps to 0 and must skip `held`.
    connection.outgoing._next_msgid = MAX_MSGID
    top = client.call("add", 1, 1)
    assert top.msgid == MAX_MSGID
    connection.outgoing._next_msgid = held.msgid
    after = client.call("add", 2, 2)
    assert after.msgid == held.msgid + 1
    assert (await top, await after) == (2, 4)
    open_gate("held")
    assert await held == "held"


async def test_unencodable_argument_raises_at_call_site(client: asyncrpc.Client) -> None:
    with pytest.raises(asyncrpc.EncodeError):
        client.call("demo.echo", object())
    with pytest.raises(TypeError):  # EncodeError is a TypeError too
        client.call("demo.echo", {1, 2})
    assert client.connection.pending_count == 0
    assert await client.call("add", 1, 2) == 3


async def test_unencodable_result_is_reported_to_caller(server: asyncrpc.Server) -> None:
    server.register_function(object, name="bad_result")
    async with asyncrpc.connect("127.0.0.1", server.port) as client:
        with pytest.raises(asyncrpc.RemoteError) as info:
            await client.call("bad_result")
        assert info.value.type == "EncodeError"


class CountingTransport:
    """Stands in front of the real transport and counts writes (uvloop's are read-only)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.real.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


async def test_writes_from_many_callers_are_coalesced(client: asyncrpc.Client) -> None:
    connection = client.connection
    counting = CountingTransport(connection._transport)
    connection._transport = counting
    try:
        await asyncio.gather(*(client.call("add", i, 0) for i in range(100)))
    finally:
        connection._transport = counting.real
    # 100 requests made in one loop iteration: the first, alone when made, at
    # once; the 99 made beside it together, in one write at the end of the turn.
    assert [data.count(b"\x94\x00") for data in counting.writes] == [1, 99]


async def test_callers_woken_by_one_read_call_again_in_one_write() -> None:
    """Replies that arrive together wake their callers together; the calls those
    callers make next leave in one write, none of them alone."""
    got_all = asyncio.Event()

    async def answer_all_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        unpacker = msgpack.Unpacker()
        requests: list[Any] = []
        while len(requests) < 20:
            unpacker.feed(await reader.read(65536))
            requests.extend(unpacker)
        writer.write(b"".join(msgpack.packb([1, msgid, None, arg]) for _, msgid, _, (arg,) in requests))
        while len(requests) < 40:  # the second calls
            data = await reader.read(65536)
            if not data:
                break
            unpacker.feed(data)
            requests.extend(unpacker)
        got_all.set()
        writer.close()

    peer = await asyncio.start_server(answer_all_at_once, "127.0.0.1", 0)
    port = peer.sockets[0].getsockname()[1]
    try:
        async with asyncrpc.connect("127.0.0.1", port, extensions=False) as client:
            connection = client.connection
            counting = CountingTransport(connection._transport)
            connection._transport = counting
            second: list[asyncrpc.AsyncCall[Any]] = []

            async def call_twice(i: int) -> None:
                await client.call("f", i)
                second.append(client.call("f", i))

            try:
                async with asyncio.timeout(5):
                    await asyncio.gather(*(call_twice(i) for i in range(20)))
                    await got_all.wait()
            finally:
                connection._transport = counting.real
            for call in second:
                call.cancel()
    finally:
        peer.close()
        await peer.wait_closed()
    # The first 20 (made in one loop turn): one alone, then 19 together; the
    # second 20 (made by callers woken by one read): all 20 together.
    assert [data.count(b"\x94\x00") for data in counting.writes] == [1, 19, 20]


async def test_server_close_refuses_new_calls_during_grace(
    client: asyncrpc.Client, server: asyncrpc.Server
) -> None:
    in_flight = client.call("demo.wait_for", "grace")
    await client.call("add", 0, 0)
    closing = asyncio.ensure_future(server.close(grace=5.0))
    await asyncio.sleep(0)  # let close() stop accepting and mark connections
    with pytest.raises(asyncrpc.RemoteError) as info:
        await client.call("add", 1, 1)
    assert info.value.type == "Unavailable"
    open_gate("grace")
    assert await in_flight == "grace"
    await closing
    assert not server.is_serving


async def test_lone_call_is_written_when_made(client: asyncrpc.Client) -> None:
    """With no other call pending to coalesce with, a call is written at once,
    not at the end of the loop turn (sequential latency)."""
    connection = client.connection
    counting = CountingTransport(connection._transport)
    connection._transport = counting
    try:
        call = client.call("add", 20, 22)
        assert len(counting.writes) == 1  # written by call() itself
        assert connection.pending_count == 1
        assert await call == 42
    finally:
        connection._transport = counting.real


async def test_a_lone_call_is_sent_without_being_awaited(client: asyncrpc.Client) -> None:
    """Written when made, a call that is only polled still reaches the server."""
    done = asyncrpc.notify.Event()
    call = client.call("add", 1, 2, notify=done)
    async with asyncio.timeout(5):
        await done.wait()
    assert call.result() == 3


async def test_replies_to_a_pipelined_burst_leave_in_chunks(server: asyncrpc.Server) -> None:
    """Replies to one read go out every 16, so the peer can start on them early."""
    async with asyncrpc.connect("127.0.0.1", server.port) as client:
        await client.call("add", 0, 0)
        (served,) = server._connections
        counting = CountingTransport(served._transport)
        served._transport = counting
        try:
            results = await asyncio.gather(*(client.call("add", i, 1) for i in range(64)))
        finally:
            served._transport = counting.real
    assert results == [i + 1 for i in range(64)]
    replies_per_write = [data.count(b"\x94\x01") for data in counting.writes]
    assert sum(replies_per_write) >= 64
    assert max(replies_per_write) <= 16
