"""A queue that lives on one event loop and takes items from any thread.

The completion port and the message pump are both this: completions arrive on
the connection's loop (or any thread, for user posts), consumers wait on the
queue's own loop or, from plain threads, block on it.

No item is ever lost to a waiter that gave up: a getter that is cancelled, or
times out, after an item was handed to it puts the item back at the front, and
a plain thread interrupted in :meth:`LoopQueue.get_blocking` (Ctrl-C) hands
back what it was given. The next waiter gets it, in order.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections import deque
from typing import Generic, TypeVar

from asyncrpc._loops import running_loop

__all__ = ["LoopQueue"]

T = TypeVar("T")


class LoopQueue(Generic[T]):
    """A FIFO bound to one loop: put from anywhere, get there or block on it.

    Args:
        owner: the name used in error messages (``"CompletionPort"``).
        loop: the queue's loop; default the loop running here, else the loop
            of the first ``put`` or ``get``.
    """

    __slots__ = ("_getters", "_items", "_loop", "_owner")

    def __init__(self, owner: str, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._owner = owner
        self._loop = loop if loop is not None else running_loop()
        self._items: deque[T] = deque()
        self._getters: deque[asyncio.Future[T]] = deque()

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop the queue lives on (``None`` until one is known)."""
        return self._loop

    def _no_loop(self) -> RuntimeError:
        return RuntimeError(f"{self._owner} has no loop yet; build it inside one or pass loop=")

    def put(self, item: T) -> None:
        """Queue ``item``; safe from any thread (it hops onto the queue's loop)."""
        loop = self._loop
        running = running_loop()
        if loop is None:
            if running is None:
                raise self._no_loop()
            loop = self._loop = running
        if loop is running:
            self._hand_over(item, front=False)
        else:
            loop.call_soon_threadsafe(self._hand_over, item, False)

    def _hand_over(self, item: T, front: bool) -> None:
        """On the loop: give ``item`` to the first live getter, else queue it."""
        getters = self._getters
        while getters:
            getter = getters.popleft()
            if not getter.done():
                getter.set_result(item)
                return
        if front:
            self._items.appendleft(item)
        else:
            self._items.append(item)

    async def get(self, timeout: float | None = None) -> T:
        """The next item, on the queue's loop.

        Raises:
            TimeoutError: none came within ``timeout`` seconds.
        """
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        if self._items and not self._getters:
            return self._items.popleft()
        getter: asyncio.Future[T] = self._loop.create_future()
        self._getters.append(getter)
        try:
            if timeout is None:
                return await getter
            async with asyncio.timeout(timeout):
                return await getter
        except BaseException:
            # Cancelled or timed out: an item handed over meanwhile is not ours to drop.
            if getter.done() and not getter.cancelled():
                self._hand_over(getter.result(), front=True)
            else:
                getter.cancel()
                with contextlib.suppress(ValueError):
                    self._getters.remove(getter)
            raise

    def get_nowait(self) -> T:
        """The next item if one is queued; raises ``asyncio.QueueEmpty`` otherwise."""
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.popleft()

    def get_blocking(self, timeout: float | None, what: str) -> T:
        """For a plain thread: wait on the queue's loop for the next item.

        Interrupted (``KeyboardInterrupt``, or any exception raised in this
        thread while it waits), it gives back the item it may have been
        handed, at the front of the queue, and re-raises.

        Raises:
            TimeoutError: none came within ``timeout`` seconds.
            RuntimeError: called on the queue's own loop, which it would block
                (``what`` names the method for the message).
        """
        loop = self._loop
        if loop is None:
            raise self._no_loop()
        if running_loop() is loop:
            raise RuntimeError(f"{what} would block the {self._owner}'s own loop; await it instead")
        handed: concurrent.futures.Future[T] = concurrent.futures.Future()
        try:
            # Inside the try: an interrupt just after this is queued must still withdraw it.
            loop.call_soon_threadsafe(self._serve_blocking, handed, timeout)
            return handed.result()
        except BaseException:
            if not handed.cancel():  # too late to withdraw: the item is (being) handed over
                with contextlib.suppress(BaseException):
                    item = handed.result()
                    loop.call_soon_threadsafe(self._hand_over, item, True)
            raise

    def _serve_blocking(self, handed: concurrent.futures.Future[T], timeout: float | None) -> None:
        """On the loop: get an item for a blocked thread, unless it has given up."""
        assert self._loop is not None
        if handed.cancelled():
            return  # the thread gave up before this ran: nothing to get for it
        task = self._loop.create_task(self._get_for(handed, timeout))
        loop = self._loop
        # The waiting thread cancelling ``handed`` stops the get at once.
        handed.add_done_callback(lambda f: f.cancelled() and loop.call_soon_threadsafe(task.cancel))

    async def _get_for(self, handed: concurrent.futures.Future[T], timeout: float | None) -> None:
        try:
            item = await self.get(timeout)
        except asyncio.CancelledError:
            return  # the thread gave up before anything came
        except BaseException as exc:
            if handed.set_running_or_notify_cancel():
                handed.set_exception(exc)
            return
        if handed.set_running_or_notify_cancel():
            handed.set_result(item)
        else:
            self._hand_over(item, front=True)  # the thread gave up just now

    def qsize(self) -> int:
        return len(self._items)
