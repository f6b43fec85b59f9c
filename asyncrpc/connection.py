"""One msgpack-rpc connection: bytes in and out, for both ends.

msgpack-rpc is symmetric: whichever side connected, each end may call the
other. A :class:`Connection` is the asyncio ``Protocol`` for one socket. It
owns the sans-IO codec and two tables, and routes every decoded message:

* responses to :class:`~asyncrpc.handle.OutgoingCalls`, our calls to the peer;
* requests and notifications to :class:`~asyncrpc.incoming.IncomingCalls`,
  the peer's calls to us.

What stays here is what the two share: writing (coalesced), reading (paused
for as many reasons as apply, resumed only when none is left), the hello that
negotiates extensions, and closing.

The fast path, by construction:

* ``data_received`` feeds the decoder and drains every complete message in one
  loop; replies made while it runs leave in one write at its end.
* a call is one :class:`~asyncrpc.AsyncCall` with one future: no task, no
  ``wait_for``; its deadline is a ``call_later`` timer.
* writes made outside ``data_received`` (callers in many tasks) are coalesced
  into one ``transport.write`` per loop iteration.

Its state (:class:`~asyncrpc.ConnectionState`) changes only through the table
in :mod:`asyncrpc.connection_state`, one step at a time in ``_advance()``.

Reading pauses for reasons (:class:`~asyncrpc.flow.PauseReason`): the peer does not read
our writes, or its calls to us reached the in-flight limit. Each reason is
added and removed on its own; the socket is read again, and the messages
already buffered are handled, only when no reason is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Any, Final, Protocol, cast

from asyncrpc._loops import thread_ident
from asyncrpc.admission import Admission, AdmissionTerms, peer_address
from asyncrpc.budget import BufferBudget
from asyncrpc.connection_state import CLOSED, CLOSING, NEW, OPEN, READY, TRANSITIONS, ConnectionState
from asyncrpc.dispatch import Dispatcher
from asyncrpc.errors import AuthenticationFailed, ConnectionLost, ProtocolError
from asyncrpc.flow import PauseReason
from asyncrpc.handle import AsyncCall, OutgoingCalls
from asyncrpc.incoming import IncomingCalls
from asyncrpc.keepalive import Keepalive, set_tcp_keepalive
from asyncrpc.negotiated import Negotiated
from asyncrpc.options import DEFAULT_CLOSE_TIMEOUT, DEFAULT_MAX_INFLIGHT, DEFAULT_MAX_PENDING
from asyncrpc.remote_errors import PlainErrors
from asyncrpc.wire import extensions as ext
from asyncrpc.wire.codec import Decoder, Encoder
from asyncrpc.wire.events import Notification, Request, Response, ResponseTooLarge, StrayResponse
from asyncrpc.wire.limits import DEFAULT_LIMITS, Limits

__all__ = ["Connection", "ConnectionState"]

logger = logging.getLogger("asyncrpc")

_REPLY_CHUNK: Final = 16
"""Replies queued before they are written without waiting for the rest.

Replies made in one read or one loop turn would otherwise leave in one write at
its end, the peer idle until then. Writing every 16 took 64 callers on one
connection from ~1.2x to ~2x the minimal baseline's throughput on two cores
(docs/benchmarks.md); requests from many callers still leave in one write a turn.
"""


class _Transport(Protocol):
    """What a connection needs of its transport: asyncio's and uvloop's both have it
    (uvloop's transports do not subclass ``asyncio.Transport``)."""

    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def get_write_buffer_size(self) -> int: ...
    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


class Connection(asyncio.Protocol):
    """The protocol object for one socket; see the module docstring.

    Made by :func:`asyncrpc.connect` and by :class:`asyncrpc.Server`, on a
    running event loop. Code that calls reaches it as ``client.connection``.
    With ``keepalive=`` seconds it pings a silent peer and aborts when the
    ping goes unanswered (see :mod:`asyncrpc.keepalive`).

    Attributes:
        encoder: the :class:`~asyncrpc.wire.Encoder` every message on this
            connection is encoded with.
        outgoing: the table of our calls pending on this connection (what a
            :class:`~asyncrpc.Client` calls through).
        incoming: the table of the peer's calls being answered (what a
            :class:`~asyncrpc.Server` drains on close).
        negotiated: what the hello agreed on (:class:`~asyncrpc.negotiated.Negotiated`).
        accepting_calls: true while new calls may be made (read it, don't set it).
        thread: the identifier (:func:`threading.get_ident`) of the thread the
            connection's loop runs in; calls made from any other thread are refused.
        admission: on a server's connection, its handshake deadline,
            authentication and idle limit (:class:`~asyncrpc.admission.Admission`);
            ``None`` on a client's.
    """

    def __init__(
        self,
        dispatcher: Dispatcher | None = None,
        *,
        limits: Limits = DEFAULT_LIMITS,
        max_pending: int = DEFAULT_MAX_PENDING,
        max_inflight: int = DEFAULT_MAX_INFLIGHT,
        extensions: bool = True,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
        plain_errors: PlainErrors = "neovim",
        raw_strings: bool = False,
        keepalive: float | None = None,
        on_lost: Callable[[Connection, list[asyncio.Task[None]]], object] | None = None,
        admission: AdmissionTerms | None = None,
        budget: BufferBudget | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        # A loop makes its protocols in the thread it runs in.
        self.thread = thread_ident()
        self._limits = limits
        self._decoder = Decoder(limits, raw_strings=raw_strings)
        self.encoder = Encoder(raw_strings=raw_strings)
        self._extensions_enabled = extensions
        self._close_timeout = close_timeout
        self._on_lost = on_lost
        self._state = NEW
        self.accepting_calls = False
        self.negotiated = Negotiated.agree(frozenset(), limits.max_message_size)
        self._transport: _Transport | None = None
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._in_receive = False
        self._paused: set[PauseReason] = set()
        self._reading = True  # what the transport was last told
        self._resume_scheduled = False
        self._lost: ConnectionLost | None = None
        self._protocol_error: ProtocolError | None = None
        self._bytes_received = 0
        self._abort_timer: asyncio.TimerHandle | None = None
        self._end_reason: str | None = None
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._over_tls = False
        # Made only when asked for: a connection without it pays nothing.
        self._keepalive = None if keepalive is None else Keepalive(self, keepalive)
        # A server's connections only: its handshake deadline, authentication, idle limit.
        self.admission = None if admission is None else Admission(self, admission)
        self._budget = budget
        self._holding = 0  # bytes of an unfinished message reported to the budget
        self.outgoing = OutgoingCalls(self, max_pending=max_pending)
        self.incoming = IncomingCalls(
            self, dispatcher, max_inflight=max_inflight, extensions=extensions, plain_errors=plain_errors
        )

    # -- the state table ----------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """Where the connection is in its life: a :class:`ConnectionState`."""
        return self._state

    def _advance(self, event: str) -> bool:
        """Take one step of :data:`TRANSITIONS`; False (and no change) if it has none."""
        new = TRANSITIONS.get((self._state, event))
        if new is None:
            return False
        self._state = new
        self.accepting_calls = new is OPEN or new is READY
        return True

    @property
    def is_open(self) -> bool:
        """True while calls can be made: not closing, not closed."""
        return self.accepting_calls

    @property
    def is_closed(self) -> bool:
        """True once the socket is gone."""
        return self._state is CLOSED

    @property
    def closed_reason(self) -> str:
        """Why no call can be made now, for error messages."""
        if self._lost is not None:
            return str(self._lost)
        return "connection is not open yet" if self._state is NEW else "connection is closed"

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """asyncio calls this when the socket is up: the state becomes ``OPEN``;
        TCP_NODELAY is set on TCP sockets."""
        self._transport = cast(_Transport, transport)
        if not self._advance("made"):  # close() came first (a server shutting down)
            self._close_transport(self._transport, self._close_timeout)
            return
        # Over TLS, eof_received's answer is ignored (asyncio warns if it is True).
        self._over_tls = transport.get_extra_info("sslcontext") is not None
        sock = transport.get_extra_info("socket")
        tcp = sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6)
        if tcp:
            with contextlib.suppress(OSError):  # platform-dependent
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._keepalive is not None:
            if tcp:
                set_tcp_keepalive(sock, self._keepalive.interval)
            self._keepalive.start()

    def data_received(self, data: bytes) -> None:
        """Feed ``data`` to the decoder and handle every complete message, until a
        pause reason stops it (``b""`` handles what was buffered before a pause)."""
        if self._protocol_error is not None:
            return  # the stream is out of sync; the socket is closing
        decoder = self._decoder
        outgoing = self.outgoing
        incoming = self.incoming
        paused = self._paused
        self._in_receive = True
        self._bytes_received += len(data)
        answered = 0
        try:
            decoder.receive_data(data)
            for event in decoder:
                if type(event) is Response:
                    outgoing.on_response(event)
                    answered += 1
                elif type(event) is Request:
                    incoming.on_request(event)
                elif type(event) is Notification:
                    incoming.on_notification(event)
                elif type(event) is ResponseTooLarge:
                    outgoing.on_too_large(event)
                elif type(event) is StrayResponse:
                    outgoing.on_stray(event)
                if paused:
                    break  # the rest waits in the decoder, unread, until the pause ends
        except ProtocolError as exc:
            if self._bytes_received == len(data) and data[:1] == b"\x16":
                # The first byte of a TLS handshake record, first thing on the connection.
                exc = ProtocolError(f"{exc} (a TLS client on a plaintext port?)")
            self._fail_protocol(exc)
        finally:
            self._in_receive = False
            if self._budget is not None:
                unfinished = decoder.buffered
                if unfinished or self._holding:
                    self._holding = unfinished
                    self._budget.hold(self, unfinished)
            if self._out:
                self._flush()
            if answered > 1 and not self._flush_scheduled:
                # Several callers wake up from this read, and each is likely to
                # call again in this loop turn: flush once they all have, so
                # that the first of them does not go out alone.
                self._flush_scheduled = True
                self._loop.call_soon(self._flush)

    def eof_received(self) -> bool | None:
        """asyncio calls this when the peer closes its side: a message cut short is a
        :class:`~asyncrpc.ProtocolError` (logged), and this side closes too, bounded
        by ``close_timeout``; pending calls fail with ``ConnectionLost``."""
        unread = self._decoder.buffered
        if unread and self._protocol_error is None:
            # The peer cut a message short: log it, and let pending calls see why.
            self._fail_protocol(
                ProtocolError(
                    f"peer closed the connection in the middle of a message ({unread} bytes unread)"
                )
            )
        elif self._end_reason is None and self._state is not CLOSING:
            self._end_reason = "connection closed by peer"
        # Close our side too, bounded like any close: a peer that half-closed
        # and stopped reading cannot keep the socket open with our replies.
        # (A FIN is taken as the client going away, as it nearly always is: its
        # handlers are cancelled and see CLIENT_DISCONNECT.)
        self.close()
        # close() has closed the transport; asyncio must not again.
        return None if self._over_tls else True

    def connection_lost(self, exc: Exception | None) -> None:
        """asyncio calls this when the socket is gone: the state becomes ``CLOSED``,
        every pending call fails with :class:`~asyncrpc.ConnectionLost` (its message
        says why; ``__cause__`` is the error, if any), and handlers still running see
        a disconnect."""
        if self._state is CLOSED:
            return  # told already, by abandon()
        closed_by_us = self._state is CLOSING
        self._advance("lost")
        self._transport = None
        if self._keepalive is not None:
            self._keepalive.stop()
        if self.admission is not None:
            self.admission.stop()
        if self._budget is not None:
            self._budget.release(self)
        self._out.clear()
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None
        cause: BaseException | None = self._protocol_error or exc
        if self._end_reason is not None:
            reason = self._end_reason
        elif closed_by_us and cause is None:
            reason = "connection closed"
        else:
            reason = f"connection lost: {cause}" if cause else "connection closed by peer"
        self._lost = ConnectionLost(reason)
        self._lost.__cause__ = cause
        self.outgoing.fail_all(reason, cause)
        still_running = self.incoming.connection_lost()
        if not self._closed.done():
            self._closed.set_result(None)
        if self._on_lost is not None:
            self._on_lost(self, still_running)

    def pause_writing(self) -> None:
        """asyncio calls this when the write buffer passes its high-water mark: reading
        pauses for ``PauseReason.WRITE_BUFFER_FULL``."""
        # The peer is not reading what we send: stop reading what it sends,
        # so it cannot make us buffer replies without bound.
        self.pause_reading(PauseReason.WRITE_BUFFER_FULL)

    def resume_writing(self) -> None:
        """asyncio calls this when the write buffer has drained: that pause reason ends
        (reading resumes if no other holds)."""
        self.resume_reading(PauseReason.WRITE_BUFFER_FULL)

    # -- reading, paused by reason ------------------------------------------------

    def pause_reading(self, reason: PauseReason) -> None:
        """Stop reading from the socket (and handling buffered messages) for ``reason``."""
        self._paused.add(reason)
        if self._reading and self._transport is not None:
            self._reading = False
            self._transport.pause_reading()

    def resume_reading(self, reason: PauseReason) -> None:
        """``reason`` no longer holds; reading resumes once no other reason does."""
        paused = self._paused
        if reason not in paused:
            return
        paused.discard(reason)
        if not paused and not self._resume_scheduled and self._transport is not None:
            # Not right here: this runs inside whatever ended the reason (a
            # reply being written, a handler finishing), not on a clean stack.
            self._resume_scheduled = True
            self._loop.call_soon(self._resume)

    def _resume(self) -> None:
        self._resume_scheduled = False
        if self._paused or self._transport is None or self._protocol_error is not None:
            return
        self.data_received(b"")  # what arrived before the pause, first
        if not self._paused and not self._reading and self._transport is not None:
            self._reading = True
            self._transport.resume_reading()

    @property
    def pause_reasons(self) -> frozenset[PauseReason]:
        """Why reading is paused now (empty while reading)."""
        return frozenset(self._paused)

    # -- writing, coalesced -------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the connection, and every call on it, belongs to."""
        return self._loop

    def send(self, data: bytes, *, alone: bool = False) -> None:
        """Queue ``data``; everything queued leaves in one write at the end of this
        read or this loop turn. ``alone`` (nothing else is in flight to coalesce
        with) writes it at once instead, when nothing queued would be overtaken."""
        if alone and not self._in_receive and not self._flush_scheduled and self._transport is not None:
            # A lone caller would only wait longer for the end of the loop turn
            # (and that turn's flush would cost the loop one more iteration).
            self._transport.write(data)
            return
        self._out.append(data)
        if not self._in_receive and not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def send_reply(self, data: bytes, *, alone: bool) -> None:
        """Queue a reply: written at once when it is ``alone`` (nothing else in flight
        to coalesce with), else with the rest, at least every few replies."""
        if alone and not self._in_receive and not self._flush_scheduled and self._transport is not None:
            # Waiting for the end of the loop turn would only add latency.
            self._transport.write(data)
            return
        out = self._out
        out.append(data)  # send(), inlined: one reply per call
        if len(out) >= _REPLY_CHUNK:
            self._flush()
        elif not self._in_receive and not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

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

    # -- the hello ----------------------------------------------------------------

    def _hello_payload(self) -> dict[str, Any]:
        return ext.hello_payload(max_message_size=self._limits.max_message_size)

    def _agree(self, payload: Any) -> None:
        limit = ext.parse_message_limit(payload) or self._limits.max_message_size
        self.negotiated = Negotiated.agree(ext.parse_hello(payload), limit)
        self._decoder.accept_extension = bool(self.negotiated.features)
        self._advance("negotiated")

    async def negotiate(self, wait: float, *, token: str | None = None) -> frozenset[str]:
        """Probe the peer for asyncrpc's extensions (see ``docs/protocol.md``);
        wait up to ``wait`` seconds for the answer.

        The probe has no deadline of its own: a peer that answers after
        ``wait`` still gets its extensions from then on, and until it answers
        every call goes out as plain msgpack-rpc. A plain peer answers the
        probe with an error (or never), and nothing else that it would not
        understand is ever sent to it.

        With a ``token`` (sent in the hello, for a server that authenticates)
        the answer is waited for however long it takes: bound it from outside.

        Raises:
            ConnectionLost: the connection was lost before the probe was answered.
            AuthenticationFailed: the server refused to let us in.
        """
        if not self._extensions_enabled:
            return self.negotiated.features
        self._decoder.accept_extension = True
        payload = self._hello_payload()
        if token is not None:
            payload[ext.HELLO_TOKEN] = token
        probe = self.outgoing.call(ext.HELLO_METHOD, [payload])
        del payload  # holds the token: not kept past the write
        answered = self.loop.create_future()
        probe.add_done_callback(lambda call: self._probe_answered(call, answered))
        if token is not None:
            await answered
        else:
            with contextlib.suppress(TimeoutError):  # a silent peer: plain until it answers
                async with asyncio.timeout(wait):
                    await answered
        error = probe.exception() if probe.done() else None
        if isinstance(error, ConnectionLost | AuthenticationFailed):
            raise error
        if token is not None and not ext.checks_tokens(None if error is not None else probe.result()):
            # Sent, and nobody checks it: the peer got a secret it had no use for.
            logger.warning(
                "asyncrpc: %s does not check tokens, but was sent one (connect without token= there)",
                peer_address(self),
            )
        return self.negotiated.features

    def _probe_answered(self, probe: AsyncCall[Any], answered: asyncio.Future[None]) -> None:
        error = probe.exception()
        if not isinstance(error, ConnectionLost | AuthenticationFailed):
            # Any error answer (whatever type it names) means a plain peer.
            self._agree(probe.result() if error is None else None)
        if not answered.done():
            answered.set_result(None)

    def hello_received(self, payload: Any) -> dict[str, Any]:
        """The peer said hello: agree on what both speak; returns our answer."""
        self._agree(payload)
        return self._hello_payload()

    @property
    def limits(self) -> Limits:
        """What the peer may make this side allocate (the decoder's :class:`~asyncrpc.Limits`)."""
        return self._limits

    @property
    def unfinished_bytes(self) -> int:
        """Bytes received but not yet part of a whole message (what the decoder holds)."""
        return self._decoder.buffered

    @property
    def peer_certificate(self) -> dict[str, Any] | None:
        """The peer's verified TLS certificate (:meth:`ssl.SSLSocket.getpeercert`), or ``None``."""
        certificate = self.get_extra_info("peercert")
        # Empty: a certificate came but was not verified (CERT_NONE): not one to trust.
        return certificate or None

    @property
    def principal(self) -> Any:
        """Who the server's authenticator said the peer is (``None`` without authentication)."""
        return None if self.admission is None else self.admission.principal

    @property
    def bytes_received(self) -> int:
        """Bytes read from the peer so far (0: the peer has sent nothing at all)."""
        return self._bytes_received

    @property
    def features(self) -> frozenset[str]:
        """Extension features both ends speak (empty for a plain peer)."""
        return self.negotiated.features

    # -- looking in ---------------------------------------------------------------

    @property
    def pending_count(self) -> int:
        """Our calls waiting for a reply (including ids held for abandoned calls)."""
        return len(self.outgoing)

    @property
    def serving_count(self) -> int:
        """The peer's calls we are still answering (tasks, threads, deferred tokens, notifications)."""
        return self.incoming.in_flight

    async def drain_serving(self) -> None:
        """Wait until every call we are answering has been answered."""
        await self.incoming.drain()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """The transport's ``get_extra_info(name)`` (``"peername"``, ``"socket"``...), or
        ``default`` once the socket is gone."""
        if self._transport is None:
            return default
        return self._transport.get_extra_info(name, default)

    # -- closing ------------------------------------------------------------------

    def _fail_protocol(self, exc: ProtocolError) -> None:
        self._protocol_error = exc
        peer = peer_address(self)
        logger.warning("asyncrpc: closing connection from %s: %s", peer, exc)
        self.close()

    def close(self, timeout: float | None = None) -> None:
        """Stop taking calls, send what is queued and close the socket.

        What cannot be sent within ``timeout`` seconds (default: the
        connection's ``close_timeout``), because the peer does not read, is
        dropped and the socket aborted. Pending calls fail with
        ``ConnectionLost`` when the socket is gone. Idempotent.
        """
        delay = self._close_timeout if timeout is None else timeout
        if not self._advance("close"):
            # Closing already (the peer's FIN, a protocol error): a shorter bound
            # asked for now still holds.
            timer = self._abort_timer
            if timer is not None and timer.when() > self._loop.time() + delay:
                timer.cancel()
                self._abort_timer = self._loop.call_later(delay, self._close_timed_out, delay)
            return
        if self._out:
            self._flush()
        if self._transport is not None:
            self._close_transport(self._transport, delay)
        elif timeout is not None:
            self._close_timeout = timeout  # for when the socket comes up

    def _close_transport(self, transport: _Transport, delay: float) -> None:
        transport.close()
        self._abort_timer = self._loop.call_later(delay, self._close_timed_out, delay)

    def _close_timed_out(self, delay: float) -> None:
        self._abort_timer = None
        if (transport := self._transport) is None:
            return
        unsent = transport.get_write_buffer_size()
        self._end_reason = f"connection closed ({unsent} bytes the peer did not read within {delay:g}s)"
        logger.info("asyncrpc: %s: %s; aborted", peer_address(self), self._end_reason)
        transport.abort()

    def abort(self, reason: str | None = None) -> None:
        """Close the socket at once, dropping queued writes.

        ``reason``, if given, is logged and becomes the message of the
        ``ConnectionLost`` that pending calls fail with.
        """
        if reason is not None and self._end_reason is None and self._transport is not None:
            self._end_reason = reason
            logger.warning("asyncrpc: aborting connection to %s: %s", peer_address(self), reason)
        self._advance("close")
        if self._transport is not None:
            self._transport.abort()

    def abandon(self) -> None:
        """End a connection that was never handed to anyone, now: abort its socket
        and fail what it holds as if the socket were gone.

        For a connect cut short (a timeout, a cancel) after the socket came up:
        uvloop then closes the socket without ever calling ``connection_lost``,
        which would leave this object open, its keepalive timer armed. Safe on
        any loop: a ``connection_lost`` that does come later changes nothing.
        """
        if self._state is CLOSED:
            return
        self._advance("close")
        if self._transport is not None:
            self._transport.abort()
        self.connection_lost(None)

    async def wait_closed(self) -> None:
        """Return once the socket is gone (and every pending call has failed)."""
        await asyncio.shield(self._closed)

    def __repr__(self) -> str:
        return f"<asyncrpc.Connection {self.get_extra_info('peername')!r} {self._state.value}>"
