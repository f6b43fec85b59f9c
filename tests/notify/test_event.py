"""notify.Event: an asyncio.Event (on the loop it belongs to, from any thread) or a threading.Event."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from asyncrpc import AsyncCall, AsyncEvent, CallStatus, notify
from tests.notify import (
    WAIT,
    CountingAsyncioEvent,
    CountingThreadingEvent,
    LoopThread,
    assert_no_task_or_thread_per_call,
    probe_setup,
    receiver,
)


async def test_default_event_is_an_asyncio_event_of_the_calling_loop() -> None:
    async with probe_setup() as setup:
        done = notify.Event()
        assert isinstance(done.event, asyncio.Event)
        call = setup.client.call("probe.hold", "e", notify=done)
        await setup.probe.started("e")
        assert not done.is_set()
        setup.probe.release("e")
        async with asyncio.timeout(WAIT):
            await done.wait()
        assert call.status() is CallStatus.COMPLETE  # the outcome is fixed before the event is set
        assert call.complete() == "e"


async def test_event_is_set_on_its_loop_thread_and_not_cleared() -> None:
    async with probe_setup() as setup:
        ev = CountingAsyncioEvent()
        done = notify.Event(ev)
        assert await setup.client.call("probe.add", 1, 1, notify=done) == 2
        assert ev.set_threads == [threading.get_ident()]
        assert ev.is_set()  # as on Windows, the caller resets it
        done.clear()
        assert await setup.client.call("probe.add", 2, 2, notify=done) == 4
        assert ev.is_set()
        assert len(ev.set_threads) == 2


async def test_asyncio_event_of_another_loop_is_set_on_that_loops_thread() -> None:
    other = LoopThread()
    try:
        async with probe_setup() as setup:

            async def make_and_wait() -> tuple[CountingAsyncioEvent, asyncio.Future[int]]:
                ev = CountingAsyncioEvent()
                here = asyncio.get_running_loop()
                waiting: asyncio.Future[None] = here.create_future()
                woke: asyncio.Future[int] = here.create_future()

                async def waiter() -> None:
                    waiting.set_result(None)
                    await ev.wait()  # binds ev to the other loop, in this same step
                    woke.set_result(threading.get_ident())

                task = here.create_task(waiter())
                await waiting
                assert not task.done()
                return ev, woke

            ev, woke = await other.run(make_and_wait())

            # Built on this loop without loop=: the event's own (bound) loop is used.
            call = setup.client.call("probe.add", 3, 4, notify=notify.Event(ev))
            assert await call == 7

            async def woken() -> int:
                return await woke

            async with asyncio.timeout(WAIT):
                assert await other.run(woken()) == other.ident
            assert ev.set_threads == [other.ident]  # set() ran on the other loop's thread

            # An event nobody awaits yet is not bound: loop= says where it belongs.
            fresh = CountingAsyncioEvent()
            assert (
                await setup.client.call("probe.add", 1, 0, notify=notify.Event(fresh, loop=other.loop)) == 1
            )
            await other.call(lambda: None)  # what was scheduled there before this has run
            assert fresh.set_threads == [other.ident]
    finally:
        other.close()


async def test_threading_event_wakes_a_plain_thread() -> None:
    async with probe_setup() as setup:
        ev = CountingThreadingEvent()
        handle: AsyncCall[str] = AsyncCall(notify=notify.Event(ev))
        woke: list[Any] = []

        def plain_thread() -> None:
            assert ev.wait(WAIT)
            woke.append(handle.complete())
            woke.append(handle.last_event)

        thread = threading.Thread(target=plain_thread)
        thread.start()
        setup.client.call("probe.hold", "t", handle=handle)
        await setup.probe.started("t")
        assert thread.is_alive()
        setup.probe.release("t")
        async with asyncio.timeout(WAIT):
            await asyncio.to_thread(thread.join)
        assert woke == ["t", AsyncEvent.CALL_COMPLETE]
        assert len(ev.set_threads) == 1


def test_event_built_without_a_loop_is_a_threading_event() -> None:
    done = notify.Event()
    assert isinstance(done.event, threading.Event)


async def test_wait_is_for_asyncio_events_only() -> None:
    done = notify.Event(threading.Event())
    with pytest.raises(TypeError):
        await done.wait()


def test_event_refuses_other_objects() -> None:
    with pytest.raises(TypeError):
        notify.Event(object())  # type: ignore[arg-type]


async def test_event_of_a_closed_loop_cannot_break_the_connection(caplog: pytest.LogCaptureFixture) -> None:
    other = LoopThread()
    other.close()
    async with probe_setup() as setup:
        call = setup.client.call("probe.add", 1, 2, notify=notify.Event(asyncio.Event(), loop=other.loop))
        assert await call == 3
        assert "could not deliver" in caplog.text
        assert await setup.client.call("probe.add", 2, 2) == 4  # the connection is fine


@pytest.mark.parametrize("mode", ["event", "event-threading", "event-other-loop"])
async def test_event_adds_no_task_or_thread_per_call(mode: str) -> None:
    async with probe_setup() as setup, receiver(mode) as rx:
        await assert_no_task_or_thread_per_call(setup, rx)
