"""The server's side of a call: current_call(), cancels seen by handlers, defer(), disconnects."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import asyncrpc
from asyncrpc import AlreadyCompleted, AsyncEvent, CallCancelled, CallStatus, RemoteError
from tests.services import BOUND, serve, wait


class Probe:
    """Handlers that expose the ServerCall and what happened to it."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.finally_ran = asyncio.Event()
        self.release = asyncio.Event()
        self.thread_release = threading.Event()
        self.calls: list[asyncrpc.ServerCall] = []
        self.tokens: list[asyncrpc.CompletionToken] = []
        self.events: list[tuple[str, asyncrpc.ServerCall, AsyncEvent]] = []
        self.event_seen = asyncio.Event()
        self.port = 0

    def _enter(self) -> asyncrpc.ServerCall:
        call = asyncrpc.current_call()
        self.calls.append(call)
        self.started.set()
        return call

    def _record(self, name: str) -> Callable[[asyncrpc.ServerCall, AsyncEvent], None]:
        def listener(call: asyncrpc.ServerCall, event: AsyncEvent) -> None:
            self.events.append((name, call, event))
            self.event_seen.set()

        return listener

    # current_call() in each kind of handler
    def whoami_plain(self) -> list[Any]:
        call = asyncrpc.current_call()
        return [call.method, call.msgid]

    async def whoami_async(self) -> list[Any]:
        call = asyncrpc.current_call()
        # A task the handler starts copies the context, so it sees the same call.
        same = await asyncio.create_task(self._same_call(call))
        return [call.method, call.msgid, same]

    async def _same_call(self, call: asyncrpc.ServerCall) -> bool:
        return asyncrpc.current_call() is call

    @asyncrpc.blocking
    def whoami_blocking(self) -> list[Any]:
        call = asyncrpc.current_call()
        return [call.method, call.msgid]

    # cancellation as the handler sees it
    async def catch_cancel(self) -> list[Any]:
        call = self._enter()
        before = call.test_cancel()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            return ["caught", before, call.test_cancel()]
        finally:
            self.finally_ran.set()
        return ["released", before, call.test_cancel()]

    @asyncrpc.cooperative
    async def cooperate(self) -> list[Any]:
        call = self._enter()
        call.on_cancel(self._record("cancel"))
        await self.release.wait()
        return ["finished", call.test_cancel()]

    async def watch(self) -> str:
        call = self._enter()
        call.on_disconnect(self._record("disconnect"))
        call.on_cancel(self._record("cancel"))
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        finally:
            self.finally_ran.set()
        return "released"

    def watch_inline(self) -> str:
        call = self._enter()
        call.on_disconnect(self._record("disconnect"))
        return "answered at once"

    # deferral
    def defer_to_thread(self, value: Any) -> None:
        token = self._enter().defer()
        self.tokens.append(token)

        def finish() -> None:
            self.thread_release.wait(BOUND)
            token.complete(value)

        threading.Thread(target=finish).start()

    def defer(self) -> None:
        call = self._enter()
        self.tokens.append(call.defer())
        assert call.defer() is self.tokens[-1]  # a second defer() gives the same token
        call.on_disconnect(self._record("disconnect"))
        call.on_cancel(self._record("cancel"))

    async def defer_then_fail(self) -> None:
        self.tokens.append(self._enter().defer())
        raise ValueError("failed before completing")

    async def ping(self) -> str:
        return "pong"


@pytest.fixture
async def probe() -> AsyncIterator[Probe]:
    p = Probe()
    server = await serve(p, "p")
    yield p
    p.release.set()
    p.thread_release.set()
    await server.close(grace=1.0)


@pytest.fixture
async def rpc(probe: Probe) -> AsyncIterator[asyncrpc.Client]:
    async with asyncrpc.connect("127.0.0.1", probe.port) as c:
        yield c


def serving(probe: Probe) -> int:
    return probe.calls[0].peer.connection.serving_count


# -- current_call() -----------------------------------------------------------------------


def test_current_call_outside_handler_raises() -> None:
    with pytest.raises(RuntimeError, match="inside a handler"):
        asyncrpc.current_call()


async def test_current_call_outside_handler_raises_in_async_code(rpc: asyncrpc.Client) -> None:
    # Even on the loop that runs the server's handlers.
    with pytest.raises(RuntimeError, match="inside a handler"):
        asyncrpc.current_call()


@pytest.mark.parametrize("kind", ["plain", "async", "blocking"])
async def test_current_call_in_each_kind_of_handler(rpc: asyncrpc.Client, kind: str) -> None:
    call = rpc.call(f"p.whoami_{kind}")
    async with asyncio.timeout(BOUND):
        result = await call
    assert result[:2] == [f"p.whoami_{kind}", call.msgid]
    if kind == "async":
        assert result[2] is True


# -- cancels seen by the handler ----------------------------------------------------------


async def test_cancel_runs_finally_and_caught_cancel_returns_value(
    rpc: asyncrpc.Client, probe: Probe
) -> None:
    call = rpc.call("p.catch_cancel")
    await wait(probe.started)
    call.cancel(abort=False)
    async with asyncio.timeout(BOUND):
        assert await call == ["caught", False, True]
    assert probe.finally_ran.is_set()
    assert serving(probe) == 0


async def test_cooperative_handler_is_flagged_not_cancelled_and_on_cancel_fires_once(
    rpc: asyncrpc.Client, probe: Probe
) -> None:
    call = rpc.call("p.cooperate")
    await wait(probe.started)
    server_call = probe.calls[0]
    assert not server_call.test_cancel()

    # Two cancel requests for the same call (the second sent by hand).
    call.cancel(abort=False)
    rpc.notify("asyncrpc.cancel", call.msgid)
    await wait(probe.event_seen)
    assert await rpc.call("p.ping") == "pong"  # both cancels have been read by now
    assert server_call.test_cancel()
    assert probe.events == [("cancel", server_call, AsyncEvent.CLIENT_CANCEL)]
    assert call.status() is CallStatus.PENDING

    probe.release.set()
    async with asyncio.timeout(BOUND):
        assert await call == ["finished", True]
    assert len(probe.events) == 1


async def test_on_cancel_registered_after_cancel_runs_at_once(rpc: asyncrpc.Client, probe: Probe) -> None:
    call = rpc.call("p.defer")
    await wait(probe.started)
    call.cancel(abort=False)
    await wait(probe.event_seen)
    late: list[AsyncEvent] = []
    probe.calls[0].on_cancel(lambda _c, e: late.append(e))
    assert late == [AsyncEvent.CLIENT_CANCEL]
    probe.tokens[0].complete("done")
    async with asyncio.timeout(BOUND):
        assert await call == "done"


# -- defer() and the completion token --------------------------------------------------------


async def test_deferred_call_completed_from_plain_thread(rpc: asyncrpc.Client, probe: Probe) -> None:
    call = rpc.call("p.defer_to_thread", {"answer": 42})
    await wait(probe.started)
    assert await rpc.call("p.ping") == "pong"  # the handler has returned by now
    assert call.status() is CallStatus.PENDING
    assert serving(probe) == 1  # the deferred call is still open

    probe.thread_release.set()
    async with asyncio.timeout(BOUND):
        assert await call == {"answer": 42}
    assert probe.tokens[0].done()
    assert serving(probe) == 0


@pytest.mark.parametrize("extensions", [True, False], ids=["structured-errors", "plain-errors"])
async def test_abort_code_and_message_reach_client(probe: Probe, extensions: bool) -> None:
    async with asyncrpc.connect("127.0.0.1", probe.port, extensions=extensions) as client:
        call = client.call("p.defer")
        await wait(probe.started)
        loop = asyncio.get_running_loop()
        aborted: asyncio.Future[None] = loop.create_future()

        def abort_in_thread() -> None:
            try:
                probe.tokens[0].abort(4711, "quota exceeded")
            finally:
                loop.call_soon_threadsafe(aborted.set_result, None)

        threading.Thread(target=abort_in_thread).start()
        await aborted
        with pytest.raises(RemoteError) as excinfo:
            async with asyncio.timeout(BOUND):
                await call
    error = excinfo.value
    assert error.code == 4711
    assert error.message == "quota exceeded"
    assert error.type == "CallAborted"
    assert call.status() is CallStatus.FAILED


async def test_abort_needs_nonzero_int_code(rpc: asyncrpc.Client, probe: Probe) -> None:
    call = rpc.call("p.defer")
    await wait(probe.started)
    token = probe.tokens[0]
    for bad in (0, True, 1.5):
        with pytest.raises(ValueError, match="nonzero integer"):
            token.abort(bad)  # type: ignore[arg-type]
    assert not token.done()
    token.complete("still usable")
    async with asyncio.timeout(BOUND):
        assert await call == "still usable"


async def test_second_complete_or_abort_raises_and_connection_survives(
    rpc: asyncrpc.Client, probe: Probe
) -> None:
    call = rpc.call("p.defer")
    await wait(probe.started)
    token = probe.tokens[0]
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[list[str]] = loop.create_future()

    def race_in_thread() -> None:
        results = []
        attempts: list[Callable[[], None]] = [
            lambda: token.complete(1),
            lambda: token.complete(2),
            lambda: token.abort(3, "x"),
        ]
        for attempt in attempts:
            try:
                attempt()
                results.append("ok")
            except AlreadyCompleted:
                results.append("AlreadyCompleted")
        loop.call_soon_threadsafe(outcome.set_result, results)

    threading.Thread(target=race_in_thread).start()
    async with asyncio.timeout(BOUND):
        assert await outcome == ["ok", "AlreadyCompleted", "AlreadyCompleted"]
        assert await call == 1
    with pytest.raises(AlreadyCompleted):
        token.complete(4)  # and on the loop
    # Nothing stray was written: the connection still works, in order.
    async with asyncio.timeout(BOUND):
        assert await rpc.call("p.ping") == "pong"
        assert await asyncio.gather(*(rpc.call("p.ping") for _ in range(5))) == ["pong"] * 5
    assert rpc.is_open
    assert rpc.connection.pending_count == 0
    assert serving(probe) == 0


async def test_handler_failing_after_defer_fails_call_and_uses_token(
    rpc: asyncrpc.Client, probe: Probe
) -> None:
    with pytest.raises(RemoteError, match="failed before completing"):
        async with asyncio.timeout(BOUND):
            await rpc.call("p.defer_then_fail")
    assert probe.tokens[0].done()
    with pytest.raises(AlreadyCompleted):
        probe.tokens[0].complete("late")
    assert serving(probe) == 0


async def test_token_sees_non_abortive_cancel_from_thread(rpc: asyncrpc.Client, probe: Probe) -> None:
    call = rpc.call("p.defer")
    await wait(probe.started)
    token = probe.tokens[0]
    assert not token.test_cancel()
    stop = threading.Event()

    def finish_when_cancelled() -> None:
        for _ in range(int(BOUND / 0.01)):  # bounded poll, as a worker would
            if token.test_cancel():
                break
            stop.wait(0.01)
        token.complete("saw cancel" if token.test_cancel() else "no cancel seen")

    thread = threading.Thread(target=finish_when_cancelled)
    thread.start()
    call.cancel(abort=False)
    try:
        async with asyncio.timeout(BOUND):
            assert await call == "saw cancel"
    finally:
        stop.set()
        await asyncio.to_thread(thread.join)
    assert call.status() is CallStatus.COMPLETE


async def test_defer_after_answer_raises(rpc: asyncrpc.Client, probe: Probe) -> None:
    async with asyncio.timeout(BOUND):
        assert await rpc.call("p.watch_inline") == "answered at once"
    with pytest.raises(RuntimeError, match="after"):
        probe.calls[0].defer()


# -- disconnects ----------------------------------------------------------------------------


async def test_on_disconnect_runs_once_when_client_leaves_with_call_open(probe: Probe) -> None:
    client = await asyncrpc.connect("127.0.0.1", probe.port)
    call = client.call("p.watch")
    await wait(probe.started)
    server_call = probe.calls[0]
    connection = server_call.peer.connection
    await client.close()

    await wait(probe.event_seen)
    await wait(probe.cancelled)  # the handler's task is cancelled: nobody wants its answer
    await wait(probe.finally_ran)
    async with asyncio.timeout(BOUND):
        await connection.wait_closed()
    assert probe.events == [("disconnect", server_call, AsyncEvent.CLIENT_DISCONNECT)]
    assert server_call.test_cancel()
    assert connection.serving_count == 0
    assert call.status() is CallStatus.FAILED


async def test_on_disconnect_not_run_for_answered_call(probe: Probe) -> None:
    client = await asyncrpc.connect("127.0.0.1", probe.port)
    async with asyncio.timeout(BOUND):
        assert await client.call("p.watch_inline") == "answered at once"
    connection = probe.calls[0].peer.connection
    assert connection.serving_count == 0  # listening does not keep an answered call open
    await client.close()
    async with asyncio.timeout(BOUND):
        await connection.wait_closed()
    assert probe.events == []


async def test_complete_from_thread_after_disconnect_is_harmless(probe: Probe) -> None:
    client = await asyncrpc.connect("127.0.0.1", probe.port)
    client.call("p.defer")
    await wait(probe.started)
    token = probe.tokens[0]
    connection = probe.calls[0].peer.connection
    await client.close()
    await wait(probe.event_seen)
    assert probe.events == [("disconnect", probe.calls[0], AsyncEvent.CLIENT_DISCONNECT)]
    assert token.test_cancel()  # nobody is waiting for the answer any more

    errors: list[BaseException] = []

    def complete_in_thread() -> None:
        try:
            token.complete("nobody hears this")
        except BaseException as exc:  # any error is the failure being tested
            errors.append(exc)

    thread = threading.Thread(target=complete_in_thread)
    thread.start()
    await asyncio.to_thread(thread.join)
    assert errors == []
    assert token.done()
    assert connection.serving_count == 0
    with pytest.raises(AlreadyCompleted):
        token.complete("twice")
    # The server is unharmed: a new client is served.
    async with asyncrpc.connect("127.0.0.1", probe.port) as again:
        async with asyncio.timeout(BOUND):
            assert await again.call("p.ping") == "pong"
    assert len(probe.events) == 1


async def test_cancel_during_cleanup_of_cancelled_handler_is_one_answer(
    rpc: asyncrpc.Client, probe: Probe
) -> None:
    # An abortive cancel after a non-abortive one: the server answers once,
    # the client completes once, and the id is released.
    call = rpc.call("p.watch")
    await wait(probe.started)
    call.cancel(abort=False)
    call.cancel(abort=True)
    assert call.status() is CallStatus.CANCELLED
    with pytest.raises(CallCancelled):
        call.complete()
    await wait(probe.finally_ran)
    async with asyncio.timeout(BOUND):
        assert await rpc.call("p.ping") == "pong"
    assert [name for name, _, _ in probe.events] == ["cancel"]
    assert rpc.connection.pending_count == 0
    assert serving(probe) == 0
    with contextlib.suppress(CallCancelled):
        await call
