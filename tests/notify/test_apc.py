"""notify.Apc: a routine queued for a plain thread, run only inside that thread's alertable wait."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from asyncrpc import AsyncCall, AsyncEvent, notify
from asyncrpc.sync import pending_apcs, queue_apc, sleep_ex
from tests.notify import WAIT, assert_no_task_or_thread_per_call, probe_setup, receiver

NOT_HAPPENING = 0.05
"""How long a test watches for something that must not happen (an APC outside an alertable wait)."""


class PlainThread:
    """A plain thread running ``body``; its result or error comes back to the test."""

    def __init__(self, body: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(body,), name="plain")
        self.thread.start()

    def _run(self, body: Callable[[], Any]) -> None:
        try:
            self.result = body()
        except BaseException as exc:
            self.error = exc

    async def join(self) -> Any:
        async with asyncio.timeout(WAIT):
            await asyncio.to_thread(self.thread.join)
        if self.error is not None:
            raise self.error
        return self.result


async def test_apc_runs_only_inside_an_alertable_wait_on_its_thread() -> None:
    async with probe_setup() as setup:
        ran: list[tuple[AsyncCall[Any], AsyncEvent, int]] = []

        def routine(call: AsyncCall[Any], event: AsyncEvent) -> None:
            ran.append((call, event, threading.get_ident()))

        call_done = threading.Event()

        def plain() -> list[Any]:
            steps: list[Any] = []
            assert call_done.wait(WAIT)  # a non-alertable wait: runs nothing
            steps.append(("after event wait", len(ran), pending_apcs()))
            time.sleep(NOT_HAPPENING)  # a plain sleep runs nothing either
            steps.append(("after time.sleep", len(ran), pending_apcs()))
            steps.append(("sleep_ex not alertable", sleep_ex(NOT_HAPPENING, alertable=False), len(ran)))
            steps.append(("sleep_ex alertable", sleep_ex(WAIT, alertable=True), len(ran)))
            steps.append(("nothing left", sleep_ex(0, alertable=True), len(ran)))
            return steps

        worker = PlainThread(plain)
        call = setup.client.call("probe.add", 1, 2, notify=notify.Apc(routine, thread=worker.thread))
        assert await call == 3  # complete, and the routine is queued, not run
        assert ran == []
        call_done.set()
        steps = await worker.join()
        assert steps == [
            ("after event wait", 0, 1),
            ("after time.sleep", 0, 1),
            ("sleep_ex not alertable", 0, 0),
            ("sleep_ex alertable", 1, 1),  # returns the number of routines it ran
            ("nothing left", 0, 1),
        ]
        assert ran == [(call, AsyncEvent.CALL_COMPLETE, worker.thread.ident)]


async def test_apc_without_a_thread_goes_to_the_thread_that_made_it() -> None:
    """``thread=None`` is ``hThread = 0``: the caller's thread, the one that built the Apc."""
    async with probe_setup() as setup:
        loop = asyncio.get_running_loop()
        ran: list[int] = []

        def plain() -> int:
            mode = notify.Apc(lambda call, event: ran.append(threading.get_ident()))
            call = asyncio.run_coroutine_threadsafe(start(mode), loop).result(WAIT)
            assert call.done()
            return sleep_ex(WAIT, alertable=True)

        async def start(mode: notify.Apc) -> AsyncCall[Any]:
            call = setup.client.call("probe.add", 1, 1, notify=mode)
            await call
            return call

        worker = PlainThread(plain)
        assert await worker.join() == 1
        assert ran == [worker.thread.ident]


def test_alertable_wait_times_out_with_zero() -> None:
    started = time.monotonic()
    assert sleep_ex(0.02, alertable=True) == 0
    assert time.monotonic() - started >= 0.02
    assert sleep_ex(0, alertable=True) == 0
    with pytest.raises(ValueError, match="timeout"):
        sleep_ex(None, alertable=False)


def test_an_apc_queued_from_another_thread_ends_the_alertable_wait() -> None:
    order: list[str] = []
    woken = threading.Event()

    def plain() -> None:
        woken.set()
        order.append(f"ran {sleep_ex(WAIT, alertable=True)}")

    thread = threading.Thread(target=plain)
    thread.start()
    assert woken.wait(WAIT)
    queue_apc(order.append, thread, "apc")
    thread.join(WAIT)
    assert order == ["apc", "ran 1"]


def test_apcs_run_first_in_first_out_and_are_counted() -> None:
    order: list[int] = []
    me = threading.current_thread()
    for i in range(5):
        queue_apc(order.append, me, i)
    assert pending_apcs() == 5
    assert pending_apcs(me.ident) == 5
    assert sleep_ex(0, alertable=True) == 5
    assert order == [0, 1, 2, 3, 4]
    assert pending_apcs() == 0


def test_an_apc_queued_by_an_apc_waits_for_the_next_alertable_wait() -> None:
    me = threading.current_thread()
    order: list[str] = []

    def first() -> None:
        order.append("first")
        queue_apc(order.append, me, "second")

    queue_apc(first, me)
    assert sleep_ex(0, alertable=True) == 1
    assert order == ["first"]
    assert sleep_ex(0, alertable=True) == 1
    assert order == ["first", "second"]


def test_a_failing_apc_propagates_and_leaves_the_rest_queued() -> None:
    me = threading.current_thread()
    order: list[str] = []

    def boom() -> None:
        raise RuntimeError("apc bug")

    queue_apc(order.append, me, "a")
    queue_apc(boom, me)
    queue_apc(order.append, me, "c")
    with pytest.raises(RuntimeError, match="apc bug"):
        sleep_ex(0, alertable=True)
    assert order == ["a"]
    assert sleep_ex(0, alertable=True) == 1
    assert order == ["a", "c"]


async def test_apc_for_a_thread_that_has_ended_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    async with probe_setup() as setup:
        ended = threading.Thread(target=lambda: None)
        ended.start()
        ended.join()
        ran: list[object] = []
        call = setup.client.call("probe.add", 1, 1, notify=notify.Apc(lambda c, e: ran.append(c), ended))
        assert await call == 2
        assert "has ended" in caplog.text
        assert pending_apcs(ended) == 0
        assert ran == []


def test_apc_arguments_are_checked() -> None:
    with pytest.raises(TypeError):
        notify.Apc("not callable")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        notify.Apc(print, thread="main")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no running thread"):
        notify.Apc(print, thread=-1)
    assert notify.Apc(print, thread=threading.get_ident()).thread is threading.current_thread()


async def test_apc_adds_no_task_or_thread_per_call() -> None:
    async with probe_setup() as setup, receiver("apc") as rx:
        await assert_no_task_or_thread_per_call(setup, rx)
