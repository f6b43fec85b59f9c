"""A queue that lives on one event loop and takes items from any thread.

The completion port and the message pump are both this: completions arrive on
the connection's loop (or any thread, for user posts), consumers wait on the
queue's own loop or, from plain threads, block on it.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

from asyncrpc._loops import running_loop

__all__ = ["LoopQueue"]

T = TypeVar("T")


class LoopQueue(Generic[T]):
    """An ``asyncio.Queue`` bound to one loop: put from anywhere, get there or block on it.

    Args:
        owner: the name used in error messages (``"CompletionPort"``).
        loop: the queue's loop; default the loop running here, else the loop
            of the first ``put`` or ``get``.
    """

    __slots__ = ("_loop", "_owner", "_queue")

    def __init__(self, owner: str, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._owner = owner
        self._loop = loop if loop is not None else running_loop()
        self._queue: asyncio.Queue[T] = asyncio.Queue()

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
            self._queue.put_nowait(item)
        else:
            loop.call_soon_threadsafe(self._queue.put_nowait, item)

    async def get(self, timeout: float | None = None) -> T:
        """The next item, on the queue's loop.

        Raises:
            TimeoutError: none came within ``timeout`` seconds.
        """
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        if timeout is None:
            return await self._queue.get()
        async with asyncio.timeout(timeout):
            return await self._queue.get()

    def get_nowait(self) -> T:
        """The next item if one is queued; raises ``asyncio.QueueEmpty`` otherwise."""
        return self._queue.get_nowait()

    def get_blocking(self, timeout: float | None, what: str) -> T:
        """For a plain thread: wait on the queue's loop for the next item.

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
        return asyncio.run_coroutine_threadsafe(self.get(timeout), loop).result()

    def qsize(self) -> int:
        return self._queue.qsize()
