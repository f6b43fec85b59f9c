"""notify.MessagePump: completions become messages, dispatched in order with the user's own messages."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from asyncrpc import AsyncCall, AsyncEvent, CallStatus, notify
from asyncrpc.notify.message_pump import WM_APP, WM_QUIT
from tests.notify import WAIT, assert_no_task_or_thread_per_call, probe_setup, receiver

WM_RPC_DONE = WM_APP + 1
WM_USER_NOTE = WM_APP + 2


async def test_completions_and_user_messages_dispatched_in_posting_order() -> None:
    async with probe_setup() as setup:
        pump = notify.MessagePump()
        dispatched: list[notify.Message] = []
        pump.register(WM_RPC_DONE, dispatched.append)
        pump.register(WM_USER_NOTE, dispatched.append)
        target = pump.target(WM_RPC_DONE, hwnd="main-window")

        pump.post("main-window", WM_USER_NOTE, 1, "before")
        first = setup.client.call("probe.add", 1, 1, notify=target)
        assert await first == 2  # its message is queued now, behind the note
        pump.post("main-window", WM_USER_NOTE, 2, "between")
        second = setup.client.call("probe.fail", "no", notify=target)
        await asyncio.gather(second, return_exceptions=True)
        pump.post_quit()
        assert pump.pending() == 5

        async with asyncio.timeout(WAIT):
            await pump.run()  # returns at the quit message
        done = AsyncEvent.CALL_COMPLETE
        assert dispatched == [
            notify.Message("main-window", WM_USER_NOTE, 1, "before"),
            notify.Message("main-window", WM_RPC_DONE, wparam=done, lparam=first),
            notify.Message("main-window", WM_USER_NOTE, 2, "between"),
            notify.Message("main-window", WM_RPC_DONE, wparam=done, lparam=second),
        ]
        assert second.status() is CallStatus.FAILED
        assert pump.pending() == 0


async def test_async_procedures_are_awaited_one_message_at_a_time() -> None:
    async with probe_setup() as setup:
        pump = notify.MessagePump()
        trace: list[str] = []

        async def proc(message: notify.Message) -> None:
            name = message.lparam.complete() if isinstance(message.lparam, AsyncCall) else message.lparam
            trace.append(f"start {name}")
            for _ in range(3):
                await asyncio.sleep(0)  # suspend: the next message must still wait
            trace.append(f"end {name}")
            if name == "last":
                pump.post_quit()

        pump.register(WM_RPC_DONE, proc)
        runner = asyncio.create_task(pump.run())
        calls = [setup.client.call("probe.add", i, 0, notify=pump.target(WM_RPC_DONE)) for i in range(3)]
        await asyncio.gather(*calls)
        pump.post(None, WM_RPC_DONE, None, "last")
        async with asyncio.timeout(WAIT):
            await runner
        assert trace == [
            "start 0",
            "end 0",
            "start 1",
            "end 1",
            "start 2",
            "end 2",
            "start last",
            "end last",
        ]


async def test_a_failing_procedure_is_logged_and_the_pump_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    pump = notify.MessagePump()
    seen: list[Any] = []

    def bad(message: notify.Message) -> None:
        raise RuntimeError("window procedure bug")

    pump.register(WM_USER_NOTE, bad)
    pump.register(WM_RPC_DONE, lambda message: seen.append(message.lparam))
    pump.post(None, WM_USER_NOTE)
    pump.post(None, 0x1234)  # no procedure, no default: ignored
    pump.post(None, WM_RPC_DONE, None, "after")
    pump.post_quit()
    async with asyncio.timeout(WAIT):
        await pump.run()
    assert seen == ["after"]
    assert "window procedure bug" in caplog.text


async def test_default_procedure_and_quit_for_a_window_is_an_ordinary_message() -> None:
    pump = notify.MessagePump()
    seen: list[tuple[Any, int]] = []
    pump.default_proc = lambda message: seen.append((message.hwnd, message.msg))
    pump.post("w", 0x1234)
    pump.post("w", WM_QUIT)  # WM_QUIT addressed to a window does not end the loop
    pump.post_quit()
    async with asyncio.timeout(WAIT):
        await pump.run()
    assert seen == [("w", 0x1234), ("w", WM_QUIT)]


async def test_run_until_cancelled() -> None:
    pump = notify.MessagePump()
    runner = asyncio.create_task(pump.run())
    got: asyncio.Future[notify.Message] = asyncio.get_running_loop().create_future()
    pump.register(WM_USER_NOTE, got.set_result)
    pump.post(None, WM_USER_NOTE)
    async with asyncio.timeout(WAIT):
        await got
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner


async def test_post_from_another_thread_and_run_blocking_in_a_plain_thread() -> None:
    async with probe_setup() as setup:
        pump = notify.MessagePump()
        threads: list[tuple[Any, int]] = []

        def proc(message: notify.Message) -> None:
            threads.append((message.lparam.complete(), threading.get_ident()))
            if len(threads) == 2:
                pump.post_quit()  # post() is safe from any thread

        pump.register(WM_RPC_DONE, proc)
        pump_thread = threading.Thread(target=pump.run_blocking, kwargs={"timeout": WAIT})
        pump_thread.start()
        await setup.client.call("probe.add", 1, 1, notify=pump.target(WM_RPC_DONE))
        await setup.client.call("probe.add", 2, 2, notify=pump.target(WM_RPC_DONE))
        async with asyncio.timeout(WAIT):
            await asyncio.to_thread(pump_thread.join)
        assert threads == [(2, pump_thread.ident), (4, pump_thread.ident)]
        with pytest.raises(RuntimeError, match="own loop"):
            pump.run_blocking()


async def test_the_pump_itself_is_not_a_notification_mode() -> None:
    async with probe_setup() as setup:
        pump = notify.MessagePump()
        with pytest.raises(TypeError):
            setup.client.call("probe.add", 1, 1, notify=pump)  # type: ignore[arg-type]
        assert pump.pending() == 0


async def test_message_pump_adds_no_task_or_thread_per_call() -> None:
    async with probe_setup() as setup, receiver("message-pump") as rx:
        await assert_no_task_or_thread_per_call(setup, rx)
