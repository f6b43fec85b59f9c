"""Callback: ``fn(call, event)`` runs on a chosen event loop (the APC ``hThread`` case, on asyncio)."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from asyncrpc.notify.base import Notifier

if TYPE_CHECKING:
    from asyncrpc.handle import AsyncCall
    from asyncrpc.status import AsyncEvent

__all__ = ["Callback"]

logger = logging.getLogger("asyncrpc")


class Callback(Notifier):
    """Call ``fn(call, AsyncEvent.CALL_COMPLETE)`` on an event loop when the call completes.

    Args:
        fn: the routine. If it is a coroutine function (or returns an
            awaitable), the awaitable runs as a task on the target loop. It
            must not block: it runs on an event loop.
        loop: the loop to run ``fn`` on, possibly running in another thread
            (the ``hThread`` case). ``None``: the loop that made the call.

    The routine is scheduled with ``call_soon`` (``call_soon_threadsafe``
    across threads), never run inside the connection's read path, so it may
    make calls of its own. Cost: one scheduled callback per completion; a
    plain function adds no task and no thread. An exception raised by the
    routine is reported by the target loop's exception handler (a coroutine's,
    by the ``asyncrpc`` logger) and harms nothing else.

    Attributes:
        fn: the routine.
        loop: the loop it runs on, or ``None`` for the loop that made the call.

    Raises:
        TypeError: ``fn`` is not callable, or ``loop`` is not an event loop.
    """

    __slots__ = ("fn", "loop")

    def __init__(
        self,
        fn: Callable[[AsyncCall[Any], AsyncEvent], Any],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError("Callback needs a callable")
        if loop is not None and not isinstance(loop, asyncio.AbstractEventLoop):
            raise TypeError(f"loop must be an asyncio event loop, not {type(loop).__name__}")
        self.fn = fn
        self.loop = loop

    def deliver(self, call: AsyncCall[Any], event: AsyncEvent) -> None:
        """Schedule ``fn(call, event)`` on the target loop (``call_soon_threadsafe`` across threads)."""
        running = asyncio.get_running_loop()  # deliver() runs on the loop that made the call
        loop = self.loop
        if loop is None or loop is running:
            running.call_soon(self._run, call, event)
        else:
            loop.call_soon_threadsafe(self._run, call, event)

    def _run(self, call: AsyncCall[Any], event: AsyncEvent) -> None:
        result = self.fn(call, event)
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            _tasks.add(task)
            task.add_done_callback(_task_done)

    def __repr__(self) -> str:
        return f"<Callback {self.fn!r}{'' if self.loop is None else ' on another loop'}>"


# The loop keeps only weak references to tasks: hold coroutine callbacks' here.
_tasks: set[asyncio.Future[Any]] = set()


def _task_done(task: asyncio.Future[Any]) -> None:
    _tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("asyncrpc: coroutine callback raised", exc_info=task.exception())
