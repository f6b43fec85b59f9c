"""Behaviour 3: each finished call delivers exactly one notification, in its mode, whatever the outcome.

Every mode (and the variants that take another loop or thread) is crossed
with every way a call can end, including the ways of a reconnecting client's
call made while it has no connection. After the first delivery, the test waits until
anything that could cause a second one has happened (the server's late answer
to a call already ended locally, a deadline timer, a second cancel), flushes
the mode's own pipeline, and counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

import asyncrpc
from asyncrpc import AsyncCall, CallStatus
from asyncrpc.notify import Notifier
from tests.faultproxy import FaultProxy
from tests.notify import MODES, Setup, probe_setup, receiver
from tests.services import BOUND

#: A reconnect slow enough that a call made just after the drop waits for it.
SLOW_RECONNECT = asyncrpc.Reconnect(initial=0.3, maximum=0.3, jitter=0.0)


@dataclass
class Ended:
    """A call started in some way, and what its end must look like."""

    call: AsyncCall[Any]
    status: CallStatus
    error: type[BaseException] | None
    result: Any = None
    settle: Callable[[], Awaitable[None]] | None = None
    after_delivery: Callable[[], None] | None = None


async def _result(setup: Setup, mode: Notifier) -> Ended:
    call = setup.client.call("probe.add", 2, 3, notify=mode)
    return Ended(call, CallStatus.COMPLETE, None, result=5)


async def _remote_error(setup: Setup, mode: Notifier) -> Ended:
    call = setup.client.call("probe.fail", "boom", notify=mode)
    return Ended(call, CallStatus.FAILED, asyncrpc.RemoteError)


async def _abortive_cancel(setup: Setup, mode: Notifier) -> Ended:
    call = setup.client.call("probe.hold", "abort", notify=mode)
    await setup.probe.started("abort")
    assert call.cancel() is True
    assert call.status() is CallStatus.CANCELLED  # at once, not when the server answers
    assert call.cancel() is False  # a second cancel changes nothing

    async def settle() -> None:
        await setup.probe.finished("abort")  # the server's answer is on its way, and ignored

    return Ended(call, CallStatus.CANCELLED, asyncrpc.CallCancelled, settle=settle)


async def _non_abortive_cancel(setup: Setup, mode: Notifier) -> Ended:
    call = setup.client.call("probe.hold", "polite", notify=mode)
    await setup.probe.started("polite")
    assert call.cancel(abort=False) is True
    assert call.status() is CallStatus.PENDING  # until the server honours it
    return Ended(call, CallStatus.CANCELLED, asyncrpc.CallCancelled)


async def _non_abortive_then_abortive(setup: Setup, mode: Notifier) -> Ended:
    call = setup.client.call("probe.hold", "both", notify=mode)
    await setup.probe.started("both")
    assert call.cancel(abort=False) is True
    assert call.cancel(abort=True) is True
    assert call.status() is CallStatus.CANCELLED

    async def settle() -> None:
        await setup.probe.finished("both")

    return Ended(call, CallStatus.CANCELLED, asyncrpc.CallCancelled, settle=settle)


async def _deadline(setup: Setup, mode: Notifier) -> Ended:
    call = setup.client.call("probe.hold", "late", notify=mode, timeout=0.05)

    async def settle() -> None:
        await setup.probe.finished("late")  # the server cancelled the handler at the deadline too

    return Ended(call, CallStatus.FAILED, asyncrpc.DeadlineExceeded, settle=settle)


async def _connection_lost(setup: Setup, mode: Notifier) -> Ended:
    other = await asyncrpc.connect("127.0.0.1", setup.server.port)
    call = other.call("probe.drop", notify=mode)  # the server cuts this connection

    async def settle() -> None:
        await other.close()

    return Ended(call, CallStatus.FAILED, asyncrpc.ConnectionLost, settle=settle)


async def _client_closed(setup: Setup, mode: Notifier) -> Ended:
    other = await asyncrpc.connect("127.0.0.1", setup.server.port)
    call = other.call("probe.hold", "closed", notify=mode)
    await setup.probe.started("closed")
    await other.close()
    await other.close()  # idempotent, and no second notification
    return Ended(call, CallStatus.FAILED, asyncrpc.ConnectionLost)


async def _cancel_after_completion(setup: Setup, mode: Notifier) -> Ended:
    call = setup.client.call("probe.add", 20, 22, notify=mode)

    def after_delivery() -> None:
        assert call.cancel() is False
        assert call.cancel(abort=False) is False

    return Ended(call, CallStatus.COMPLETE, None, result=42, after_delivery=after_delivery)


async def _waiting(setup: Setup) -> tuple[asyncrpc.Client, FaultProxy]:
    """A reconnecting client whose connection just dropped: it will be back in 0.3 s."""
    proxy = FaultProxy("127.0.0.1", setup.server.port)
    await proxy.start()
    client = await asyncrpc.connect("127.0.0.1", proxy.port, reconnect=SLOW_RECONNECT)
    proxy.cut()
    async with asyncio.timeout(BOUND):
        while client.state is not asyncrpc.ClientState.CONNECTING:  # noqa: ASYNC110 - seen by the loop
            await asyncio.sleep(0.001)
    return client, proxy


def _closer(client: asyncrpc.Client, proxy: FaultProxy) -> Callable[[], Awaitable[None]]:
    async def settle() -> None:
        await client.close()
        await proxy.close()

    return settle


async def _waited_for_the_reconnect(setup: Setup, mode: Notifier) -> Ended:
    client, proxy = await _waiting(setup)
    call = client.call("probe.add", 2, 3, notify=mode)  # sent once the connection is back
    return Ended(call, CallStatus.COMPLETE, None, result=5, settle=_closer(client, proxy))


async def _deadline_while_waiting(setup: Setup, mode: Notifier) -> Ended:
    client, proxy = await _waiting(setup)
    call = client.call("probe.add", 2, 3, notify=mode, timeout=0.05)
    return Ended(call, CallStatus.FAILED, asyncrpc.DeadlineExceeded, settle=_closer(client, proxy))


async def _cancelled_while_waiting(setup: Setup, mode: Notifier) -> Ended:
    client, proxy = await _waiting(setup)
    call = client.call("probe.add", 2, 3, notify=mode)
    assert call.cancel(abort=False) is True  # nobody has seen it: cancelled at once
    assert call.cancel() is False
    return Ended(call, CallStatus.CANCELLED, asyncrpc.CallCancelled, settle=_closer(client, proxy))


async def _closed_while_waiting(setup: Setup, mode: Notifier) -> Ended:
    client, proxy = await _waiting(setup)
    call = client.call("probe.add", 2, 3, notify=mode)
    await client.close()
    return Ended(call, CallStatus.FAILED, asyncrpc.ConnectionLost, settle=_closer(client, proxy))


OUTCOMES: dict[str, Callable[[Setup, Notifier], Awaitable[Ended]]] = {
    "result": _result,
    "remote-error": _remote_error,
    "abortive-cancel": _abortive_cancel,
    "non-abortive-cancel": _non_abortive_cancel,
    "non-abortive-then-abortive": _non_abortive_then_abortive,
    "deadline": _deadline,
    "connection-lost": _connection_lost,
    "client-closed": _client_closed,
    "cancel-after-completion": _cancel_after_completion,
}

#: The ways of a call made while a reconnecting client has no connection (each
#: makes a client of its own, through a proxy of its own).
WAITING_OUTCOMES: dict[str, Callable[[Setup, Notifier], Awaitable[Ended]]] = {
    "waited-for-the-reconnect": _waited_for_the_reconnect,
    "deadline-while-waiting": _deadline_while_waiting,
    "cancelled-while-waiting": _cancelled_while_waiting,
    "closed-while-waiting": _closed_while_waiting,
}


@pytest.mark.parametrize("outcome", [*OUTCOMES, *WAITING_OUTCOMES])
@pytest.mark.parametrize("mode", MODES)
async def test_exactly_one_notification(mode: str, outcome: str) -> None:
    async with probe_setup() as setup, receiver(mode) as rx:
        ended = await (OUTCOMES | WAITING_OUTCOMES)[outcome](setup, rx.notifier())
        await rx.wait(ended.call)

        call = ended.call
        assert call.status() is ended.status
        assert call.done()
        if ended.error is None:
            assert call.complete() == ended.result
        else:
            with pytest.raises(ended.error):
                call.complete()
        if ended.after_delivery is not None:
            ended.after_delivery()

        # Give a second notification every chance to happen, then count.
        if ended.settle is not None:
            await ended.settle()
        assert await setup.client.call("probe.add", 0, 1) == 1  # a round trip after any late reply
        assert await rx.deliveries() == 1
        assert call.status() is ended.status  # and nothing changed the outcome


@pytest.mark.parametrize("mode", MODES)
async def test_one_notification_per_call_for_many_concurrent_calls(mode: str) -> None:
    """One notifier shared by calls ending in every way at once: one delivery each."""
    async with probe_setup() as setup, receiver(mode) as rx:
        ended = [await make(setup, rx.notifier()) for make in (OUTCOMES | WAITING_OUTCOMES).values()]
        await rx.wait_count(len(ended))
        for item in ended:
            if item.settle is not None:
                await item.settle()
        assert await setup.client.call("probe.add", 0, 1) == 1
        assert await rx.deliveries() == len(ended)
        if rx.seen and all(seen is not None for seen in rx.seen):
            assert sorted(map(id, rx.seen)) == sorted(id(item.call) for item in ended)
        assert [item.call.status() for item in ended] == [item.status for item in ended]
