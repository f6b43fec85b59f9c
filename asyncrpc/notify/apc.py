"""APC: a routine queued to a plain thread, run only inside its alertable wait.

Windows queues an asynchronous procedure call to a thread; the thread runs it
only while it sits in an *alertable wait* (``SleepEx(..., TRUE)`` and kin).
Here each thread has a queue; :func:`asyncrpc.sync.sleep_ex` is the alertable
wait that drains it. Nothing else runs the routines: a ``time.sleep`` does not.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from asyncrpc.notify.base import Notifier

if TYPE_CHECKING:
    from asyncrpc.handle import AsyncCall
    from asyncrpc.status import AsyncEvent

__all__ = ["Apc", "ApcQueue", "queue_apc", "sleep_ex"]

Routine = Callable[..., Any]


class ApcQueue:
    """The routines queued for one thread."""

    __slots__ = ("_condition", "_items", "thread_id")

    def __init__(self, thread_id: int) -> None:
        self.thread_id = thread_id
        self._items: deque[tuple[Routine, tuple[Any, ...]]] = deque()
        self._condition = threading.Condition(threading.Lock())

    def put(self, fn: Routine, args: tuple[Any, ...]) -> None:
        with self._condition:
            self._items.append((fn, args))
            self._condition.notify()

    def __len__(self) -> int:
        return len(self._items)

    def wait_and_run(self, timeout: float | None) -> int:
        """Wait up to ``timeout`` for routines; run all that are queued; return how many ran."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while not self._items:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return 0
                self._condition.wait(remaining)
            batch = list(self._items)
            self._items.clear()
        for fn, args in batch:
            fn(*args)
        return len(batch)


_queues: dict[int, ApcQueue] = {}
_queues_lock = threading.Lock()


def _queue_for(thread_id: int) -> ApcQueue:
    queue = _queues.get(thread_id)
    if queue is None:
        with _queues_lock:
            queue = _queues.setdefault(thread_id, ApcQueue(thread_id))
    return queue


def queue_apc(fn: Routine, thread: threading.Thread | int, *args: Any) -> None:
    """Queue ``fn(*args)`` for ``thread`` (``QueueUserAPC``); it runs in that thread's next alertable wait."""
    thread_id = thread if isinstance(thread, int) else thread.ident
    if thread_id is None:
        raise ValueError("the thread has not started")
    _queue_for(thread_id).put(fn, args)


def sleep_ex(timeout: float | None, alertable: bool = True) -> int:
    """Sleep up to ``timeout`` seconds (``None``: until a routine comes), like ``SleepEx``.

    With ``alertable=True`` the sleep ends as soon as routines are queued for
    this thread; they run here, in this thread, and the number run is
    returned (0: the time ran out). With ``alertable=False`` it is a plain
    sleep that runs nothing and returns 0.
    """
    if not alertable:
        if timeout is None:
            raise ValueError("a non-alertable sleep needs a timeout")
        time.sleep(timeout)
        return 0
    return _queue_for(threading.get_ident()).wait_and_run(timeout)


def pending_apcs(thread: threading.Thread | int | None = None) -> int:
    """How many routines wait for ``thread`` (default: this one)."""
    if thread is None:
        thread_id: int | None = threading.get_ident()
    else:
        thread_id = thread if isinstance(thread, int) else thread.ident
    queue = _queues.get(thread_id) if thread_id is not None else None
    return 0 if queue is None else len(queue)


class Apc(Notifier):
    """Queue ``fn(call, AsyncEvent.CALL_COMPLETE)`` for a plain thread on completion.

    Args:
        fn: the routine.
        thread: the thread to run it in; ``None`` means the thread that built
            this object (``hThread = 0``: the caller's thread).

    The routine runs only when that thread calls
    ``asyncrpc.sync.sleep_ex(timeout, alertable=True)``. Use it from plain
    threads; on an event loop thread use :class:`~asyncrpc.notify.Callback`,
    since an alertable wait would block the loop.
    """

    __slots__ = ("fn", "thread_id")

    def __init__(
        self,
        fn: Callable[[AsyncCall[Any], AsyncEvent], Any],
        thread: threading.Thread | int | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError("Apc needs a callable")
        self.fn = fn
        if thread is None:
            self.thread_id = threading.get_ident()
        else:
            thread_id = thread if isinstance(thread, int) else thread.ident
            if thread_id is None:
                raise ValueError("the thread has not started")
            self.thread_id = thread_id

    def deliver(self, call: AsyncCall[Any], event: AsyncEvent) -> None:
        _queue_for(self.thread_id).put(self.fn, (call, event))
