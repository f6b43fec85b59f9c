"""TLS for connections: contexts made the safe way, and the server's side of the handshake.

A client asks for TLS with ``connect(..., ssl=True)`` (the system's CAs, the
host name checked) or ``ssl=`` an :class:`ssl.SSLContext` of its own, such as
:func:`client_context` makes. A server listens with TLS through
``Server.start(..., ssl=)`` and a context from :func:`server_context`; given
``client_ca``, that context asks every client for a certificate and verifies
it (mutual TLS), and a handler reads the verified certificate as
``current_call().peer_certificate``.

The server runs each TLS handshake itself (:class:`ServerHandshake`) rather
than leaving it to the event loop, which drops a failed handshake without a
word: here a failure (a plaintext client, a certificate the server does not
trust, a client that stops half-way) is one log line naming the peer and
what went wrong, closes that connection only, and is bounded by the server's
``handshake_timeout``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

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
        return f"TLS error: {reason}"
    if isinstance(exc, TimeoutError):
        return "the TLS handshake did not finish in time"
    if isinstance(exc, ConnectionError | OSError):
        return f"the peer left during the TLS handshake ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"


class ServerHandshake(asyncio.Protocol):
    """The protocol of an accepted socket on a TLS server until its handshake is over:
    runs the handshake, then hands the encrypted transport to ``connection``.

    Whatever arrives between the end of the handshake and the hand-over (a
    client's first request often comes in the same read as its last handshake
    message) is kept and given to the connection first, in order.

    Args:
        connection: the connection that will speak over the TLS transport.
        context: the server's context.
        timeout: seconds the handshake may take.
        ended: called as ``ended(self, connection, ok)`` once the handshake is
            over, ``ok`` false when it failed (after one log line) or was cancelled.
    """

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
        self._task: asyncio.Task[None] | None = None
        self._early: list[bytes] = []
        self._eof = False
        self._lost = False
        self._lost_with: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """The socket is accepted: start the handshake (nothing is read before it takes over)."""
        stream = cast(asyncio.Transport, transport)
        stream.pause_reading()  # the ClientHello must reach the TLS layer, not us
        self._task = asyncio.get_running_loop().create_task(self._handshake(stream))

    def data_received(self, data: bytes) -> None:
        """Decrypted bytes that came before the hand-over: kept for the connection."""
        self._early.append(data)

    def eof_received(self) -> bool | None:
        """The peer closed its side before the hand-over: passed on after it."""
        self._eof = True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        """The peer left, during the handshake or just after it."""
        self._lost = True
        self._lost_with = exc

    async def _handshake(self, transport: asyncio.Transport) -> None:
        peer = transport.get_extra_info("peername") or "a Unix socket client"
        secure: asyncio.BaseTransport | None = None
        try:
            if self._lost:
                raise ConnectionResetError("closed before the handshake")
            secure = await asyncio.get_running_loop().start_tls(
                transport, self, self._context, server_side=True, ssl_handshake_timeout=self._timeout
            )
            if secure is None:  # the peer left as the handshake ended
                raise ConnectionResetError("closed at the end of the handshake")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("asyncrpc: TLS handshake with %s failed: %s", peer, describe_failure(exc))
        finally:
            if secure is None:
                transport.abort()
            self._ended(self, self._connection, secure is not None)
        if secure is not None:
            self._hand_over(secure)

    def _hand_over(self, secure: asyncio.BaseTransport) -> None:
        connection = self._connection
        secure.set_protocol(connection)
        connection.connection_made(secure)
        early, self._early = self._early, []
        for data in early:
            connection.data_received(data)
        if self._eof:
            connection.eof_received()
        if self._lost:
            connection.connection_lost(self._lost_with)

    def cancel(self) -> None:
        """Give up on the handshake (the server is closing)."""
        if self._task is not None:
            self._task.cancel()
