"""The peer's calls to us on one connection: dispatch, the in-flight table, replies.

:class:`IncomingCalls` is made by the :class:`~asyncrpc.Connection`, which
hands it every request and notification it decodes. For each request it
finds the handler, checks what the peer may ask, and starts the call
(:mod:`asyncrpc.server_call` runs it); calls that outlive the read that
brought them (tasks, threads, deferred replies) wait in its table.

The in-flight limit is strict: when ``max_inflight`` of the peer's requests
and notifications are running, the connection stops reading, and what the
peer sends next waits unread in the socket (and in the decoder's buffer),
never in tasks. Reading resumes when one of them finishes.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from types import CoroutineType
from typing import TYPE_CHECKING, Any, Final

import anyio.to_thread

from asyncrpc._loops import keep_alive
from asyncrpc.dispatch import Dispatcher, HandlerKind
from asyncrpc.errors import DescribeFailed, EncodeError, MessageTooLarge, MethodNotFound, RemoteError
from asyncrpc.flow import PauseReason
from asyncrpc.remote_errors import PlainErrors, bounded, error_to_wire
from asyncrpc.server_call import ServerCall, peer_cancelled, peer_gone, run_inline, start_task
from asyncrpc.wire import extensions as ext

if TYPE_CHECKING:
    from asyncrpc.client import Client
    from asyncrpc.connection import Connection
    from asyncrpc.wire.events import Notification, Request

__all__ = ["IncomingCalls"]

logger = logging.getLogger("asyncrpc")

_INLINE: Final = HandlerKind.INLINE
_THREAD: Final = HandlerKind.THREAD
_IN_FLIGHT_LIMIT: Final = PauseReason.IN_FLIGHT_LIMIT

_NAME_IN_MESSAGES: Final = 80
"""Characters of a peer's method name that error replies and log lines repeat."""


def _short(name: str) -> str:
    """A peer's method name, bounded: error replies never echo unbounded input."""
    if len(name) <= _NAME_IN_MESSAGES:
        return repr(name)
    return f"{name[:_NAME_IN_MESSAGES]!r}... ({len(name)} characters)"


class IncomingCalls:
    """The peer's calls being answered on one connection.

    Args:
        connection: the connection the calls arrive on.
        dispatcher: the handlers shared by every connection of a server, or
            ``None`` for a connection with handlers of its own (a client's).
            What is registered through this object (``peer.register_function``)
            is answered on this connection only.
        max_inflight: requests and notifications running at once.
        extensions: answer the hello and the cancel notification.
        plain_errors: the error form for a peer without structured errors.
    """

    __slots__ = (
        "_connection",
        "_dispatcher",
        "_drain_waiters",
        "_extensions",
        "_local",
        "_locked",
        "_max_inflight",
        "_notifications",
        "_paused",
        "_peer",
        "_plain_errors",
        "_refusing",
        "_serving",
        "_shared",
        "loop",
    )

    def __init__(
        self,
        connection: Connection,
        dispatcher: Dispatcher | None,
        *,
        max_inflight: int,
        extensions: bool,
        plain_errors: PlainErrors = "neovim",
    ) -> None:
        self._connection = connection
        self._plain_errors = plain_errors
        #: The connection's loop, where every served call runs and is answered.
        self.loop = connection.loop
        self._shared = dispatcher
        # _dispatcher is what lookups use: the shared handlers until something
        # registers on this connection, then a layer of its own over them.
        self._local: Dispatcher | None = None
        if dispatcher is None:
            self._local = self._dispatcher = Dispatcher()
        else:
            self._dispatcher = dispatcher
        self._max_inflight = max_inflight
        self._extensions = extensions
        self._serving: dict[int, ServerCall] = {}
        self._notifications: set[asyncio.Task[None]] = set()
        self._paused = False  # whether we asked the connection to stop reading
        self._refusing = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._peer: Client | None = None
        # A server with auth= answers nothing but the hello until it accepts one.
        self._locked = connection.admission is not None and connection.admission.locked

    def unlock(self) -> None:
        """The peer is authenticated: its calls are answered from now on."""
        self._locked = False

    # -- what the peer may call ---------------------------------------------

    def _own_dispatcher(self) -> Dispatcher:
        if self._local is None:
            # Layered over the server's handlers: registrations stay on this connection.
            self._local = self._dispatcher = Dispatcher(parent=self._shared)
        return self._local

    def register(self, obj: object, namespace: str | None = None) -> list[str]:
        """Answer ``obj``'s public methods on this connection only."""
        return self._own_dispatcher().register(obj, namespace)

    def register_function(self, fn: Callable[..., Any], name: str | None = None) -> None:
        """Answer ``name`` with ``fn`` on this connection only."""
        self._own_dispatcher().register_function(fn, name)

    @property
    def principal(self) -> Any:
        """Who the peer is, as the server's authenticator said (``None`` without one)."""
        return self._connection.principal

    @property
    def peer_certificate(self) -> dict[str, Any] | None:
        """The peer's verified TLS certificate, or ``None``."""
        return self._connection.peer_certificate

    @property
    def peer(self) -> Client:
        """A :class:`~asyncrpc.Client` for calling the peer back on this connection."""
        if self._peer is None:
            from asyncrpc.client import Client  # the client module builds on this one

            self._peer = Client(self._connection)
        return self._peer

    # -- requests ------------------------------------------------------------

    def on_request(self, request: Request) -> None:
        method = request.method
        msgid = request.msgid
        if self._locked:
            self._before_admission(request)
            return
        handler = self._dispatcher.get(method)
        if handler is None:
            if method == ext.HELLO_METHOD and self._extensions:
                params = request.params
                self.reply(msgid, None, self._connection.hello_received(params[0] if params else None))
            elif method == ext.PING_METHOD and self._extensions:
                self.reply(msgid, None, None)
            elif method == ext.DESCRIBE_METHOD:
                self._describe(msgid)
            else:
                self.reply_error(msgid, MethodNotFound(f"no method {_short(method)}"))
            return
        if self._refusing:
            self.reply_error(msgid, RemoteError("server is shutting down", type="Unavailable"))
            return
        if msgid in self._serving:
            # Answering both would send two replies with one id; counting only
            # one would let a peer run any number of calls past max_inflight.
            self.reply_error(
                msgid,
                RemoteError(f"msgid {msgid} is already in use by a call in progress", type="InvalidRequest"),
            )
            return
        deadline = None
        extension = request.extension
        if extension is not None:
            timeout = extension.get(ext.EXT_TIMEOUT)
            # NaN would reach call_later (uvloop raises on it); inf means none.
            if (type(timeout) is float or type(timeout) is int) and math.isfinite(timeout):
                deadline = self.loop.time() + max(float(timeout), 0.0)
        call = ServerCall(self, msgid, method, deadline)
        if handler.kind is _INLINE:
            run_inline(call, handler, request.params)
        else:
            start_task(call, handler, request.params)

    def _before_admission(self, request: Request) -> None:
        admission = self._connection.admission
        assert admission is not None  # locked only by an admission
        if request.method == ext.HELLO_METHOD:
            admission.hello(request.msgid, request.params)
        else:
            admission.refuse_call(request.method, request.msgid)

    def _describe(self, msgid: int) -> None:
        """Answer the describe request: the whole description, or ``DescribeFailed`` saying why not."""
        from asyncrpc.reflection import describe  # loaded when first asked

        try:
            answer = describe(self._dispatcher)
        except Exception as exc:
            failed = exc if isinstance(exc, DescribeFailed) else None
            if failed is None:  # not one handler's: the answer as a whole
                failed = DescribeFailed(f"the methods cannot be described: {type(exc).__name__}: {exc}")
            # One line (a peer may ask again and again); the traceback only when debugging.
            logger.warning(
                "asyncrpc: cannot answer %s: %s",
                ext.DESCRIBE_METHOD,
                bounded(failed.message, 300),
                exc_info=exc if logger.isEnabledFor(logging.DEBUG) else None,
            )
            self.reply_error(msgid, failed)
            return
        self.reply(msgid, None, answer)

    def reply(self, msgid: int, error: Any, result: Any) -> None:
        """Encode and queue the response to ``msgid``."""
        connection = self._connection
        encoder = connection.encoder
        try:
            data = encoder.response(msgid, error, result)
        except EncodeError as exc:
            # The result, or an error object a plain_errors callable made.
            data = encoder.response(msgid, self._wire_error(exc, fallback=True), None)
        limit = connection.negotiated.max_message_size
        if len(data) > limit:
            too_large = MessageTooLarge(
                f"the reply is {len(data)} bytes encoded; the peer accepts at most {limit}"
            )
            data = encoder.response(msgid, self._wire_error(too_large), None)
        connection.send_reply(data, alone=not self._serving)

    def reply_error(self, msgid: int, exc: BaseException) -> None:
        """Answer ``msgid`` with ``exc``, in the error shape the peer reads."""
        self.reply(msgid, self._wire_error(exc), None)

    def _wire_error(self, exc: BaseException, *, fallback: bool = False) -> Any:
        structured = self._connection.negotiated.errors
        plain = "string" if fallback and not isinstance(self._plain_errors, str) else self._plain_errors
        try:
            return error_to_wire(exc, structured=structured, plain=plain)
        except Exception as failure:
            # The user's plain_errors callable failed: the call still gets an answer.
            logger.warning(
                "asyncrpc: plain_errors failed on %s: %s", type(exc).__name__, bounded(repr(failure), 300)
            )
            return error_to_wire(exc, structured=structured, plain="string")

    # -- the in-flight table --------------------------------------------------

    @property
    def in_flight(self) -> int:
        """The peer's requests and notifications running now."""
        return len(self._serving) + len(self._notifications)

    def track(self, call: ServerCall) -> None:
        """``call`` outlives the read that brought it: count it until it is answered."""
        serving = self._serving
        serving[call.msgid] = call
        if not self._paused and len(serving) + len(self._notifications) >= self._max_inflight:
            self._count_in()

    def untrack(self, call: ServerCall) -> None:
        """``call`` was answered (or its client went away)."""
        serving = self._serving
        if serving.get(call.msgid) is call:
            del serving[call.msgid]
        if self._paused or (self._drain_waiters and not serving):
            self._count_out()

    def _count_in(self) -> None:
        if not self._paused and self.in_flight >= self._max_inflight:
            self._paused = True
            self._connection.pause_reading(_IN_FLIGHT_LIMIT)

    def _count_out(self) -> None:
        if self._paused and self.in_flight < self._max_inflight:
            self._paused = False
            self._connection.resume_reading(_IN_FLIGHT_LIMIT)
        if self._drain_waiters and not self.in_flight:
            waiters, self._drain_waiters = self._drain_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def drain(self) -> None:
        """Wait until nothing the peer asked for is running (any number of waiters)."""
        if not self.in_flight or self._connection.is_closed:
            return
        waiter = self.loop.create_future()
        self._drain_waiters.append(waiter)
        await waiter

    def refuse_new_calls(self) -> None:
        """Answer new requests with an ``Unavailable`` error, drop new notifications (shutting down)."""
        self._refusing = True

    # -- notifications ----------------------------------------------------------

    def on_notification(self, notification: Notification) -> None:
        method = notification.method
        params = notification.params
        if self._locked:
            admission = self._connection.admission
            assert admission is not None
            admission.refuse_call(method, None)
            return
        if method == ext.CANCEL_METHOD and self._extensions:
            if params and type(params[0]) is int:
                call = self._serving.get(params[0])
                if call is not None:
                    peer_cancelled(call)
            return
        handler = self._dispatcher.get(method)
        if handler is None:
            logger.debug("asyncrpc: notification %s has no handler; ignored", _short(method))
            return
        if self._refusing:
            logger.debug("asyncrpc: notification %s ignored: shutting down", _short(method))
            return
        try:
            if handler.kind is _THREAD:
                fn = handler.fn
                awaitable: Any = anyio.to_thread.run_sync(lambda: fn(*params))
            else:
                awaitable = handler.fn(*params)
        except Exception as exc:
            self._notification_failed(method, exc)
            return
        if type(awaitable) is CoroutineType or handler.kind is not _INLINE:
            task = self.loop.create_task(self._run_notification(method, awaitable))
            self._notifications.add(task)
            task.add_done_callback(self._notification_done)
            self._count_in()

    async def _run_notification(self, method: str, awaitable: Any) -> None:
        try:
            await awaitable
        except Exception as exc:
            self._notification_failed(method, exc)

    def _notification_done(self, task: asyncio.Task[None]) -> None:
        self._notifications.discard(task)
        self._count_out()

    def _notification_failed(self, method: str, exc: Exception) -> None:
        # Nobody can be told (a notification has no reply): one line, and the
        # traceback only when debugging, so a peer cannot flood the log.
        logger.warning(
            "asyncrpc: notification handler %s raised %s: %s",
            _short(method),
            type(exc).__name__,
            bounded(str(exc), 300),
            exc_info=logger.isEnabledFor(logging.DEBUG),
        )

    # -- the end --------------------------------------------------------------------

    def connection_lost(self) -> list[asyncio.Task[None]]:
        """The socket is gone: every call still open is orphaned; drain waiters wake.

        Returns the handlers' tasks that still run (notification handlers,
        cooperative and ``@blocking`` ones), for a server to wait for on close.
        """
        running = [task for task in self._notifications if not task.done()]
        serving, self._serving = self._serving, {}
        for call in serving.values():
            task = peer_gone(call)
            if task is not None:
                running.append(task)
        for task in running:
            keep_alive(task)  # nothing else will hold this table once the connection is gone
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        return running
