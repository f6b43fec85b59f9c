"""notify.Polling: nothing is delivered; the caller polls ``call.status()`` (``RpcAsyncGetCallStatus``)."""

from __future__ import annotations

import asyncio

import asyncrpc
from asyncrpc import AsyncEvent, CallStatus, notify
from tests.notify import WAIT, assert_no_task_or_thread_per_call, probe_setup, receiver


async def test_poll_status_until_not_pending() -> None:
    async with probe_setup() as setup:
        polling = notify.Polling()
        call = setup.client.call("probe.hold", "p", notify=polling)
        await setup.probe.started("p")
        polls = 0
        async with asyncio.timeout(WAIT):
            while call.status() is CallStatus.PENDING:  # never blocks, never raises
                polls += 1
                if polls == 10:
                    setup.probe.release("p")
                await asyncio.sleep(0)  # yield to the loop between polls
        assert polls >= 10
        assert call.status() is CallStatus.COMPLETE
        assert call.last_event is AsyncEvent.CALL_COMPLETE
        assert call.complete() == "p"
        assert polling.completed == 1


async def test_polling_sees_every_outcome_as_a_final_status() -> None:
    async with probe_setup() as setup:
        polling = notify.Polling()
        ok = setup.client.call("probe.add", 1, 2, notify=polling)
        bad = setup.client.call("probe.fail", "no", notify=polling)
        late = setup.client.call("probe.hold", "never", notify=polling, timeout=0.02)
        gone = setup.client.call("probe.hold", "gone", notify=polling)
        gone.cancel()
        calls = [ok, bad, late, gone]
        async with asyncio.timeout(WAIT):
            while any(call.status() is CallStatus.PENDING for call in calls):  # noqa: ASYNC110 - the mode
                await asyncio.sleep(0)
        assert [call.status() for call in calls] == [
            CallStatus.COMPLETE,
            CallStatus.FAILED,
            CallStatus.FAILED,
            CallStatus.CANCELLED,
        ]
        assert ok.complete() == 3
        assert isinstance(bad.exception(), asyncrpc.RemoteError)
        assert isinstance(late.exception(), asyncrpc.DeadlineExceeded)
        assert isinstance(gone.exception(), asyncrpc.CallCancelled)
        assert polling.completed == 4


async def test_status_is_safe_to_poll_from_another_thread() -> None:
    async with probe_setup() as setup:
        call = setup.client.call("probe.hold", "t", notify=notify.Polling())
        await setup.probe.started("t")
        seen: list[CallStatus] = []

        def poll_until_done() -> None:
            while (status := call.status()) is CallStatus.PENDING:
                if not seen:
                    seen.append(status)
                    asyncio.run_coroutine_threadsafe(release(), loop).result(WAIT)
            seen.append(status)

        async def release() -> None:
            setup.probe.release("t")

        loop = asyncio.get_running_loop()
        async with asyncio.timeout(WAIT):
            await asyncio.to_thread(poll_until_done)
        assert seen == [CallStatus.PENDING, CallStatus.COMPLETE]


async def test_polling_adds_no_task_or_thread_per_call() -> None:
    async with probe_setup() as setup, receiver("polling") as rx:
        await assert_no_task_or_thread_per_call(setup, rx)
