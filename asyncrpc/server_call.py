"""The server's side of one call: what a handler can learn and do about it.

Inside a handler, :func:`current_call` gives the :class:`ServerCall`. A handler
can return its result, or :meth:`ServerCall.defer` the reply and hand the
:class:`CompletionToken` to any task or thread that finishes the call later
(the server-side ``RpcAsyncCompleteCall`` / ``RpcAsyncAbortCall``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from asyncrpc._loops import running_loop
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
        "__weakref__",
        "_cancel_reason",
        "_client_gone",
        "_connection",
        "_deferred",
        "_finished",
        "_listeners",
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
        self._client_gone = False
        self._registered = False
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._listeners: list[tuple[AsyncEvent, Callable[[ServerCall, AsyncEvent], object]]] | None
        self._listeners = None

    # -- what a handler asks ------------------------------------------------

    def test_cancel(self) -> bool:
        """True once the client asked to cancel, the deadline passed, or the client
        went away (``RpcServerTestCancel``).

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
        raises (or is cancelled) before the token is used, the call fails with
        that error and the token counts as used. Calling ``defer()`` again
        returns the same token.

        Raises:
            RuntimeError: the call was already answered (``defer()`` must be
                called before the handler returns).
        """
        token = self._deferred
        if token is None:
            if self._finished and not self._client_gone:
                raise RuntimeError(f"defer() called after {self.method!r} was answered")
            token = self._deferred = CompletionToken(self)
            if not self._registered:
                self._connection._track(self)
        return token

    def on_disconnect(self, fn: Callable[[ServerCall, AsyncEvent], object]) -> None:
        """Run ``fn(call, AsyncEvent.CLIENT_DISCONNECT)`` once if the client goes away with this call open.

        Registered after the client already went away, ``fn`` runs at once.
        Safe from any thread; ``fn`` always runs on the connection's loop.
        """
        self._listen(AsyncEvent.CLIENT_DISCONNECT, fn)

    def on_cancel(self, fn: Callable[[ServerCall, AsyncEvent], object]) -> None:
        """Run ``fn(call, AsyncEvent.CLIENT_CANCEL)`` once when the client asks to cancel this call
        (or its deadline passes).

        Registered after the cancel request came, ``fn`` runs at once. Safe
        from any thread; ``fn`` always runs on the connection's loop.
        """
        self._listen(AsyncEvent.CLIENT_CANCEL, fn)

    def _listen(self, event: AsyncEvent, fn: Callable[[ServerCall, AsyncEvent], object]) -> None:
        loop = self._connection.loop
        if running_loop() is not loop:
            # Listeners are only touched on the loop, so a @blocking handler
            # registering one never races with the loop firing them.
            _call_soon_threadsafe(loop, self._listen, event, fn)
            return
        if event is AsyncEvent.CLIENT_DISCONNECT:
            happened = self._client_gone
        else:
            happened = self._cancel_reason is not None and not self._client_gone
        if happened:
            self._run_listener(event, fn)
            return
        if self._finished:
            return  # answered: neither event can come any more
        if self._listeners is None:
            self._listeners = []
        self._listeners.append((event, fn))
        if not self._registered:
            self._connection._track(self)

    def _fire(self, event: AsyncEvent) -> None:
        # Each listener fires at most once: it leaves the list before it runs,
        # and a listener may register others while it runs.
        listeners = self._listeners
        if not listeners:
            return
        due = [fn for wanted, fn in listeners if wanted is event]
        if not due:
            return
        self._listeners = [entry for entry in listeners if entry[0] is not event] or None
        for fn in due:
            self._run_listener(event, fn)

    def _run_listener(self, event: AsyncEvent, fn: Callable[[ServerCall, AsyncEvent], object]) -> None:
        try:
            fn(self, event)
        except Exception:
            logger.exception("asyncrpc: %s listener for %r raised", event.name, self.method)

    # -- what the connection does to it (always on its loop) -----------------

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
        """The connection is gone with this call open: nobody can hear its reply now."""
        if self._finished:
            return
        self._finished = True  # a later complete() from any thread is a no-op
        self._client_gone = True
        if self._cancel_reason is None:
            # Cooperative and @blocking handlers poll test_cancel(): let them stop.
            self._cancel_reason = CallCancelled
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._fire(AsyncEvent.CLIENT_DISCONNECT)
        self._listeners = None
        task = self._task
        if task is not None and not self.cooperative and not task.done():
            task.cancel()

    def __repr__(self) -> str:
        return f"<ServerCall {self.method!r} #{self.msgid}{' deferred' if self._deferred else ''}>"


def _call_soon_threadsafe(loop: asyncio.AbstractEventLoop, fn: Callable[..., object], *args: Any) -> None:
    # A loop that closed meanwhile has no connection left to tell.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(fn, *args)


# One lock for every token: it guards a flag check, so sharing it costs
# nothing measurable and no call has to allocate its own.
_TOKEN_LOCK: Final = threading.Lock()


class CompletionToken:
    """Finishes a deferred call later, exactly once, from any task or thread.

    The server-side ``RpcAsyncCompleteCall`` / ``RpcAsyncAbortCall``: the first
    of :meth:`complete`, :meth:`abort` or :meth:`fail` wins; any later one
    raises :class:`~asyncrpc.AlreadyCompleted` and sends nothing. The reply
    itself is written on the connection's loop. After the client went away
    the token still works and sends nothing.
    """

    __slots__ = ("_call", "_used")

    def __init__(self, call: ServerCall) -> None:
        self._call = call
        self._used = False

    @property
    def call(self) -> ServerCall:
        return self._call

    def test_cancel(self) -> bool:
        """True once the client asked to cancel the call, its deadline passed, or the client went away."""
        return self._call.test_cancel()

    def done(self) -> bool:
        """True once ``complete``, ``abort`` or ``fail`` was called (or the handler failed first)."""
        return self._used

    def complete(self, value: Any = None) -> None:
        """Send ``value`` as the call's result (``RpcAsyncCompleteCall``).

        Raises:
            AlreadyCompleted: the token was already used.
        """
        self._finish(None, value)

    def abort(self, code: int, message: str = "") -> None:
        """Fail the call with an error ``code`` and ``message`` (``RpcAsyncAbortCall``).

        The client sees a :class:`~asyncrpc.RemoteError` with ``.code == code``,
        ``.type == "CallAborted"`` and ``.message == message``.

        Raises:
            ValueError: ``code`` is not a nonzero ``int``.
            AlreadyCompleted: the token was already used.
        """
        if type(code) is not int or code == 0:
            raise ValueError(f"abort() needs a nonzero integer code, not {code!r}")
        self._finish(
            RemoteError(message or f"call aborted with code {code}", type="CallAborted", code=code), None
        )

    def fail(self, error: BaseException) -> None:
        """Fail the call with an exception, as if the handler had raised it."""
        self._finish(error, None)

    def _finish(self, error: BaseException | None, value: Any) -> None:
        with _TOKEN_LOCK:
            if self._used:
                raise AlreadyCompleted(f"the call {self._call.method!r} was already completed")
            self._used = True
        call = self._call
        connection = call._connection
        loop = connection.loop
        if running_loop() is loop:
            connection._complete(call, error, value)
        else:
            _call_soon_threadsafe(loop, connection._complete, call, error, value)

    def __repr__(self) -> str:
        return f"<CompletionToken {self._call.method!r} {'used' if self._used else 'open'}>"
