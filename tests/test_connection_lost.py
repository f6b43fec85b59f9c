"""Behaviour 8: when the connection drops, every pending call fails with ConnectionLost at once,
is notified exactly once, and nothing hangs.

Drops are made for real: the server closing, or a fault proxy (tests/faultproxy.py)
cutting the TCP connection, dropping bytes or holding them back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import asyncrpc
from asyncrpc import AsyncEvent, CallStatus, notify
from tests.faultproxy import FaultProxy
from tests.services import make_server, open_gate

PENDING = 5


@pytest.fixture
async def proxy(server: asyncrpc.Server) -> AsyncIterator[FaultProxy]:
    async with FaultProxy("127.0.0.1", server.port) as fault_proxy:
        yield fault_proxy


@pytest.fixture
async def proxied(proxy: FaultProxy) -> AsyncIterator[asyncrpc.Client]:
    async with asyncrpc.connect("127.0.0.1", proxy.port) as client:
        yield client


def start_waiting_calls(
    client: asyncrpc.Client, port: notify.CompletionPort
) -> list[asyncrpc.AsyncCall[Any]]:
    return [client.call("demo.wait_for", f"never-{i}", notify=port) for i in range(PENDING)]


async def all_fail_with_connection_lost(
    calls: list[asyncrpc.AsyncCall[Any]], port: notify.CompletionPort
) -> list[asyncrpc.ConnectionLost]:
    """Await the calls (bounded) and check the failure, its timing and its notifications."""
    async with asyncio.timeout(5):
        # The first call to fail: by then every other one has failed too ("at once").
        with pytest.raises(asyncrpc.ConnectionLost):
            await calls[0]
        assert all(call.done() for call in calls)
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
    errors = []
    for call, outcome in zip(calls, outcomes, strict=True):
        assert isinstance(outcome, asyncrpc.ConnectionLost)
        assert call.status() is CallStatus.FAILED
        with pytest.raises(asyncrpc.ConnectionLost):
            call.complete()
        errors.append(outcome)
    # Exactly one completion per call.
    completions = [port.get_nowait() for _ in calls]
    assert [c.call for c in completions] == calls
    assert port.qsize() == 0
    return errors


async def assert_no_more_completions(port: notify.CompletionPort) -> None:
    # Nothing else may arrive: give stray deliveries a bounded window to show up.
    with pytest.raises(TimeoutError):
        await port.get(timeout=0.05)


async def test_proxy_cut_fails_every_pending_call_once(proxied: asyncrpc.Client, proxy: FaultProxy) -> None:
    port = notify.CompletionPort()
    calls = start_waiting_calls(proxied, port)
    # A round trip after them: every request above has reached the server.
    assert await proxied.call("add", 1, 2) == 3
    proxy.cut()
    await all_fail_with_connection_lost(calls, port)
    assert not proxied.is_open
    await proxied.close()  # closing again changes nothing
    await assert_no_more_completions(port)


async def test_server_closing_fails_every_pending_call_once(
    server: asyncrpc.Server, client: asyncrpc.Client
) -> None:
    port = notify.CompletionPort()
    calls = start_waiting_calls(client, port)
    assert await client.call("add", 1, 2) == 3
    await server.close(grace=0)
    await all_fail_with_connection_lost(calls, port)
    await assert_no_more_completions(port)


async def test_lost_connection_is_notified_in_callback_mode_on_the_calling_loop(
    proxied: asyncrpc.Client, proxy: FaultProxy
) -> None:
    seen: list[tuple[asyncrpc.AsyncCall[Any], AsyncEvent]] = []
    all_seen = asyncio.Event()

    def on_complete(call: asyncrpc.AsyncCall[Any], event: AsyncEvent) -> None:
        seen.append((call, event))
        if len(seen) == PENDING:
            all_seen.set()

    callback = notify.Callback(on_complete)
    calls = [proxied.call("demo.wait_for", f"never-{i}", notify=callback) for i in range(PENDING)]
    assert await proxied.call("add", 1, 2) == 3
    proxy.cut()
    async with asyncio.timeout(5):
        await all_seen.wait()
    assert sorted(id(c) for c, _ in seen) == sorted(id(c) for c in calls)
    assert {event for _, event in seen} == {AsyncEvent.CALL_COMPLETE}
    assert all(isinstance(c.exception(), asyncrpc.ConnectionLost) for c in calls)


async def test_request_dropped_on_the_way_then_cut(proxied: asyncrpc.Client, proxy: FaultProxy) -> None:
    port = notify.CompletionPort()
    proxy.upstream.drop = True
    before = proxy.upstream.seen
    calls = [proxied.call("add", i, i, notify=port) for i in range(PENDING)]
    # The requests reached the proxy, and went no further.
    await proxy.upstream.wait_seen(before + 1)
    assert proxy.upstream.dropped > 0
    assert not any(call.done() for call in calls)
    proxy.cut()
    await all_fail_with_connection_lost(calls, port)


async def test_reply_lost_in_flight_then_cut(proxied: asyncrpc.Client, proxy: FaultProxy) -> None:
    # The server answered; the answer never arrives: the call must not hang on it.
    port = notify.CompletionPort()
    proxy.downstream.drop = True
    before = proxy.downstream.seen
    calls = [proxied.call("add", i, i, notify=port) for i in range(PENDING)]
    await proxy.downstream.wait_seen(before + 1)
    assert all(call.status() is CallStatus.PENDING for call in calls)
    proxy.cut()
    await all_fail_with_connection_lost(calls, port)


async def test_delayed_replies_still_match_and_cut_during_delay_fails_the_rest(
    proxied: asyncrpc.Client, proxy: FaultProxy
) -> None:
    proxy.downstream.delay = 0.05
    results = await asyncio.gather(*(proxied.call("add", i, 1) for i in range(10)))
    assert results == [i + 1 for i in range(10)]

    port = notify.CompletionPort()
    proxy.downstream.delay = 30  # replies now sit in the proxy
    before = proxy.downstream.seen
    calls = [proxied.call("add", i, i, notify=port) for i in range(PENDING)]
    await proxy.downstream.wait_seen(before + 1)
    proxy.cut()
    await all_fail_with_connection_lost(calls, port)


async def test_connection_lost_names_the_cause(proxied: asyncrpc.Client, proxy: FaultProxy) -> None:
    call = proxied.call("demo.wait_for", "never")
    assert await proxied.call("add", 1, 2) == 3
    proxy.cut()
    async with asyncio.timeout(5):
        with pytest.raises(asyncrpc.ConnectionLost, match="connection"):
            await call


# -- calls made after the connection is gone --------------------------------------------------


async def test_call_on_closed_client_raises_at_call_site_without_notification(
    client: asyncrpc.Client,
) -> None:
    port = notify.CompletionPort()
    await client.close()
    handle: asyncrpc.AsyncCall[Any] = asyncrpc.AsyncCall(notify=port)
    with pytest.raises(asyncrpc.ConnectionLost):
        client.call("add", 1, 2, notify=port)
    with pytest.raises(asyncrpc.ConnectionLost):
        client.call("add", 1, 2, handle=handle)
    with pytest.raises(asyncrpc.ConnectionLost):
        client.notify("demo.NonAsyncFunc", "x")
    assert handle.status() is CallStatus.INITIALIZED  # untouched: usable elsewhere
    await assert_no_more_completions(port)


async def test_call_after_the_peer_dropped_raises_at_call_site(
    proxied: asyncrpc.Client, proxy: FaultProxy
) -> None:
    port = notify.CompletionPort()
    assert await proxied.call("add", 1, 2) == 3
    proxy.cut()
    async with asyncio.timeout(5):
        await proxied.connection.wait_closed()
    with pytest.raises(asyncrpc.ConnectionLost):
        proxied.call("add", 1, 2, notify=port)
    await assert_no_more_completions(port)


async def test_client_close_fails_pending_calls_once(client: asyncrpc.Client) -> None:
    port = notify.CompletionPort()
    calls = start_waiting_calls(client, port)
    await client.close()
    await all_fail_with_connection_lost(calls, port)
    await client.close()
    await assert_no_more_completions(port)


async def test_pending_calls_of_other_clients_survive_one_drop(
    server: asyncrpc.Server, proxied: asyncrpc.Client, proxy: FaultProxy, client: asyncrpc.Client
) -> None:
    survivor = client.call("demo.wait_for", "gate")
    doomed = proxied.call("demo.wait_for", "gate")
    assert await proxied.call("add", 1, 2) == 3
    proxy.cut()
    async with asyncio.timeout(5):
        with pytest.raises(asyncrpc.ConnectionLost):
            await doomed
    open_gate("gate")
    assert await survivor == "gate"


# -- graceful server close ---------------------------------------------------------------------


async def test_server_close_lets_in_flight_call_finish_within_grace(
    server: asyncrpc.Server, client: asyncrpc.Client
) -> None:
    loop = asyncio.get_running_loop()
    in_flight = client.call("demo.AsyncFunc", 0.2)
    assert await client.call("add", 1, 2) == 3  # the slow call is running on the server
    started = loop.time()
    await server.close(grace=5.0)
    elapsed = loop.time() - started
    assert elapsed < 2.0  # returned once the call finished, not after the whole grace
    async with asyncio.timeout(5):
        assert await in_flight == "AsyncFunc slept 0.2s"
        await client.connection.wait_closed()
    with pytest.raises(asyncrpc.ConnectionLost):
        client.call("add", 1, 2)


async def test_new_calls_during_grace_are_refused(server: asyncrpc.Server, client: asyncrpc.Client) -> None:
    in_flight = client.call("demo.wait_for", "finish")
    assert await client.call("add", 1, 2) == 3
    closing = asyncio.ensure_future(server.close(grace=5.0))
    # While the server drains, a new call is answered with an error, not served.
    refused = None
    async with asyncio.timeout(5):
        while refused is None:
            try:
                await client.call("add", 1, 2)
            except asyncrpc.RemoteError as exc:
                refused = exc
    assert refused.type == "Unavailable"
    open_gate("finish")
    assert await in_flight == "finish"
    async with asyncio.timeout(5):
        await closing


async def test_server_close_with_handler_outliving_grace(
    server: asyncrpc.Server, client: asyncrpc.Client
) -> None:
    loop = asyncio.get_running_loop()
    port = notify.CompletionPort()
    stuck = client.call("demo.wait_for", "never", notify=port)
    assert await client.call("add", 1, 2) == 3
    grace = 0.2
    started = loop.time()
    async with asyncio.timeout(5):
        await server.close(grace=grace)
    elapsed = loop.time() - started
    # uvloop's timers have millisecond resolution: allow that much early.
    assert grace - 0.005 <= elapsed < grace + 1.0
    await all_fail_with_connection_lost([stuck], port)


async def test_server_close_is_idempotent(server: asyncrpc.Server, client: asyncrpc.Client) -> None:
    call = client.call("demo.wait_for", "never")
    assert await client.call("add", 1, 2) == 3
    async with asyncio.timeout(5):
        await asyncio.gather(server.close(grace=0.1), server.close(grace=0.1))
        await server.close(grace=0.1)
        with pytest.raises(asyncrpc.ConnectionLost):
            await call


# -- Unix sockets -------------------------------------------------------------------------------


@pytest.fixture
async def unix_server(tmp_path: Path) -> AsyncIterator[asyncrpc.Server]:
    srv = make_server()
    await srv.start(path=str(tmp_path / "rpc.sock"))
    yield srv
    await srv.close(grace=1.0)


async def test_unix_socket_call(unix_server: asyncrpc.Server) -> None:
    assert unix_server.path is not None
    async with asyncrpc.connect(path=unix_server.path) as client:
        assert client.features == {"cancel", "deadline", "errors"}
        pending = client.call("demo.AsyncFunc", 0.05)
        assert await client.call("add", 2, 3) == 5
        assert await pending == "AsyncFunc slept 0.05s"


async def test_unix_socket_connection_lost(unix_server: asyncrpc.Server) -> None:
    assert unix_server.path is not None
    path = unix_server.path
    client = await asyncrpc.connect(path=path)
    port = notify.CompletionPort()
    calls = start_waiting_calls(client, port)
    assert await client.call("add", 1, 2) == 3
    await unix_server.close(grace=0)
    await all_fail_with_connection_lost(calls, port)
    assert not Path(path).exists()  # the server removed its socket file
    with pytest.raises(asyncrpc.ConnectionLost):
        client.call("add", 1, 2)
    await client.close()
