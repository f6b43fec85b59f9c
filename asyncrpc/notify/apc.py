"""APC: a routine queued to a plain thread, run only inside its alertable wait.

Windows queues an asynchronous procedure call to a thread; the thread runs it
only while it sits in an *alertable wait* (``SleepEx(..., TRUE)`` and kin).
Here each thread has a queue; :func:`asyncrpc.sync.sleep_ex` is the alertable
wait that drains it. Nothing else runs the routines: a ``time.sleep``, a
``threading.Event.wait`` or a non-alertable ``sleep_ex`` does not.

Queues are keyed by the :class:`threading.Thread` object, not by its ident:
the OS reuses idents, and a routine meant for a thread that has ended must not
run in a new thread that happens to get the same number.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from asyncrpc.notify.base import Notifier

if TYPE_CHECKING:
    from asyncrpc.handle import AsyncCall
    from asyncrpc.status import AsyncEvent

__all__ = ["Apc", "ApcQueue", "pending_apcs", "queue_apc", "sleep_ex"]

logger = logging.getLogger("asyncrpc")

Routine = Callable[..., Any]


class ApcQueue:
    """The routines queued for one thread, first in, first out."""

    __slots__ = ("__weakref__", "_condition", "_items")

    def __init__(self) -> None:
        self._items: deque[tuple[Routine, tuple[Any, ...]]] = deque()
        self._condition = threading.Condition(threading.Lock())

    def put(self, fn: Routine, args: tuple[Any, ...]) -> None:
        with self._condition:
            self._items.append((fn, args))
            self._condition.notify()

    def __len__(self) -> int:
        return len(self._items)

    def wait_and_run(self, timeout: float | None) -> int:
        """Wait up to ``timeout`` for routines, run those queued when the wait ends, return how many ran.

        Routines queued while these run wait for the next alertable wait, so
        a routine that queues another cannot keep the thread here forever. If
        a routine raises, the exception propagates and the routines after it
        stay queued.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while not self._items:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return 0
                self._condition.wait(remaining)
            count = len(self._items)
        ran = 0
        while ran < count:
            with self._condition:
                fn, args = self._items.popleft()
            ran += 1
            fn(*args)
        return ran


_queues: weakref.WeakKeyDictionary[threading.Thread, ApcQueue] = weakref.WeakKeyDictionary()
_queues_lock = threading.Lock()


def _queue_for(thread: threading.Thread) -> ApcQueue:
    with _queues_lock:
        queue = _queues.get(thread)
        if queue is None:
            queue = _queues[thread] = ApcQueue()
        return queue


def _resolve(thread: threading.Thread | int) -> threading.Thread:
    if isinstance(thread, threading.Thread):
        return thread
    if isinstance(thread, int) and not isinstance(thread, bool):
        for candidate in threading.enumerate():
            if candidate.ident == thread:
                return candidate
        raise ValueError(f"no running thread has ident {thread}")
    raise TypeError(f"thread must be a threading.Thread or a thread ident, not {type(thread).__name__}")


def queue_apc(fn: Routine, thread: threading.Thread | int, *args: Any) -> None:
    """Queue ``fn(*args)`` for ``thread`` (``QueueUserAPC``); it runs in that thread's next alertable wait.

    Safe from any thread. A thread that has not started yet gets the routine
    once it starts and waits alertably.

    Raises:
        TypeError: ``fn`` is not callable, or ``thread`` is neither a thread nor an ident.
        ValueError: no running thread has the ident given.
    """
    if not callable(fn):
        raise TypeError("queue_apc() needs a callable")
    _queue_for(_resolve(thread)).put(fn, args)


def sleep_ex(timeout: float | None, alertable: bool = True) -> int:
    """Sleep up to ``timeout`` seconds (``None``: until a routine comes), like ``SleepEx``.

    With ``alertable=True`` the sleep ends as soon as routines are queued for
    this thread; they run here, in this thread, and the number run is
    returned (0: the time ran out and nothing ran). With ``alertable=False``
    it is a plain sleep that runs nothing and returns 0.

    Never call it on an event loop's thread: it blocks the loop. A routine
    that raises ends the wait with its exception; the routines after it
    stay queued for the next one.

    Raises:
        ValueError: ``alertable=False`` with no ``timeout``.
    """
    if not alertable:
        if timeout is None:
            raise ValueError("a non-alertable sleep needs a timeout")
        time.sleep(max(timeout, 0.0))
        return 0
    return _queue_for(threading.current_thread()).wait_and_run(timeout)


def pending_apcs(thread: threading.Thread | int | None = None) -> int:
    """How many routines wait for ``thread`` (default: this one)."""
    resolved = threading.current_thread() if thread is None else _resolve(thread)
    with _queues_lock:
        queue = _queues.get(resolved)
    return 0 if queue is None else len(queue)


class Apc(Notifier):
    """Queue ``fn(call, AsyncEvent.CALL_COMPLETE)`` for a plain thread on completion.

    Args:
        fn: the routine.
        thread: the thread to run it in (a :class:`threading.Thread` or a
            running thread's ident); ``None`` means the thread that builds
            this object (``hThread = 0``: the caller's thread).

    The routine runs only when that thread calls
    ``asyncrpc.sync.sleep_ex(timeout, alertable=True)``, in that thread. Use
    it from plain threads (see :mod:`asyncrpc.sync`); on an event loop's
    thread use :class:`~asyncrpc.notify.Callback`, since an alertable wait
    would block the loop.

    Cost: one lock and one deque append per completion; no task, no thread.

    Attributes:
        fn: the routine.
        thread: the :class:`threading.Thread` it runs in.

    Raises:
        TypeError: ``fn`` is not callable, or ``thread`` is neither a thread
            nor an ident.
        ValueError: no running thread has the ident given.
    """

    __slots__ = ("fn", "thread")

    def __init__(
        self,
        fn: Callable[[AsyncCall[Any], AsyncEvent], Any],
        thread: threading.Thread | int | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError("Apc needs a callable")
        self.fn = fn
        self.thread = threading.current_thread() if thread is None else _resolve(thread)

    def deliver(self, call: AsyncCall[Any], event: AsyncEvent) -> None:
        """Queue ``fn(call, event)`` for the thread; dropped, with a warning, if it has ended."""
        thread = self.thread
        if thread.ident is not None and not thread.is_alive():
            # QueueUserAPC fails for a thread that has exited: nobody could run it.
            logger.warning("asyncrpc: APC for %r dropped: thread %s has ended", call, thread.name)
            return
        _queue_for(thread).put(self.fn, (call, event))

    def __repr__(self) -> str:
        return f"<Apc {self.fn!r} thread={self.thread.name!r}>"
