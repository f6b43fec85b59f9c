"""TLS for connections: contexts made the safe way, and the server's side of the handshake.

A client asks for TLS with ``connect(..., ssl=True)`` (the system's CAs, the
host name checked) or ``ssl=`` an :class:`ssl.SSLContext` of its own, such as
:func:`client_context` makes. A server listens with TLS through
``Server.start(..., ssl=)`` and a context from :func:`server_context`; given
``client_ca``, that context asks every client for a certificate and verifies
it (mutual TLS), and a handler reads the verified certificate as
``current_call().peer_certificate``.

The server watches each TLS handshake itself (:class:`ServerHandshake`):
the event loop's ``create_server(ssl=)`` drops a failed handshake without a
word. Here a failure (a plaintext client, a certificate the server does not
trust, a client that stops half-way) is one log line naming the peer and
what went wrong, closes that connection only, and is bounded by the server's
``handshake_timeout``. It does so with the loop's own TLS protocol class
(``asyncio.sslproto.SSLProtocol``, or uvloop's), built as the loop builds it
for ``create_server(ssl=)``: neither loop offers a public way to see the
outcome of a server-side handshake, and upgrading an accepted socket with
``start_tls`` loses a ClientHello that is already there on uvloop (which
reads before a pause in ``connection_made`` takes hold).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from asyncrpc.admission import format_address

if TYPE_CHECKING:
    from asyncrpc.connection import Connection

__all__ = ["ServerHandshake", "client_context", "describe_failure", "server_context"]

logger = logging.getLogger("asyncrpc")


def server_context(cert: str, key: str | None = None, *, client_ca: str | None = None) -> ssl.SSLContext:
    """A server-side context: TLS 1.2 or later, presenting ``cert``.

    Args:
        cert: path of the server's certificate chain (PEM); it may hold the
            private key too.
        key: path of the private key (PEM), when not in ``cert``.
        client_ca: path of the CA certificates (PEM) that sign client
            certificates. Given, every client must present a certificate they
            signed (mutual TLS); a client without one fails the handshake.

    Raises:
        OSError: a file cannot be read.
        ssl.SSLError: the certificate and key do not load or do not match.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(
    *, ca: str | None = None, cert: str | None = None, key: str | None = None
) -> ssl.SSLContext:
    """A client-side context: TLS 1.2 or later, the server's certificate and host name verified.

    Args:
        ca: path of the CA certificates (PEM) to trust; default: the system's.
        cert: path of a client certificate chain (PEM), for a server that asks
            for one (mutual TLS); it may hold the private key too.
        key: path of the client's private key (PEM), when not in ``cert``.

    Raises:
        ValueError: ``key`` without ``cert``.
        OSError: a file cannot be read.
        ssl.SSLError: a file does not load.
    """
    if key is not None and cert is None:
        raise ValueError("a client key needs its certificate (cert=)")
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context


def describe_failure(exc: BaseException) -> str:
    """One line for a failed handshake: what the peer did, in words."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate not accepted: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        if reason in {"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "UNKNOWN_PROTOCOL", "RECORD_LAYER_FAILURE"}:
            return f"not a TLS client ({reason}): a plaintext client on a TLS port?"
        if reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
            return "the client sent no certificate, and this server requires one (mutual TLS)"
        if "ALERT" in reason:
            return f"the client turned the handshake down ({reason}): it does not trust our certificate?"
        return f"TLS error: {reason}"
    if isinstance(exc, TimeoutError) or (
        isinstance(exc, ConnectionAbortedError) and "longer than" in str(exc)
    ):
        # The loop's own bound on the handshake (the server's handshake_timeout).
        return "the TLS handshake did not finish in time"
    if isinstance(exc, ConnectionError | OSError):
        return (
            f"the client left during the TLS handshake ({type(exc).__name__}): "
            "perhaps it does not trust this server's certificate"
        )
    return f"{type(exc).__name__}: {exc}"


_PROTOCOL_CLASSES: dict[type, type] = {}


def _ssl_protocol_class(loop: asyncio.AbstractEventLoop) -> type:
    """The TLS protocol of ``loop``'s own implementation (what its
    ``create_server(ssl=)`` puts in front of each accepted connection),
    subclassed to note the peer's address (for the log line of a failure)
    and the plain socket's transport (to close it if the server closes first)."""
    if type(loop).__module__.startswith("uvloop"):
        import uvloop.loop

        base: type = getattr(uvloop.loop, "SSLProtocol")  # noqa: B009 - not in uvloop's stubs
    else:
        import asyncio.sslproto

        base = asyncio.sslproto.SSLProtocol
    made = _PROTOCOL_CLASSES.get(base)
    if made is None:
        base_made = cast(Any, base).connection_made

        def connection_made(self: Any, transport: asyncio.BaseTransport) -> None:
            self.asyncrpc_peer = transport.get_extra_info("peername")
            self.asyncrpc_socket = transport
            base_made(self, transport)

        members = {"connection_made": connection_made, "asyncrpc_peer": None, "asyncrpc_socket": None}
        made = type("ServerTLSProtocol", (base,), members)
        _PROTOCOL_CLASSES[base] = made
    return made


class ServerHandshake:
    """The TLS side of one accepted socket on a TLS server.

    :meth:`protocol` is what the server gives the event loop for the socket:
    the loop's own TLS protocol, exactly as ``create_server(ssl=)`` would
    make it (so the handshake starts with the first byte, and encryption
    runs at the loop's own speed), but with the handshake's outcome ours to
    see. The connection is handed the encrypted transport when the handshake
    succeeds; when it fails, the failure is logged in one line and the socket
    closed.

    Args:
        connection: the connection that will speak over the TLS transport.
        context: the server's context.
        timeout: seconds the handshake may take.
        ended: called as ``ended(self, connection, ok)`` once the handshake is
            over, ``ok`` false when it failed or was cancelled.
    """

    __slots__ = ("_connection", "_context", "_ended", "_loop", "_protocol", "_timeout", "_waiter")

    def __init__(
        self,
        connection: Connection,
        context: ssl.SSLContext,
        timeout: float,
        ended: Callable[[ServerHandshake, Connection, bool], object],
    ) -> None:
        self._connection = connection
        self._context = context
        self._timeout = timeout
        self._ended = ended
        self._loop = connection.loop
        self._waiter: asyncio.Future[None] = self._loop.create_future()
        self._waiter.add_done_callback(self._done)
        self._protocol: Any = None

    def protocol(self) -> asyncio.BaseProtocol:
        """The protocol for the accepted socket (it calls the connection's
        ``connection_made`` once the handshake has succeeded)."""
        make = _ssl_protocol_class(self._loop)
        self._protocol = make(
            self._loop,
            self._connection,
            self._context,
            self._waiter,
            server_side=True,
            ssl_handshake_timeout=self._timeout,
        )
        return cast(asyncio.BaseProtocol, self._protocol)

    def _done(self, waiter: asyncio.Future[None]) -> None:
        if waiter.cancelled():
            self._ended(self, self._connection, False)
            return
        exc = waiter.exception()
        if exc is not None:
            peer = format_address(getattr(self._protocol, "asyncrpc_peer", None))
            logger.warning("asyncrpc: TLS handshake with %s failed: %s", peer, describe_failure(exc))
        self._ended(self, self._connection, exc is None)

    def cancel(self) -> None:
        """Give up on the handshake (the server is closing): its socket is closed at once."""
        if self._waiter.done():
            return
        self._waiter.cancel()
        transport = getattr(self._protocol, "asyncrpc_socket", None)
        if transport is not None:
            transport.abort()
