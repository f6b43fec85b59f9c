"""Event: completion sets an ``asyncio.Event`` or a ``threading.Event``."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from asyncrpc.notify.base import Notifier

if TYPE_CHECKING:
    from asyncrpc.handle import AsyncCall
    from asyncrpc.status import AsyncEvent

__all__ = ["Event"]


class Event(Notifier):
    """Set an event object when the call completes (the Windows event object).

    Args:
        ev: an ``asyncio.Event`` or a ``threading.Event``. ``None`` makes an
            ``asyncio.Event`` when built inside a running loop, else a
            ``threading.Event`` (for code without a loop, see
            :mod:`asyncrpc.sync`).
        loop: the loop an ``asyncio.Event`` belongs to. Defaults to the loop
            running where this object is built, else the loop that made the
            call. Setting happens on that loop, safely from any thread.

    The event is never cleared by asyncrpc: as on Windows, the caller resets it.
    """

    __slots__ = ("event", "loop")

    def __init__(
        self,
        ev: asyncio.Event | threading.Event | None = None,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        if ev is None:
            ev = asyncio.Event() if loop is not None else threading.Event()
        if not isinstance(ev, asyncio.Event | threading.Event):
            raise TypeError(f"ev must be an asyncio.Event or threading.Event, not {type(ev).__name__}")
        self.event = ev
        self.loop = loop

    def deliver(self, call: AsyncCall[Any], event: AsyncEvent) -> None:
        ev = self.event
        if isinstance(ev, threading.Event):
            ev.set()
            return
        loop = self.loop
        if loop is None:
            connection = call._connection
            loop = self.loop = asyncio.get_running_loop() if connection is None else connection.loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            ev.set()
        else:
            loop.call_soon_threadsafe(ev.set)

    async def wait(self) -> None:
        """Wait for the event (an ``asyncio.Event`` only)."""
        if not isinstance(self.event, asyncio.Event):
            raise TypeError("wait() is for an asyncio.Event; use event.wait() on a threading.Event")
        await self.event.wait()
