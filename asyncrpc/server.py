"""The server: register handlers, listen on TCP or a Unix socket, close gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Final, cast

from asyncrpc.admission import AdmissionTerms
from asyncrpc.auth import Authenticator, check_authenticator
from asyncrpc.budget import BufferBudget
from asyncrpc.connection import Connection
from asyncrpc.dispatch import Dispatcher
from asyncrpc.options import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_MAX_BUFFERED,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_INFLIGHT,
    DEFAULT_MAX_PENDING,
    check_connection_options,
    check_count,
    check_seconds,
)
from asyncrpc.remote_errors import PlainErrors
from asyncrpc.tls import ServerHandshake
from asyncrpc.wire.limits import DEFAULT_LIMITS, Limits

__all__ = ["Server"]

logger = logging.getLogger("asyncrpc")

_CLOSE_MOMENT: Final = 0.1
"""Seconds a connection gets to flush its last replies when the grace is already spent."""

_REFUSAL_LOG_EVERY: Final = 1.0
"""Seconds between log lines about connections refused over ``max_connections``."""

_TLS_HANDSHAKE_TIMEOUT: Final = 60.0
"""Seconds a TLS handshake may take when the server has no ``handshake_timeout`` (asyncio's own)."""


_SSLContext = ssl.SSLContext  # the parameter named ssl hides the module in start()


_FD_RESERVE: Final = 32
"""File descriptors kept free beyond those in use at ``start()``: for log files,
worker threads' files, the program's own clients."""


def _connections_allowed(wanted: int) -> int:
    """``wanted``, or fewer when the process's file descriptor limit would run out first.

    Running out would fail ``accept()`` itself, where the event loop either
    logs every attempt (asyncio) or nothing at all (uvloop); refusing a
    connection past the cap is logged, once a second, by the server.
    """
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):  # no such limit here
        return wanted
    if soft == resource.RLIM_INFINITY:
        return wanted
    try:
        in_use = len(os.listdir("/proc/self/fd"))
    except OSError:
        in_use = 64  # not Linux: a guess that errs on the side of headroom
    allowed = max(1, soft - in_use - _FD_RESERVE)
    if allowed < wanted:
        logger.info(
            "asyncrpc: serving at most %d connections, not %d: the file descriptor limit is %d",
            allowed,
            wanted,
            soft,
        )
    return min(wanted, allowed)


_ExceptionHandler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]

_ACCEPT_FAILED: Final = "socket.accept() out of system resource"
"""How asyncio's loop reports an ``accept()`` that failed for want of file descriptors."""


class _AcceptFailures:
    """The loop's exception handler while a server listens: its report of each
    failed ``accept()`` (asyncio makes one per attempt, thousands a second)
    becomes one line a second with a count; anything else goes on as before."""

    def __init__(
        self, previous: Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object] | None
    ) -> None:
        self.previous = previous
        self._count = 0
        self._told = -_REFUSAL_LOG_EVERY

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") == _ACCEPT_FAILED:
            self._count += 1
            now = loop.time()
            if now - self._told >= _REFUSAL_LOG_EVERY:
                logger.error(
                    "asyncrpc: cannot accept connections: %s (%d time(s) since the last report); "
                    "raise the file descriptor limit (ulimit -n) or lower max_connections",
                    context.get("exception"),
                    self._count,
                )
                self._count = 0
                self._told = now
            return
        if self.previous is not None:
            self.previous(loop, context)
        else:
            loop.default_exception_handler(context)


class _Refused(asyncio.Protocol):
    """What a connection past ``max_connections`` gets: closed as soon as it is accepted."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(asyncio.Transport, transport).abort()  # nothing was read, nothing is owed


class Server:
    """A msgpack-rpc server.

    Args:
        limits: decoder limits for every connection (:class:`~asyncrpc.Limits`).
        max_inflight: the peer's requests and notifications that may run at
            once on one connection (tasks, worker threads, deferred replies;
            default 10,000). At the limit the server stops reading from that
            connection, and what the peer sends next waits unread until one
            finishes: backpressure, not an error.
        max_pending: calls the server may have pending on one connection when
            it calls the client back (``current_call().peer``); default
            1,000,000.
        extensions: answer asyncrpc's extension probe (cancel, deadline,
            structured errors, message limits). Plain msgpack-rpc clients never
            notice either way.
        plain_errors: how errors are sent to clients that did not negotiate
            structured errors: ``"neovim"`` (default, ``[0, "Type: message"]``,
            what Neovim and its clients read), ``"string"`` (``"Type: message"``,
            what Go's net/rpc, msgpack-rpc-python, mprpc, aiorpc and most other
            libraries expect) or a callable from the exception to the error
            object (:data:`~asyncrpc.remote_errors.PlainErrors`).
        raw_strings: for clients from before msgpack's str/bin split, which
            pack bytes as str (msgpack-rpc-python): every str they
            send reaches the handlers as ``bytes`` (method names excepted),
            and bytes and str both go back as msgpack str. Such a server
            answers no extension probe. Default ``False``.
        keepalive: seconds of silence from a client after which it is pinged;
            a ping unanswered as long again closes that client's connection
            and frees its handlers (they see the disconnect). Default
            ``None``: no pings. See :mod:`asyncrpc.keepalive`.
        auth: let a connection in only once its hello carries a token this
            accepts: a :class:`~asyncrpc.TokenAuth`, or any callable
            ``(token, peer_info) -> principal | None``, plain or ``async``
            (see :mod:`asyncrpc.auth`). Until then, any other request is
            answered with :class:`~asyncrpc.Unauthenticated` and the
            connection closed. Default ``None``: everyone is let in.
        max_connections: connections kept at once (default 1000); past it,
            a new connection is closed as soon as it is accepted (logged, at
            most once a second). Lowered at ``start()`` when the process's
            file descriptor limit (``ulimit -n``) would run out first.
        handshake_timeout: seconds a new connection has to finish its TLS
            handshake and its first message (with ``auth``: a hello that is
            accepted), from when it is accepted; else it is closed. Default
            10.0; ``None``: no bound, but for a TLS handshake, which still
            gets 60 seconds.
        idle_timeout: seconds a connection may stay silent, with no call
            running either way, before it is closed. Default ``None``: quiet
            connections stay open.
        max_buffered: bytes of unfinished messages (received in part) held
            across every connection (default 256 MiB); past it, the
            connection holding the most is closed.

    Raises:
        TypeError: ``limits`` is not a :class:`~asyncrpc.Limits`,
            ``extensions`` is not a bool, or ``auth`` is not callable.
        ValueError: ``max_inflight``, ``max_pending``, ``max_connections`` or
            ``max_buffered`` below 1, ``limits.max_message_size`` below 1024
            bytes, ``plain_errors`` not one of its forms, a timeout or
            ``keepalive`` not a positive number, or ``auth`` with
            ``extensions=False`` or ``raw_strings=True`` (the token travels
            in the hello).

    Example::

        server = asyncrpc.Server()
        server.register(Demo(), namespace="demo")
        await server.start("127.0.0.1", 0)
        print(server.port)
        ...
        await server.close(grace=5.0)
    """

    def __init__(
        self,
        *,
        limits: Limits = DEFAULT_LIMITS,
        max_inflight: int = DEFAULT_MAX_INFLIGHT,
        max_pending: int = DEFAULT_MAX_PENDING,
        extensions: bool = True,
        plain_errors: PlainErrors = "neovim",
        raw_strings: bool = False,
        keepalive: float | None = None,
        auth: Authenticator | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
        idle_timeout: float | None = None,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
    ) -> None:
        check_connection_options(
            limits=limits,
            max_pending=max_pending,
            max_inflight=max_inflight,
            extensions=extensions,
            plain_errors=plain_errors,
            raw_strings=raw_strings,
            keepalive=keepalive,
        )
        check_authenticator(auth)
        if auth is not None and (not extensions or raw_strings):
            raise ValueError(
                "auth needs the hello, where the token travels: extensions=True, raw_strings=False"
            )
        check_count("max_connections", max_connections)
        check_count("max_buffered", max_buffered)
        check_seconds("handshake_timeout", handshake_timeout, optional=True)
        check_seconds("idle_timeout", idle_timeout, optional=True)
        self._terms = AdmissionTerms(auth, handshake_timeout, idle_timeout)
        self._max_connections = max_connections
        self._connection_cap = max_connections  # lowered by start() to what file descriptors allow
        self._budget = BufferBudget(max_buffered)
        self._ssl: ssl.SSLContext | None = None
        self._handshakes: set[ServerHandshake] = set()
        self._refused = 0
        self._refusal_timer: asyncio.TimerHandle | None = None
        self._accept_failures: _AcceptFailures | None = None
        self._keepalive = keepalive
        self._dispatcher = Dispatcher()
        self._limits = limits
        self._max_inflight = max_inflight
        self._max_pending = max_pending
        # An old-spec client would read the hello's answer as bytes: it gets none.
        self._extensions = extensions and not raw_strings
        self._plain_errors = plain_errors
        self._raw_strings = raw_strings
        self._server: asyncio.Server | None = None
        self._connections: set[Connection] = set()
        self._orphans: set[asyncio.Task[None]] = set()
        self._path: str | None = None
        self._closing: asyncio.Task[None] | None = None

    # -- handlers ---------------------------------------------------------------

    def register(self, obj: object, namespace: str | None = None) -> list[str]:
        """Answer every public method of ``obj`` (``namespace.method``, or flat names).

        Plain ``def`` methods run inline, ``async def`` ones in a task each,
        ``@asyncrpc.blocking`` ones in a worker thread. Returns the names.
        """
        return self._dispatcher.register(obj, namespace)

    def register_function(self, fn: Callable[..., Any], name: str | None = None) -> None:
        """Answer ``name`` (default ``fn.__name__``) with ``fn``."""
        self._dispatcher.register_function(fn, name)

    @property
    def methods(self) -> list[str]:
        """Every method name the server answers."""
        return self._dispatcher.names()

    # -- listening ----------------------------------------------------------------

    def _make_connection(self) -> asyncio.BaseProtocol:
        if len(self._connections) >= self._connection_cap:
            self._refuse()
            return _Refused()
        connection = Connection(
            self._dispatcher,
            limits=self._limits,
            max_pending=self._max_pending,
            max_inflight=self._max_inflight,
            extensions=self._extensions,
            plain_errors=self._plain_errors,
            raw_strings=self._raw_strings,
            keepalive=self._keepalive,
            on_lost=self._lost,
            admission=self._terms,
            budget=self._budget,
        )
        self._connections.add(connection)
        if self._closing is not None:
            # Accepted while shutting down: closed as soon as its socket is up.
            connection.close(timeout=_CLOSE_MOMENT)
        if self._ssl is None:
            return connection
        timeout = self._terms.handshake_timeout or _TLS_HANDSHAKE_TIMEOUT
        handshake = ServerHandshake(connection, self._ssl, timeout, self._handshake_ended)
        self._handshakes.add(handshake)
        return handshake.protocol()

    def _handshake_ended(self, handshake: ServerHandshake, connection: Connection, ok: bool) -> None:
        self._handshakes.discard(handshake)
        if not ok:
            # Never opened: the connection is told it is gone, and forgotten.
            connection.abandon()
            self._connections.discard(connection)

    def _refuse(self) -> None:
        # One line a second at most, however many are refused: the count says how many.
        self._refused += 1
        if self._refusal_timer is None:
            self._report_refusals()

    def _report_refusals(self) -> None:
        self._refusal_timer = None
        if not self._refused:
            return
        cap = self._connection_cap
        why = f"max_connections of {cap}"
        if cap < self._max_connections:
            why = f"limit of {cap} connections, all the process's file descriptors allow"
        logger.warning("asyncrpc: refused %d connection(s): the server is at its %s", self._refused, why)
        self._refused = 0
        # Refusals in the next second are counted, and told when it ends.
        self._refusal_timer = asyncio.get_running_loop().call_later(_REFUSAL_LOG_EVERY, self._report_refusals)

    def _lost(self, connection: Connection, still_running: list[asyncio.Task[None]]) -> None:
        self._connections.discard(connection)
        # Handlers that outlive their client (a notification sent just before it
        # left, a cooperative handler finishing) are still work close() waits for.
        for task in still_running:
            self._orphans.add(task)
            task.add_done_callback(self._orphans.discard)

    async def start(
        self,
        host: str | None = None,
        port: int = 0,
        *,
        path: str | None = None,
        backlog: int = 1024,
        ssl: ssl.SSLContext | None = None,
    ) -> None:
        """Start listening on ``host:port`` (port 0 picks a free one), or on the Unix socket ``path``.

        ``host`` defaults to ``127.0.0.1``. With ``ssl``, a server-side
        :class:`ssl.SSLContext` (see :func:`asyncrpc.tls.server_context`),
        every connection speaks TLS; a client that fails the handshake (a
        plaintext client, a certificate not trusted under mutual TLS) is
        logged in one line and closed, within ``handshake_timeout``.

        Raises:
            RuntimeError: the server was started already.
            ValueError: both ``host`` and ``path`` were given.
            TypeError: ``ssl`` is not an :class:`ssl.SSLContext`.
            OSError: the address cannot be listened on (in use, no permission).
        """
        if self._server is not None:
            raise RuntimeError("server already started")
        if ssl is not None and not isinstance(ssl, _SSLContext):
            raise TypeError(f"ssl must be an ssl.SSLContext, not {type(ssl).__name__}")
        if path is not None and host is not None:
            raise ValueError("start() takes host and port, or path=, not both")
        self._ssl = ssl
        self._connection_cap = _connections_allowed(self._max_connections)
        loop = asyncio.get_running_loop()
        if path is not None:
            self._server = await loop.create_unix_server(self._make_connection, path, backlog=backlog)
            self._path = path
        else:
            self._server = await loop.create_server(
                self._make_connection, host or "127.0.0.1", port, backlog=backlog
            )
        self._accept_failures = _AcceptFailures(loop.get_exception_handler())
        loop.set_exception_handler(self._accept_failures)

    @property
    def port(self) -> int:
        """The TCP port listened on (useful after ``start(port=0)``)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("server is not listening on TCP")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def path(self) -> str | None:
        """The Unix socket path listened on, if any."""
        return self._path

    @property
    def connections(self) -> int:
        """How many clients are connected now."""
        return len(self._connections)

    @property
    def is_serving(self) -> bool:
        """True while the server accepts connections: started, and not closing."""
        return self._server is not None and self._server.is_serving() and self._closing is None

    async def serve_forever(self) -> None:
        """Serve until cancelled (or until :meth:`close` is called)."""
        if self._server is None:
            raise RuntimeError("call start() before serve_forever()")
        with contextlib.suppress(asyncio.CancelledError):
            await self._server.serve_forever()

    async def close(self, grace: float = 5.0) -> None:
        """Stop accepting, let calls in flight finish for up to ``grace`` seconds, then close.

        What is waited for: handler tasks and worker threads, deferred calls,
        and notification handlers still running. During the grace, new
        requests on open connections get an ``Unavailable`` error and new
        notifications are dropped. Then every connection is closed; its
        clients' pending calls fail with :class:`~asyncrpc.ConnectionLost`.

        Returns within the grace and a moment (0.1 s) more, even when a client
        does not read: what it has not taken by then is dropped and its
        socket aborted. A warning is logged if calls were still running when
        the grace ran out. Idempotent: later calls wait for the first to end.
        """
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close(grace))
        await asyncio.shield(self._closing)

    async def _close(self, grace: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        if self._server is not None:
            self._server.close()
        for handshake in list(self._handshakes):
            handshake.cancel()  # not a client yet: nothing to finish
        for connection in list(self._connections):
            connection.incoming.refuse_new_calls()
        await self._finish_handlers(deadline)
        # Replies still queued get what is left of the grace, and a moment at least.
        flush = max(deadline - loop.time(), _CLOSE_MOMENT)
        for connection in list(self._connections):
            connection.close(timeout=flush)
        try:
            async with asyncio.timeout(flush + _CLOSE_MOMENT):
                while self._connections:
                    await next(iter(self._connections)).wait_closed()
        except TimeoutError:
            # Only a connection whose socket never came up can be left: asyncio
            # made its protocol but will never call it again.
            for connection in list(self._connections):
                connection.abandon()
            self._connections.clear()
        if self._server is not None:
            await self._server.wait_closed()
        failures, self._accept_failures = self._accept_failures, None
        if failures is not None and loop.get_exception_handler() is failures:
            loop.set_exception_handler(failures.previous)  # unless someone set theirs since
        if self._refusal_timer is not None:
            self._refusal_timer.cancel()
            self._report_refusals()  # the last count, if any
            if self._refusal_timer is not None:
                self._refusal_timer.cancel()
                self._refusal_timer = None
        if self._path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._path)

    async def _finish_handlers(self, deadline: float) -> None:
        """Let running handlers finish until ``deadline``; then cancel those whose client has gone."""
        busy: list[Awaitable[object]] = [
            c.incoming.drain() for c in self._connections if c.incoming.in_flight
        ]
        if self._orphans:
            busy.append(asyncio.wait(list(self._orphans)))
        if busy:
            try:
                async with asyncio.timeout_at(deadline):
                    await asyncio.gather(*busy)
            except TimeoutError:
                logger.warning("asyncrpc: grace period over; closing with calls in flight")
        for task in list(self._orphans):
            task.cancel()  # nobody can hear them; the ones on open connections end with them

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
