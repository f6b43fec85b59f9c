"""Deadlines travel onward: a call made inside a handler gets at most the time its own
call has left (issue 11, part 4).

Three real servers' worth of hops on loopback: the test's client calls a
relay on server A with a deadline; A's handler calls server B (through a
client of its own, or back through ``current_call().peer``); B's handler
reports the deadline it sees.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import asyncrpc
from tests.services import BOUND, SLACK, make_server


class Clock:
    """Server B: tells what deadline its caller gave it."""

    def left(self) -> float | None:
        return asyncrpc.current_call().time_remaining()


class Relay:
    """Server A: passes calls on to B."""

    def __init__(self) -> None:
        self.onward: asyncrpc.Client | None = None
        self.onward_port = 0

    async def relay(self, method: str) -> Any:
        assert self.onward is not None
        return await self.onward.call(method)

    async def relay_with(self, timeout: float, method: str) -> Any:
        assert self.onward is not None
        return await self.onward.call(method, timeout=timeout)

    async def call_back(self, method: str) -> Any:
        return await asyncrpc.current_call().peer.call(method)

    @asyncrpc.blocking
    def relay_from_a_thread(self, method: str) -> Any:
        with asyncrpc.sync.connect("127.0.0.1", self.onward_port) as onward:
            return onward.call(method)

    async def relay_later(self, method: str, arg: str) -> str:
        """Start the onward call, and let the deadline pass with it pending."""
        assert self.onward is not None
        done = asyncrpc.notify.Event()
        self.started = self.onward.call(method, arg, notify=done)
        await asyncio.Event().wait()  # until the deadline cancels us
        return "unreachable"


@pytest.fixture
async def hops() -> AsyncIterator[tuple[asyncrpc.Client, Relay, asyncrpc.Server]]:
    b = make_server()
    b.register(Clock(), namespace="clock")
    await b.start("127.0.0.1", 0)
    relay = Relay()
    a = asyncrpc.Server()
    a.register(relay, namespace="relay")
    await a.start("127.0.0.1", 0)
    relay.onward = await asyncrpc.connect("127.0.0.1", b.port)
    relay.onward_port = b.port
    try:
        async with asyncrpc.connect("127.0.0.1", a.port) as client:
            yield client, relay, b
    finally:
        await relay.onward.close()
        await a.close(grace=1.0)
        await b.close(grace=1.0)


async def test_the_next_hop_sees_what_is_left_of_the_deadline(
    hops: tuple[asyncrpc.Client, Relay, asyncrpc.Server],
) -> None:
    client, _, _ = hops
    left = await client.call("relay.relay", "clock.left", timeout=0.5)
    assert left is not None
    assert 0 < left <= 0.5 + SLACK


async def test_without_a_deadline_the_next_hop_has_none(
    hops: tuple[asyncrpc.Client, Relay, asyncrpc.Server],
) -> None:
    client, _, _ = hops
    assert await client.call("relay.relay", "clock.left") is None


async def test_a_shorter_timeout_of_its_own_wins(
    hops: tuple[asyncrpc.Client, Relay, asyncrpc.Server],
) -> None:
    client, _, _ = hops
    assert 0 < await client.call("relay.relay_with", 0.1, "clock.left", timeout=5.0) <= 0.1 + SLACK
    # A longer one does not: it is cut to what the relay's own call has left.
    assert 0 < await client.call("relay.relay_with", 5.0, "clock.left", timeout=0.5) <= 0.5 + SLACK


async def test_calls_back_through_the_peer_carry_the_deadline_too(
    hops: tuple[asyncrpc.Client, Relay, asyncrpc.Server],
) -> None:
    client, _, _ = hops
    client.register_function(lambda: asyncrpc.current_call().time_remaining(), name="left")
    left = await client.call("relay.call_back", "left", timeout=0.5)
    assert left is not None
    assert 0 < left <= 0.5 + SLACK


async def test_a_blocking_handler_using_the_sync_client_passes_it_on(
    hops: tuple[asyncrpc.Client, Relay, asyncrpc.Server],
) -> None:
    client, _, _ = hops
    left = await client.call("relay.relay_from_a_thread", "clock.left", timeout=2.0)
    assert left is not None
    assert 0 < left <= 2.0 + SLACK


async def test_the_onward_call_ends_when_the_deadline_passes(
    hops: tuple[asyncrpc.Client, Relay, asyncrpc.Server],
) -> None:
    """Not awaited by the handler (it was started with a notification mode), the onward
    call still ends at the deadline, and the next hop's handler is freed."""
    client, relay, b = hops
    with pytest.raises(asyncrpc.DeadlineExceeded):
        await client.call("relay.relay_later", "demo.wait_for", "never", timeout=0.3)
    started: asyncrpc.AsyncCall[Any] = relay.started
    async with asyncio.timeout(BOUND):
        with pytest.raises(asyncrpc.DeadlineExceeded):
            await started
        (served,) = b._connections
        # B cancels its handler at the same deadline; a server offers nothing to
        # await for that, so watch its count.
        while served.serving_count:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_a_deadline_already_passed_fails_the_onward_call_at_once() -> None:
    """Inside a handler whose deadline has passed, a new call fails through its handle
    (with its notification, once), never hangs and never waits."""
    server_b = make_server()
    await server_b.start("127.0.0.1", 0)
    onward = await asyncrpc.connect("127.0.0.1", server_b.port)
    made: list[asyncrpc.AsyncCall[Any]] = []
    done = asyncrpc.notify.Event()

    def late() -> None:
        time.sleep(0.1)  # a plain def runs to its end, past its 0.05 s deadline
        left = asyncrpc.current_call().time_remaining()
        assert left is not None
        assert left < 0
        made.append(onward.call("demo.wait_for", "never", notify=done))

    server_a = asyncrpc.Server()
    server_a.register_function(late, name="late")
    await server_a.start("127.0.0.1", 0)
    try:
        async with asyncrpc.connect("127.0.0.1", server_a.port) as client:
            # Client and servers share this loop, which the handler holds: its
            # reply and the client's deadline come due together; either may win.
            await asyncio.gather(client.call("late", timeout=0.05), return_exceptions=True)
            assert made  # the handler ran to its end before anything was answered
            async with asyncio.timeout(BOUND):
                await done.wait()
            assert isinstance(made[0].exception(), asyncrpc.DeadlineExceeded)
    finally:
        await onward.close()
        await server_a.close(grace=1.0)
        await server_b.close(grace=1.0)
