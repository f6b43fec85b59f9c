"""``@asyncrpc.blocking`` handlers: a worker thread each, the loop never blocked, cancels seen."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

import asyncrpc
from asyncrpc import AsyncEvent, CallCancelled, CallStatus, DeadlineExceeded, RemoteError
from tests.services import BOUND, serve

POLL = 0.01  # a worker's wait between two looks at test_cancel()


class Worker:
    """Blocking handlers that report back to the test's loop, thread-safely."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.entered = asyncio.Event()
        self.release = threading.Event()  # lets a blocked worker go
        self.stop = threading.Event()  # cuts a polling worker's waits short at teardown
        self.outcome: asyncio.Future[Any] = loop.create_future()
        self.listener_events: list[tuple[AsyncEvent, int]] = []
        self.listener_ran = asyncio.Event()
        self.port = 0

    def _report_entered(self) -> None:
        self.loop.call_soon_threadsafe(self.entered.set)

    def _report(self, value: Any) -> None:
        def set_outcome() -> None:
            if not self.outcome.done():
                self.outcome.set_result(value)

        self.loop.call_soon_threadsafe(set_outcome)

    @asyncrpc.blocking
    def thread_ident(self) -> list[Any]:
        return [threading.get_ident(), asyncrpc.current_call().method]

    @asyncrpc.blocking
    def block(self) -> str:
        """Holds its worker thread until released: only the thread is blocked."""
        self._report_entered()
        released = self.release.wait(BOUND)
        return "released" if released else "timed out"

    @asyncrpc.blocking
    def poll_cancel(self) -> str:
        """Checks test_cancel() from the worker thread, in short waits, for a bounded time."""
        call = asyncrpc.current_call()
        before = call.test_cancel()
        self._report_entered()
        for _ in range(int(BOUND / POLL)):
            if call.test_cancel():
                break
            self.stop.wait(POLL)
        seen = call.test_cancel()
        self._report({"before": before, "seen": seen})
        if seen:
            raise asyncrpc.CallCancelled("worker stopped on request")
        return "never cancelled"

    @asyncrpc.blocking
    def poll_cancel_and_finish(self) -> str:
        call = asyncrpc.current_call()
        self._report_entered()
        for _ in range(int(BOUND / POLL)):
            if call.test_cancel():
                return "finished early on cancel"
            self.stop.wait(POLL)
        return "never cancelled"

    @asyncrpc.blocking
    def listen_from_thread(self) -> str:
        call = asyncrpc.current_call()

        def listener(_call: asyncrpc.ServerCall, event: AsyncEvent) -> None:
            self.listener_events.append((event, threading.get_ident()))
            self.listener_ran.set()

        call.on_cancel(listener)  # registered from the worker thread
        self._report_entered()
        self.release.wait(BOUND)
        return "released"

    @asyncrpc.blocking
    def defer_in_thread(self) -> None:
        token = asyncrpc.current_call().defer()
        self._report_entered()

        def finish() -> None:
            self.release.wait(BOUND)
            token.complete("completed by another thread")

        threading.Thread(target=finish).start()

    @asyncrpc.blocking
    def fail(self) -> None:
        raise KeyError("missing")

    def fast(self) -> str:
        return "fast"


@pytest.fixture
async def worker() -> AsyncIterator[Worker]:
    w = Worker(asyncio.get_running_loop())
    server = await serve(w, "w")
    yield w
    w.release.set()
    w.stop.set()
    await server.close(grace=2.0)


@pytest.fixture
async def rpc(worker: Worker) -> AsyncIterator[asyncrpc.Client]:
    async with asyncrpc.connect("127.0.0.1", worker.port) as c:
        yield c


async def entered(worker: Worker) -> None:
    async with asyncio.timeout(BOUND):
        await worker.entered.wait()


async def test_blocking_handler_runs_in_worker_thread(rpc: asyncrpc.Client) -> None:
    async with asyncio.timeout(BOUND):
        ident, method = await rpc.call("w.thread_ident")
    assert ident != threading.get_ident()  # the loop's thread (client and server share it)
    assert method == "w.thread_ident"


async def test_blocking_handler_never_blocks_loop(rpc: asyncrpc.Client, worker: Worker) -> None:
    slow = rpc.call("w.block")
    await entered(worker)  # the worker thread is now blocked
    async with asyncio.timeout(BOUND):
        assert await rpc.call("w.fast") == "fast"
        assert await asyncio.gather(*(rpc.call("w.fast") for _ in range(20))) == ["fast"] * 20
    assert slow.status() is CallStatus.PENDING
    worker.release.set()
    async with asyncio.timeout(BOUND):
        assert await slow == "released"


async def test_blocking_handler_sees_test_cancel_from_worker_thread(
    rpc: asyncrpc.Client, worker: Worker
) -> None:
    call = rpc.call("w.poll_cancel")
    await entered(worker)
    call.cancel(abort=False)
    async with asyncio.timeout(BOUND):
        assert await worker.outcome == {"before": False, "seen": True}
        # Non-abortive: the caller gets what the worker decided, here a CallCancelled.
        with pytest.raises(CallCancelled, match="worker stopped on request"):
            await call
    assert call.status() is CallStatus.CANCELLED


async def test_blocking_handler_sees_abortive_cancel(rpc: asyncrpc.Client, worker: Worker) -> None:
    call = rpc.call("w.poll_cancel")
    await entered(worker)
    call.cancel()
    assert call.status() is CallStatus.CANCELLED  # at once, while the thread still runs
    async with asyncio.timeout(BOUND):
        assert await worker.outcome == {"before": False, "seen": True}
        assert await rpc.call("w.fast") == "fast"


async def test_blocking_handler_result_after_non_abortive_cancel(
    rpc: asyncrpc.Client, worker: Worker
) -> None:
    call = rpc.call("w.poll_cancel_and_finish")
    await entered(worker)
    call.cancel(abort=False)
    async with asyncio.timeout(BOUND):
        assert await call == "finished early on cancel"


async def test_blocking_handler_sees_deadline(rpc: asyncrpc.Client, worker: Worker) -> None:
    call = rpc.call("w.poll_cancel", timeout=0.1)
    async with asyncio.timeout(BOUND):
        with pytest.raises(DeadlineExceeded):
            await call
        assert await worker.outcome == {"before": False, "seen": True}


async def test_on_cancel_registered_from_worker_thread_runs_on_loop(
    rpc: asyncrpc.Client, worker: Worker
) -> None:
    call = rpc.call("w.listen_from_thread")
    await entered(worker)
    # The registration hopped to the loop before the worker reported in, so
    # it has taken effect by now.
    call.cancel(abort=False)
    async with asyncio.timeout(BOUND):
        await worker.listener_ran.wait()
    assert worker.listener_events == [(AsyncEvent.CLIENT_CANCEL, threading.get_ident())]
    worker.release.set()
    async with asyncio.timeout(BOUND):
        assert await call == "released"


async def test_blocking_handler_defers_to_another_thread(rpc: asyncrpc.Client, worker: Worker) -> None:
    call = rpc.call("w.defer_in_thread")
    await entered(worker)
    assert await rpc.call("w.fast") == "fast"
    assert call.status() is CallStatus.PENDING
    worker.release.set()
    async with asyncio.timeout(BOUND):
        assert await call == "completed by another thread"


async def test_blocking_handler_error_reaches_client(rpc: asyncrpc.Client) -> None:
    with pytest.raises(RemoteError) as excinfo:
        async with asyncio.timeout(BOUND):
            await rpc.call("w.fail")
    assert excinfo.value.type == "KeyError"
    assert "missing" in excinfo.value.message
