"""Message pump: completions become window messages, dispatched in order by one pump.

A Windows client can ask for a message to be posted to a window when its call
completes; the thread that owns the window finds it in its message loop
(``GetMessage`` / ``DispatchMessage``) among every other message posted there.
:class:`MessagePump` is that queue and loop: ``await pump.run()`` on an event
loop, or ``pump.run_blocking()`` in a plain thread.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from asyncrpc.notify._loop_queue import LoopQueue
from asyncrpc.notify.base import Notifier

if TYPE_CHECKING:
    from asyncrpc.handle import AsyncCall
    from asyncrpc.status import AsyncEvent

__all__ = ["WM_APP", "WM_QUIT", "WM_USER", "Message", "MessagePump", "MessageTarget"]

logger = logging.getLogger("asyncrpc")

WM_QUIT: Final = 0x0012
"""The message :meth:`MessagePump.post_quit` posts; ends :meth:`MessagePump.run`."""
WM_USER: Final = 0x0400
"""First message number for a window class's own messages."""
WM_APP: Final = 0x8000
"""First message number for an application's own messages (a good base for completions)."""


@dataclass(frozen=True, slots=True)
class Message:
    """A posted message (``MSG``). For a completion, ``wparam`` is the
    :class:`~asyncrpc.AsyncEvent` (``CALL_COMPLETE``) and ``lparam`` the call handle.

    Attributes:
        hwnd: the window the message is for: any value (``pump.target(msg, hwnd=...)``).
        msg: the message number.
        wparam: for a completion, the :class:`~asyncrpc.AsyncEvent`; else what was posted.
        lparam: for a completion, the :class:`~asyncrpc.AsyncCall`; else what was posted.
    """

    hwnd: Any
    msg: int
    wparam: Any = None
    lparam: Any = None


class MessagePump:
    """A message queue and its dispatch loop (``PostMessage`` / ``GetMessage`` / ``DispatchMessage``).

    ``pump.register(msg, proc)`` sets the procedure for a message number;
    ``notify=pump.target(msg, hwnd=...)`` posts ``Message(hwnd, msg,
    AsyncEvent.CALL_COMPLETE, call)`` when a call completes; ``await
    pump.run()`` dispatches messages one at a time, in the order they were
    posted, until cancelled or :meth:`post_quit`. User code may :meth:`post`
    its own messages to the same pump; they interleave with completions in
    order. A procedure may be a coroutine function: it is awaited before the
    next message is dispatched.

    The pump itself is not a notification mode (a completion needs a message
    number): pass ``pump.target(msg)``.

    Args:
        loop: the loop the queue lives on; default the running loop where the
            pump is built, else the loop of the first message posted.

    Cost: one queue entry per completion; the pump is one task (or thread)
    for any number of calls.

    Attributes:
        default_proc: called for messages with no registered procedure
            (``DefWindowProc``); ``None`` (the default) drops them.
    """

    __slots__ = ("_procs", "_queue", "default_proc")

    def __init__(self, *, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._queue: LoopQueue[Message] = LoopQueue("MessagePump", loop)
        self._procs: dict[int, Callable[[Message], Any]] = {}
        self.default_proc: Callable[[Message], Any] | None = None

    def register(self, msg: int, proc: Callable[[Message], Any]) -> None:
        """Dispatch messages numbered ``msg`` to ``proc(message)`` (sync or async)."""
        if not callable(proc):
            raise TypeError("register() needs a callable procedure")
        self._procs[msg] = proc

    def target(self, msg: int, hwnd: Any = None) -> MessageTarget:
        """A notification mode that posts message ``msg`` for ``hwnd`` on completion."""
        return MessageTarget(self, msg, hwnd)

    def post(self, hwnd: Any, msg: int, wparam: Any = None, lparam: Any = None) -> None:
        """Queue a message (``PostMessage``); safe from any thread."""
        self._queue.put(Message(hwnd, msg, wparam, lparam))

    def post_quit(self) -> None:
        """Make :meth:`run` return after the messages already queued (``PostQuitMessage``)."""
        self.post(None, WM_QUIT)

    def pending(self) -> int:
        """Messages queued and not yet dispatched."""
        return self._queue.qsize()

    async def get(self) -> Message:
        """The next message, without dispatching it (``GetMessage``)."""
        return await self._queue.get()

    async def run(self) -> None:
        """Dispatch messages until cancelled or a quit message; returns on quit."""
        queue = self._queue
        while True:
            message = await queue.get()
            if message.msg == WM_QUIT and message.hwnd is None:
                return
            await self.dispatch(message)

    async def dispatch(self, message: Message) -> None:
        """Run the procedure for one message (``DispatchMessage``); its errors are logged."""
        proc = self._procs.get(message.msg, self.default_proc)
        if proc is None:
            return
        try:
            result = proc(message)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("asyncrpc: message procedure for %#x raised", message.msg)

    def run_blocking(self, timeout: float | None = None) -> None:
        """The message loop for a plain thread: procedures run in the calling thread.

        Dispatches until a quit message. A coroutine procedure is awaited on
        the pump's loop, the calling thread waiting for it. Interrupted while
        it waits (Ctrl-C), it loses no message: one already handed to it goes
        back to the front of the queue for the next waiter.

        Raises:
            TimeoutError: no message came within ``timeout`` seconds.
            RuntimeError: called on the pump's own loop, which it would block.
        """
        while True:
            message = self._queue.get_blocking(timeout, "run_blocking()")
            if message.msg == WM_QUIT and message.hwnd is None:
                return
            proc = self._procs.get(message.msg, self.default_proc)
            if proc is None:
                continue
            try:
                result = proc(message)
                loop = self._queue.loop
                if inspect.isawaitable(result) and loop is not None:
                    asyncio.run_coroutine_threadsafe(_awaited(result), loop).result()
            except Exception:
                logger.exception("asyncrpc: message procedure for %#x raised", message.msg)

    def __repr__(self) -> str:
        return f"<MessagePump queued={self._queue.qsize()} procs={sorted(self._procs)}>"


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


class MessageTarget(Notifier):
    """A call's link to a :class:`MessagePump`: which message, for which window.

    Made by :meth:`MessagePump.target`; pass it as ``notify=``.

    Attributes:
        pump: the pump the message is posted to.
        msg: the message number posted.
        hwnd: the window value posted with it.
    """

    __slots__ = ("hwnd", "msg", "pump")

    def __init__(self, pump: MessagePump, msg: int, hwnd: Any) -> None:
        self.pump = pump
        self.msg = msg
        self.hwnd = hwnd

    def deliver(self, call: AsyncCall[Any], event: AsyncEvent) -> None:
        """Post ``Message(hwnd, msg, wparam=event, lparam=call)`` to the pump."""
        self.pump.post(self.hwnd, self.msg, event, call)

    def __repr__(self) -> str:
        return f"<MessageTarget msg={self.msg:#x} hwnd={self.hwnd!r}>"
