"""Everything that says how to open a client connection, validated once.

:func:`asyncrpc.connect`, :func:`asyncrpc.sync.connect` and the command line
all build one :class:`ConnectOptions` and hand it on; nothing past this module
checks an option again.
"""

from __future__ import annotations

import math
import ssl as ssl_module
from dataclasses import dataclass, field
from typing import Final

from asyncrpc.reconnect import Reconnect
from asyncrpc.remote_errors import PlainErrors, check_plain_errors
from asyncrpc.wire.limits import DEFAULT_LIMITS, Limits

__all__ = [
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_HELLO_TIMEOUT",
    "DEFAULT_MAX_BUFFERED",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_INFLIGHT",
    "DEFAULT_MAX_PENDING",
    "MIN_MESSAGE_SIZE",
    "ConnectOptions",
    "check_connection_options",
    "check_count",
    "check_seconds",
]

DEFAULT_MAX_PENDING: Final = 1_000_000
"""Our calls pending on one connection before ``call()`` raises ``TooManyPendingCalls``."""

DEFAULT_MAX_INFLIGHT: Final = 10_000
"""The peer's calls (requests and notifications) running at once on one connection;
what comes beyond waits unread."""

DEFAULT_CONNECT_TIMEOUT: Final = 10.0
"""Seconds ``connect()`` may take in all: the TCP (or Unix socket) connect and the hello."""

DEFAULT_HELLO_TIMEOUT: Final = 0.5
"""Seconds `connect()` waits for the answer to the extension probe; a later answer still counts."""

DEFAULT_CLOSE_TIMEOUT: Final = 5.0
"""Seconds ``close()`` waits to flush what is queued before it drops it and aborts the socket."""

DEFAULT_MAX_CONNECTIONS: Final = 1000
"""Connections a server keeps at once; past it, a new one is closed as soon as it is accepted."""

DEFAULT_HANDSHAKE_TIMEOUT: Final = 10.0
"""Seconds a server gives a new connection for TLS and its first message (the hello, with auth)."""

DEFAULT_MAX_BUFFERED: Final = 256 * 1024 * 1024
"""Bytes of unfinished messages a server holds across all its connections."""


def check_seconds(name: str, value: float | None, *, optional: bool) -> None:
    """Raise ``ValueError`` unless ``value`` is a positive finite number of seconds
    (or ``None``, when ``optional``)."""
    if value is None:
        if not optional:
            raise ValueError(f"{name} must be a number of seconds, not None")
        return
    if type(value) not in (int, float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")


def check_count(name: str, value: int) -> None:
    """Raise ``ValueError`` unless ``value`` is an integer of at least 1."""
    if type(value) is not int or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")


MIN_MESSAGE_SIZE: Final = 1024
"""The smallest ``Limits.max_message_size`` a connection takes: the hello alone is ~100 bytes."""


def check_connection_options(
    *,
    limits: Limits,
    max_pending: int,
    max_inflight: int,
    extensions: bool,
    plain_errors: PlainErrors = "neovim",
    raw_strings: bool = False,
    keepalive: float | None = None,
) -> None:
    """Check what every connection takes, a client's (:class:`ConnectOptions`) or a server's.

    Raises:
        TypeError: ``limits`` is not a :class:`~asyncrpc.Limits`, or ``extensions`` not a bool.
        ValueError: a count below 1, a message limit too small for the hello, a
            ``keepalive`` that is not a positive finite number, or
            ``plain_errors`` neither ``"neovim"``, ``"string"`` nor a callable.
    """
    if not isinstance(limits, Limits):
        raise TypeError(f"limits must be an asyncrpc.Limits, not {type(limits).__name__}")
    if limits.max_message_size < MIN_MESSAGE_SIZE:
        raise ValueError(
            f"Limits.max_message_size must be at least {MIN_MESSAGE_SIZE} bytes for a connection "
            f"(the hello alone takes about 100), not {limits.max_message_size}"
        )
    check_count("max_pending", max_pending)
    check_count("max_inflight", max_inflight)
    if type(extensions) is not bool:
        raise TypeError(f"extensions must be True or False, not {extensions!r}")
    if type(raw_strings) is not bool:
        raise TypeError(f"raw_strings must be True or False, not {raw_strings!r}")
    check_plain_errors(plain_errors)
    check_seconds("keepalive", keepalive, optional=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectOptions:
    """Where to connect and how; every field is checked when the object is made.

    :func:`asyncrpc.connect` and :func:`asyncrpc.sync.connect` take these
    fields as keyword arguments (``host`` and ``port`` also positionally) and
    build one; :attr:`asyncrpc.Connector.options` is the result.

    Attributes:
        host: TCP host name or address (with ``port``).
        port: TCP port, 1 to 65535 (with ``host``).
        path: a Unix socket path, instead of ``host`` and ``port``.
        limits: what the peer may make us allocate (:class:`~asyncrpc.Limits`);
            its ``max_message_size`` is also announced to the peer in the hello.
        max_pending: our calls pending at once before ``call()`` raises
            :class:`~asyncrpc.TooManyPendingCalls` (default 1,000,000).
        max_inflight: the peer's calls to us (requests and notifications to
            what we registered with ``register_function``) running at once as
            tasks or threads (default 10,000); beyond it the connection stops
            reading, and what comes next waits unread.
        extensions: probe the peer for asyncrpc's extensions (cancel,
            deadline, structured errors, message limits); default ``True``. A
            plain msgpack-rpc peer answers the probe with an error and is then
            spoken to in plain msgpack-rpc only.
        connect_timeout: seconds for the whole of ``connect()``: the socket
            connect and the hello (default 10.0). ``None`` waits as long as
            the OS does.
        hello_timeout: seconds ``connect()`` waits for the hello's answer
            (default 0.5); a peer that has not answered by then is spoken to
            as a plain msgpack-rpc peer until it does.
        plain_errors: how errors are sent when the peer calls us and did not
            negotiate structured errors (:data:`~asyncrpc.remote_errors.PlainErrors`):
            ``"neovim"`` (default), ``"string"`` or a callable.
        raw_strings: for peers from before msgpack's str/bin split, which
            pack bytes as str: every str the peer sends arrives as ``bytes``,
            and bytes and str both go out as msgpack str (default ``False``).
            Such a connection speaks plain msgpack-rpc only: no hello is sent.
        close_timeout: seconds ``close()`` waits for queued bytes to leave
            before it drops them and aborts the socket (default 5.0).
        keepalive: seconds of silence from the peer after which a ping is
            sent; a ping unanswered for as long again ends the connection
            (pending calls fail with ``ConnectionLost``). Default ``None``:
            no pings. See :mod:`asyncrpc.keepalive`.
        reconnect: make the connection again, with backoff, each time it
            drops (:class:`~asyncrpc.Reconnect`); calls made meanwhile wait
            for it. Default ``None``: a dropped client stays closed. See
            :mod:`asyncrpc.reconnect`.
        ssl: TLS: ``True`` (the system's CAs, the host name checked), an
            :class:`ssl.SSLContext` (see :func:`asyncrpc.tls.client_context`),
            or ``None``/``False`` for none (default). ``connect_timeout``
            covers the TLS handshake too.
        server_hostname: the name the server's certificate must carry
            (default: ``host``); needed with ``path=`` and ``ssl``.
        token: the token to authenticate with, sent in the hello to a server
            made with ``auth=``; kept out of the ``repr``. ``connect()`` raises
            :class:`~asyncrpc.AuthenticationFailed` if the server refuses it.

    Raises:
        ValueError: a missing or contradictory address, or an option out of
            range (a port outside 1-65535, a count below 1, a timeout that is
            not a positive finite number).
        TypeError: ``limits`` is not a :class:`~asyncrpc.Limits`,
            ``extensions`` is not a bool, ``reconnect`` not a
            :class:`~asyncrpc.Reconnect`, ``ssl`` neither a bool nor an
            :class:`ssl.SSLContext`, or ``token`` not a str.
    """

    host: str | None = None
    port: int | None = None
    path: str | None = None
    limits: Limits = DEFAULT_LIMITS
    max_pending: int = DEFAULT_MAX_PENDING
    max_inflight: int = DEFAULT_MAX_INFLIGHT
    extensions: bool = True
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT
    hello_timeout: float = DEFAULT_HELLO_TIMEOUT
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT
    plain_errors: PlainErrors = "neovim"
    raw_strings: bool = False
    keepalive: float | None = None
    reconnect: Reconnect | None = None
    ssl: bool | ssl_module.SSLContext | None = None
    server_hostname: str | None = None
    token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.path is not None:
            if self.host is not None or self.port is not None:
                raise ValueError("connect() takes host and port, or path=, not both")
            if not isinstance(self.path, str) or not self.path:
                raise ValueError(f"path must be a non-empty string, not {self.path!r}")
        else:
            if self.host is None or self.port is None:
                raise ValueError("connect() needs host and port, or path=")
            if not isinstance(self.host, str) or not self.host:
                raise ValueError(f"host must be a non-empty string, not {self.host!r}")
            if type(self.port) is not int or not 0 < self.port < 65536:
                raise ValueError(f"port must be an integer from 1 to 65535, not {self.port!r}")
        check_connection_options(
            limits=self.limits,
            max_pending=self.max_pending,
            max_inflight=self.max_inflight,
            extensions=self.extensions,
            plain_errors=self.plain_errors,
            raw_strings=self.raw_strings,
            keepalive=self.keepalive,
        )
        if self.reconnect is not None and not isinstance(self.reconnect, Reconnect):
            raise TypeError(
                f"reconnect must be an asyncrpc.Reconnect or None, not {type(self.reconnect).__name__}"
            )
        self._check_security()
        check_seconds("connect_timeout", self.connect_timeout, optional=True)
        check_seconds("hello_timeout", self.hello_timeout, optional=False)
        check_seconds("close_timeout", self.close_timeout, optional=False)

    def _check_security(self) -> None:
        tls = self.ssl
        if tls is not None and type(tls) is not bool and not isinstance(tls, ssl_module.SSLContext):
            raise TypeError(f"ssl must be True, False, None or an ssl.SSLContext, not {type(tls).__name__}")
        if self.server_hostname is not None:
            if not isinstance(self.server_hostname, str) or not self.server_hostname:
                raise ValueError(f"server_hostname must be a non-empty string, not {self.server_hostname!r}")
            if not tls:
                raise ValueError("server_hostname is only for TLS connections (ssl=)")
        if tls and self.path is not None and self.server_hostname is None:
            checks = tls is True or tls.check_hostname
            if checks:
                raise ValueError(
                    "TLS over a Unix socket needs server_hostname= (the name its certificate carries)"
                )
        token = self.token
        if token is not None:
            if not isinstance(token, str):
                raise TypeError(f"token must be a str, not {type(token).__name__}")
            if not token:
                raise ValueError("token must not be empty")
            if not self.extensions or self.raw_strings:
                raise ValueError(
                    "a token travels in the hello: it needs extensions=True and raw_strings=False"
                )

    @property
    def ssl_context(self) -> ssl_module.SSLContext | None:
        """The TLS context to connect with (a new default one for ``ssl=True``), or ``None``."""
        if self.ssl is True:
            from asyncrpc.tls import client_context

            return client_context()
        return self.ssl or None

    @property
    def address(self) -> str:
        """``host:port`` or the socket path, for messages."""
        if self.path is not None:
            return self.path
        host = f"[{self.host}]" if self.host is not None and ":" in self.host else self.host
        return f"{host}:{self.port}"
