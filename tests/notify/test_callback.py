"""notify.Callback: ``fn(call, CALL_COMPLETE)`` on the calling loop, or on a given loop in another thread."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from asyncrpc import AsyncCall, AsyncEvent, CallStatus, notify
from tests.notify import WAIT, LoopThread, assert_no_task_or_thread_per_call, probe_setup, receiver


async def test_callback_runs_on_the_calling_loop_and_thread() -> None:
    async with probe_setup() as setup:
        loop = asyncio.get_running_loop()
        ran: asyncio.Future[tuple[Any, ...]] = loop.create_future()

        def routine(call: AsyncCall[Any], event: AsyncEvent) -> None:
            ran.set_result((call, event, asyncio.get_running_loop(), threading.get_ident(), call.status()))

        call = setup.client.call("probe.add", 1, 2, notify=notify.Callback(routine))
        async with asyncio.timeout(WAIT):
            got = await ran
        assert got == (call, AsyncEvent.CALL_COMPLETE, loop, threading.get_ident(), CallStatus.COMPLETE)
        assert call.complete() == 3


async def test_callback_runs_on_a_loop_in_another_thread() -> None:
    other = LoopThread()
    try:
        async with probe_setup() as setup:
            loop = asyncio.get_running_loop()
            ran: asyncio.Future[tuple[Any, ...]] = loop.create_future()

            def routine(call: AsyncCall[Any], event: AsyncEvent) -> None:
                where = (asyncio.get_running_loop(), threading.get_ident())
                loop.call_soon_threadsafe(ran.set_result, (call, event, *where))

            call = setup.client.call("probe.add", 2, 2, notify=notify.Callback(routine, loop=other.loop))
            async with asyncio.timeout(WAIT):
                got = await ran
            assert got == (call, AsyncEvent.CALL_COMPLETE, other.loop, other.ident)
            assert other.ident != threading.get_ident()
    finally:
        other.close()


@pytest.mark.parametrize("where", ["calling-loop", "other-loop"])
async def test_coroutine_callback_runs_as_a_task_on_the_target_loop(where: str) -> None:
    other = LoopThread() if where == "other-loop" else None
    try:
        async with probe_setup() as setup:
            loop = asyncio.get_running_loop()
            ran: asyncio.Future[tuple[Any, ...]] = loop.create_future()
            target = loop if other is None else other.loop
            expected_thread = threading.get_ident() if other is None else other.ident

            async def routine(call: AsyncCall[Any], event: AsyncEvent) -> None:
                task = asyncio.current_task()
                await asyncio.sleep(0)  # a real coroutine, suspended and resumed as a task
                result = (call, event, task is not None, asyncio.get_running_loop(), threading.get_ident())
                loop.call_soon_threadsafe(ran.set_result, result)

            mode = notify.Callback(routine, loop=None if other is None else other.loop)
            call = setup.client.call("probe.add", 3, 3, notify=mode)
            async with asyncio.timeout(WAIT):
                got = await ran
            assert got == (call, AsyncEvent.CALL_COMPLETE, True, target, expected_thread)
    finally:
        if other is not None:
            other.close()


async def test_callback_may_make_a_call_itself() -> None:
    """The routine is not run inside the connection's read path, so it may use the client."""
    async with probe_setup() as setup:
        follow_up: asyncio.Future[AsyncCall[Any]] = asyncio.get_running_loop().create_future()

        def routine(call: AsyncCall[Any], event: AsyncEvent) -> None:
            follow_up.set_result(setup.client.call("probe.add", call.complete(), 1))

        assert await setup.client.call("probe.add", 1, 1, notify=notify.Callback(routine)) == 2
        async with asyncio.timeout(WAIT):
            assert await (await follow_up) == 3


async def test_a_failing_callback_harms_nothing() -> None:
    async with probe_setup() as setup:
        loop = asyncio.get_running_loop()
        reported: asyncio.Future[dict[str, Any]] = loop.create_future()
        loop.set_exception_handler(lambda _loop, context: reported.set_result(context))
        try:

            def routine(call: AsyncCall[Any], event: AsyncEvent) -> None:
                raise RuntimeError("callback bug")

            call = setup.client.call("probe.add", 1, 1, notify=notify.Callback(routine))
            async with asyncio.timeout(WAIT):
                context = await reported
            assert isinstance(context["exception"], RuntimeError)
            assert call.complete() == 2
            assert await setup.client.call("probe.add", 5, 5) == 10
        finally:
            loop.set_exception_handler(None)


async def test_a_failing_coroutine_callback_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async with probe_setup() as setup:
        loop = asyncio.get_running_loop()
        failed: asyncio.Future[None] = loop.create_future()

        async def routine(call: AsyncCall[Any], event: AsyncEvent) -> None:
            loop.call_soon(failed.set_result, None)
            raise RuntimeError("coroutine callback bug")

        assert await setup.client.call("probe.add", 1, 1, notify=notify.Callback(routine)) == 2
        async with asyncio.timeout(WAIT):
            await failed  # woken after the failed task's done callback, queued before the wake-up
        assert "coroutine callback raised" in caplog.text
        assert await setup.client.call("probe.add", 1, 2) == 3


async def test_callback_to_a_closed_loop_cannot_break_the_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    other = LoopThread()
    other.close()
    async with probe_setup() as setup:
        call = setup.client.call("probe.add", 1, 2, notify=notify.Callback(print, loop=other.loop))
        assert await call == 3
        assert "could not deliver" in caplog.text
        assert await setup.client.call("probe.add", 2, 2) == 4


def test_callback_needs_a_callable_and_a_loop() -> None:
    with pytest.raises(TypeError):
        notify.Callback("not callable")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        notify.Callback(print, loop="not a loop")  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["callback", "callback-other-loop"])
async def test_callback_adds_no_task_or_thread_per_call(mode: str) -> None:
    async with probe_setup() as setup, receiver(mode) as rx:
        await assert_no_task_or_thread_per_call(setup, rx)


async def test_a_coroutine_callback_is_the_only_task_per_call() -> None:
    """A coroutine routine runs as a task, as asked: one per call, and nothing else."""
    async with probe_setup() as setup, receiver("callback-coroutine") as rx:
        await assert_no_task_or_thread_per_call(setup, rx, tasks_per_call=1)
