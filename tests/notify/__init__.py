"""Shared tools for the notification-mode tests.

* :class:`Probe`: a service whose calls a test steers (hold one until released,
  park one with a deferred reply, fail, drop the connection) and which counts
  what it was asked, so a test can prove the server never saw a call.
* :func:`probe_setup`: a real server with the probe on a loopback port, and a
  client connected to it.
* :class:`LoopThread` and :class:`AlertableThread`: another event loop running
  in another thread, and a plain thread sitting in alertable waits.
* Receivers: one per notification mode (and variant), all with the same face,
  so behaviours 2, 3 and 5 are written once and run for every mode. Each one
  receives completions the way its mode delivers them and records every
  delivery; :meth:`Receiver.deliveries` first flushes the mode's pipeline (a
  marker sent down the same FIFO path), so a duplicate delivery already on its
  way is counted, never missed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sys
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncrpc
from asyncrpc import AsyncCall, AsyncEvent, CallStatus, notify
from asyncrpc.notify import Notifier
from asyncrpc.notify.message_pump import WM_APP
from asyncrpc.sync import queue_apc, sleep_ex

T = TypeVar("T")

WAIT = 5.0
"""Upper bound for anything a test awaits; reached only when the code under test is broken."""

MODES = [
    "polling",
    "event",
    "event-threading",
    "event-other-loop",
    "callback",
    "callback-other-loop",
    "callback-coroutine",
    "apc",
    "completion-port",
    "message-pump",
]
"""Every notification mode, with the variants that take a different path (other loop, other thread)."""


# -- the service -----------------------------------------------------------------


class Probe:
    """Handlers a test steers, registered as ``probe.*``."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self._started: dict[str, asyncio.Event] = {}
        self._finished: dict[str, asyncio.Event] = {}
        self._gates: dict[str, asyncio.Event] = {}
        self._parked: list[asyncrpc.CompletionToken] = []

    def register_on(self, server: asyncrpc.Server) -> None:
        for fn in (self.count, self.add, self.fail, self.hold, self.park, self.drop):
            server.register_function(fn, name=f"probe.{fn.__name__}")

    @staticmethod
    def _event(table: dict[str, asyncio.Event], name: str) -> asyncio.Event:
        return table.setdefault(name, asyncio.Event())

    # handlers

    def count(self, name: str) -> int:
        """Inline: counts and answers at once."""
        self.seen[name] += 1
        return self.seen[name]

    def add(self, a: int, b: int) -> int:
        return a + b

    def fail(self, message: str) -> None:
        raise ValueError(message)

    async def hold(self, name: str) -> str:
        """A task that answers ``name`` once the test calls :meth:`release`."""
        self.seen[name] += 1
        self._event(self._started, name).set()
        try:
            await self._event(self._gates, name).wait()
            return name
        finally:
            # The reply (result or cancellation) is queued right after this.
            self._event(self._finished, name).set()

    def park(self, name: str) -> None:
        """Inline and deferred: no task; answered by :meth:`release_parked`."""
        self.seen[name] += 1
        self._parked.append(asyncrpc.current_call().defer())

    async def drop(self) -> None:
        """Cut the caller's connection while this call is pending."""
        asyncrpc.current_call().peer.connection.abort()
        await asyncio.get_running_loop().create_future()

    # test side

    async def started(self, name: str) -> None:
        async with asyncio.timeout(WAIT):
            await self._event(self._started, name).wait()

    async def finished(self, name: str) -> None:
        async with asyncio.timeout(WAIT):
            await self._event(self._finished, name).wait()

    def release(self, name: str) -> None:
        self._event(self._gates, name).set()

    @property
    def parked(self) -> int:
        return len(self._parked)

    def release_parked(self) -> None:
        parked, self._parked = self._parked, []
        for token in parked:
            token.complete(None)

    def release_all(self) -> None:
        for gate in self._gates.values():
            gate.set()
        self.release_parked()


@dataclass
class Setup:
    probe: Probe
    server: asyncrpc.Server
    client: asyncrpc.Client


@contextlib.asynccontextmanager
async def probe_setup() -> AsyncIterator[Setup]:
    """A server with :class:`Probe` on a loopback port and a client connected to it."""
    probe = Probe()
    server = asyncrpc.Server()
    probe.register_on(server)
    await server.start("127.0.0.1", 0)
    try:
        async with asyncrpc.connect("127.0.0.1", server.port) as client:
            assert client.features, "the probe server speaks the extensions"
            yield Setup(probe, server, client)
    finally:
        probe.release_all()
        await server.close(grace=1.0)


# -- other loops and threads ------------------------------------------------------


class LoopThread:
    """An event loop running forever in a thread of its own."""

    def __init__(self, name: str = "other-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._ready = threading.Event()
        self.thread.start()
        self._ready.wait(WAIT)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    @property
    def ident(self) -> int:
        ident = self.thread.ident
        assert ident is not None
        return ident

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on this loop; await its result from the caller's loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` on this loop's thread (after everything already scheduled there)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # pragma: no cover - reported to the awaiting test
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return await asyncio.wrap_future(future)

    async def task_count(self) -> int:
        """Tasks alive on this loop (not counting the one that counts)."""
        return await self.call(lambda: len(asyncio.all_tasks(self.loop)))

    def close(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(WAIT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)
        self.loop.close()


class AlertableThread:
    """A plain thread that spends its life in ``sleep_ex(None, alertable=True)``."""

    def __init__(self, name: str = "alertable") -> None:
        self._stopping = False
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stopping:
            sleep_ex(None, alertable=True)

    def _stop(self) -> None:
        self._stopping = True

    @property
    def ident(self) -> int:
        ident = self.thread.ident
        assert ident is not None
        return ident

    async def run(self, fn: Callable[[], object]) -> None:
        """Queue ``fn`` as an APC for this thread and await until it ran there."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def apc() -> None:
            fn()
            loop.call_soon_threadsafe(done.set_result, None)

        queue_apc(apc, self.thread)
        async with asyncio.timeout(WAIT):
            await done

    def close(self) -> None:
        queue_apc(self._stop, self.thread)
        self.thread.join(WAIT)


async def flush_loop() -> None:
    """Return after every callback already scheduled on this loop has run."""
    loop = asyncio.get_running_loop()
    marker = loop.create_future()
    loop.call_soon(marker.set_result, None)
    await marker


# -- receivers: one per mode ----------------------------------------------------------


class CountingAsyncioEvent(asyncio.Event):
    """A real ``asyncio.Event`` that also remembers every ``set()`` and the thread it ran in."""

    def __init__(self, on_set: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.set_threads: list[int] = []
        self._on_set = on_set

    def set(self) -> None:
        self.set_threads.append(threading.get_ident())
        super().set()
        if self._on_set is not None:
            self._on_set()


class CountingThreadingEvent(threading.Event):
    """A real ``threading.Event`` that also remembers every ``set()`` and the thread it ran in."""

    def __init__(self, on_set: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.set_threads: list[int] = []
        self._on_set = on_set

    def set(self) -> None:
        self.set_threads.append(threading.get_ident())
        super().set()
        if self._on_set is not None:
            self._on_set()


class Receiver:
    """Receives completions in one mode and records each delivery.

    ``seen`` holds one entry per delivery: the call, or ``None`` where the mode
    does not say which call (an event, polling).
    """

    name = "none"
    mode: Notifier  # the notification mode each receiver builds

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.seen: list[AsyncCall[Any] | None] = []
        self._taken = 0
        self._tick = asyncio.Event()

    # set up by each mode

    def notifier(self) -> Notifier:
        """The notification mode to pass as ``notify=`` (one object may serve many calls)."""
        return self.mode

    def misuse(self) -> object:
        """What a user might wrongly pass as ``notify=`` for this mode (it must raise TypeError)."""
        raise NotImplementedError

    async def flush(self) -> None:
        """Make every delivery already made reach ``seen``."""
        await flush_loop()

    async def close(self) -> None:
        """Stop what the receiver started."""

    # shared

    def _record(self, call: AsyncCall[Any] | None) -> None:
        """Record one delivery; runs on the test's loop."""
        self.seen.append(call)
        self._tick.set()

    def _record_threadsafe(self, call: AsyncCall[Any] | None) -> None:
        self.loop.call_soon_threadsafe(self._record, call)

    async def wait_count(self, n: int) -> None:
        """Wait until ``n`` deliveries in all were received."""
        async with asyncio.timeout(WAIT):
            while len(self.seen) < n:
                self._tick.clear()
                await self._tick.wait()

    async def wait(self, call: AsyncCall[Any]) -> None:
        """Wait for the next delivery and check it is for ``call``."""
        await self.wait_count(self._taken + 1)
        got = self.seen[self._taken]
        self._taken += 1
        assert got is None or got is call, f"delivery for {got!r}, expected {call!r}"
        assert call.status() is not CallStatus.PENDING, "a delivery must come after the outcome is fixed"
        assert call.last_event is AsyncEvent.CALL_COMPLETE

    async def deliveries(self) -> int:
        """How many deliveries were made in all (after flushing the mode's pipeline)."""
        await self.flush()
        return len(self.seen)

    async def task_count(self) -> int:
        """Tasks alive on every loop this receiver involves."""
        return len(asyncio.all_tasks())


class PollingReceiver(Receiver):
    """``notify.Polling()``: nothing is delivered; ``status()`` is polled.

    Polling yields to the loop with ``asyncio.sleep(0)``, never a timed sleep.
    ``Polling.completed`` counts the completions the handle reported.
    """

    name = "polling"

    def __init__(self) -> None:
        super().__init__()
        self.polling = notify.Polling()

    def notifier(self) -> Notifier:
        return self.polling

    def misuse(self) -> object:
        return notify.Polling  # the class, not an instance

    async def wait(self, call: AsyncCall[Any]) -> None:
        async with asyncio.timeout(WAIT):
            while call.status() is CallStatus.PENDING:  # noqa: ASYNC110 - polling is the mode
                await asyncio.sleep(0)
        self._taken += 1
        assert self.polling.completed >= self._taken
        assert call.last_event is AsyncEvent.CALL_COMPLETE

    async def wait_count(self, n: int) -> None:
        async with asyncio.timeout(WAIT):
            while self.polling.completed < n:  # noqa: ASYNC110 - polling is the mode
                await asyncio.sleep(0)

    async def deliveries(self) -> int:
        await self.flush()
        return self.polling.completed


class EventReceiver(Receiver):
    """``notify.Event(asyncio.Event)`` on the test's own loop; waits with ``await event.wait()``."""

    name = "event"

    def __init__(self) -> None:
        super().__init__()
        self.event = CountingAsyncioEvent(on_set=lambda: self._record(None))
        self.mode = notify.Event(self.event)

    def misuse(self) -> object:
        return self.event  # the raw event, not notify.Event(event)

    async def wait_count(self, n: int) -> None:
        async with asyncio.timeout(WAIT):
            while len(self.seen) < n:
                self.event.clear()
                await self.event.wait()

    async def deliveries(self) -> int:
        await self.flush()
        assert set(self.event.set_threads) <= {threading.get_ident()}, "set on the loop's thread"
        return len(self.event.set_threads)


class ThreadingEventReceiver(Receiver):
    """``notify.Event(threading.Event)``; waits in a worker thread with ``event.wait()``."""

    name = "event-threading"

    def __init__(self) -> None:
        super().__init__()
        self.event = CountingThreadingEvent()
        self.mode = notify.Event(self.event)

    def misuse(self) -> object:
        return self.event

    async def wait_count(self, n: int) -> None:
        async with asyncio.timeout(WAIT):
            while len(self.event.set_threads) < n:
                self.event.clear()
                if len(self.event.set_threads) >= n:  # set between the check and the clear
                    break
                await asyncio.to_thread(self.event.wait, WAIT)
        self.seen[:] = [None] * len(self.event.set_threads)

    async def deliveries(self) -> int:
        await self.flush()
        return len(self.event.set_threads)


class OtherLoopReceiver(Receiver):
    """A receiver whose mode delivers on a loop running in another thread."""

    def __init__(self) -> None:
        super().__init__()
        self.other = LoopThread()

    async def flush(self) -> None:
        await self.other.call(lambda: None)  # runs there after what was already scheduled
        await flush_loop()

    async def task_count(self) -> int:
        return len(asyncio.all_tasks()) + await self.other.task_count()

    async def close(self) -> None:
        self.other.close()


class OtherLoopEventReceiver(OtherLoopReceiver):
    """``notify.Event(ev, loop=other)`` for an ``asyncio.Event`` of a loop running in another thread.

    A task on the other loop waits on the event and records each wake-up; the
    event's ``set()`` must run on that loop's thread.
    """

    name = "event-other-loop"

    def __init__(self) -> None:
        super().__init__()
        self.event: CountingAsyncioEvent = asyncio.run_coroutine_threadsafe(
            self._make_event(), self.other.loop
        ).result(WAIT)
        self.mode = notify.Event(self.event, loop=self.other.loop)

    async def _make_event(self) -> CountingAsyncioEvent:
        return CountingAsyncioEvent(on_set=lambda: self._record_threadsafe(None))

    def misuse(self) -> object:
        return self.event

    async def deliveries(self) -> int:
        await self.flush()
        assert set(self.event.set_threads) <= {self.other.ident}, "set on the event's own loop thread"
        return len(self.event.set_threads)


class CallbackReceiver(Receiver):
    """``notify.Callback(fn)``: ``fn`` runs on the loop that made the call, on its thread."""

    name = "callback"

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[int] = []
        self.mode = notify.Callback(self.routine)

    def routine(self, call: AsyncCall[Any], event: AsyncEvent) -> None:
        assert event is AsyncEvent.CALL_COMPLETE
        assert asyncio.get_running_loop() is self.loop
        self.threads.append(threading.get_ident())
        self._record(call)

    def misuse(self) -> object:
        return self.routine  # the bare function, not notify.Callback(fn)


class OtherLoopCallbackReceiver(OtherLoopReceiver):
    """``notify.Callback(fn, loop=other)``: ``fn`` runs on a loop running in another thread."""

    name = "callback-other-loop"

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[int] = []
        self.mode = notify.Callback(self.routine, loop=self.other.loop)

    def routine(self, call: AsyncCall[Any], event: AsyncEvent) -> None:
        assert event is AsyncEvent.CALL_COMPLETE
        assert asyncio.get_running_loop() is self.other.loop
        self.threads.append(threading.get_ident())
        self._record_threadsafe(call)

    def misuse(self) -> object:
        return self.routine

    async def deliveries(self) -> int:
        count = await super().deliveries()
        assert set(self.threads) <= {self.other.ident}
        return count


class CoroutineCallbackReceiver(Receiver):
    """``notify.Callback(async_fn)``: the coroutine runs as a task on the calling loop."""

    name = "callback-coroutine"

    def __init__(self) -> None:
        super().__init__()
        self.tasks: list[asyncio.Task[Any] | None] = []
        self.mode = notify.Callback(self.routine)

    async def routine(self, call: AsyncCall[Any], event: AsyncEvent) -> None:
        assert event is AsyncEvent.CALL_COMPLETE
        assert asyncio.get_running_loop() is self.loop
        self.tasks.append(asyncio.current_task())
        await asyncio.sleep(0)  # a real coroutine: it suspends before recording
        self._record(call)

    def misuse(self) -> object:
        return self.routine

    async def flush(self) -> None:
        # The routine's task starts one iteration after it is scheduled and
        # records one step later: three markers cover scheduling, start, resume.
        for _ in range(3):
            await flush_loop()


class ApcReceiver(Receiver):
    """``notify.Apc(fn, thread=worker)``: ``fn`` runs in a plain thread's alertable wait."""

    name = "apc"

    def __init__(self) -> None:
        super().__init__()
        self.worker = AlertableThread()
        self.threads: list[int] = []
        self.mode = notify.Apc(self.routine, thread=self.worker.thread)

    def routine(self, call: AsyncCall[Any], event: AsyncEvent) -> None:
        assert event is AsyncEvent.CALL_COMPLETE
        self.threads.append(threading.get_ident())
        self._record_threadsafe(call)

    def misuse(self) -> object:
        return self.routine

    async def flush(self) -> None:
        await self.worker.run(lambda: None)  # APCs run in FIFO order
        await flush_loop()

    async def deliveries(self) -> int:
        count = await super().deliveries()
        assert set(self.threads) <= {self.worker.ident}
        return count

    async def close(self) -> None:
        self.worker.close()


class CompletionPortReceiver(Receiver):
    """``notify=port.bind(key=i, overlapped=...)``; taken with ``await port.get()``."""

    name = "completion-port"

    def __init__(self) -> None:
        super().__init__()
        self.port = notify.CompletionPort()
        self.bindings: dict[int, notify.PortBinding] = {}
        self.completions: list[notify.Completion] = []

    def notifier(self) -> Notifier:
        key = len(self.bindings)
        binding = self.bindings[key] = self.port.bind(key=key, overlapped={"buffer": key})
        return binding

    def misuse(self) -> object:
        return self.port.bind  # the method, not port.bind(...)

    def _take(self, completion: notify.Completion) -> None:
        binding = self.bindings[completion.key]
        assert completion.overlapped is binding.overlapped
        self.completions.append(completion)
        self.seen.append(completion.call)

    async def wait_count(self, n: int) -> None:
        while len(self.seen) < n:
            self._take(await self.port.get(timeout=WAIT))

    async def flush(self) -> None:
        await flush_loop()
        while self.port.qsize():
            self._take(self.port.get_nowait())


class MessagePumpReceiver(Receiver):
    """``notify=pump.target(WM_APP + 1, hwnd="window")``; a pump task dispatches the messages."""

    name = "message-pump"
    MSG = WM_APP + 1
    MARK = WM_APP + 2

    def __init__(self) -> None:
        super().__init__()
        self.pump = notify.MessagePump()
        self.pump.register(self.MSG, self.proc)
        self.pump.register(self.MARK, self.mark)
        self.messages: list[notify.Message] = []
        self.runner = asyncio.create_task(self.pump.run())

    def proc(self, message: notify.Message) -> None:
        assert message.hwnd == "window"
        assert message.wparam is AsyncEvent.CALL_COMPLETE
        assert isinstance(message.lparam, AsyncCall)
        self.messages.append(message)
        self._record(message.lparam)

    @staticmethod
    def mark(message: notify.Message) -> None:
        message.lparam.set_result(None)

    def notifier(self) -> Notifier:
        return self.pump.target(self.MSG, hwnd="window")

    def misuse(self) -> object:
        return self.pump  # the pump, not pump.target(msg)

    async def flush(self) -> None:
        marker = self.loop.create_future()
        self.pump.post("window", self.MARK, None, marker)  # dispatched after what is queued
        async with asyncio.timeout(WAIT):
            await marker

    async def close(self) -> None:
        self.pump.post_quit()
        async with asyncio.timeout(WAIT):
            await self.runner


RECEIVERS: dict[str, type[Receiver]] = {
    cls.name: cls
    for cls in (
        PollingReceiver,
        EventReceiver,
        ThreadingEventReceiver,
        OtherLoopEventReceiver,
        CallbackReceiver,
        OtherLoopCallbackReceiver,
        CoroutineCallbackReceiver,
        ApcReceiver,
        CompletionPortReceiver,
        MessagePumpReceiver,
    )
}
assert list(RECEIVERS) == MODES


@contextlib.asynccontextmanager
async def receiver(mode: str) -> AsyncIterator[Receiver]:
    """A receiver for ``mode`` (one of :data:`MODES`), closed on exit."""
    rx = RECEIVERS[mode]()
    try:
        yield rx
    finally:
        await rx.close()


class _Creations:
    """Counts tasks created on some loops and threads started, while active."""

    def __init__(self) -> None:
        self.tasks = 0
        self.threads = 0  # a count, not a set of idents: idents of ended threads are reused

    def task_factory(
        self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
    ) -> asyncio.Task[Any]:
        self.tasks += 1
        return asyncio.Task(coro, loop=loop, **kwargs)

    def thread_started(self, frame: object, event: str, arg: object) -> None:
        # threading.setprofile() installs this in every thread started from now on;
        # it records the thread once and removes itself from it.
        self.threads += 1
        sys.setprofile(None)


@contextlib.asynccontextmanager
async def count_creations(rx: Receiver) -> AsyncIterator[_Creations]:
    """Count every task created (on every loop ``rx`` uses) and every thread started, meanwhile."""
    counts = _Creations()
    loops = [asyncio.get_running_loop()]
    if isinstance(rx, OtherLoopEventReceiver | OtherLoopCallbackReceiver):
        loops.append(rx.other.loop)
    previous = [loop.get_task_factory() for loop in loops]
    for loop in loops:
        await _on_loop(loop, lambda loop=loop: loop.set_task_factory(counts.task_factory))  # type: ignore[misc]
    threading.setprofile(counts.thread_started)
    try:
        yield counts
    finally:
        threading.setprofile(None)
        for loop, factory in zip(loops, previous, strict=True):
            await _on_loop(loop, lambda loop=loop, factory=factory: loop.set_task_factory(factory))  # type: ignore[misc]


async def _on_loop(loop: asyncio.AbstractEventLoop, fn: Callable[[], object]) -> None:
    if loop is asyncio.get_running_loop():
        fn()
        return
    future: concurrent.futures.Future[None] = concurrent.futures.Future()

    def run() -> None:
        fn()
        future.set_result(None)

    loop.call_soon_threadsafe(run)
    await asyncio.wrap_future(future)


async def assert_no_task_or_thread_per_call(
    setup: Setup, rx: Receiver, n: int = 200, *, tasks_per_call: int = 0
) -> None:
    """Make ``n`` calls in ``rx``'s mode and prove the mode adds no task and no thread per call.

    The calls are parked on the server by an inline handler with a deferred
    reply, so the server adds no task either. Three checks, from the calls
    being made to their last delivery being received:

    * tasks alive and threads alive while all ``n`` are pending, and after
      all ``n`` were delivered, equal the counts before;
    * tasks *created* on every loop involved: none (``tasks_per_call`` for a
      coroutine callback, which runs as a task by request);
    * threads *started*: none, but for one worker of asyncio's default pool
      that the receiver of a ``threading.Event`` may start to wait in.

    A per-call task or thread, even a short-lived one, would count ``n``.
    """
    client, probe = setup.client, setup.probe
    # Warm up once: lazily started machinery (a thread pool, a pump) is not per call.
    warm = client.call("probe.add", 1, 1, notify=rx.notifier())
    await rx.wait(warm)
    await rx.deliveries()

    async with count_creations(rx) as created:
        tasks_before, threads_before = await rx.task_count(), threading.active_count()
        calls = [client.call("probe.park", "many", notify=rx.notifier()) for _ in range(n)]
        await client.call("probe.add", 0, 0)  # the server read every request before this one
        assert probe.parked == n
        assert all(call.status() is CallStatus.PENDING for call in calls)
        tasks_pending, threads_pending = await rx.task_count(), threading.active_count()

        probe.release_parked()
        await rx.wait_count(1 + n)
        assert await rx.deliveries() == 1 + n
        assert all(call.status() is CallStatus.COMPLETE for call in calls)
        tasks_after, threads_after = await rx.task_count(), threading.active_count()

    assert (tasks_pending, threads_pending) == (tasks_before, threads_before), (
        f"{n} pending calls: tasks {tasks_before} -> {tasks_pending}, "
        f"threads {threads_before} -> {threads_pending}"
    )
    assert (tasks_after, threads_after) == (tasks_before, threads_before), (
        f"{n} delivered calls: tasks {tasks_before} -> {tasks_after}, "
        f"threads {threads_before} -> {threads_after}"
    )
    assert created.tasks == tasks_per_call * n, f"{created.tasks} tasks created for {n} calls"
    assert created.threads <= (1 if isinstance(rx, ThreadingEventReceiver) else 0), (
        f"{created.threads} threads started for {n} calls"
    )
