"""The call handle's lifecycle (one transition table) and behaviours 1, 2 and 5 for every mode.

1. A handle that is pending, or finished and not reset, cannot start another
   call: ``HandleInUseError`` at the call site, and nothing reaches the server.
2. An error while *making* a call raises at the call site and no notification
   is ever delivered for it.
5. ``complete()`` before the reply raises ``CallPending`` and changes nothing.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import asyncrpc
from asyncrpc import AsyncCall, AsyncEvent, CallStatus, HandleInUseError, notify
from asyncrpc.handle import TRANSITIONS, Step
from asyncrpc.notify import Notifier
from tests.notify import MODES, Setup, probe_setup, receiver

INITIALIZED = CallStatus.INITIALIZED
PENDING = CallStatus.PENDING
COMPLETE = CallStatus.COMPLETE
FAILED = CallStatus.FAILED
CANCELLED = CallStatus.CANCELLED

STEPS: list[Step] = ["start", "succeed", "fail", "cancel", "reset"]

# Written out by hand from DESIGN.md and MSRPC-ASYNC.md, not copied from the code.
EXPECTED: dict[tuple[CallStatus, str], CallStatus] = {
    (INITIALIZED, "start"): PENDING,  # RpcAsyncInitializeHandle, then the call
    (PENDING, "succeed"): COMPLETE,
    (PENDING, "fail"): FAILED,  # remote error, deadline, connection lost
    (PENDING, "cancel"): CANCELLED,  # abortive cancel, or the server cancelled
    (INITIALIZED, "reset"): INITIALIZED,
    (COMPLETE, "reset"): INITIALIZED,
    (FAILED, "reset"): INITIALIZED,
    (CANCELLED, "reset"): INITIALIZED,
}


def last_event(call: AsyncCall[Any]) -> AsyncEvent | None:
    """``call.last_event``, read through a function so the type checker does not narrow it."""
    return call.last_event


def fresh_fields(call: AsyncCall[Any]) -> tuple[AsyncEvent | None, int | None]:
    """What a reset clears: ``last_event`` and ``msgid``."""
    return call.last_event, call.msgid


# -- the table -------------------------------------------------------------------------


def test_transition_table_is_exactly_the_lifecycle() -> None:
    assert dict(TRANSITIONS) == EXPECTED
    assert {status for status, _ in TRANSITIONS} | set(TRANSITIONS.values()) == set(CallStatus)


@pytest.mark.parametrize(("status", "step"), list(itertools.product(CallStatus, STEPS)))
def test_every_status_and_step(status: CallStatus, step: Step) -> None:
    """Each (status, step): allowed ones move; refused start/reset raise; other finishing steps are no-ops."""
    handle: AsyncCall[Any] = AsyncCall()
    handle._status = status
    allowed = EXPECTED.get((status, step))
    if allowed is not None:
        assert handle._advance(step) is True
        assert handle.status() is allowed
    elif step in ("start", "reset"):
        with pytest.raises(HandleInUseError):
            handle._advance(step)
        assert handle.status() is status
    else:
        # A second finishing step (a late reply, a timer) is ignored: this is
        # what makes the outcome, and its notification, happen once.
        assert handle._advance(step) is False
        assert handle.status() is status


# -- the lifecycle through the public API ------------------------------------------------


def test_a_new_handle_is_initialized_and_not_a_result() -> None:
    handle: AsyncCall[int] = AsyncCall(user_info={"mine": 1})
    assert handle.status() is INITIALIZED
    assert not handle.done()
    assert handle.msgid is None
    assert handle.last_event is None
    assert handle.user_info == {"mine": 1}
    with pytest.raises(HandleInUseError):
        handle.complete()
    handle.reset()  # allowed, and still initialized
    assert handle.status() is INITIALIZED


async def test_handle_not_awaitable_before_it_is_used() -> None:
    handle: AsyncCall[int] = AsyncCall()
    with pytest.raises(HandleInUseError):
        await handle


def test_bad_notify_object_is_refused_when_the_handle_is_made() -> None:
    with pytest.raises(TypeError):
        AsyncCall(notify=asyncio.Event())  # type: ignore[arg-type]


async def test_handle_lifecycle_end_to_end() -> None:
    async with probe_setup() as setup:
        client, probe = setup.client, setup.probe
        ev = asyncio.Event()
        handle: AsyncCall[Any] = AsyncCall(notify=notify.Event(ev), user_info="ctx")

        call = client.call("probe.hold", "first", handle=handle)
        assert call is handle
        assert handle.status() is PENDING
        assert handle.msgid is not None
        assert handle.last_event is None
        await probe.started("first")

        # Pending: cannot start another call, cannot be reset; nothing is sent.
        with pytest.raises(HandleInUseError):
            client.call("probe.count", "second", handle=handle)
        with pytest.raises(HandleInUseError):
            handle.reset()
        assert handle.status() is PENDING

        probe.release("first")
        await ev.wait()
        assert handle.status() is COMPLETE
        assert last_event(handle) is AsyncEvent.CALL_COMPLETE
        assert handle.user_info == "ctx"
        assert handle.complete() == "first"

        # Finished and not reset: still refused, still nothing sent.
        with pytest.raises(HandleInUseError):
            client.call("probe.count", "second", handle=handle)
        assert handle.status() is COMPLETE
        assert handle.complete() == "first"
        assert await client.call("probe.count", "check") == 1
        assert probe.seen["second"] == 0  # the server never saw a refused call

        handle.reset()
        assert handle.status() is INITIALIZED
        assert fresh_fields(handle) == (None, None)
        assert handle.user_info == "ctx"  # kept across reset
        assert handle.notify is not None  # and so is the notification mode

        ev.clear()
        again = client.call("probe.count", "second", handle=handle)
        assert again is handle
        await ev.wait()  # the same mode notifies the new call
        assert handle.complete() == 1
        assert probe.seen["second"] == 1


@pytest.mark.parametrize("ending", ["complete", "failed", "cancelled", "deadline", "connection-lost"])
async def test_reset_makes_any_finished_handle_reusable(ending: str) -> None:
    async with probe_setup() as setup:
        client = setup.client
        handle: AsyncCall[Any] = AsyncCall(user_info=ending)
        other = None
        if ending == "complete":
            client.call("probe.add", 1, 1, handle=handle)
        elif ending == "failed":
            client.call("probe.fail", "no", handle=handle)
        elif ending == "cancelled":
            client.call("probe.hold", "c", handle=handle)
            handle.cancel()
        elif ending == "deadline":
            client.call("probe.hold", "d", handle=handle, timeout=0.01)
        else:
            other = await asyncrpc.connect("127.0.0.1", setup.server.port)
            other.call("probe.drop", handle=handle)
        try:
            await handle
        except asyncrpc.RPCError:
            assert ending != "complete"
        else:
            assert ending == "complete"
        assert handle.done()
        expected = {"complete": COMPLETE, "cancelled": CANCELLED}.get(ending, FAILED)
        assert handle.status() is expected
        assert handle.last_event is AsyncEvent.CALL_COMPLETE

        with pytest.raises(HandleInUseError):
            client.call("probe.add", 2, 2, handle=handle)
        handle.reset()
        assert client.call("probe.add", 2, 2, handle=handle) is handle  # on any connection
        assert await handle == 4
        assert handle.user_info == ending
        if other is not None:
            await other.close()


async def test_notify_given_at_the_call_replaces_the_handles_mode() -> None:
    async with probe_setup() as setup:
        first, second = notify.Polling(), notify.Polling()
        handle: AsyncCall[int] = AsyncCall(notify=first)
        assert await setup.client.call("probe.add", 1, 2, handle=handle, notify=second) == 3
        assert (first.completed, second.completed) == (0, 1)
        assert handle.notify is second


# -- behaviour 1: every pending call has its own handle ---------------------------------------


async def test_every_pending_call_has_its_own_handle() -> None:
    async with probe_setup() as setup:
        calls = [setup.client.call("probe.hold", f"h{i}") for i in range(20)]
        assert len({id(call) for call in calls}) == 20
        assert len({call.msgid for call in calls}) == 20
        for i in reversed(range(20)):  # answered in any order, each to its own handle
            setup.probe.release(f"h{i}")
            assert await calls[i] == f"h{i}"


async def test_a_handle_in_use_refused_whichever_way_the_call_is_made() -> None:
    async with probe_setup() as setup:
        handle: AsyncCall[Any] = AsyncCall()
        setup.client.call("probe.hold", "busy", handle=handle)
        with pytest.raises(HandleInUseError):
            setup.client.stub("probe").count.options(handle=handle)("via-stub")
        other = await asyncrpc.connect("127.0.0.1", setup.server.port)
        try:
            with pytest.raises(HandleInUseError):
                other.call("probe.count", "via-other-connection", handle=handle)
        finally:
            await other.close()
        assert await setup.client.call("probe.count", "check") == 1
        assert setup.probe.seen["via-stub"] == setup.probe.seen["via-other-connection"] == 0
        setup.probe.release("busy")
        assert await handle == "busy"


# -- behaviour 2: errors while making the call deliver nothing, in every mode ---------------------


async def _closed_connection(setup: Setup, mode: Notifier, misuse: object) -> None:
    other = await asyncrpc.connect("127.0.0.1", setup.server.port)
    await other.close()
    with pytest.raises(asyncrpc.ConnectionLost):
        other.call("probe.count", "failed", notify=mode)


async def _unencodable(setup: Setup, mode: Notifier, misuse: object) -> None:
    with pytest.raises(asyncrpc.EncodeError):
        setup.client.call("probe.count", "failed", object(), notify=mode)


async def _handle_in_use(setup: Setup, mode: Notifier, misuse: object) -> None:
    busy: AsyncCall[Any] = AsyncCall()
    setup.client.call("probe.hold", "busy", handle=busy)
    with pytest.raises(HandleInUseError):
        setup.client.call("probe.count", "failed", handle=busy, notify=mode)
    assert busy.notify is None  # the refused call did not touch the handle
    setup.probe.release("busy")
    assert await busy == "busy"
    with pytest.raises(HandleInUseError):  # finished, not reset
        setup.client.call("probe.count", "failed", handle=busy, notify=mode)
    assert busy.notify is None


async def _bad_notify(setup: Setup, mode: Notifier, misuse: object) -> None:
    with pytest.raises(TypeError):
        setup.client.call("probe.count", "failed", notify=misuse)  # type: ignore[arg-type]
    handle: AsyncCall[Any] = AsyncCall()
    with pytest.raises(TypeError):
        setup.client.call("probe.count", "failed", handle=handle, notify=misuse)  # type: ignore[arg-type]
    assert handle.status() is INITIALIZED


async def _bad_timeout(setup: Setup, mode: Notifier, misuse: object) -> None:
    handle: AsyncCall[Any] = AsyncCall()
    for timeout in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="timeout"):
            setup.client.call("probe.count", "failed", notify=mode, timeout=timeout)
        with pytest.raises(ValueError, match="timeout"):
            setup.client.call("probe.count", "failed", handle=handle, notify=mode, timeout=timeout)
    assert handle.status() is INITIALIZED
    assert handle.notify is None


async def _too_many_pending(setup: Setup, mode: Notifier, misuse: object) -> None:
    async with asyncrpc.connect("127.0.0.1", setup.server.port, max_pending=1) as limited:
        blocker = limited.call("probe.hold", "blocker")
        with pytest.raises(asyncrpc.TooManyPendingCalls):
            limited.call("probe.count", "failed", notify=mode)
        setup.probe.release("blocker")
        assert await blocker == "blocker"


CALL_SITE_ERRORS: dict[str, Callable[[Setup, Notifier, object], Awaitable[None]]] = {
    "closed-connection": _closed_connection,
    "unencodable-args": _unencodable,
    "handle-in-use": _handle_in_use,
    "bad-notify": _bad_notify,
    "bad-timeout": _bad_timeout,
    "too-many-pending": _too_many_pending,
}


@pytest.mark.parametrize("error", list(CALL_SITE_ERRORS))
@pytest.mark.parametrize("mode", MODES)
async def test_error_making_the_call_raises_there_and_delivers_nothing(mode: str, error: str) -> None:
    async with probe_setup() as setup, receiver(mode) as rx:
        mode_object = rx.notifier()
        await CALL_SITE_ERRORS[error](setup, mode_object, rx.misuse())

        # The same mode, for a call that works: exactly one delivery, for it.
        ok = setup.client.call("probe.count", "ok", notify=mode_object)
        await rx.wait(ok)
        assert ok.complete() == 1
        assert await rx.deliveries() == 1
        assert setup.probe.seen["failed"] == 0  # nothing reached the server


# -- behaviour 5: complete() too early -----------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_complete_before_the_reply_raises_call_pending_and_changes_nothing(mode: str) -> None:
    async with probe_setup() as setup, receiver(mode) as rx:
        call = setup.client.call("probe.hold", "early", notify=rx.notifier())
        await setup.probe.started("early")
        for _ in range(3):
            with pytest.raises(asyncrpc.CallPending) as info:
                call.complete()
            assert info.value.code == 997  # RPC_S_ASYNC_CALL_PENDING
            with pytest.raises(asyncrpc.CallPending):
                call.exception()
        assert call.status() is PENDING
        assert not call.done()
        assert call.last_event is None
        assert await rx.deliveries() == 0

        setup.probe.release("early")
        await rx.wait(call)
        assert call.status() is COMPLETE
        assert call.complete() == "early"
        assert call.exception() is None
        assert await rx.deliveries() == 1
