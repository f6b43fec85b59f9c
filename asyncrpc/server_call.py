"""The server's side of one call: what a handler can learn and do about it.

Inside a handler, :func:`current_call` gives the :class:`ServerCall`. A handler
can return its result, or :meth:`ServerCall.defer` the reply and hand the
:class:`CompletionToken` to any task or thread that finishes the call later
(the server-side ``RpcAsyncCompleteCall`` / ``RpcAsyncAbortCall``).

Theory of operation
-------------------
Every change of a served call's state goes through :data:`TRANSITIONS`::

    RUNNING  --defer-->       DEFERRED   a CompletionToken will send the reply
    RUNNING  --answer-->      ANSWERED   the handler's result or error was sent
    DEFERRED --answer-->      ANSWERED   the token was used (or the handler failed first)
    RUNNING  --disconnect-->  ORPHANED   the client went away; nothing can be sent
    DEFERRED --disconnect-->  ORPHANED

A second ``answer`` is refused by the table, which is what makes the reply go
out exactly once whatever races (a token used from a thread while a deadline
fires on the loop). Whether the client asked to cancel is a separate fact
(:meth:`ServerCall.test_cancel`): a cancel request changes no state, the call
still has to be answered.

How a call runs is decided by its handler (:mod:`asyncrpc.dispatch`): inline,
in a task of its own, or in a worker thread. The runners are here, with the
lifecycle they drive; :class:`~asyncrpc.incoming.IncomingCalls`, the table
of one connection's served calls, uses only the functions at the end of this
module.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import logging
import threading
from collections.abc import Callable, Coroutine
from types import CoroutineType
from typing import TYPE_CHECKING, Any, Final

import anyio.to_thread

from asyncrpc._loops import keep_alive, running_loop
from asyncrpc.dispatch import Handler, HandlerKind
from asyncrpc.errors import AlreadyCompleted, CallCancelled, DeadlineExceeded, RemoteError
from asyncrpc.status import AsyncEvent

if TYPE_CHECKING:
    from asyncrpc.client import Client
    from asyncrpc.incoming import IncomingCalls

__all__ = ["TRANSITIONS", "CompletionToken", "ServedState", "ServerCall", "current_call"]

logger = logging.getLogger("asyncrpc")

CURRENT_CALL: Final[contextvars.ContextVar[ServerCall]] = contextvars.ContextVar("asyncrpc_current_call")
"""The call the running handler answers, set around each handler (what :func:`current_call` reads)."""


class HandlerDeadlines:
    """Whether any handler in this process has been given a deadline yet.

    Until one has, no call can be made inside a handler with a deadline, and
    ``client.call()`` need not read :data:`CURRENT_CALL` (in a task of its
    own, each read is a lookup in that task's context, some 0.2 µs a call).
    Set once, never reset.
    """

    seen = False


def current_call() -> ServerCall:
    """The call the running handler is answering.

    Works in plain, ``async`` and ``@blocking`` handlers (and in tasks they
    start, which copy the context).

    Raises:
        RuntimeError: called outside a handler.
    """
    try:
        return CURRENT_CALL.get()
    except LookupError:
        raise RuntimeError("asyncrpc.current_call() is only available inside a handler") from None


class ServedState(enum.Enum):
    """Where a served call is in its life (:attr:`ServerCall.state`).

    A call starts ``RUNNING`` and ends ``ANSWERED`` or ``ORPHANED``; each
    step is in the module's table, so the reply goes out at most once.

    Attributes:
        RUNNING: the handler is running (or has returned and the reply is
            being sent).
        DEFERRED: the handler called :meth:`ServerCall.defer`; a
            :class:`CompletionToken` will send the reply.
        ANSWERED: the reply (result or error) was sent.
        ORPHANED: the client went away before the reply; nothing can be sent.
    """

    RUNNING = "running"
    DEFERRED = "deferred"
    ANSWERED = "answered"
    ORPHANED = "orphaned"


RUNNING: Final = ServedState.RUNNING
DEFERRED: Final = ServedState.DEFERRED
ANSWERED: Final = ServedState.ANSWERED
ORPHANED: Final = ServedState.ORPHANED

TRANSITIONS: Final[dict[tuple[ServedState, str], ServedState]] = {
    (RUNNING, "defer"): DEFERRED,
    (RUNNING, "answer"): ANSWERED,
    (DEFERRED, "answer"): ANSWERED,
    (RUNNING, "disconnect"): ORPHANED,
    (DEFERRED, "disconnect"): ORPHANED,
}

_THREAD: Final = HandlerKind.THREAD

# The step every inline call takes, read from the table once (as the call
# handle does): looking it up hashes an Enum member, which runs Python code.
_ANSWERED_AT_ONCE: Final = TRANSITIONS[(RUNNING, "answer")]

Listener = Callable[["ServerCall", AsyncEvent], object]


class ServerCall:
    """One request being answered; :func:`current_call` gives it to the handler.

    Attributes:
        method: the method name called.
        msgid: the request's message id.
        deadline: the ``loop.time()`` at which the caller's deadline passes,
            or ``None`` when the caller set none (or its peer cannot say).
        cooperative: the handler polls :meth:`test_cancel` instead of being
            cancelled (``@asyncrpc.cooperative`` and ``@asyncrpc.blocking``).
    """

    __slots__ = (
        "__weakref__",
        "_calls",
        "_cancel_reason",
        "_deferred",
        "_listeners",
        "_state",
        "_task",
        "_timer",
        "_tracked",
        "cooperative",
        "deadline",
        "method",
        "msgid",
    )

    def __init__(self, calls: IncomingCalls, msgid: int, method: str, deadline: float | None = None) -> None:
        self._calls = calls
        self.msgid = msgid
        self.method = method
        self.deadline = deadline
        if deadline is not None:
            HandlerDeadlines.seen = True
        self.cooperative = False
        self._state = RUNNING
        self._cancel_reason: type[CallCancelled] | type[DeadlineExceeded] | None = None
        self._deferred: CompletionToken | None = None
        self._tracked = False  # in the connection's table: it outlives its request's read
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._listeners: list[tuple[AsyncEvent, Listener]] | None = None

    # -- the lifecycle table ------------------------------------------------

    def _advance(self, step: str) -> bool:
        new = TRANSITIONS.get((self._state, step))
        if new is None:
            return False
        self._state = new
        return True

    @property
    def state(self) -> ServedState:
        """Where the call is: running, deferred, answered or orphaned."""
        return self._state

    # -- what a handler asks ------------------------------------------------

    def test_cancel(self) -> bool:
        """True once the client asked to cancel, the deadline passed, or the client
        went away (``RpcServerTestCancel``).

        Changes nothing: the call still has to be completed (or the handler
        cancelled by it). Safe from any thread.
        """
        return self._cancel_reason is not None

    @property
    def principal(self) -> Any:
        """Who is calling, as the server's authenticator (``Server(auth=)``) named
        them when the connection was let in; ``None`` on a server without ``auth``."""
        return self._calls.principal

    @property
    def peer_certificate(self) -> dict[str, Any] | None:
        """The caller's verified TLS client certificate, as :meth:`ssl.SSLSocket.getpeercert`
        gives it (``subject``, ``issuer``, ``notAfter``...); ``None`` without TLS or
        when the client sent none (mutual TLS makes it required)."""
        return self._calls.peer_certificate

    @property
    def peer(self) -> Client:
        """A client for calling back the peer that made this call, on the same connection.

        What is registered on it (``peer.register_function(...)``,
        ``peer.register(...)``) is answered on this connection only, and a
        name registered there hides the server's method of the same name
        for this connection. The server's other connections never see it.
        """
        return self._calls.peer

    @property
    def deferred(self) -> bool:
        """True once :meth:`defer` took over the reply."""
        return self._deferred is not None

    def time_remaining(self) -> float | None:
        """Seconds until the deadline (may be negative), or ``None`` without one."""
        if self.deadline is None:
            return None
        return self.deadline - self._calls.loop.time()

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
            if self._state is ANSWERED:
                raise RuntimeError(f"defer() called after {self.method!r} was answered")
            self._advance("defer")  # an orphaned call stays orphaned; its token sends nothing
            token = self._deferred = CompletionToken(self)
            self._track()
        return token

    def on_disconnect(self, fn: Listener) -> None:
        """Run ``fn(call, AsyncEvent.CLIENT_DISCONNECT)`` once if the client goes away with this call open.

        Registered after the client already went away, ``fn`` runs at once.
        Safe from any thread; ``fn`` always runs on the connection's loop.
        """
        self._listen(AsyncEvent.CLIENT_DISCONNECT, fn)

    def on_cancel(self, fn: Listener) -> None:
        """Run ``fn(call, AsyncEvent.CLIENT_CANCEL)`` once when the client asks to cancel this call
        (or its deadline passes).

        Registered after the cancel request came, ``fn`` runs at once. Safe
        from any thread; ``fn`` always runs on the connection's loop.
        """
        self._listen(AsyncEvent.CLIENT_CANCEL, fn)

    def _listen(self, event: AsyncEvent, fn: Listener) -> None:
        loop = self._calls.loop
        if running_loop() is not loop:
            # Listeners are only touched on the loop, so a @blocking handler
            # registering one never races with the loop firing them.
            _call_soon_threadsafe(loop, self._listen, event, fn)
            return
        if event is AsyncEvent.CLIENT_DISCONNECT:
            happened = self._state is ORPHANED
        else:
            happened = self._cancel_reason is not None and self._state is not ORPHANED
        if happened:
            self._run_listener(event, fn)
            return
        if self._state is ANSWERED or self._state is ORPHANED:
            return  # neither event can come any more
        if self._listeners is None:
            self._listeners = []
        self._listeners.append((event, fn))
        self._track()

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

    def _run_listener(self, event: AsyncEvent, fn: Listener) -> None:
        try:
            fn(self, event)
        except Exception:
            logger.exception("asyncrpc: %s listener for %r raised", event.name, self.method)

    # -- the connection's side (always on its loop) -------------------------

    def _track(self) -> None:
        """The call outlives the read that brought it: enter the connection's table."""
        if self._tracked:
            return
        self._tracked = True
        calls = self._calls
        calls.track(self)
        if self.deadline is not None and self._timer is None:
            loop = calls.loop
            self._timer = loop.call_later(max(self.deadline - loop.time(), 0.0), self._expire)

    def _answer(self, error: BaseException | None, value: Any) -> None:
        """Send the reply: the one place a served call ends."""
        if self._state is RUNNING:
            self._state = _ANSWERED_AT_ONCE
        elif not self._advance("answer"):
            return  # answered already, or nobody left to answer
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._listeners = None
        calls = self._calls
        if self._tracked:
            calls.untrack(self)
        if error is None:
            calls.reply(self.msgid, None, value)
        else:
            calls.reply_error(self.msgid, error)

    def _handler_failed(self, exc: BaseException) -> None:
        token = self._deferred
        if token is not None:
            # Deferred calls are finished by their token; an exception that
            # escapes the handler first still ends the call, exactly once.
            if not token.done():
                with contextlib.suppress(AlreadyCompleted):  # a thread got there first
                    token.fail(exc)
            return
        if not isinstance(exc, CallCancelled | DeadlineExceeded | RemoteError):
            logger.debug("asyncrpc: handler %r raised %r", self.method, exc)
        self._answer(exc, None)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _request_cancel(self, reason: type[CallCancelled] | type[DeadlineExceeded]) -> None:
        if self._state is ANSWERED or self._state is ORPHANED or self._cancel_reason is not None:
            return
        self._cancel_reason = reason
        self._stop_timer()
        self._fire(AsyncEvent.CLIENT_CANCEL)
        task = self._task
        if task is not None and not self.cooperative and not task.done():
            # A task cancelled before its first step never runs its body, so
            # make sure the call is answered once the task is over.
            task.add_done_callback(self._answer_if_silent)
            task.cancel()

    def _answer_if_silent(self, _task: asyncio.Task[None]) -> None:
        if self._state is RUNNING or self._state is DEFERRED:
            self._handler_failed(self._cancel_error())

    def _expire(self) -> None:
        self._timer = None
        self._request_cancel(DeadlineExceeded)

    def _cancel_error(self) -> CallCancelled | DeadlineExceeded:
        if self._cancel_reason is DeadlineExceeded:
            return DeadlineExceeded(f"deadline passed for {self.method!r} on the server")
        return CallCancelled(f"{self.method!r} cancelled on the server")

    def _disconnected(self) -> None:
        """The connection is gone with this call open: nobody can hear its reply now."""
        if not self._advance("disconnect"):
            return
        if self._cancel_reason is None:
            # Cooperative and @blocking handlers poll test_cancel(): let them stop.
            self._cancel_reason = CallCancelled
        self._stop_timer()
        self._fire(AsyncEvent.CLIENT_DISCONNECT)
        self._listeners = None
        task = self._task
        if task is not None and not task.done():
            # Nothing holds the connection (or its table) any more, and the
            # loop keeps only weak references to tasks: a cooperative or
            # cancelled handler must still be allowed to finish.
            keep_alive(task)
            if not self.cooperative:
                task.cancel()

    def __repr__(self) -> str:
        return f"<ServerCall {self.method!r} #{self.msgid} {self._state.value}>"


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
        """The deferred call this token finishes."""
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
        loop = call._calls.loop
        if running_loop() is loop:
            call._answer(error, value)
        else:
            _call_soon_threadsafe(loop, call._answer, error, value)

    def __repr__(self) -> str:
        return f"<CompletionToken {self._call.method!r} {'used' if self._used else 'open'}>"


# -- what the connection's table of served calls does to a call ---------------
# (IncomingCalls uses these and nothing else of this module's internals.)


def run_inline(call: ServerCall, handler: Handler, params: list[Any]) -> None:
    """Run a plain ``def`` handler right here, in the read that brought the request."""
    token = CURRENT_CALL.set(call)
    try:
        result = handler.fn(*params)
    except Exception as exc:
        call._handler_failed(exc)
        return
    finally:
        CURRENT_CALL.reset(token)
    if type(result) is CoroutineType:
        # A plain callable that returned a coroutine: finish it in a task.
        coroutine: Coroutine[Any, Any, Any] = result
        call._task = call._calls.loop.create_task(_await_result(call, lambda: coroutine, ()))
        call._track()
    elif call._state is RUNNING:
        if call._tracked:  # it listened for a cancel, or the like
            call._answer(None, result)
        else:
            # The common case, _answer() inlined: no table, no timer, no listeners.
            call._state = _ANSWERED_AT_ONCE
            call._calls.reply(call.msgid, None, result)


def start_task(call: ServerCall, handler: Handler, params: list[Any]) -> None:
    """Run an ``async def`` handler in a task of its own, or a ``@blocking`` one in a worker thread."""
    call.cooperative = handler.cooperative
    if handler.kind is _THREAD:
        coroutine = _run_in_thread(call, handler, params)
    else:
        # The handler's coroutine is made inside the task, so a task
        # cancelled before its first step leaves no coroutine unawaited.
        coroutine = _await_result(call, handler.fn, params)
    call._task = call._calls.loop.create_task(coroutine)
    call._track()


def peer_cancelled(call: ServerCall) -> None:
    """The peer asked to cancel ``call`` (the cancel extension)."""
    call._request_cancel(CallCancelled)


def peer_gone(call: ServerCall) -> asyncio.Task[None] | None:
    """The connection is gone with ``call`` open; returns its handler's task if it still runs
    (a cooperative or ``@blocking`` handler finishing, or one being cancelled)."""
    call._disconnected()
    task = call._task
    return task if task is not None and not task.done() else None


async def _await_result(
    call: ServerCall, fn: Callable[..., Any], params: list[Any] | tuple[Any, ...]
) -> None:
    CURRENT_CALL.set(call)
    try:
        result = await fn(*params)
    except asyncio.CancelledError:
        if call._cancel_reason is not None:
            # The peer's cancel or deadline: that is an answer, not a crash.
            call._handler_failed(call._cancel_error())
            return
        # Cancelled from our side (connection gone, loop shutting down):
        # answer if anyone can still hear, then stay cancelled.
        call._handler_failed(CallCancelled(f"{call.method!r} cancelled by the server"))
        raise
    except Exception as exc:
        call._handler_failed(exc)
    else:
        if call._state is RUNNING:
            call._answer(None, result)


async def _run_in_thread(call: ServerCall, handler: Handler, params: list[Any]) -> None:
    CURRENT_CALL.set(call)  # anyio runs the function in a copy of this context
    try:
        result = await anyio.to_thread.run_sync(lambda: handler.fn(*params))
    except Exception as exc:
        call._handler_failed(exc)
    else:
        if call._state is RUNNING:
            call._answer(None, result)
