"""The server's side of one call: what a handler can learn and do about it.

Inside a handler, :func:`current_call` gives the :class:`ServerCall`. A handler
can return its result, or :meth:`ServerCall.defer` the reply and hand the
:class:`CompletionToken` to any task or thread that finishes the call later
(the server-side ``RpcAsyncCompleteCall`` / ``RpcAsyncAbortCall``).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from asyncrpc.errors import AlreadyCompleted, CallCancelled, DeadlineExceeded, RemoteError
from asyncrpc.status import AsyncEvent

if TYPE_CHECKING:
    from asyncrpc.client import Client
    from asyncrpc.connection import Connection

__all__ = ["CompletionToken", "ServerCall", "current_call"]

logger = logging.getLogger("asyncrpc")

_current: contextvars.ContextVar[ServerCall] = contextvars.ContextVar("asyncrpc_current_call")


def current_call() -> ServerCall:
    """The call the running handler is answering.

    Works in plain, ``async`` and ``@blocking`` handlers (and in tasks they
    start, which copy the context).

    Raises:
        RuntimeError: called outside a handler.
    """
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError("asyncrpc.current_call() is only available inside a handler") from None


class ServerCall:
    """One request being answered.

    Attributes:
        method: the method name called.
        msgid: the request's message id.
        deadline: the ``loop.time()`` at which the caller's deadline passes,
            or ``None`` when the caller set none (or its peer cannot say).
    """

    __slots__ = (
        "_cancel_reason",
        "_connection",
        "_deferred",
        "_finished",
        "_listeners",
        "_lock",
        "_registered",
        "_task",
        "_timer",
        "cooperative",
        "deadline",
        "method",
        "msgid",
    )

    def __init__(self, connection: Connection, msgid: int, method: str) -> None:
        self._connection = connection
        self.msgid = msgid
        self.method = method
        self.deadline: float | None = None
        self.cooperative = False
        self._cancel_reason: type[CallCancelled] | type[DeadlineExceeded] | None = None
        self._deferred: CompletionToken | None = None
        self._finished = False
        self._registered = False
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._listeners: list[tuple[AsyncEvent, Callable[[ServerCall, AsyncEvent], object]]] | None
        self._listeners = None
        self._lock: threading.Lock | None = None

    # -- what a handler asks ------------------------------------------------

    def test_cancel(self) -> bool:
        """True once the client asked to cancel, or the deadline passed (``RpcServerTestCancel``).

        Changes nothing: the call still has to be completed (or the handler
        cancelled by it). Safe from any thread.
        """
        return self._cancel_reason is not None

    @property
    def peer(self) -> Client:
        """A client for calling back the peer that made this call, on the same connection."""
        return self._connection.peer

    @property
    def deferred(self) -> bool:
        return self._deferred is not None

    def time_remaining(self) -> float | None:
        """Seconds until the deadline (may be negative), or ``None`` without one."""
        if self.deadline is None:
            return None
        return self.deadline - self._connection.loop.time()

    def defer(self) -> CompletionToken:
        """Take over the reply: the handler's return value is then ignored.

        Returns a :class:`CompletionToken`; exactly one of its ``complete`` or
        ``abort`` sends the reply, from any task or thread. If the handler
        raises before the token is used, the call fails with that error.
        Calling ``defer()`` again returns the same token.
        """
        if self._deferred is None:
            self._deferred = CompletionToken(self)
            self._lock = threading.Lock()
            self._connection._track(self)
        return self._deferred

    def on_disconnect(self, fn: Callable[[ServerCall, AsyncEvent], object]) -> None:
        """Run ``fn(call, AsyncEvent.CLIENT_DISCONNECT)`` if the client goes away with this call open."""
        self._listen(AsyncEvent.CLIENT_DISCONNECT, fn)

    def on_cancel(self, fn: Callable[[ServerCall, AsyncEvent], object]) -> None:
        """Run ``fn(call, AsyncEvent.CLIENT_CANCEL)`` when the client asks to cancel this call."""
        self._listen(AsyncEvent.CLIENT_CANCEL, fn)

    def _listen(self, event: AsyncEvent, fn: Callable[[ServerCall, AsyncEvent], object]) -> None:
        if self._listeners is None:
            self._listeners = []
        self._listeners.append((event, fn))
        self._connection._track(self)

    def _fire(self, event: AsyncEvent) -> None:
        # Each listener fires at most once: the list is dropped as it runs.
        listeners, self._listeners = self._listeners, None
        if not listeners:
            return
        keep = []
        for wanted, fn in listeners:
            if wanted is not event:
                keep.append((wanted, fn))
                continue
            try:
                fn(self, event)
            except Exception:
                logger.exception("asyncrpc: %s listener for %r raised", event.name, self.method)
        self._listeners = keep or None

    # -- what the connection does to it ----------------------------------------

    def _request_cancel(self, reason: type[CallCancelled] | type[DeadlineExceeded]) -> None:
        if self._finished or self._cancel_reason is not None:
            return
        self._cancel_reason = reason
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._fire(AsyncEvent.CLIENT_CANCEL)
        task = self._task
        if task is not None and not self.cooperative and not task.done():
            # A task cancelled before its first step never runs its body, so
            # make sure the call is answered once the task is over.
            task.add_done_callback(self._answer_if_silent)
            task.cancel()

    def _answer_if_silent(self, _task: asyncio.Task[None]) -> None:
        if not self._finished:
            self._connection._handler_failed(self, self._cancel_error())

    def _expire(self) -> None:
        self._timer = None
        self._request_cancel(DeadlineExceeded)

    def _cancel_error(self) -> CallCancelled | DeadlineExceeded:
        if self._cancel_reason is DeadlineExceeded:
            return DeadlineExceeded(f"deadline passed for {self.method!r} on the server")
        return CallCancelled(f"{self.method!r} cancelled on the server")

    def _disconnected(self) -> None:
        self._fire(AsyncEvent.CLIENT_DISCONNECT)
        task = self._task
        if task is not None and not self.cooperative and not task.done():
            task.cancel()

    def __repr__(self) -> str:
        return f"<ServerCall {self.method!r} #{self.msgid}{' deferred' if self._deferred else ''}>"


class CompletionToken:
    """Finishes a deferred call later, exactly once, from any task or thread."""

    __slots__ = ("_call", "_used")

    def __init__(self, call: ServerCall) -> None:
        self._call = call
        self._used = False

    @property
    def call(self) -> ServerCall:
        return self._call

    def test_cancel(self) -> bool:
        """True once the client asked to cancel the call, or its deadline passed."""
        return self._call.test_cancel()

    def done(self) -> bool:
        """True once ``complete`` or ``abort`` was called."""
        return self._used

    def complete(self, value: Any = None) -> None:
        """Send ``value`` as the call's result (``RpcAsyncCompleteCall``).

        Raises:
            AlreadyCompleted: the token was already used.
        """
        self._finish(None, value)

    def abort(self, code: int, message: str = "") -> None:
        """Fail the call with an error ``code`` and ``message`` (``RpcAsyncAbortCall``).

        The client sees a :class:`~asyncrpc.RemoteError` with ``.code == code``.
        """
        if not isinstance(code, int) or code == 0:
            raise ValueError("abort() needs a nonzero integer code")
        self._finish(
            RemoteError(message or f"call aborted with code {code}", type="CallAborted", code=code), None
        )

    def fail(self, error: BaseException) -> None:
        """Fail the call with an exception, as if the handler had raised it."""
        self._finish(error, None)

    def _finish(self, error: BaseException | None, value: Any) -> None:
        call = self._call
        lock = call._lock
        assert lock is not None
        with lock:
            if self._used:
                raise AlreadyCompleted(f"the call {call.method!r} was already completed")
            self._used = True
        call._connection._complete_threadsafe(call, error, value)

    def __repr__(self) -> str:
        return f"<CompletionToken {self._call.method!r} {'used' if self._used else 'open'}>"
