"""Behaviour 9: the server survives any bytes a client sends; one bad connection never harms others.

Every case runs through real loopback sockets against a real Server, with a
well-behaved client connected the whole time, holding a call in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import asyncrpc
from asyncrpc import notify
from tests.services import make_server, open_gate

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
    uvloop = None  # type: ignore[assignment]

LIMITS = asyncrpc.Limits(max_message_size=64 * 1024, max_depth=16)


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]


def nested(depth: int) -> list[Any]:
    value: list[Any] = [0]
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.fixture
async def server() -> AsyncIterator[asyncrpc.Server]:
    srv = make_server(limits=LIMITS)
    await srv.start("127.0.0.1", 0)
    yield srv
    await srv.close(grace=1.0)


@pytest.fixture
async def good(server: asyncrpc.Server) -> AsyncIterator[asyncrpc.Client]:
    async with asyncrpc.connect("127.0.0.1", server.port) as client:
        yield client


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes (a reset counts as closed)."""
    chunks = []
    try:
        while data := await reader.read(65536):
            chunks.append(data)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


async def bad_connection(port: int, data: bytes, *, then_eof: bool = False) -> bytes:
    """Send ``data`` on a raw socket and wait for the server to close it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        if then_eof:
            writer.write_eof()
        async with asyncio.timeout(5):
            return await read_until_closed(reader)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):  # the server may have reset it
            await writer.wait_closed()


GARBAGE = [
    pytest.param(b"\xc1 not msgpack at all", False, "invalid type byte", id="invalid-byte"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", False, "message is not an array", id="http"),
    pytest.param(pack({"jsonrpc": "2.0", "method": "add"}), False, "message is not an array", id="non-array"),
    pytest.param(pack([]), False, "empty array", id="empty-array"),
    pytest.param(pack([7, 1, "add", [1, 2]]), False, "unknown message type 7", id="unknown-type"),
    pytest.param(pack([0, -1, "add", [1, 2]]), False, "msgid is not a uint32", id="bad-msgid"),
    pytest.param(pack([0, 1, 42, [1, 2]]), False, "method is not a string", id="bad-method"),
    pytest.param(pack([0, 1, "add", 3]), False, "params is not an array", id="bad-params"),
    pytest.param(
        pack([0, 1, "add", [1, 2], {"timeout": 1}]), False, "request has 5 elements", id="5-elements"
    ),
    pytest.param(b"\xdd\xff\xff\xff\xff", False, "max_array_len", id="oversized-array-header"),
    pytest.param(
        b"\x94\x00\x01\xa4add\x91\xdf\xff\xff\xff\xff", False, "max_map_len", id="oversized-map-header"
    ),
    pytest.param(
        pack([0, 1, "demo.echo", ["x" * 100_000]]), False, "max_message_size", id="oversized-message"
    ),
    pytest.param(
        b"\x94\x00\x01\xa4echo\x91\xdb\x7f\xff\xff\xff" + b"x" * 70_000,
        False,
        "max_message_size",
        id="oversized-str-header",
    ),
    pytest.param(pack([0, 1, "demo.echo", [nested(40)]]), False, "max_depth", id="deep-nesting"),
    pytest.param(
        b"\x94\x00\x01\xa9demo.echo" + b"\x91" * 5000, False, "nested deeper", id="very-deep-nesting"
    ),
    pytest.param(pack([0, 1, "add", [1, 2]])[:-3], True, "middle of a message", id="truncated-then-close"),
]


@pytest.mark.parametrize(("data", "then_eof", "reason"), GARBAGE)
async def test_bad_client_loses_only_its_own_connection(
    server: asyncrpc.Server,
    good: asyncrpc.Client,
    caplog: pytest.LogCaptureFixture,
    *,
    data: bytes,
    then_eof: bool,
    reason: str,
) -> None:
    caplog.set_level(logging.WARNING, logger="asyncrpc")
    assert await good.call("add", 1, 2) == 3
    in_flight = good.call("demo.wait_for", "robustness")

    answered = await bad_connection(server.port, data, then_eof=then_eof)

    # The server closed the bad connection without answering anything in it.
    assert answered == b""
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(reason in message for message in warnings), warnings
    # The good client never noticed: its call in flight and new calls still work.
    assert in_flight.status() is asyncrpc.CallStatus.PENDING
    assert await good.call("add", 2, 3) == 5
    open_gate("robustness")
    assert await in_flight == "robustness"
    assert await good.stub("demo").echo([1, "x"]) == [1, "x"]
    assert server.connections == 1


async def raw_round_trip(port: int, *messages: Any) -> list[Any]:
    """Send messages, then a request; return what came back up to its reply."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    unpacker = msgpack.Unpacker(raw=False)
    writer.write(b"".join(pack(m) for m in messages) + pack([0, 99, "add", [40, 2]]))
    replies: list[Any] = []
    async with asyncio.timeout(5):
        while not replies or replies[-1][:2] != [1, 99]:
            data = await reader.read(65536)
            assert data, "server closed the connection"
            unpacker.feed(data)
            replies.extend(unpacker)
    writer.close()
    await writer.wait_closed()
    return replies


@pytest.mark.parametrize(
    ("message", "logged"),
    [
        pytest.param(
            [1, 12345, None, "nobody asked"], "response for unknown msgid 12345", id="unknown-msgid"
        ),
        pytest.param([1, 7, [0, "an error"], None], "response for unknown msgid 7", id="unknown-msgid-error"),
        pytest.param(
            [2, "no.such.method", [1]], "'no.such.method' has no handler", id="unknown-notification"
        ),
        pytest.param([2, "asyncrpc.cancel", [4242]], None, id="cancel-for-unknown-call"),
    ],
)
async def test_stray_messages_are_ignored_and_the_connection_goes_on(
    server: asyncrpc.Server,
    good: asyncrpc.Client,
    caplog: pytest.LogCaptureFixture,
    message: Any,
    logged: str | None,
) -> None:
    # Well-formed msgpack-rpc that refers to nothing: not worth a connection
    # (Neovim broadcasts notifications a client may not handle).
    caplog.set_level(logging.DEBUG, logger="asyncrpc")
    assert await raw_round_trip(server.port, message, message) == [[1, 99, None, 42]]
    messages = [r.getMessage() for r in caplog.records]
    if logged is not None:
        assert any(logged in m for m in messages), messages
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert await good.call("add", 1, 2) == 3


# -- random byte streams (hypothesis: one fresh connection per example) ---------------------

LOOPS: list[Any] = [pytest.param(asyncio.new_event_loop, id="asyncio")]
if uvloop is not None:
    LOOPS.append(pytest.param(uvloop.new_event_loop, id="uvloop"))

# Random bytes, some after the start of a real message so the decoder gets past the first byte.
streams = st.one_of(
    st.binary(min_size=1, max_size=300),
    st.builds(
        lambda head, tail: head + tail,
        st.sampled_from([b"\x94\x00", b"\x94\x00\x01\xa3add", b"\x93\x02", b"\x94\x01\x05", b"\x95\x00\x01"]),
        st.binary(max_size=200),
    ),
)


async def _random_stream_case(port: int, data: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    writer.write_eof()
    async with asyncio.timeout(5):
        # The server answers whatever was valid, and closes: never hangs.
        await read_until_closed(reader)
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_server_survives_random_byte_streams(loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> None:
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        server = make_server(limits=LIMITS)
        runner.run(server.start("127.0.0.1", 0))
        good = runner.run(_connect(server.port))
        try:

            @settings(max_examples=30, deadline=None)
            @given(streams)
            def survives(data: bytes) -> None:
                runner.run(_random_stream_case(server.port, data))
                assert runner.run(_call(good, "add", 1, 2)) == 3

            survives()
            assert runner.run(_call(good, "demo.echo", "still here")) == "still here"
            assert server.connections == 1
        finally:
            runner.run(good.close())
            runner.run(server.close(grace=1.0))


async def _connect(port: int) -> asyncrpc.Client:
    return await asyncrpc.connect("127.0.0.1", port)


async def _call(client: asyncrpc.Client, method: str, *args: Any) -> Any:
    # Made inside the coroutine: a call belongs to the client's running loop.
    return await client.call(method, *args)


# -- the client side: a server that sends garbage ------------------------------------------


class GarbageServer:
    """A raw asyncio server that reads ``requests`` requests, then answers with ``reply``."""

    def __init__(self, reply: bytes, requests: int) -> None:
        self.reply = reply
        self.requests = requests
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> GarbageServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        unpacker = msgpack.Unpacker(raw=False)
        seen = 0
        while seen < self.requests and (data := await reader.read(65536)):
            unpacker.feed(data)
            seen += sum(1 for _ in unpacker)
        writer.write(self.reply)
        await read_until_closed(reader)  # the client drops us
        writer.close()


CLIENT_GARBAGE = [
    pytest.param(b"\xc1", "invalid type byte", id="invalid-byte"),
    pytest.param(pack("hello"), "not an array", id="non-array"),
    pytest.param(pack([1, 0, None]), "response has 3 elements", id="short-response"),
    pytest.param(pack([0, "0", "m", []]), "request msgid is not a uint32", id="bad-request-msgid"),
    pytest.param(b"\xdd\xff\xff\xff\xff", "max_array_len", id="oversized-header"),
]


@pytest.mark.parametrize(("reply", "reason"), CLIENT_GARBAGE)
async def test_protocol_error_from_server_fails_every_pending_call(
    caplog: pytest.LogCaptureFixture, reply: bytes, reason: str
) -> None:
    caplog.set_level(logging.WARNING, logger="asyncrpc")
    async with GarbageServer(reply, requests=3) as peer:
        client = await asyncrpc.connect("127.0.0.1", peer.port, extensions=False)
        port = notify.CompletionPort()
        calls = [client.call("add", i, i, notify=port) for i in range(3)]
        async with asyncio.timeout(5):
            outcomes = await asyncio.gather(*calls, return_exceptions=True)
        for outcome in outcomes:
            assert isinstance(outcome, asyncrpc.ConnectionLost)
            assert isinstance(outcome.__cause__, asyncrpc.ProtocolError)
            assert reason in str(outcome.__cause__)
        assert {completion.call for completion in (port.get_nowait() for _ in calls)} == set(calls)
        assert port.qsize() == 0
        assert not client.is_open
        with pytest.raises(asyncrpc.ConnectionLost):
            client.call("add", 1, 1)
        assert any(reason in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
        await client.close()


async def test_garbage_answer_to_the_probe_fails_connect() -> None:
    async with GarbageServer(b"\xc1", requests=1) as peer:
        with pytest.raises(asyncrpc.ConnectionLost) as info:
            await asyncrpc.connect("127.0.0.1", peer.port)
        assert isinstance(info.value.__cause__, asyncrpc.ProtocolError)
