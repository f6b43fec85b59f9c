"""A message larger than the receiving side accepts is refused where it is made (behaviour 14).

The hello carries each side's ``max_message_size``. A request (or notification)
larger than the peer's limit raises ``MessageTooLarge`` at the call site instead
of costing the whole connection at the peer; a reply larger than the caller's
limit is answered with ``MessageTooLarge`` instead. Against a plain peer, which
announces nothing, our own limit is the one used.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import asyncrpc
from asyncrpc import notify
from tests.services import make_server

MiB = 1024 * 1024
SMALL = asyncrpc.Limits(max_message_size=1 * MiB, max_bin_len=1 * MiB, max_str_len=1 * MiB)


@pytest.fixture
async def small_server() -> AsyncIterator[asyncrpc.Server]:
    server = make_server(limits=SMALL)
    await server.start("127.0.0.1", 0)
    yield server
    await server.close(grace=1.0)


async def test_a_request_over_the_peers_limit_raises_at_the_call_site(small_server: asyncrpc.Server) -> None:
    async with asyncrpc.connect("127.0.0.1", small_server.port) as client:
        assert client.connection.negotiated.max_message_size == 1 * MiB  # announced in the hello
        polling = notify.Polling()
        handle: asyncrpc.AsyncCall[Any] = asyncrpc.AsyncCall(notify=polling)
        with pytest.raises(asyncrpc.MessageTooLarge, match="accepts at most 1048576"):
            client.call("demo.echo", b"x" * (2 * MiB), handle=handle)
        assert handle.status() is asyncrpc.CallStatus.INITIALIZED
        with pytest.raises(ValueError, match="notification"):  # MessageTooLarge is a ValueError too
            client.notify("demo.NonAsyncFunc", "y" * (2 * MiB))
        # Nothing was sent: the connection and its other calls are fine.
        assert client.connection.pending_count == 0
        assert await client.call("demo.echo", b"x" * 1000) == b"x" * 1000
        assert await client.call("add", 1, 2, handle=handle) == 3
        assert polling.completed == 1


async def test_twenty_mib_to_a_sixteen_mib_server_keeps_the_connection(server: asyncrpc.Server) -> None:
    async with asyncrpc.connect("127.0.0.1", server.port) as client:
        with pytest.raises(asyncrpc.MessageTooLarge):
            client.call("demo.echo", b"x" * (20 * MiB))
        assert await client.call("add", 2, 3) == 5


async def test_a_reply_over_the_callers_limit_is_answered_with_message_too_large(
    server: asyncrpc.Server,
) -> None:
    async with asyncrpc.connect("127.0.0.1", server.port, limits=SMALL) as client:
        with pytest.raises(asyncrpc.MessageTooLarge, match="the reply is"):
            await client.call("demo.echo", b"x" * (1 * MiB))  # the echo is a few bytes over
        assert await client.call("add", 1, 1) == 2


async def test_against_a_plain_peer_our_own_limit_is_used(small_server: asyncrpc.Server) -> None:
    async with asyncrpc.connect("127.0.0.1", small_server.port, extensions=False, limits=SMALL) as client:
        assert client.features == frozenset()
        with pytest.raises(asyncrpc.MessageTooLarge):
            client.call("demo.echo", b"x" * (2 * MiB))
        assert await client.call("add", 1, 2) == 3


def test_a_message_limit_too_small_for_the_hello_is_refused_where_it_is_set() -> None:
    tiny = asyncrpc.Limits(max_message_size=97)
    with pytest.raises(ValueError, match="at least 1024"):
        asyncrpc.connect("127.0.0.1", 1, limits=tiny)
    with pytest.raises(ValueError, match="at least 1024"):
        asyncrpc.Server(limits=tiny)
    with pytest.raises(ValueError, match="max_inflight"):
        asyncrpc.Server(max_inflight=0)
