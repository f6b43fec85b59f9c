"""Callback: ``fn(call, event)`` runs on a chosen event loop (the APC ``hThread`` case, on asyncio)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from asyncrpc.notify.base import Notifier

if TYPE_CHECKING:
    from asyncrpc.handle import AsyncCall
    from asyncrpc.status import AsyncEvent

__all__ = ["Callback"]


class Callback(Notifier):
    """Call ``fn(call, AsyncEvent.CALL_COMPLETE)`` on an event loop when the call completes.

    Args:
        fn: the routine. A coroutine function is started as a task on the
            target loop. It must not block: it runs on an event loop.
        loop: the loop to run ``fn`` on, possibly running in another thread.
            ``None``: the loop that made the call.

    The routine is scheduled with ``call_soon`` (``call_soon_threadsafe``
    across threads), never run inside the connection's read path.
    """

    __slots__ = ("_is_coroutine", "fn", "loop")

    def __init__(
        self,
        fn: Callable[[AsyncCall[Any], AsyncEvent], Any],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError("Callback needs a callable")
        self.fn = fn
        self.loop = loop
        self._is_coroutine = inspect.iscoroutinefunction(fn)

    def deliver(self, call: AsyncCall[Any], event: AsyncEvent) -> None:
        loop = self.loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None:
            loop = running
        assert loop is not None, "deliver() runs on the connection's loop"
        if loop is running:
            loop.call_soon(self._run, call, event)
        else:
            loop.call_soon_threadsafe(self._run, call, event)

    def _run(self, call: AsyncCall[Any], event: AsyncEvent) -> None:
        if self._is_coroutine:
            task = asyncio.get_running_loop().create_task(self.fn(call, event))
            _keep_alive(task)
        else:
            self.fn(call, event)


_tasks: set[asyncio.Task[Any]] = set()


def _keep_alive(task: asyncio.Task[Any]) -> None:
    # The loop only keeps weak references to tasks.
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
