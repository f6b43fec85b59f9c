"""Our calls to the peer: the call handle (``RPC_ASYNC_STATE``) and the table of pending ones.

Theory of operation
-------------------
A handle is made either ahead of time by the caller (``AsyncCall(notify=...,
user_info=...)``, the ``RpcAsyncInitializeHandle`` step) and passed as
``handle=``, or by ``client.call()`` itself. Starting a call gives the handle
one asyncio future, created on the connection's loop; there is no task per
call. The handle's outcome (result or error) is stored on the handle, so
``status()`` and ``complete()`` never block and work from any thread.

Every change of state goes through :data:`TRANSITIONS`, the single table of
the life of a handle::

    INITIALIZED --start-->   PENDING
    PENDING     --succeed--> COMPLETE
    PENDING     --fail-->    FAILED      (remote error, deadline, connection lost)
    PENDING     --cancel-->  CANCELLED   (abortive cancel, or the server cancelled)
    any but PENDING --reset--> INITIALIZED

A step missing from the table is refused: ``start`` or ``reset`` raise
:class:`HandleInUseError`; a second finishing step is ignored, which is what
makes completion (and its notification) happen exactly once.

:class:`OutgoingCalls` is the other half of the same lifecycle, one per
connection: it gives out msgids, keeps ``{msgid: AsyncCall}`` for the calls
waiting for a reply, routes each response to its call, tells the peer about
cancels, and fails everything still pending when the connection goes. It is
the only thing that moves a handle through the table, which is why both live
in this module.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, TypeVar

from asyncrpc._loops import running_loop, thread_ident
from asyncrpc.errors import (
    CallCancelled,
    CallPending,
    ConnectionLost,
    DeadlineExceeded,
    HandleInUseError,
    InvalidResult,
    MessageTooLarge,
    RPCError,
    TooManyPendingCalls,
)
from asyncrpc.notify.base import Notifier
from asyncrpc.remote_errors import error_from_wire
from asyncrpc.server_call import CURRENT_CALL, HandlerDeadlines
from asyncrpc.status import AsyncEvent, CallStatus
from asyncrpc.wire import extensions as ext
from asyncrpc.wire.describe import describe
from asyncrpc.wire.events import MAX_MSGID

if TYPE_CHECKING:
    from asyncrpc.connection import Connection
    from asyncrpc.server_call import ServerCall
    from asyncrpc.wire.encoder import Encoder
    from asyncrpc.wire.events import Response, ResponseTooLarge, StrayResponse

__all__ = ["TRANSITIONS", "AsyncCall", "OutgoingCalls", "WaitingCalls"]

logger = logging.getLogger("asyncrpc")

T = TypeVar("T")

Step = Literal["start", "succeed", "fail", "cancel", "reset"]

INITIALIZED: Final = CallStatus.INITIALIZED
PENDING: Final = CallStatus.PENDING
COMPLETE: Final = CallStatus.COMPLETE
FAILED: Final = CallStatus.FAILED
CANCELLED: Final = CallStatus.CANCELLED

TRANSITIONS: Final[dict[tuple[CallStatus, Step], CallStatus]] = {
    (INITIALIZED, "start"): PENDING,
    (PENDING, "succeed"): COMPLETE,
    (PENDING, "fail"): FAILED,
    (PENDING, "cancel"): CANCELLED,
    (INITIALIZED, "reset"): INITIALIZED,
    (COMPLETE, "reset"): INITIALIZED,
    (FAILED, "reset"): INITIALIZED,
    (CANCELLED, "reset"): INITIALIZED,
}

_CALL_COMPLETE: Final = AsyncEvent.CALL_COMPLETE

# The two steps every call takes, read from the table once: looking a step up
# hashes an Enum member, which runs Python code, twice per call. Every other
# step (and these, from any other state) goes through _advance().
_STARTED: Final = TRANSITIONS[(INITIALIZED, "start")]
_SUCCEEDED: Final = TRANSITIONS[(PENDING, "succeed")]


class AsyncCall(Generic[T]):
    """An asynchronous remote call: awaitable, pollable, cancellable.

    Args:
        notify: how completion is announced; one of the modes in
            :mod:`asyncrpc.notify`, or ``None`` to just ``await`` the call.
        user_info: anything; kept on the handle for the caller (``UserInfo``).

    Attributes:
        user_info: the caller's own value (``RPC_ASYNC_STATE.UserInfo``);
            asyncrpc never reads it, and :meth:`reset` keeps it. May be set
            at any time.
        last_event: the :class:`~asyncrpc.AsyncEvent` of the last
            notification (``RPC_ASYNC_STATE.Event``): ``None`` until the call
            finishes, then ``AsyncEvent.CALL_COMPLETE``.
        method: the remote method name of the current call, ``None`` before
            the handle is used (and after :meth:`reset`).

    ``await call`` gives the result or raises the call's error. See the
    "Calls and handles" page of the docs for the Windows RPC names each
    member stands for.

    Raises:
        TypeError: ``notify`` is not a notification mode.
    """

    __slots__ = (
        "__weakref__",
        "_calls",
        "_cancel_requested",
        "_convert",
        "_error",
        "_future",
        "_msgid",
        "_notify",
        "_result",
        "_status",
        "_timer",
        "last_event",
        "method",
        "user_info",
    )

    def __init__(self, notify: Notifier | None = None, user_info: Any = None) -> None:
        if notify is not None and not isinstance(notify, Notifier):
            raise TypeError(f"notify must be an asyncrpc.notify mode, not {type(notify).__name__}")
        self._notify = notify
        self.user_info = user_info
        self.last_event: AsyncEvent | None = None
        self.method: str | None = None
        self._status = INITIALIZED
        self._future: asyncio.Future[T] | None = None
        self._calls: OutgoingCalls | WaitingCalls | None = None  # while pending: the table it is in
        self._msgid = -1
        self._result: Any = None  # a T once COMPLETE
        self._error: BaseException | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._cancel_requested = False
        # A typed call's result check and conversion (see asyncrpc.typed_stub).
        self._convert: Callable[[Any], T] | None = None

    # -- the lifecycle table ----------------------------------------------

    def _advance(self, step: Step) -> bool:
        new = TRANSITIONS.get((self._status, step))
        if new is None:
            if step in ("start", "reset"):
                raise HandleInUseError(
                    f"cannot {step} a call handle that is {self._status.value}"
                    + (" (reset() it first)" if step == "start" else "")
                )
            return False
        self._status = new
        return True

    @classmethod
    def _started(
        cls,
        calls: OutgoingCalls | WaitingCalls,
        msgid: int,
        method: str,
        future: asyncio.Future[Any],
        *,
        notify: Notifier | None,
        convert: Callable[[Any], Any] | None,
    ) -> AsyncCall[Any]:
        """A new handle, already pending: what ``client.call()`` makes when not given one.

        :meth:`__init__` followed by :meth:`_start`, in one step: every call
        that is not given a handle comes here, and setting each field once
        (and checking ``notify`` once, in the caller) is measurably cheaper.
        The fields are those of :meth:`__init__`; keep the two together.
        """
        self: AsyncCall[Any] = cls.__new__(cls)
        self._notify = notify
        self.user_info = None
        self.last_event = None
        self.method = method
        self._status = PENDING
        self._future = future
        self._calls = calls
        self._msgid = msgid
        self._result = None
        self._error = None
        self._timer = None
        self._cancel_requested = False
        self._convert = convert
        return self

    def _start(
        self,
        calls: OutgoingCalls | WaitingCalls,
        msgid: int,
        method: str,
        future: asyncio.Future[Any],
        convert: Callable[[Any], Any] | None,
    ) -> None:
        """Make a handle given by the caller pending; the request is already encoded."""
        self._advance("start")
        self._calls = calls
        self._msgid = msgid
        self.method = method
        self._future = future
        self._convert = convert

    def _succeed(self, result: Any) -> None:
        if self._convert is not None:
            try:
                result = self._convert(result)
            except Exception as exc:  # a result that does not fit the interface
                self._fail(exc if isinstance(exc, InvalidResult) else InvalidResult(str(exc), result))
                return
        if self._status is PENDING:
            self._status = _SUCCEEDED
        elif not self._advance("succeed"):
            return
        self._result = result
        # A pending call always has its future; it is done already only if
        # the task awaiting it was cancelled (which cancels the future), and
        # a try costs nothing until it catches.
        future = self._future
        if future is not None:
            try:  # noqa: SIM105 - contextlib.suppress() would cost a context manager per call
                future.set_result(result)
            except asyncio.InvalidStateError:
                pass
        if self._timer is None and self._notify is None:
            # Most calls: no deadline, no mode to notify; _finished() inlined.
            self._calls = None
            self.last_event = _CALL_COMPLETE
        else:
            self._finished()

    def _fail(self, error: BaseException, *, cancelled: bool = False) -> None:
        if not self._advance("cancel" if cancelled else "fail"):
            return
        self._error = error
        future = self._future
        if future is not None and not future.done():
            future.set_exception(error)
            # The outcome lives on the handle, which the caller may read with
            # complete() instead of awaiting: don't let asyncio log the
            # future's exception as "never retrieved".
            future.exception()
        self._finished()

    def _finished(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._calls = None
        self.last_event = _CALL_COMPLETE
        if self._notify is not None:
            try:
                self._notify.deliver(self, _CALL_COMPLETE)
            except Exception:
                # A mode that cannot deliver (its loop is closed...) must not
                # break the connection's read path or the other calls on it.
                logger.exception("asyncrpc: %r could not deliver the completion of %r", self._notify, self)

    def _expire(self) -> None:
        self._timer = None
        calls = self._calls
        if self._status is PENDING and calls is not None:
            calls.abandon(self._msgid, deadline=True)
            self._fail(DeadlineExceeded(f"deadline passed for {self.method!r}"))

    # -- the public handle ------------------------------------------------

    @property
    def notify(self) -> Notifier | None:
        """The notification mode this handle delivers to."""
        return self._notify

    @property
    def msgid(self) -> int | None:
        """The msgpack-rpc message id of the current call, or ``None`` before it is sent."""
        # A call waiting for a reconnect has no id on the wire yet (a local, negative one).
        return None if self._status is INITIALIZED or self._msgid < 0 else self._msgid

    def status(self) -> CallStatus:
        """``PENDING``, ``COMPLETE``, ``FAILED`` or ``CANCELLED`` (``RpcAsyncGetCallStatus``).

        Never blocks, never raises; ``INITIALIZED`` for a handle not yet used.
        """
        return self._status

    def done(self) -> bool:
        """True once the call finished, whatever the outcome."""
        status = self._status
        return status is not PENDING and status is not INITIALIZED

    @property
    def cancel_requested(self) -> bool:
        """True once :meth:`cancel` was called while the call was pending."""
        return self._cancel_requested

    def complete(self) -> T:
        """The result of a finished call (``RpcAsyncCompleteCall``).

        Raises:
            CallPending: the call has not finished; nothing changes.
            RPCError: the call's own error (``RemoteError``, ``CallCancelled``,
                ``DeadlineExceeded``, ``ConnectionLost``...).
        """
        status = self._status
        if status is COMPLETE:
            result: T = self._result
            return result
        if status is PENDING:
            raise CallPending(f"call {self.method!r} is still pending")
        if status is INITIALIZED:
            raise HandleInUseError("this handle has not been used for a call")
        assert self._error is not None
        raise self._error

    def result(self) -> T:
        """Same as :meth:`complete`, by the name asyncio futures use."""
        return self.complete()

    def exception(self) -> BaseException | None:
        """The call's error, ``None`` if it succeeded; raises :class:`CallPending` while pending."""
        if self._status is PENDING:
            raise CallPending(f"call {self.method!r} is still pending")
        return self._error

    def cancel(self, abort: bool = True, *, timeout: float | None = None) -> bool:
        """Cancel the call (``RpcAsyncCancelCall``).

        With ``abort=True`` the call completes now as :class:`CallCancelled`
        (notified in its mode) and the server is told, where it speaks the
        cancel extension. With ``abort=False`` the server is told and the
        call stays pending until the server completes it: with its result if
        the handler finished anyway, with ``CallCancelled`` if it was
        cancelled. ``timeout`` (with ``abort=False``) turns the request into
        an abortive cancel if the server has not answered after that many
        seconds.

        Safe to call from any thread. Returns False if the call had already
        finished, which changes nothing.
        """
        calls = self._calls
        if self._status is not PENDING or calls is None:
            return False
        loop = calls.loop
        if running_loop() is not loop:
            loop.call_soon_threadsafe(self._cancel_on_loop, abort, timeout)
            return True
        self._cancel_on_loop(abort, timeout)
        return True

    def _cancel_on_loop(self, abort: bool, timeout: float | None) -> None:
        calls = self._calls
        if self._status is not PENDING or calls is None:
            return
        told = self._cancel_requested  # a non-abortive cancel already told the peer
        self._cancel_requested = True
        if abort:
            calls.abandon(self._msgid, deadline=False, told=told)
            self._fail(CallCancelled(f"call {self.method!r} cancelled"), cancelled=True)
            return
        if not told:
            calls.request_cancel(self._msgid)
        if timeout is not None:
            # One timer slot serves the deadline and the escalation: keep
            # whichever ends the call first.
            loop = calls.loop
            when = loop.time() + timeout
            timer = self._timer
            if timer is None or timer.when() > when:
                if timer is not None:
                    timer.cancel()
                self._timer = loop.call_at(when, self._cancel_on_loop, True, None)

    def reset(self) -> None:
        """Make a finished handle usable for another call (``RpcAsyncInitializeHandle`` again).

        Raises:
            HandleInUseError: the call is still pending.
        """
        self._advance("reset")
        self._future = None
        self._result = None
        self._error = None
        self._msgid = -1
        self.method = None
        self.last_event = None
        self._cancel_requested = False

    def add_done_callback(self, fn: Callable[[AsyncCall[T]], object]) -> None:
        """Call ``fn(call)`` on the connection's loop when the call finishes.

        As with asyncio futures, a callback added to a finished call is
        scheduled at once.
        """
        future = self._future
        if future is None:
            raise HandleInUseError("this handle has not been used for a call")
        future.add_done_callback(lambda _f: fn(self))

    def __await__(self) -> Generator[Any, None, T]:
        future = self._future
        if future is None:
            raise HandleInUseError("this handle has not been used for a call")
        try:
            return (yield from future)
        except asyncio.CancelledError:
            # The task awaiting the call was cancelled: cancel the call too
            # (abortively, telling the server), then let the task see it.
            if self._status is PENDING:
                self._cancel_on_loop(True, None)
            raise

    def __repr__(self) -> str:
        where = f" {self.method!r} #{self._msgid}" if self.method is not None else ""
        return f"<AsyncCall{where} {self._status.value}>"


def _check_options(handle: AsyncCall[Any] | None, notify: Notifier | None, timeout: float | None) -> None:
    """The checks of ``client.call()``'s options, raised before anything is sent."""
    if handle is not None and handle._status is not INITIALIZED:
        raise HandleInUseError(f"call handle is {handle._status.value}; reset() it before another call")
    if notify is not None and not isinstance(notify, Notifier):
        raise TypeError(f"notify must be an asyncrpc.notify mode, not {type(notify).__name__}")
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")


def _onward(timeout: float | None) -> float | None:
    """``timeout``, for a call made inside a handler whose own call has a deadline:
    no more than that one has left."""
    served = CURRENT_CALL.get(None)
    if served is not None and served.deadline is not None:
        return _within(timeout, served)
    return timeout


def _start_handle(
    table: OutgoingCalls | WaitingCalls,
    msgid: int,
    method: str,
    loop: asyncio.AbstractEventLoop,
    *,
    notify: Notifier | None,
    timeout: float | None,
    handle: AsyncCall[Any] | None,
    convert: Callable[[Any], Any] | None,
) -> AsyncCall[Any]:
    """Make the call's handle pending in ``table`` (a new one, or the caller's), its deadline set."""
    if handle is None:
        call = AsyncCall._started(table, msgid, method, loop.create_future(), notify=notify, convert=convert)
    else:
        if notify is not None:
            handle._notify = notify  # only now: a call that fails to start changes nothing
        handle._start(table, msgid, method, loop.create_future(), convert)
        call = handle
    if timeout is not None:
        call._timer = loop.call_later(timeout, call._expire)
    return call


def _within(timeout: float | None, served: ServerCall) -> float | None:
    """``timeout``, cut to what is left of ``served``'s deadline (0 once it has passed)."""
    left = served.time_remaining()
    if left is None or (timeout is not None and timeout <= left):
        return timeout
    return max(left, 0.0)


class OutgoingCalls:
    """Our calls pending on one connection: ``{msgid: AsyncCall}``.

    Made by the :class:`~asyncrpc.Connection`, which hands it every response
    and tells it when the socket is gone; everything else here happens on
    the caller's side of the connection (the client's ``call()``, a
    handle's ``cancel()``, a deadline timer).
    """

    __slots__ = (
        "_abandoned",
        "_connection",
        "_encoder",
        "_loop",
        "_max_pending",
        "_next_msgid",
        "_pending",
        "_stray_responses",
        "_thread",
    )

    def __init__(self, connection: Connection, *, max_pending: int) -> None:
        self._connection = connection
        self._encoder = connection.encoder
        self._max_pending = max_pending
        self._loop = connection.loop
        self._thread = connection.thread
        self._pending: dict[int, AsyncCall[Any]] = {}
        # Ids of calls that ended here (deadline, abortive cancel) while the peer
        # may still answer them: held, oldest first, so a late answer can never
        # complete a newer call that got the same id. At most max_pending are
        # held; beyond, the oldest is let go (it comes round again only after
        # 2**32 more calls). They do not count as pending calls.
        self._abandoned: dict[int, None] = {}
        self._next_msgid = 0
        self._stray_responses = 0

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop every call on this connection belongs to."""
        return self._loop

    def __len__(self) -> int:
        """Calls waiting for a reply, including ids held for calls that ended here."""
        return len(self._pending) + len(self._abandoned)

    @staticmethod
    def _wrong_caller(what: str) -> RuntimeError:
        # asyncio objects are bound to one loop and are not thread-safe: a call
        # made from elsewhere would fail later, far from its cause.
        return RuntimeError(
            f"{what} must be made on the event loop the client belongs to; "
            "from another thread or event loop use asyncrpc.sync.connect()"
        )

    def call(
        self,
        method: str,
        params: tuple[Any, ...] | list[Any],
        notify: Notifier | None = None,
        timeout: float | None = None,
        handle: AsyncCall[Any] | None = None,
        *,
        convert: Callable[[Any], Any] | None = None,
    ) -> AsyncCall[Any]:
        """Send a request; the returned handle is already pending.

        ``convert`` checks and converts the result before the call completes
        with it (a typed call); what it raises fails the call instead.

        Every error here is raised before anything is sent or any handle
        changes state, so no notification is ever delivered for it.
        """
        connection = self._connection
        if not connection.accepting_calls:
            raise ConnectionLost(f"cannot call {method!r}: {connection.closed_reason}")
        loop = self._loop
        # On its loop's thread, with that loop running: then the running loop
        # is that one (a thread runs one loop at a time). Cheaper than asking
        # running_loop(), which makes a system call.
        if thread_ident() != self._thread or not loop.is_running():
            raise self._wrong_caller("client.call()")
        if handle is not None or notify is not None or timeout is not None:
            _check_options(handle, notify, timeout)
        if HandlerDeadlines.seen:
            timeout = _onward(timeout)
        pending = self._pending
        if len(pending) >= self._max_pending:
            raise TooManyPendingCalls(f"{len(pending)} calls are pending on this connection (max_pending)")
        msgid = self._next_msgid
        if msgid in pending or msgid in self._abandoned:
            msgid = self._free_msgid(msgid)
        negotiated = connection.negotiated
        if timeout is not None and negotiated.deadline:
            data = self._encoder.request(msgid, method, params, {ext.EXT_TIMEOUT: float(timeout)})
        else:
            data = self._encoder.request(msgid, method, params)
        if len(data) > negotiated.max_message_size:
            raise self._too_large(f"call {method!r}", len(data))
        # Nothing can fail from here on: a call that fails to start changes nothing.
        self._next_msgid = (msgid + 1) & MAX_MSGID
        if handle is None and timeout is None:  # most calls: _start_handle() inlined
            call = AsyncCall._started(
                self, msgid, method, loop.create_future(), notify=notify, convert=convert
            )
        else:
            call = _start_handle(
                self, msgid, method, loop, notify=notify, timeout=timeout, handle=handle, convert=convert
            )
        # The only call pending has nobody to be coalesced with: it is written
        # at once; calls made beside it in the same loop turn leave together.
        alone = not pending
        pending[msgid] = call
        connection.send(data, alone=alone)
        return call

    def _free_msgid(self, msgid: int) -> int:
        """The first id from ``msgid`` on that no call still uses (after the ids wrapped)."""
        pending = self._pending
        abandoned = self._abandoned
        while msgid in pending or msgid in abandoned:
            msgid = (msgid + 1) & MAX_MSGID
        return msgid

    def adopt(self, call: AsyncCall[Any], method: str, params: tuple[Any, ...] | list[Any]) -> None:
        """Send a call that waited for this connection (a reconnect): it is pending
        already, its deadline timer running; the peer gets what is left of it."""
        connection = self._connection
        if not connection.accepting_calls:  # gone already: its calls have all failed
            call._fail(ConnectionLost(f"cannot call {method!r}: {connection.closed_reason}"))
            return
        timeout: float | None = None
        if call._timer is not None:
            timeout = max(call._timer.when() - self._loop.time(), 0.0)
        pending = self._pending
        msgid = self._next_msgid
        if msgid in pending or msgid in self._abandoned:
            msgid = self._free_msgid(msgid)
        negotiated = self._connection.negotiated
        try:
            if timeout is not None and negotiated.deadline:
                data = self._encoder.request(msgid, method, params, {ext.EXT_TIMEOUT: timeout})
            else:
                data = self._encoder.request(msgid, method, params)
            if len(data) > negotiated.max_message_size:
                raise self._too_large(f"call {method!r}", len(data))
        except RPCError as exc:  # the new peer accepts less than the last one did
            call._fail(exc)
            return
        self._next_msgid = (msgid + 1) & MAX_MSGID
        call._calls = self
        call._msgid = msgid
        pending[msgid] = call
        self._connection.send(data)

    def notify(self, method: str, params: tuple[Any, ...] | list[Any]) -> None:
        """Send a notification (no reply, no handle)."""
        connection = self._connection
        if not connection.accepting_calls:
            raise ConnectionLost(f"cannot notify {method!r}: {connection.closed_reason}")
        if thread_ident() != self._thread or not self._loop.is_running():
            raise self._wrong_caller("client.notify()")
        data = self._encoder.notification(method, params)
        if len(data) > connection.negotiated.max_message_size:
            raise self._too_large(f"notification {method!r}", len(data))
        connection.send(data)

    def _too_large(self, what: str, size: int) -> MessageTooLarge:
        limit = self._connection.negotiated.max_message_size
        return MessageTooLarge(f"{what} is {size} bytes encoded; the peer accepts at most {limit}")

    def abandon(self, msgid: int, *, deadline: bool, told: bool = False) -> None:
        """A call ended locally; hold its id until the peer answers, and tell the peer
        (unless it was ``told`` already by a non-abortive cancel)."""
        if self._pending.pop(msgid, None) is None:
            return
        abandoned = self._abandoned
        abandoned[msgid] = None
        if len(abandoned) > self._max_pending:
            del abandoned[next(iter(abandoned))]
        negotiated = self._connection.negotiated
        # With the deadline extension the peer enforces the deadline itself.
        if negotiated.cancel and not told and not (deadline and negotiated.deadline):
            self._send_cancel(msgid)

    def request_cancel(self, msgid: int) -> None:
        """Non-abortive cancel: ask the peer, keep waiting for its answer."""
        if self._connection.negotiated.cancel and msgid in self._pending:
            self._send_cancel(msgid)

    def _send_cancel(self, msgid: int) -> None:
        connection = self._connection
        if connection.accepting_calls:
            connection.send(self._encoder.notification(ext.CANCEL_METHOD, [msgid]))

    def on_response(self, response: Response) -> None:
        """Route a response to its call; one the table does not know is ignored."""
        call = self._pending.pop(response.msgid, None)
        if call is None:
            self._unmatched(response.msgid)
            return
        if response.error is None:
            call._succeed(response.result)
        else:
            error = error_from_wire(response.error)
            call._fail(error, cancelled=isinstance(error, CallCancelled))

    def on_too_large(self, response: ResponseTooLarge) -> None:
        """A response too large to read was skipped: only the call it answers fails."""
        call = self._pending.pop(response.msgid, None)
        if call is None:
            self._unmatched(response.msgid)
            return
        limit = self._connection.limits.max_message_size
        call._fail(
            MessageTooLarge(
                f"the reply to {call.method!r} is {response.size} bytes, larger than this side accepts "
                f"(Limits.max_message_size={limit}); it was skipped, and the connection goes on"
            )
        )

    def on_stray(self, response: StrayResponse) -> None:
        """A response with no valid msgid answers nothing: said once a connection, then ignored."""
        self._stray_responses += 1
        if self._stray_responses == 1:
            logger.warning(
                "asyncrpc: %s sent a response with msgid %s, which answers no call; ignored (error %s)",
                self._connection.get_extra_info("peername"),
                describe(response.msgid),
                describe(response.error),
            )

    def _unmatched(self, msgid: int) -> None:
        if msgid in self._abandoned:
            del self._abandoned[msgid]  # a late answer to a call that ended here
        else:
            logger.debug("asyncrpc: response for unknown msgid %d ignored", msgid)

    def fail_all(self, reason: str, cause: BaseException | None) -> None:
        """The connection is gone: every pending call fails with ``ConnectionLost(reason)``."""
        pending, self._pending = self._pending, {}
        self._abandoned.clear()
        for call in pending.values():
            error = ConnectionLost(reason)
            error.__cause__ = cause
            call._fail(error)


class WaitingCalls:
    """Calls made while a reconnecting client has no connection: pending, not sent.

    What a :class:`~asyncrpc.Client` made with ``reconnect=`` calls through
    between two connections. Each call is a pending handle from the start,
    its deadline timer running; it waits, in order, until the next
    connection takes it (:meth:`take`, then ``OutgoingCalls.adopt``), its
    deadline passes, it is cancelled, or the client gives up
    (:meth:`fail_all`). Its id is local (negative) until it is sent.
    """

    __slots__ = ("_encoder", "_loop", "_max_pending", "_next_id", "_reason", "_thread", "_waiting")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        thread: int,
        *,
        max_pending: int,
        encoder: Encoder,
        reason: str,
    ) -> None:
        self._loop = loop
        self._thread = thread
        self._max_pending = max_pending
        self._encoder = encoder  # to refuse, at the call site, what could never be sent
        self._reason = reason  # why there is no connection, for notify()
        self._next_id = -1
        self._waiting: dict[int, tuple[AsyncCall[Any], str, tuple[Any, ...] | list[Any]]] = {}

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop every call belongs to."""
        return self._loop

    def __len__(self) -> int:
        """Calls waiting for the connection."""
        return len(self._waiting)

    def call(
        self,
        method: str,
        params: tuple[Any, ...] | list[Any],
        notify: Notifier | None = None,
        timeout: float | None = None,
        handle: AsyncCall[Any] | None = None,
        *,
        convert: Callable[[Any], Any] | None = None,
    ) -> AsyncCall[Any]:
        """:meth:`OutgoingCalls.call`, for later: the same checks, the handle pending at once."""
        loop = self._loop
        if thread_ident() != self._thread or not loop.is_running():
            raise OutgoingCalls._wrong_caller("client.call()")
        _check_options(handle, notify, timeout)
        if len(self._waiting) >= self._max_pending:
            raise TooManyPendingCalls(f"{len(self._waiting)} calls wait for the connection (max_pending)")
        self._encoder.request(0, method, params)  # EncodeError now, not when sent
        if HandlerDeadlines.seen:
            timeout = _onward(timeout)
        local = self._next_id
        self._next_id = local - 1
        call = _start_handle(
            self, local, method, loop, notify=notify, timeout=timeout, handle=handle, convert=convert
        )
        self._waiting[local] = (call, method, params)
        return call

    def notify(self, method: str, params: tuple[Any, ...] | list[Any]) -> None:
        """Refused: a notification has no handle to wait with."""
        raise ConnectionLost(f"cannot notify {method!r}: {self._reason}")

    def abandon(self, msgid: int, *, deadline: bool, told: bool = False) -> None:
        """A waiting call ended here (deadline, abortive cancel): it is never sent."""
        self._waiting.pop(msgid, None)

    def request_cancel(self, msgid: int) -> None:
        """A non-abortive cancel of a call nobody has seen: it is cancelled at once."""
        entry = self._waiting.pop(msgid, None)
        if entry is not None:
            call = entry[0]
            call._fail(CallCancelled(f"call {call.method!r} cancelled before it was sent"), cancelled=True)

    def take(self) -> list[tuple[AsyncCall[Any], str, tuple[Any, ...] | list[Any]]]:
        """Every call still waiting, oldest first, for the new connection to send."""
        waiting = list(self._waiting.values())
        self._waiting.clear()
        return waiting

    def fail_all(self, reason: str, cause: BaseException | None) -> None:
        """No connection will come: every waiting call fails with ``ConnectionLost(reason)``."""
        for call, _, _ in self.take():
            error = ConnectionLost(reason)
            error.__cause__ = cause
            call._fail(error)
