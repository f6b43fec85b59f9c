"""Reconnect (``connect(..., reconnect=asyncrpc.Reconnect(...))``): a client that survives
its connection dropping (issue 11, part 3).

Drops are real: a proxy that cuts every connection, or the server closed and
started again on the same port. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import math
import threading
from typing import Any

import pytest

import asyncrpc
from asyncrpc import ClientState, Reconnect
from tests.faultproxy import FaultProxy
from tests.services import BOUND, make_server, open_gate

FAST = Reconnect(initial=0.02, maximum=0.1, jitter=0.0)


async def wait_state(client: asyncrpc.Client, state: ClientState) -> None:
    async with asyncio.timeout(BOUND):
        # A drop is noticed by the loop; the state is what there is to watch.
        while client.state is not state:  # noqa: ASYNC110
            await asyncio.sleep(0.005)


@pytest.mark.parametrize(
    "options",
    [
        {"initial": 0},
        {"initial": -1.0},
        {"initial": math.nan},
        {"maximum": math.inf},
        {"initial": 2.0, "maximum": 1.0},
        {"multiplier": 0.5},
        {"jitter": 1.0},
        {"jitter": -0.1},
        {"attempts": 0},
        {"attempts": 1.5},
    ],
)
def test_nonsense_backoff_is_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="Reconnect"):
        Reconnect(**options)


def test_reconnect_must_be_a_reconnect() -> None:
    with pytest.raises(TypeError, match="reconnect"):
        asyncrpc.connect("127.0.0.1", 1, reconnect=True)  # type: ignore[arg-type]


def test_backoff_grows_to_its_maximum_with_jitter_inside_its_bounds() -> None:
    delays = list(Reconnect(initial=0.1, maximum=0.5, multiplier=2.0, jitter=0.2, attempts=6).delays())
    assert len(delays) == 6
    for delay, base in zip(delays, [0.1, 0.2, 0.4, 0.5, 0.5, 0.5], strict=True):
        assert base * 0.8 <= delay <= base * 1.2


async def test_in_flight_calls_fail_and_calls_made_meanwhile_wait_for_the_new_connection(
    server: asyncrpc.Server,
) -> None:
    async with (
        FaultProxy("127.0.0.1", server.port) as proxy,
        asyncrpc.connect("127.0.0.1", proxy.port, reconnect=FAST) as client,
    ):
        assert client.state is ClientState.CONNECTED
        in_flight = client.call("demo.wait_for", "gate")
        assert await client.call("add", 1, 2) == 3  # wait_for has reached the server
        proxy.cut()
        with pytest.raises(asyncrpc.ConnectionLost):
            async with asyncio.timeout(BOUND):
                await in_flight
        assert in_flight.status() is asyncrpc.CallStatus.FAILED
        later = client.call("add", 20, 22)  # connected or not: it is sent when it can be
        async with asyncio.timeout(BOUND):
            assert await later == 42
            await client.wait_connected()
        assert client.state is ClientState.CONNECTED
        assert proxy.accepted == 2
        open_gate("gate")


async def test_a_call_in_flight_is_never_sent_again(server: asyncrpc.Server) -> None:
    runs: list[int] = []
    server.register_function(runs.append, name="record")
    gate = asyncio.Event()
    held_runs = 0

    async def held() -> None:
        nonlocal held_runs
        held_runs += 1
        await gate.wait()

    server.register_function(held, name="held")
    async with (
        FaultProxy("127.0.0.1", server.port) as proxy,
        asyncrpc.connect("127.0.0.1", proxy.port, reconnect=FAST) as client,
    ):
        await client.call("record", 1)
        first = client.call("held")
        await client.call("record", 2)
        proxy.cut()
        with pytest.raises(asyncrpc.ConnectionLost):
            async with asyncio.timeout(BOUND):
                await first
        async with asyncio.timeout(BOUND):
            await client.call("record", 3)
        gate.set()
    assert runs == [1, 2, 3]
    assert held_runs == 1


async def test_a_call_waiting_past_its_deadline_fails_and_is_never_sent() -> None:
    server = make_server()
    await server.start("127.0.0.1", 0)
    port = server.port
    received: list[str] = []
    async with asyncrpc.connect("127.0.0.1", port, reconnect=FAST) as client:
        await server.close(grace=0.5)
        await wait_state(client, ClientState.CONNECTING)
        waiting = client.call("record", "late", timeout=0.2)
        assert waiting.status() is asyncrpc.CallStatus.PENDING
        assert waiting.msgid is None  # not on the wire
        with pytest.raises(asyncrpc.DeadlineExceeded):
            async with asyncio.timeout(BOUND):
                await waiting
        again = make_server()
        again.register_function(received.append, name="record")
        await again.start("127.0.0.1", port)
        try:
            async with asyncio.timeout(BOUND):
                await client.wait_connected()
                await client.call("record", "after")
        finally:
            await again.close(grace=1.0)
    assert received == ["after"]


async def test_waiting_calls_keep_their_order_handles_and_notifications() -> None:
    server = make_server()
    await server.start("127.0.0.1", 0)
    port = server.port
    async with asyncrpc.connect("127.0.0.1", port, reconnect=FAST) as client:
        await server.close(grace=0.5)
        await wait_state(client, ClientState.CONNECTING)
        done = asyncrpc.notify.Event()
        made_ahead: asyncrpc.AsyncCall[Any] = asyncrpc.AsyncCall(user_info="mine")
        calls = [
            client.call("demo.echo", 1, notify=done),
            client.call("demo.echo", 2, handle=made_ahead),
            client.call("demo.echo", 3),
        ]
        aborted = client.call("demo.echo", 4)
        assert aborted.cancel() is True
        asked = client.call("demo.echo", 5)
        assert asked.cancel(abort=False) is True
        again = make_server()
        order: list[int] = []

        def echo(value: int) -> int:
            order.append(value)
            return value

        again.register_function(echo, name="demo.echo")
        await again.start("127.0.0.1", port)
        try:
            async with asyncio.timeout(BOUND):
                assert await asyncio.gather(*calls) == [1, 2, 3]
                await done.wait()
        finally:
            await again.close(grace=1.0)
    assert order == [1, 2, 3]
    assert made_ahead.user_info == "mine"
    assert isinstance(made_ahead.msgid, int)
    assert aborted.status() is asyncrpc.CallStatus.CANCELLED
    assert asked.status() is asyncrpc.CallStatus.CANCELLED


async def test_registered_functions_and_extensions_are_set_up_again() -> None:
    """The new server is asked for its extensions again (this one has none), and can
    still call back what the client registered."""
    server = make_server()
    await server.start("127.0.0.1", 0)
    port = server.port

    async def ask(name: str) -> Any:
        return await asyncrpc.current_call().peer.call(name)

    async with asyncrpc.connect("127.0.0.1", port, reconnect=FAST) as client:
        client.register_function(lambda: "from the client", name="whoami")
        assert "cancel" in client.features
        await server.close(grace=0.5)
        await wait_state(client, ClientState.CONNECTING)
        plain = asyncrpc.Server(extensions=False)
        plain.register_function(ask, name="ask")
        await plain.start("127.0.0.1", port)
        try:
            async with asyncio.timeout(BOUND):
                await client.wait_connected()
                assert await client.call("ask", "whoami") == "from the client"
            assert client.features == frozenset()
        finally:
            await plain.close(grace=1.0)


async def test_close_ends_every_waiting_call() -> None:
    server = make_server()
    await server.start("127.0.0.1", 0)
    client = await asyncrpc.connect("127.0.0.1", server.port, reconnect=FAST)
    await server.close(grace=0.5)
    await wait_state(client, ClientState.CONNECTING)
    done = asyncrpc.notify.Event()
    waiting = client.call("add", 1, 2, notify=done)
    waiter = asyncio.ensure_future(client.wait_connected())
    async with asyncio.timeout(BOUND):
        await client.close()
        await done.wait()
        with pytest.raises(asyncrpc.ConnectionLost, match="client closed"):
            await waiting
        with pytest.raises(asyncrpc.ConnectionLost):
            await waiter
    assert client.state is ClientState.CLOSED
    assert not client.is_open
    with pytest.raises(asyncrpc.ConnectionLost):
        client.call("add", 1, 2)


async def test_giving_up_after_its_attempts_fails_the_waiting_calls() -> None:
    server = make_server()
    await server.start("127.0.0.1", 0)
    policy = Reconnect(initial=0.01, maximum=0.02, attempts=3)
    async with asyncrpc.connect("127.0.0.1", server.port, reconnect=policy) as client:
        await server.close(grace=0.5)
        await wait_state(client, ClientState.CONNECTING)
        waiting = client.call("add", 1, 2)
        with pytest.raises(asyncrpc.ConnectionLost, match=r"in 3 attempt\(s\)") as info:
            async with asyncio.timeout(BOUND):
                await waiting
        assert isinstance(info.value.__cause__, OSError)
        assert client.state is ClientState.CLOSED
        with pytest.raises(asyncrpc.ConnectionLost):
            client.call("add", 1, 2)


async def test_notifications_are_refused_while_reconnecting() -> None:
    server = make_server()
    await server.start("127.0.0.1", 0)
    async with asyncrpc.connect("127.0.0.1", server.port, reconnect=FAST) as client:
        await server.close(grace=0.5)
        await wait_state(client, ClientState.CONNECTING)
        with pytest.raises(asyncrpc.ConnectionLost, match="reconnecting"):
            client.notify("demo.NonAsyncFunc", "x")
        with pytest.raises(asyncrpc.EncodeError):
            client.call("demo.echo", object())  # refused at the call site, as when connected


async def test_a_client_without_reconnect_stays_closed(server: asyncrpc.Server) -> None:
    async with (
        FaultProxy("127.0.0.1", server.port) as proxy,
        asyncrpc.connect("127.0.0.1", proxy.port) as client,
    ):
        await client.call("add", 1, 2)
        proxy.cut()
        await client.connection.wait_closed()
        assert client.state is ClientState.CLOSED
        with pytest.raises(asyncrpc.ConnectionLost):
            await client.wait_connected()
        with pytest.raises(asyncrpc.ConnectionLost):
            client.call("add", 1, 2)


async def test_sync_client_reconnects(server: asyncrpc.Server) -> None:
    async with FaultProxy("127.0.0.1", server.port) as proxy:
        first_done = threading.Event()
        dropped = threading.Event()

        def from_a_thread() -> list[Any]:
            with asyncrpc.sync.connect("127.0.0.1", proxy.port, reconnect=FAST) as client:
                first = client.call("add", 1, 2)
                first_done.set()
                assert dropped.wait(BOUND)
                return [first, client.call("add", 3, 4, timeout=BOUND)]

        async with asyncio.timeout(BOUND * 2):
            thread = asyncio.ensure_future(asyncio.to_thread(from_a_thread))
            await asyncio.to_thread(first_done.wait, BOUND)
            proxy.cut()
            # The client's new link, as the proxy counts it.
            while proxy.accepted < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
            dropped.set()
            assert await thread == [3, 7]


async def test_a_server_that_hangs_up_at_once_never_leaves_a_call_hanging() -> None:
    """Each new connection is accepted and closed at once (sometimes before the client
    could use it): the waiting call still ends, with ConnectionLost, once attempts run out."""
    server = make_server()
    await server.start("127.0.0.1", 0)
    port = server.port
    async with asyncrpc.connect(
        "127.0.0.1", port, reconnect=Reconnect(initial=0.01, maximum=0.02, attempts=5), hello_timeout=0.2
    ) as client:
        await server.close(grace=0.5)
        await wait_state(client, ClientState.CONNECTING)

        async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        rude = await asyncio.start_server(hang_up, "127.0.0.1", port)
        try:
            waiting = client.call("add", 1, 2)
            with pytest.raises(asyncrpc.ConnectionLost):
                async with asyncio.timeout(BOUND):
                    await waiting
        finally:
            rude.close()
            await rude.wait_closed()
