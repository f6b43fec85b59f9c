"""One msgpack-rpc connection, both ends in one type.

msgpack-rpc is symmetric: whichever side connected, each end may call the
other. A :class:`Connection` is the asyncio ``Protocol`` for one socket; it
owns the sans-IO decoder and encoder, the table of our pending calls (keyed by
msgid) and the table of the peer's calls we are answering.

The fast path, by construction:

* ``data_received`` feeds the decoder and drains every complete message in one
  loop; replies made while it runs leave in one write at its end.
* a call is one :class:`~asyncrpc.AsyncCall` with one future: no task, no
  ``wait_for``; its deadline is a ``call_later`` timer.
* writes made outside ``data_received`` (callers in many tasks) are coalesced
  into one ``transport.write`` per loop iteration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
from types import CoroutineType
from typing import TYPE_CHECKING, Any, Final

import anyio.to_thread

from asyncrpc._loops import running_loop
from asyncrpc.dispatch import Dispatcher, Handler, HandlerKind
from asyncrpc.errors import (
    AlreadyCompleted,
    CallCancelled,
    ConnectionLost,
    DeadlineExceeded,
    EncodeError,
    HandleInUseError,
    MethodNotFound,
    ProtocolError,
    RemoteError,
    TooManyPendingCalls,
)
from asyncrpc.handle import AsyncCall
from asyncrpc.notify.base import Notifier
from asyncrpc.options import DEFAULT_MAX_INFLIGHT, DEFAULT_MAX_PENDING
from asyncrpc.remote_errors import error_from_wire, error_to_wire
from asyncrpc.server_call import ServerCall, _current
from asyncrpc.status import CallStatus
from asyncrpc.wire import extensions as ext
from asyncrpc.wire.codec import Decoder, Encoder
from asyncrpc.wire.events import MAX_MSGID, Request, Response
from asyncrpc.wire.limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    from collections.abc import Callable

    from asyncrpc.client import Client

__all__ = ["Connection"]

logger = logging.getLogger("asyncrpc")


class _Abandoned:
    """Marks a msgid whose call ended locally (abortive cancel, deadline) while
    the peer may still answer it: the id stays reserved until that answer comes,
    so a late reply can never complete a newer call that reused the id."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<abandoned>"


ABANDONED: Final = _Abandoned()

_REPLY_CHUNK: Final = 16
"""Replies queued before they are written without waiting for the rest.

Replies made in one read (inline handlers) or one loop turn (handler tasks)
would otherwise leave in one write at its end, and the peer would sit idle
until then. Writing every 16 lets the peer work on the first replies while
we make the rest: on two cores this took 64 callers on one connection from
~1.2x to ~2x the minimal baseline's throughput (docs/benchmarks.md).
Requests from many callers still leave in one write per loop turn.
"""

_RUNNING: set[asyncio.Task[Any]] = set()


def _keep_alive(task: asyncio.Task[Any]) -> None:
    """Hold a strong reference to a task nobody else holds until it ends."""
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)


_INITIALIZED: Final = CallStatus.INITIALIZED
_INLINE: Final = HandlerKind.INLINE
_THREAD: Final = HandlerKind.THREAD


class Connection(asyncio.Protocol):
    """The protocol object for one socket; see the module docstring."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        limits: Limits = DEFAULT_LIMITS,
        max_pending: int = DEFAULT_MAX_PENDING,
        max_inflight: int = DEFAULT_MAX_INFLIGHT,
        extensions: bool = True,
        on_lost: Callable[[Connection], object] | None = None,
    ) -> None:
        self._dispatcher = dispatcher
        self._decoder = Decoder(limits)
        self._encoder = Encoder()
        self._max_pending = max_pending
        self._max_inflight = max_inflight
        self._extensions_enabled = extensions
        self._on_lost = on_lost
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transport: asyncio.Transport | None = None
        self._pending: dict[int, AsyncCall[Any] | _Abandoned] = {}
        self._serving: dict[int, ServerCall] = {}
        self._next_msgid = 0
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._in_receive = False
        self._reading_paused = False
        self._closing = False
        self._refusing = False
        self._lost: ConnectionLost | None = None
        self._protocol_error: ProtocolError | None = None
        self._closed: asyncio.Future[None] | None = None
        self._peer_client: Client | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        #: Extension features both ends speak (empty for a plain peer).
        self.features: frozenset[str] = frozenset()
        self._peer_cancel = False
        self._peer_deadline = False
        self._peer_errors = False

    # -- asyncio.Protocol -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; both have
        # the methods we use.
        self._transport = transport  # type: ignore[assignment]
        self._loop = asyncio.get_running_loop()
        self._closed = self._loop.create_future()
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):  # platform-dependent
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self._in_receive = True
        try:
            decoder = self._decoder
            decoder.receive_data(data)
            for event in decoder:
                kind = type(event)
                if kind is Response:
                    self._on_response(event)  # type: ignore[arg-type]
                elif kind is Request:
                    self._on_request(event)  # type: ignore[arg-type]
                else:
                    self._on_notification(event.method, event.params)  # type: ignore[union-attr]
        except ProtocolError as exc:
            self._fail_protocol(exc)
        finally:
            self._in_receive = False
            if self._out:
                self._flush()

    def eof_received(self) -> bool | None:
        unread = self._decoder.buffered
        if unread and self._protocol_error is None:
            # The peer cut a message short: log it, and let pending calls see why.
            self._fail_protocol(
                ProtocolError(
                    f"peer closed the connection in the middle of a message ({unread} bytes unread)"
                )
            )
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._out.clear()
        cause: BaseException | None = self._protocol_error or exc
        if self._closing and cause is None:
            reason = "connection closed"
        else:
            reason = f"connection lost: {cause}" if cause else "connection closed by peer"
        self._lost = ConnectionLost(reason)
        self._lost.__cause__ = cause

        pending, self._pending = self._pending, {}
        for call in pending.values():
            if call is not ABANDONED:
                error = ConnectionLost(reason)
                error.__cause__ = cause
                call._fail(error)  # type: ignore[union-attr]

        serving, self._serving = self._serving, {}
        for server_call in serving.values():
            server_call._disconnected()
            task = server_call._task
            if task is not None and not task.done():
                # Nothing holds this connection (or its table) any more, and
                # the loop keeps only weak references to tasks: a cooperative
                # or cancelled handler must still be allowed to finish.
                _keep_alive(task)

        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)
        if self._on_lost is not None:
            self._on_lost(self)

    def pause_writing(self) -> None:
        # The peer is not reading what we send: stop reading what it sends,
        # so it cannot make us buffer replies without bound.
        self._pause_reading()

    def resume_writing(self) -> None:
        self._resume_reading()

    # -- the two tables ---------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "connection not made yet"
        return self._loop

    @property
    def is_open(self) -> bool:
        return self._lost is None and self._transport is not None and not self._closing

    @property
    def pending_count(self) -> int:
        """Our calls waiting for a reply (including ids held for abandoned calls)."""
        return len(self._pending)

    @property
    def serving_count(self) -> int:
        """The peer's calls we are still answering (tasks, threads and deferred tokens)."""
        return len(self._serving)

    @property
    def peer(self) -> Client:
        """A :class:`~asyncrpc.Client` for calling the peer on this connection."""
        if self._peer_client is None:
            from asyncrpc.client import Client  # client imports us

            self._peer_client = Client(self, self._dispatcher)
        return self._peer_client

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if self._transport is None:
            return default
        return self._transport.get_extra_info(name, default)

    # -- making calls -------------------------------------------------------------

    def call(
        self,
        method: str,
        params: tuple[Any, ...] | list[Any],
        notify: Notifier | None = None,
        timeout: float | None = None,
        handle: AsyncCall[Any] | None = None,
    ) -> AsyncCall[Any]:
        """Send a request; the returned handle is already pending.

        Every error here is raised before anything is sent or any handle
        changes state, so no notification is ever delivered for it.
        """
        if self._lost is not None or self._closing:
            raise ConnectionLost(f"cannot call {method!r}: connection is closed")
        if handle is None:
            call: AsyncCall[Any] = AsyncCall(notify)
        else:
            if handle._status is not _INITIALIZED:
                raise HandleInUseError(
                    f"call handle is {handle._status.value}; reset() it before another call"
                )
            if notify is not None and not isinstance(notify, Notifier):
                raise TypeError(f"notify must be an asyncrpc.notify mode, not {type(notify).__name__}")
            call = handle
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        pending = self._pending
        if len(pending) >= self._max_pending:
            raise TooManyPendingCalls(f"{len(pending)} calls are pending on this connection (max_pending)")
        msgid = self._next_msgid
        while msgid in pending:  # skip ids still in use after a wrap
            msgid = (msgid + 1) & MAX_MSGID
        if timeout is not None and self._peer_deadline:
            data = self._encoder.request(msgid, method, params, {ext.EXT_TIMEOUT: float(timeout)})
        else:
            data = self._encoder.request(msgid, method, params)
        self._next_msgid = (msgid + 1) & MAX_MSGID
        if handle is not None and notify is not None:
            handle._notify = notify  # only now: a call that fails to start changes nothing
        call._start(self, msgid, method, self._loop, timeout)  # type: ignore[arg-type]
        pending[msgid] = call
        self._send(data)
        return call

    def _awaited(self) -> None:
        """A caller waits for its call: if that is the only call pending, send
        it now instead of at the end of the loop turn (a lone caller has no
        one to coalesce with, and would only wait longer)."""
        if (
            self._out
            and not self._in_receive
            and len(self._pending) == 1
            and running_loop() is self._loop  # never write from another thread
        ):
            self._flush()

    def notify(self, method: str, params: tuple[Any, ...] | list[Any]) -> None:
        """Send a notification (no reply)."""
        if self._lost is not None or self._closing:
            raise ConnectionLost(f"cannot notify {method!r}: connection is closed")
        self._send(self._encoder.notification(method, params))

    def _abandon(self, msgid: int, *, deadline: bool, told: bool = False) -> None:
        """A call ended locally; hold its id until the peer answers, and tell the peer
        (unless it was ``told`` already by a non-abortive cancel)."""
        if msgid not in self._pending:
            return
        self._pending[msgid] = ABANDONED
        # With the deadline extension the peer enforces the deadline itself.
        if self._peer_cancel and not told and not (deadline and self._peer_deadline):
            self._send_cancel(msgid)

    def _request_cancel(self, msgid: int) -> None:
        """Non-abortive cancel: ask the peer, keep waiting for its answer."""
        if self._peer_cancel and msgid in self._pending:
            self._send_cancel(msgid)

    def _send_cancel(self, msgid: int) -> None:
        if self._transport is not None:
            self._send(self._encoder.notification(ext.CANCEL_METHOD, [msgid]))

    def _on_response(self, response: Response) -> None:
        call = self._pending.pop(response.msgid, None)
        if call is None:
            logger.debug("asyncrpc: response for unknown msgid %d ignored", response.msgid)
            return
        if call is ABANDONED:
            return
        if response.error is None:
            call._succeed(response.result)  # type: ignore[union-attr]
        else:
            error = error_from_wire(response.error)
            call._fail(error, cancelled=isinstance(error, CallCancelled))  # type: ignore[union-attr]

    # -- extension negotiation -------------------------------------------------------

    async def negotiate(self, timeout: float = 5.0) -> frozenset[str]:
        """Probe the peer for asyncrpc's extensions (see ``docs/protocol.md``).

        A plain peer answers the probe with an error, and nothing else that it
        would not understand is ever sent to it.
        """
        if not self._extensions_enabled:
            return self.features
        self._decoder.accept_extension = True
        probe = self.call(ext.HELLO_METHOD, [ext.hello_payload()], timeout=timeout)
        try:
            offered = ext.parse_hello(await probe)
        except (RemoteError, DeadlineExceeded):
            offered = frozenset()
        self._set_features(offered)
        return self.features

    def _set_features(self, offered: frozenset[str]) -> None:
        features = offered & ext.FEATURES
        self.features = features
        self._peer_cancel = ext.FEATURE_CANCEL in features
        self._peer_deadline = ext.FEATURE_DEADLINE in features
        self._peer_errors = ext.FEATURE_ERRORS in features
        self._decoder.accept_extension = bool(features)

    def _answer_hello(self, request: Request) -> None:
        offered = ext.parse_hello(request.params[0] if request.params else None)
        self._set_features(offered)
        self._reply(request.msgid, None, ext.hello_payload())

    # -- answering the peer's calls ------------------------------------------------------

    def _on_request(self, request: Request) -> None:
        method = request.method
        handler = self._dispatcher.get(method)
        if handler is None:
            if method == ext.HELLO_METHOD and self._extensions_enabled:
                self._answer_hello(request)
            else:
                self._reply_error(request.msgid, MethodNotFound(f"no method {method!r}"))
            return
        if self._refusing:
            self._reply_error(request.msgid, RemoteError("server is shutting down", type="Unavailable"))
            return
        call = ServerCall(self, request.msgid, method)
        extension = request.extension
        if extension is not None:
            timeout = extension.get(ext.EXT_TIMEOUT)
            # NaN would reach call_later (uvloop raises on it); inf means none.
            if (type(timeout) is float or type(timeout) is int) and math.isfinite(timeout):
                call.deadline = self._loop.time() + max(float(timeout), 0.0)  # type: ignore[union-attr]
        if handler.kind is _INLINE:
            self._run_inline(call, handler, request.params)
        else:
            self._start_task(call, handler, request.params)

    def _run_inline(self, call: ServerCall, handler: Handler, params: list[Any]) -> None:
        token = _current.set(call)
        try:
            result = handler.fn(*params)
        except Exception as exc:
            self._handler_failed(call, exc)
            return
        finally:
            _current.reset(token)
        if type(result) is CoroutineType:
            # A plain callable that returned a coroutine: finish it in a task.
            coro = self._await_result(call, lambda: result, ())
            call._task = self._loop.create_task(coro)  # type: ignore[union-attr]
            self._track(call)
        elif call._deferred is None:
            if call._registered:  # it subscribed to on_cancel/on_disconnect
                self._complete(call, None, result)
            else:
                self._reply(call.msgid, None, result)

    def _start_task(self, call: ServerCall, handler: Handler, params: list[Any]) -> None:
        call.cooperative = handler.cooperative
        if handler.kind is _THREAD:
            coro = self._run_in_thread(call, handler, params)
        else:
            # The handler's coroutine is made inside the task, so a task
            # cancelled before its first step leaves no coroutine unawaited.
            coro = self._await_result(call, handler.fn, params)
        call._task = self._loop.create_task(coro)  # type: ignore[union-attr]
        self._track(call)

    async def _await_result(
        self, call: ServerCall, fn: Callable[..., Any], params: list[Any] | tuple[Any, ...]
    ) -> None:
        _current.set(call)
        try:
            result = await fn(*params)
        except asyncio.CancelledError:
            if call._cancel_reason is not None:
                # The peer's cancel or deadline: that is an answer, not a crash.
                self._handler_failed(call, call._cancel_error())
                return
            # Cancelled from our side (connection gone, loop shutting down):
            # answer if anyone can still hear, then stay cancelled.
            self._handler_failed(call, CallCancelled(f"{call.method!r} cancelled by the server"))
            raise
        except Exception as exc:
            self._handler_failed(call, exc)
        else:
            if call._deferred is None:
                self._complete(call, None, result)

    async def _run_in_thread(self, call: ServerCall, handler: Handler, params: list[Any]) -> None:
        _current.set(call)  # anyio runs the function in a copy of this context
        try:
            result = await anyio.to_thread.run_sync(lambda: handler.fn(*params))
        except Exception as exc:
            self._handler_failed(call, exc)
        else:
            if call._deferred is None:
                self._complete(call, None, result)

    def _handler_failed(self, call: ServerCall, exc: BaseException) -> None:
        token = call._deferred
        if token is not None:
            # Deferred calls are finished by their token; an exception that
            # escapes the handler first still ends the call, exactly once.
            if not token._used:
                with contextlib.suppress(AlreadyCompleted):  # a thread got there first
                    token.fail(exc)
            return
        if not isinstance(exc, CallCancelled | DeadlineExceeded | RemoteError):
            logger.debug("asyncrpc: handler %r raised %r", call.method, exc)
        self._complete(call, exc, None)

    def _track(self, call: ServerCall) -> None:
        """Put a call that outlives ``_on_request`` in the serving table."""
        if call._registered:
            return
        call._registered = True
        self._serving[call.msgid] = call
        if call.deadline is not None and call._timer is None:
            delay = call.deadline - self._loop.time()  # type: ignore[union-attr]
            call._timer = self._loop.call_later(max(delay, 0.0), call._expire)  # type: ignore[union-attr]
        if len(self._serving) >= self._max_inflight:
            self._pause_reading()

    def _complete(self, call: ServerCall, error: BaseException | None, value: Any) -> None:
        """Send the reply for ``call``: the one place a served call ends."""
        if call._finished:
            return
        call._finished = True
        if call._timer is not None:
            call._timer.cancel()
            call._timer = None
        call._listeners = None
        if call._registered:
            if self._serving.get(call.msgid) is call:
                del self._serving[call.msgid]
            if self._reading_paused and len(self._serving) < self._max_inflight:
                self._resume_reading()
            waiter = self._drain_waiter
            if not self._serving and waiter is not None and not waiter.done():
                waiter.set_result(None)
        if self._transport is None:
            return
        if error is None:
            self._reply(call.msgid, None, value, alone=not self._serving)
        else:
            self._reply_error(call.msgid, error)

    def _reply(self, msgid: int, error: Any, result: Any, *, alone: bool = False) -> None:
        if self._transport is None:
            return
        try:
            data = self._encoder.response(msgid, error, result)
        except EncodeError as exc:
            data = self._encoder.response(msgid, error_to_wire(exc, structured=self._peer_errors), None)
        self._send(data, alone)
        if len(self._out) >= _REPLY_CHUNK:
            self._flush()

    def _reply_error(self, msgid: int, exc: BaseException) -> None:
        self._reply(msgid, error_to_wire(exc, structured=self._peer_errors), None)

    def _on_notification(self, method: str, params: list[Any]) -> None:
        if method == ext.CANCEL_METHOD and self._extensions_enabled:
            if params and type(params[0]) is int:
                call = self._serving.get(params[0])
                if call is not None:
                    call._request_cancel(CallCancelled)
            return
        handler = self._dispatcher.get(method)
        if handler is None:
            logger.debug("asyncrpc: notification %r has no handler; ignored", method)
            return
        try:
            if handler.kind is _THREAD:
                coro: Any = anyio.to_thread.run_sync(lambda: handler.fn(*params))
            else:
                coro = handler.fn(*params)
        except Exception:
            logger.exception("asyncrpc: notification handler %r raised", method)
            return
        if type(coro) is CoroutineType or handler.kind is not _INLINE:
            task = self._loop.create_task(self._run_notification(method, coro))  # type: ignore[union-attr]
            _keep_alive(task)

    @staticmethod
    async def _run_notification(method: str, awaitable: Any) -> None:
        try:
            await awaitable
        except Exception:
            logger.exception("asyncrpc: notification handler %r raised", method)

    # -- output ---------------------------------------------------------------------

    def _send(self, data: bytes, alone: bool = False) -> None:
        if alone and not self._in_receive and not self._flush_scheduled and self._transport is not None:
            # Nothing else in flight to coalesce with (a lone caller): waiting
            # for the end of the loop turn would only add latency.
            self._transport.write(data)
            return
        self._out.append(data)
        if not self._in_receive and not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)  # type: ignore[union-attr]

    def _flush(self) -> None:
        self._flush_scheduled = False
        out = self._out
        if not out:
            return
        transport = self._transport
        if transport is None:
            out.clear()
            return
        self._out = []
        transport.write(out[0] if len(out) == 1 else b"".join(out))

    def _pause_reading(self) -> None:
        if not self._reading_paused and self._transport is not None:
            self._reading_paused = True
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._reading_paused and self._transport is not None:
            self._reading_paused = False
            self._transport.resume_reading()

    # -- closing ----------------------------------------------------------------------

    def _fail_protocol(self, exc: ProtocolError) -> None:
        self._protocol_error = exc
        peer = self.get_extra_info("peername")
        logger.warning("asyncrpc: closing connection from %s: %s", peer, exc)
        if self._transport is not None:
            self._transport.close()

    def refuse_new_calls(self) -> None:
        """Answer new requests with an ``Unavailable`` error (graceful shutdown)."""
        self._refusing = True

    async def drain_serving(self) -> None:
        """Wait until every call we are answering has been answered."""
        while self._serving and self._transport is not None:
            self._drain_waiter = self.loop.create_future()
            await self._drain_waiter
        self._drain_waiter = None

    def close(self) -> None:
        """Flush what is queued and close the socket; pending calls fail with ``ConnectionLost``."""
        if self._closing:
            return
        self._closing = True
        if self._out:
            self._flush()
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Close the socket at once, dropping queued writes."""
        self._closing = True
        if self._transport is not None:
            self._transport.abort()

    async def wait_closed(self) -> None:
        if self._closed is not None:
            await asyncio.shield(self._closed)
