"""``connect()``'s own bounds: ``connect_timeout`` over the socket connect and the
hello, nonsense options refused at once, and a connect cut short at any moment
leaving nothing behind.

A connect that hangs is made for real: a listener whose accept queue is full
and never drained, so the kernel drops the next SYN and the client's connect
waits, as it would for a host that has gone away.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import socket
from collections.abc import Iterator
from typing import Any

import pytest

import asyncrpc
from asyncrpc.connection import Connection
from tests.services import BOUND


@contextlib.contextmanager
def unanswered_port() -> Iterator[int]:
    """A port whose connects hang: a listener with a full accept queue it never drains."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    fillers: list[socket.socket] = []
    try:
        # Fill the queue: connects that complete, until one does not at once.
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            fillers.append(filler)
            if filler.connect_ex(("127.0.0.1", port)) != 0:
                break
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@pytest.mark.parametrize(
    ("option", "bad"),
    [
        ("connect_timeout", 0),
        ("connect_timeout", -1.0),
        ("connect_timeout", math.nan),
        ("connect_timeout", math.inf),
        ("connect_timeout", "1"),
        ("hello_timeout", 0),
        ("hello_timeout", None),
        ("hello_timeout", -0.5),
        ("close_timeout", math.inf),
    ],
)
def test_nonsense_timeouts_are_refused_at_once(option: str, bad: Any) -> None:
    with pytest.raises(ValueError, match=option):
        asyncrpc.connect("127.0.0.1", 1, **{option: bad})
    with pytest.raises(ValueError, match=option), asyncrpc.sync.connect("127.0.0.1", 1, **{option: bad}):
        pass


async def test_a_connect_that_hangs_fails_within_connect_timeout() -> None:
    loop = asyncio.get_running_loop()
    with unanswered_port() as port:
        started = loop.time()
        with pytest.raises(TimeoutError, match=rf"could not connect to 127\.0\.0\.1:{port} within 0\.2s"):
            async with asyncio.timeout(BOUND):
                await asyncrpc.connect("127.0.0.1", port, connect_timeout=0.2)
        assert 0.2 <= loop.time() - started < 0.2 + 1.0


async def test_connect_timeout_covers_the_hello() -> None:
    """A peer that accepts and never says a word: the hello counts against the bound."""

    gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up
        writer.close()
        await writer.wait_closed()
        gone.set_result(None)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        with pytest.raises(TimeoutError, match=r"within 0\.2s"):
            async with asyncio.timeout(BOUND):
                await asyncrpc.connect("127.0.0.1", port, connect_timeout=0.2, hello_timeout=5.0)
        async with asyncio.timeout(BOUND):
            await gone  # the client's socket was closed, not left open


def test_the_sync_client_takes_connect_timeout() -> None:
    with unanswered_port() as port, pytest.raises(TimeoutError, match=r"within 0\.2s"):
        asyncrpc.sync.connect("127.0.0.1", port, connect_timeout=0.2).__enter__()


def _open_connections() -> list[Connection]:
    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, Connection) and not o.is_closed]


async def test_a_connect_cut_short_at_any_moment_leaves_no_connection_open(server: asyncrpc.Server) -> None:
    """Cancelled a loop turn later each time, so some land inside the socket connect.

    On uvloop a connect cancelled just after the socket came up closes the
    socket without telling its protocol; the connection, its keepalive timer
    still armed, must not be left behind thinking it is open.
    """
    before = _open_connections()
    for turns in range(12):
        connecting = asyncio.ensure_future(asyncrpc.connect("127.0.0.1", server.port, keepalive=30.0))
        for _ in range(turns):
            await asyncio.sleep(0)  # one loop turn, to move the cancel later each time
        connecting.cancel()
        try:
            client = await connecting
        except asyncio.CancelledError:
            continue
        await client.close()
    for _ in range(10):
        await asyncio.sleep(0)  # a closed socket's protocol is told on a later turn
    assert [c for c in _open_connections() if c not in before] == []
