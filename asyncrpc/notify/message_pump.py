"""Message pump: completions become window messages dispatched by a pump task."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asyncrpc.notify.base import Notifier

if TYPE_CHECKING:
    from asyncrpc.handle import AsyncCall
    from asyncrpc.status import AsyncEvent

__all__ = ["Message", "MessagePump", "MessageTarget"]

logger = logging.getLogger("asyncrpc")

WM_QUIT = 0x0012


@dataclass(frozen=True, slots=True)
class Message:
    """A posted message (``MSG``): for a completion, ``lparam`` is the call handle
    and ``wparam`` the :class:`~asyncrpc.AsyncEvent`."""

    hwnd: Any
    msg: int
    wparam: Any = None
    lparam: Any = None


class MessagePump(Notifier):
    """A message queue and its dispatch loop (``PostMessage`` / ``GetMessage`` / ``DispatchMessage``).

    ``pump.register(msg, proc)`` sets the procedure for a message number;
    ``notify=pump.target(msg, hwnd=...)`` posts ``Message(hwnd, msg, event,
    call)`` when a call completes; ``await pump.run()`` dispatches messages one
    at a time, in order, until cancelled or :meth:`post_quit`. User code may
    :meth:`post` its own messages to the same pump.
    """

    __slots__ = ("_loop", "_procs", "_queue", "default_proc")

    def __init__(self, *, loop: asyncio.AbstractEventLoop | None = None) -> None:
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        self._loop = loop
        self._queue: asyncio.Queue[Message] = asyncio.Queue()
        self._procs: dict[int, Callable[[Message], Any]] = {}
        #: Called for messages with no registered procedure (``DefWindowProc``); default: ignore.
        self.default_proc: Callable[[Message], Any] | None = None

    def register(self, msg: int, proc: Callable[[Message], Any]) -> None:
        """Dispatch messages numbered ``msg`` to ``proc(message)`` (sync or async)."""
        self._procs[msg] = proc

    def target(self, msg: int, hwnd: Any = None) -> MessageTarget:
        """A notification mode that posts message ``msg`` for ``hwnd`` on completion."""
        return MessageTarget(self, msg, hwnd)

    def deliver(self, call: AsyncCall[Any], event: AsyncEvent) -> None:
        raise TypeError("use notify=pump.target(msg, hwnd=...) to choose the message")

    def post(self, hwnd: Any, msg: int, wparam: Any = None, lparam: Any = None) -> None:
        """Queue a message (``PostMessage``); safe from any thread."""
        message = Message(hwnd, msg, wparam, lparam)
        loop = self._loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None:
            if running is None:
                raise RuntimeError("MessagePump has no loop yet; build it inside one or pass loop=")
            loop = self._loop = running
        if loop is running:
            self._queue.put_nowait(message)
        else:
            loop.call_soon_threadsafe(self._queue.put_nowait, message)

    def post_quit(self) -> None:
        """Make :meth:`run` return after the messages already queued (``PostQuitMessage``)."""
        self.post(None, WM_QUIT)

    def pending(self) -> int:
        """Messages queued and not yet dispatched."""
        return self._queue.qsize()

    async def run(self) -> None:
        """Dispatch messages until cancelled or a quit message; returns on quit."""
        queue = self._queue
        while True:
            message = await queue.get()
            if message.msg == WM_QUIT and message.hwnd is None:
                return
            await self.dispatch(message)

    async def dispatch(self, message: Message) -> None:
        """Run the procedure for one message (``DispatchMessage``); errors are logged."""
        proc = self._procs.get(message.msg, self.default_proc)
        if proc is None:
            return
        try:
            result = proc(message)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("asyncrpc: message procedure for %#x raised", message.msg)


class MessageTarget(Notifier):
    """A call's link to a :class:`MessagePump`: which message, for which window."""

    __slots__ = ("hwnd", "msg", "pump")

    def __init__(self, pump: MessagePump, msg: int, hwnd: Any) -> None:
        self.pump = pump
        self.msg = msg
        self.hwnd = hwnd

    def deliver(self, call: AsyncCall[Any], event: AsyncEvent) -> None:
        self.pump.post(self.hwnd, self.msg, event, call)
