"""Client-side cancellation (``RpcAsyncCancelCall``), end to end over loopback sockets.

Behaviour 6: after an abortive cancel the caller completes at once with
``CallCancelled``; after a non-abortive cancel it completes when the server does.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import asyncrpc
from asyncrpc import AsyncEvent, CallCancelled, CallPending, CallStatus, notify
from tests.services import BOUND, SLACK, serve, wait


class Probe:
    """Handlers that report, through events, what the server side saw."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()  # a handler saw CancelledError
        self.finally_ran = asyncio.Event()
        self.cancel_seen = asyncio.Event()  # on_cancel fired for a cooperative handler
        self.release = asyncio.Event()
        self.connections: list[asyncrpc.Connection] = []
        self.port = 0

    def _enter(self) -> None:
        self.connections.append(asyncrpc.current_call().peer.connection)
        self.started.set()

    async def hang(self) -> str:
        """Waits until released; a cancel cancels it."""
        self._enter()
        try:
            await self.release.wait()
            return "released"
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        finally:
            self.finally_ran.set()

    async def stubborn(self) -> str:
        """Catches the cancel, cleans up until released, and returns a value of its own."""
        self._enter()
        try:
            await asyncio.Event().wait()  # only a cancel ends this wait
        except asyncio.CancelledError:
            self.cancelled.set()
            await self.release.wait()
            return f"cleaned up, test_cancel={asyncrpc.current_call().test_cancel()}"
        return "unreachable"

    @asyncrpc.cooperative
    async def ignore_cancel(self) -> str:
        """Cooperative, and ignores test_cancel(): finishes only when released."""
        self._enter()
        asyncrpc.current_call().on_cancel(lambda _call, _event: self.cancel_seen.set())
        await self.release.wait()
        return "finished anyway"

    async def ping(self) -> str:
        return "pong"

    def add(self, a: int, b: int) -> int:
        return a + b


@pytest.fixture
async def probe() -> AsyncIterator[Probe]:
    p = Probe()
    server = await serve(p, "p")
    yield p
    p.release.set()
    await server.close(grace=1.0)


@pytest.fixture
async def rpc(probe: Probe) -> AsyncIterator[asyncrpc.Client]:
    async with asyncrpc.connect("127.0.0.1", probe.port) as c:
        yield c


async def drained(client: asyncrpc.Client, probe: Probe) -> None:
    """Wait until the server answered everything, and we read every answer.

    The first ping proves the server read every earlier request; draining
    its serving table means it answered them; the second ping's reply comes
    after all those answers on the same stream.
    """
    async with asyncio.timeout(BOUND):
        assert await client.call("p.ping") == "pong"
        for connection in probe.connections:
            await connection.drain_serving()
        assert await client.call("p.ping") == "pong"


# -- behaviour 6 -------------------------------------------------------------------------


async def test_behaviour_6_abortive_cancel_completes_at_once_and_tells_server(
    rpc: asyncrpc.Client, probe: Probe
) -> None:
    port = notify.CompletionPort()
    call = rpc.call("p.hang", notify=port.bind(key="hang"))
    await wait(probe.started)

    assert call.cancel() is True

    # Completed at once, before anything came back from the server.
    assert call.status() is CallStatus.CANCELLED
    assert call.done()
    assert call.last_event is AsyncEvent.CALL_COMPLETE
    with pytest.raises(CallCancelled):
        call.complete()
    completion = port.get_nowait()
    assert completion.key == "hang"
    assert completion.call is call
    with pytest.raises(CallCancelled):
        await call

    # The server was told: the handler saw CancelledError, its finally ran,
    # and the server's table of calls being served emptied.
    await wait(probe.cancelled)
    await wait(probe.finally_ran)
    await drained(rpc, probe)
    assert probe.connections[0].serving_count == 0
    assert rpc.connection.pending_count == 0
    assert port.qsize() == 0  # exactly one completion, even after the server's late answer
    assert call.status() is CallStatus.CANCELLED


async def test_behaviour_6_non_abortive_cancel_completes_when_server_does(
    rpc: asyncrpc.Client, probe: Probe
) -> None:
    port = notify.CompletionPort()
    call = rpc.call("p.stubborn", notify=port.bind(key=1))
    await wait(probe.started)

    assert call.cancel(abort=False) is True
    await wait(probe.cancelled)  # the server's handler is cancelled...
    # ...but cleaning up; until it answers the call stays pending.
    assert call.status() is CallStatus.PENDING
    assert call.cancel_requested
    with pytest.raises(CallPending):
        call.complete()
    assert port.qsize() == 0

    probe.release.set()
    async with asyncio.timeout(BOUND):
        completion = await port.get()
    assert completion.call is call
    # The handler caught CancelledError and returned: the caller gets that value.
    assert call.complete() == "cleaned up, test_cancel=True"
    assert call.status() is CallStatus.COMPLETE


async def test_non_abortive_cancel_of_cancelled_handler_ends_cancelled(
    rpc: asyncrpc.Client, probe: Probe
) -> None:
    done = asyncio.Event()
    call = rpc.call("p.hang", notify=notify.Event(done))
    await wait(probe.started)

    call.cancel(abort=False)
    assert call.status() is CallStatus.PENDING
    await wait(done)

    assert call.status() is CallStatus.CANCELLED
    with pytest.raises(CallCancelled) as excinfo:
        call.complete()
    assert excinfo.value.raw["type"] == "CallCancelled"  # the server's own answer
    assert probe.cancelled.is_set()
    assert probe.finally_ran.is_set()
    await drained(rpc, probe)
    assert probe.connections[0].serving_count == 0
    assert rpc.connection.pending_count == 0


async def test_non_abortive_cancel_gets_result_of_cooperative_handler_that_ignores_it(
    rpc: asyncrpc.Client, probe: Probe
) -> None:
    call = rpc.call("p.ignore_cancel")
    await wait(probe.started)

    call.cancel(abort=False)
    await wait(probe.cancel_seen)  # the server got the request...
    assert not probe.cancelled.is_set()  # ...and did not cancel a cooperative handler
    assert call.status() is CallStatus.PENDING

    probe.release.set()
    async with asyncio.timeout(BOUND):
        assert await call == "finished anyway"
    assert call.status() is CallStatus.COMPLETE


async def test_non_abortive_cancel_after_server_finished_gets_result(rpc: asyncrpc.Client) -> None:
    # The request and the cancel leave in the same write; the inline handler
    # answers the request before the cancel is even read.
    call = rpc.call("p.add", 2, 3)
    assert call.cancel(abort=False) is True
    async with asyncio.timeout(BOUND):
        assert await call == 5
    assert call.status() is CallStatus.COMPLETE


# -- finished calls, tasks, escalation, threads ------------------------------------------------


@pytest.mark.parametrize("abort", [True, False])
async def test_cancel_of_finished_call_changes_nothing(rpc: asyncrpc.Client, abort: bool) -> None:
    port = notify.CompletionPort()
    ok = rpc.call("p.add", 1, 2, notify=port)
    failed = rpc.call("p.nope", notify=port)
    async with asyncio.timeout(BOUND):
        assert await ok == 3
        with pytest.raises(asyncrpc.MethodNotFound):
            await failed

    assert ok.cancel(abort=abort) is False
    assert failed.cancel(abort=abort) is False
    assert ok.status() is CallStatus.COMPLETE
    assert ok.complete() == 3
    assert failed.status() is CallStatus.FAILED
    with pytest.raises(asyncrpc.MethodNotFound):
        failed.complete()
    assert not ok.cancel_requested
    assert port.qsize() == 2  # one completion each, none added by the cancels
    assert asyncrpc.AsyncCall().cancel(abort=abort) is False  # never started


async def test_cancelling_awaiting_task_cancels_call_and_server_handler(
    rpc: asyncrpc.Client, probe: Probe
) -> None:
    call = rpc.call("p.hang")

    async def waiter() -> Any:
        return await call

    task = asyncio.create_task(waiter())
    await wait(probe.started)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert call.status() is CallStatus.CANCELLED
    with pytest.raises(CallCancelled):
        call.complete()
    await wait(probe.cancelled)
    await drained(rpc, probe)
    assert probe.connections[0].serving_count == 0
    assert rpc.connection.pending_count == 0


async def test_cancel_timeout_escalates_to_abortive(rpc: asyncrpc.Client, probe: Probe) -> None:
    port = notify.CompletionPort()
    call = rpc.call("p.ignore_cancel", notify=port)
    await wait(probe.started)

    started = time.monotonic()
    call.cancel(abort=False, timeout=0.2)
    await wait(probe.cancel_seen)
    assert call.status() is CallStatus.PENDING

    async with asyncio.timeout(BOUND):
        completion = await port.get()
    elapsed = time.monotonic() - started
    assert completion.call is call
    assert call.status() is CallStatus.CANCELLED
    with pytest.raises(CallCancelled):
        call.complete()
    assert 0.2 - SLACK <= elapsed < 2.0

    # The handler is still running; once it finishes, its late answer is
    # swallowed (the call stays CANCELLED) and its message id is released.
    assert not probe.cancelled.is_set()
    probe.release.set()
    await drained(rpc, probe)
    assert call.status() is CallStatus.CANCELLED
    assert port.qsize() == 0
    assert rpc.connection.pending_count == 0


@pytest.mark.parametrize("abort", [True, False])
async def test_cancel_from_plain_thread(rpc: asyncrpc.Client, probe: Probe, abort: bool) -> None:
    call = rpc.call("p.hang")
    await wait(probe.started)
    loop = asyncio.get_running_loop()
    returned: asyncio.Future[bool] = loop.create_future()

    def cancel_in_thread() -> None:
        result = call.cancel(abort=abort)
        loop.call_soon_threadsafe(returned.set_result, result)

    thread = threading.Thread(target=cancel_in_thread)
    thread.start()
    async with asyncio.timeout(BOUND):
        assert await returned is True
        with pytest.raises(CallCancelled):
            await call
    await asyncio.to_thread(thread.join)
    assert call.status() is CallStatus.CANCELLED
    await wait(probe.cancelled)


async def test_abortive_cancel_against_plain_server_ends_locally(probe: Probe) -> None:
    # A server that does not speak the extension is never sent a cancel: its
    # handler runs on, and its late answer is absorbed.
    server = asyncrpc.Server(extensions=False)
    server.register(probe, namespace="p")
    await server.start("127.0.0.1", 0)
    try:
        async with asyncrpc.connect("127.0.0.1", server.port) as client:
            assert client.features == frozenset()
            call = client.call("p.hang")
            await wait(probe.started)
            assert call.cancel() is True
            assert call.status() is CallStatus.CANCELLED
            # The ping's answer proves the server read everything we sent so far.
            assert await client.call("p.ping") == "pong"
            assert not probe.cancelled.is_set()
            assert client.connection.pending_count == 1  # the id stays held for the late answer
            probe.release.set()
            await drained(client, probe)
            assert not probe.cancelled.is_set()
            assert client.connection.pending_count == 0
            assert call.status() is CallStatus.CANCELLED
    finally:
        await server.close(grace=1.0)
