"""``connect()``: open a connection to a msgpack-rpc peer and get its :class:`~asyncrpc.Client`."""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
from collections.abc import Callable, Coroutine, Generator
from types import TracebackType
from typing import Any

from asyncrpc.client import Client
from asyncrpc.connection import Connection
from asyncrpc.dispatch import Dispatcher
from asyncrpc.errors import ConnectionLost, ProtocolError
from asyncrpc.options import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_HELLO_TIMEOUT,
    DEFAULT_MAX_INFLIGHT,
    DEFAULT_MAX_PENDING,
    ConnectOptions,
)
from asyncrpc.reconnect import Reconnect, Reconnector
from asyncrpc.remote_errors import PlainErrors
from asyncrpc.wire.limits import DEFAULT_LIMITS, Limits

__all__ = ["Connector", "connect", "open_client"]

logger = logging.getLogger("asyncrpc")

#: What a connection calls when its socket is gone.
OnLost = Callable[[Connection, list[asyncio.Task[None]]], object]


class Connector:
    """What :func:`connect` returns: ``await`` it for a :class:`Client`, or use
    it with ``async with`` to have the client closed at the end.

    Making one does no I/O (the options were already checked); each
    ``await`` opens a connection of its own. Awaiting it, or entering it,
    raises what :func:`connect` documents for that moment: ``TimeoutError``
    or ``OSError``.
    """

    __slots__ = ("_client", "_options")

    def __init__(self, options: ConnectOptions) -> None:
        self._options = options
        self._client: Client | None = None

    @property
    def options(self) -> ConnectOptions:
        """The validated options this connector connects with."""
        return self._options

    def __await__(self) -> Generator[Any, None, Client]:
        return open_client(self._options).__await__()

    async def __aenter__(self) -> Client:
        self._client = await open_client(self._options)
        return self._client

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.close()


def connect(
    host: str | None = None,
    port: int | None = None,
    *,
    path: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    max_pending: int = DEFAULT_MAX_PENDING,
    max_inflight: int = DEFAULT_MAX_INFLIGHT,
    extensions: bool = True,
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
    hello_timeout: float = DEFAULT_HELLO_TIMEOUT,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    plain_errors: PlainErrors = "neovim",
    raw_strings: bool = False,
    keepalive: float | None = None,
    reconnect: Reconnect | None = None,
    ssl: bool | ssl_module.SSLContext | None = None,
    server_hostname: str | None = None,
    token: str | None = None,
) -> Connector:
    """Connect to a msgpack-rpc peer over TCP (``host``, ``port``) or a Unix socket (``path``).

    ``await connect(...)`` gives a :class:`Client`; ``async with connect(...)
    as client`` also closes it. The options are those of
    :class:`~asyncrpc.ConnectOptions`, checked here, before any I/O.

    Args:
        host: TCP host name or address.
        port: TCP port.
        path: a Unix socket path, instead of ``host`` and ``port``.
        limits: decoder limits (:class:`~asyncrpc.Limits`); the
            ``max_message_size`` is announced to the peer.
        max_pending: our calls that may wait for replies at once.
        max_inflight: the peer's calls to us that may run at once.
        extensions: probe the peer for asyncrpc's extensions.
        connect_timeout: seconds for the socket connect and the hello together.
        hello_timeout: seconds to wait for the hello's answer (a later one still counts).
        close_timeout: seconds ``client.close()`` gives queued bytes to leave.
        plain_errors: the error form for a plain peer's calls to us:
            ``"neovim"``, ``"string"`` or a callable (see "Error objects" on the protocol page).
        raw_strings: for peers that pack bytes as msgpack str (the old spec):
            their strs arrive as ``bytes``; bytes and str go out as str. No hello is sent.
        keepalive: seconds of silence before a ping; a ping unanswered as long
            again ends the connection (see :mod:`asyncrpc.keepalive`). Off by default.
        reconnect: make the connection again each time it drops
            (:class:`~asyncrpc.Reconnect`; see :mod:`asyncrpc.reconnect`). Off by default.
        ssl: TLS: ``True`` (system CAs, host name checked) or an
            :class:`ssl.SSLContext` (see :mod:`asyncrpc.tls`). Off by default.
        server_hostname: the name the server's certificate must carry (default: ``host``).
        token: authenticate with this token (sent in the hello; never logged).

    Returns:
        A :class:`Connector`, to ``await`` or to use with ``async with``.

    Raises:
        ValueError: a missing or contradictory address, or an option out of range
            (at once, not when awaited).
        TimeoutError: (when awaited) no connection within ``connect_timeout``.
        OSError: (when awaited) the connection was refused or failed;
            :class:`ssl.SSLError` (an ``OSError``) when the TLS handshake failed,
            :class:`ssl.SSLCertVerificationError` for a certificate not trusted.
        AuthenticationFailed: (when awaited) the server refused the token, or
            wanted one and got none.
    """
    return Connector(
        ConnectOptions(
            host=host,
            port=port,
            path=path,
            limits=limits,
            max_pending=max_pending,
            max_inflight=max_inflight,
            extensions=extensions,
            connect_timeout=connect_timeout,
            hello_timeout=hello_timeout,
            close_timeout=close_timeout,
            plain_errors=plain_errors,
            raw_strings=raw_strings,
            keepalive=keepalive,
            reconnect=reconnect,
            ssl=ssl,
            server_hostname=server_hostname,
            token=token,
        )
    )


async def open_client(options: ConnectOptions) -> Client:
    """Open a connection with ``options`` and return its client (what awaiting :func:`connect` does)."""
    if options.reconnect is None:
        return Client(await _bounded(options, _open(options)))
    dispatcher = Dispatcher()

    async def reopen(dispatcher: Dispatcher, on_lost: OnLost) -> Connection:
        return await _bounded(options, _open(options, dispatcher=dispatcher, on_lost=on_lost))

    reconnector = Reconnector(
        options.reconnect, options.address, reopen, dispatcher, max_pending=options.max_pending
    )
    connection = await reopen(dispatcher, reconnector.on_lost)
    return Client(connection, reconnector=reconnector)


async def _bounded(options: ConnectOptions, opening: Coroutine[Any, Any, Connection]) -> Connection:
    if options.connect_timeout is None:
        return await opening
    try:
        async with asyncio.timeout(options.connect_timeout):
            return await opening
    except TimeoutError:
        raise TimeoutError(
            f"could not connect to {options.address} within {options.connect_timeout:g}s"
        ) from None


async def _open(
    options: ConnectOptions, *, dispatcher: Dispatcher | None = None, on_lost: OnLost | None = None
) -> Connection:
    # An old-spec peer would read the hello's strs as bytes: it gets none.
    probe = options.extensions and not options.raw_strings
    connection = await _dial(options, extensions=probe, dispatcher=dispatcher, on_lost=on_lost)
    if probe:
        try:
            await connection.negotiate(options.hello_timeout, token=options.token)
        except ConnectionLost as exc:
            if isinstance(exc.__cause__, ProtocolError | ssl_module.SSLError):
                # It spoke, but not msgpack-rpc, or TLS failed (a server that
                # checks client certificates says so after the handshake, in
                # TLS 1.3): another try would say the same.
                raise
            if options.ssl:
                # Over TLS, a server that checks client certificates says no
                # only now (TLS 1.3), with a close: a plain retry would hide it.
                raise ConnectionLost(
                    f"{options.address} closed the TLS connection over the hello "
                    "(does it require a client certificate?)"
                ) from exc
            if options.token is not None:
                # The token was to be checked: a try without the hello would skip the check.
                raise ConnectionLost(
                    f"{options.address} closed the connection over the hello "
                    "(a TLS server? connect with ssl=)"
                ) from exc
            # Some plain servers hang up on a method they do not know (the
            # probe) instead of answering it with an error: once more, without.
            logger.info(
                "asyncrpc: %s closed the connection over the hello; connecting without it%s",
                options.address,
                "" if options.ssl else " (if it is a TLS server, connect with ssl=)",
            )
            connection = await _dial(options, extensions=False, dispatcher=dispatcher, on_lost=on_lost)
        except BaseException:
            connection.abort()
            raise
    return connection


async def _dial(
    options: ConnectOptions, *, extensions: bool, dispatcher: Dispatcher | None, on_lost: OnLost | None
) -> Connection:
    loop = asyncio.get_running_loop()
    made: list[Connection] = []

    def factory() -> Connection:
        connection = Connection(
            dispatcher,
            limits=options.limits,
            max_pending=options.max_pending,
            max_inflight=options.max_inflight,
            extensions=extensions,
            close_timeout=options.close_timeout,
            plain_errors=options.plain_errors,
            raw_strings=options.raw_strings,
            keepalive=options.keepalive,
            on_lost=on_lost,
        )
        made.append(connection)
        return connection

    host, port, path = options.host, options.port, options.path
    tls = options.ssl_context
    hostname = options.server_hostname if tls is not None else None
    try:
        if path is not None:
            _, connection = await loop.create_unix_connection(
                factory, path, ssl=tls, server_hostname=hostname
            )
        else:
            assert host is not None  # ConnectOptions checked both
            assert port is not None
            _, connection = await loop.create_connection(
                factory, host, port, ssl=tls, server_hostname=hostname
            )
    except BaseException as exc:
        # Cut short after the socket came up (a timeout, a cancel): uvloop
        # closes it without telling the protocol, so end what was made here.
        for connection in made:
            connection.abandon()
        if tls is not None and isinstance(exc, ConnectionResetError | ssl_module.SSLEOFError):
            raise ConnectionLost(
                f"{options.address} closed the connection during the TLS handshake (is it a TLS server?)"
            ) from exc
        raise
    return connection
