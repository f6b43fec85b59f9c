"""Event: completion sets an ``asyncio.Event`` or a ``threading.Event``."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from asyncrpc._loops import running_loop
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
        loop: the loop an ``asyncio.Event`` belongs to, when that is not the
            loop running where this object is built (an event of a loop
            running in another thread).

    An ``asyncio.Event`` is not thread-safe, so it is always set on the loop
    it belongs to: directly when that loop is the one completing the call,
    through ``call_soon_threadsafe`` otherwise. Its loop is, in order: the
    loop it is already bound to (someone awaits it), ``loop=``, the loop
    running where this object was built, the loop that made the call. A
    ``threading.Event`` is set directly.

    The event is never cleared by asyncrpc: as on Windows, the caller resets
    it before reusing it for another call.

    Attributes:
        event: the ``asyncio.Event`` or ``threading.Event`` that is set.
        loop: the ``loop=`` given, or ``None``.

    Raises:
        TypeError: ``ev`` is neither an ``asyncio.Event`` nor a ``threading.Event``.
    """

    __slots__ = ("_home", "event", "loop")

    def __init__(
        self,
        ev: asyncio.Event | threading.Event | None = None,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        home = loop if loop is not None else running_loop()
        if ev is None:
            ev = asyncio.Event() if home is not None else threading.Event()
        if not isinstance(ev, asyncio.Event | threading.Event):
            raise TypeError(f"ev must be an asyncio.Event or threading.Event, not {type(ev).__name__}")
        self.event = ev
        self.loop = loop
        self._home = home

    def _loop_of(self, ev: asyncio.Event) -> asyncio.AbstractEventLoop | None:
        # asyncio.Event binds itself to a loop the first time it is awaited
        # (asyncio.mixins._LoopBoundMixin); that loop is the one to set it on.
        bound: asyncio.AbstractEventLoop | None = getattr(ev, "_loop", None)
        return bound if bound is not None else self._home

    def deliver(self, call: AsyncCall[Any], event: AsyncEvent) -> None:
        """Set the event: directly, or on the ``asyncio.Event``'s own loop when that is another one."""
        ev = self.event
        if isinstance(ev, threading.Event):
            ev.set()
            return
        loop = self._loop_of(ev)
        # deliver() runs on the loop that made the call: with no other loop
        # known, that is the event's loop.
        if loop is None or loop is running_loop():
            ev.set()
        else:
            loop.call_soon_threadsafe(ev.set)

    def is_set(self) -> bool:
        """True once the event is set (either kind)."""
        return self.event.is_set()

    def clear(self) -> None:
        """Reset the event for another call (``ResetEvent``); do it on the event's own loop."""
        self.event.clear()

    async def wait(self) -> None:
        """Wait for the event (an ``asyncio.Event`` only; on a ``threading.Event`` call ``.event.wait()``).

        Raises:
            TypeError: the event is a ``threading.Event``.
        """
        if not isinstance(self.event, asyncio.Event):
            raise TypeError("wait() is for an asyncio.Event; use .event.wait() on a threading.Event")
        await self.event.wait()

    def __repr__(self) -> str:
        kind = "asyncio" if isinstance(self.event, asyncio.Event) else "threading"
        return f"<Event {kind} {'set' if self.event.is_set() else 'clear'}>"
