"""Hostile input costs no more than the limits say (behaviour 18, the parts above the codec).

Error replies never echo unbounded input; a peer's error object that cannot be
converted still ends its call; every shape of error object a peer may send
ends the call it answers, exactly once, with a ``RemoteError`` that keeps it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import msgpack
import pytest

import asyncrpc
from asyncrpc.remote_errors import error_from_wire
from tests.rawpeer import RawPeer, pack
from tests.services import make_server

HUGE_NAME = "m" * (4 * 1024 * 1024)


@pytest.fixture
async def demo_server() -> AsyncIterator[asyncrpc.Server]:
    server = make_server()
    await server.start("127.0.0.1", 0)
    yield server
    await server.close(grace=1.0)


async def test_an_unknown_method_name_is_not_echoed_in_full(demo_server: asyncrpc.Server) -> None:
    peer = await RawPeer.connect(demo_server.port, receive_buffer=1 << 20)
    try:
        await peer.send(pack([0, 1, HUGE_NAME, []]))
        (reply,) = await peer.messages(1)
        assert len(pack(reply)) < 400  # not 4 MiB (it was 24 MiB: the name's repr, escaped)
        _, msgid, error, result = reply
        assert (msgid, result) == (1, None)
        assert "MethodNotFound" in error[1]
        assert f"({len(HUGE_NAME)} characters)" in error[1]
        # The connection goes on.
        await peer.send(pack([0, 2, "add", [1, 2]]))
        assert await peer.messages(1) == [[1, 2, None, 3]]
    finally:
        peer.close()


async def test_log_lines_about_a_peers_names_are_bounded(
    demo_server: asyncrpc.Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncrpc")
    peer = await RawPeer.connect(demo_server.port, receive_buffer=1 << 20)
    try:
        await peer.send(pack([2, HUGE_NAME, []]) + pack([0, 1, "add", [1, 1]]))
        assert await peer.messages(1) == [[1, 1, None, 2]]
    finally:
        peer.close()
    lines = [r.getMessage() for r in caplog.records if "has no handler" in r.getMessage()]
    assert lines
    assert all(len(line) < 400 for line in lines)


class ErrorServer:
    """Answers every request with the error object it was given, as raw msgpack."""

    def __init__(self, error: Any) -> None:
        self.error = error

    async def __aenter__(self) -> ErrorServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    @property
    def port(self) -> int:
        return int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        unpacker = msgpack.Unpacker(raw=False)
        while data := await reader.read(65536):
            unpacker.feed(data)
            for _, msgid, _, _ in unpacker:
                writer.write(pack([1, msgid, self.error, None]))
        writer.close()


UNCONVERTIBLE = [
    pytest.param([0, "ValueError[" + "9" * 5000 + "]: boom"], id="5000-digit-code"),
    pytest.param([0, "ValueError[" + "1" * 20 + "]: too long for an int64"], id="20-digit-code"),
    pytest.param({"message": "m", "type": ["not", "a", "name"]}, id="list-type"),
    pytest.param({"message": "m", "code": "seven"}, id="string-code"),
    pytest.param([[[[["deep"]]]], "x"], id="nested-head"),
    pytest.param([1.5, "float head"], id="float-head"),
    pytest.param(msgpack.ExtType(5, b"\x00" * 64), id="ext"),
    pytest.param([True, "bool head"], id="bool-head"),
    pytest.param({"message": b"\xff bytes"}, id="bytes-message"),
    pytest.param("x" * 100_000, id="long-string"),
]


@pytest.mark.parametrize("error", UNCONVERTIBLE)
async def test_every_error_shape_ends_its_call_with_a_remote_error(error: Any) -> None:
    async with (
        ErrorServer(error) as peer,
        asyncrpc.connect("127.0.0.1", peer.port, extensions=False) as client,
    ):
        call = client.call("anything")
        async with asyncio.timeout(5):
            with pytest.raises(asyncrpc.RemoteError) as info:
                await call
        assert call.status() is asyncrpc.CallStatus.FAILED
        assert info.value.raw == error  # kept exactly as it came
        assert len(str(info.value)) < 200_000
        again = client.call("again")  # the connection goes on
        async with asyncio.timeout(5):
            with pytest.raises(asyncrpc.RemoteError):
                await again


class Unbuildable(asyncrpc.RPCError):
    """A registered error class whose constructor fails."""

    def __init__(self, message: str) -> None:
        raise RuntimeError("cannot build me")


async def test_a_registered_error_class_that_fails_to_build_still_ends_the_call() -> None:
    asyncrpc.register_error_type("Unbuildable", Unbuildable)
    try:
        async with (
            ErrorServer({"type": "Unbuildable", "message": "m"}) as peer,
            asyncrpc.connect("127.0.0.1", peer.port, extensions=False) as client,
        ):
            call = client.call("anything")
            async with asyncio.timeout(5):
                with pytest.raises(asyncrpc.RemoteError) as info:
                    await call
            assert info.value.type == "Unbuildable"
    finally:
        from asyncrpc.remote_errors import ERROR_TYPES

        ERROR_TYPES.pop("Unbuildable")


def test_error_from_wire_never_raises() -> None:
    for param in UNCONVERTIBLE:
        (error,) = param.values
        assert isinstance(error_from_wire(error), asyncrpc.RemoteError)


def test_connection_lost_and_deadline_exceeded_are_the_builtin_kinds_too() -> None:
    assert issubclass(asyncrpc.ConnectionLost, ConnectionError)
    assert issubclass(asyncrpc.DeadlineExceeded, TimeoutError)
    assert issubclass(asyncrpc.ConnectionLost, asyncrpc.RPCError)
    assert issubclass(asyncrpc.DeadlineExceeded, asyncrpc.RPCError)
    assert str(asyncrpc.ConnectionLost("connection lost: reset")) == "connection lost: reset"


async def test_a_failing_notification_handler_logs_one_bounded_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lookups = {"known": 1}
    done = asyncio.Event()

    def lookup(key: str) -> int:
        try:
            return lookups[key]  # a KeyError repeats the peer's key
        finally:
            done.set()

    server = asyncrpc.Server()
    server.register_function(lookup)
    await server.start("127.0.0.1", 0)
    caplog.set_level(logging.WARNING, logger="asyncrpc")
    try:
        async with asyncrpc.connect("127.0.0.1", server.port) as client:
            client.notify("lookup", "k" * 1_000_000)
            async with asyncio.timeout(5):
                await done.wait()
            assert await client.call("lookup", "known") == 1  # the notification was handled first
    finally:
        await server.close(grace=1.0)
    (line,) = [r.getMessage() for r in caplog.records if "raised KeyError" in r.getMessage()]
    assert len(line) < 600
    assert "\n" not in line
