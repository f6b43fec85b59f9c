"""A server's terms for each connection it accepts: a deadline for the handshake,
authentication before any call, and a limit on silence.

:class:`Admission` is made by the connection (for a server's connections
only, from the server's :class:`AdmissionTerms`) and lives exactly as long as
it. Its life:

1. From the moment the socket is accepted, the connection has
   ``handshake_timeout`` seconds to finish its TLS handshake (when the server
   has TLS) and its first message; with ``auth``, that first message must be
   a hello the authenticator accepts. Otherwise the connection is closed, with
   one log line. This is what lets a server shed connections that never send
   a byte, or send one now and then and never finish.
2. With ``auth``, the connection is *locked* until its hello is accepted:
   :class:`~asyncrpc.incoming.IncomingCalls` hands this object the hello and
   answers anything else with ``Unauthenticated``, then closes.
3. With ``idle_timeout``, a connection on which nothing has been received
   and nothing is running, either way, for that long is closed (counted from
   the accept, as the handshake deadline is).

The watch costs nothing per message: the timers read counters the
connection keeps anyway.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from asyncrpc.auth import Authenticator, PeerInfo
from asyncrpc.connection_state import CLOSED, CLOSING
from asyncrpc.errors import AuthenticationFailed, Unauthenticated
from asyncrpc.flow import PauseReason
from asyncrpc.wire import extensions as ext

if TYPE_CHECKING:
    from asyncrpc.connection import Connection

__all__ = ["Admission", "AdmissionTerms", "format_address", "peer_address"]

logger = logging.getLogger("asyncrpc")

#: Idle checks per ``idle_timeout``: a quiet connection is closed after 1 to 1.25 of it.
_TICKS: Final = 4


@dataclass(frozen=True, slots=True)
class AdmissionTerms:
    """What a server asks of every connection (checked by :class:`~asyncrpc.Server`)."""

    auth: Authenticator | None
    handshake_timeout: float | None
    idle_timeout: float | None


def format_address(peer: Any) -> str:
    """A socket address for messages: ``host:port`` (``[host]:port`` for IPv6), or a path."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = f"[{peer[0]}]" if ":" in str(peer[0]) else str(peer[0])
        return f"{host}:{peer[1]}"
    return str(peer) if peer else "a Unix socket client"


def peer_address(connection: Connection) -> str:
    """The peer of ``connection``, as :func:`format_address` writes it."""
    return format_address(connection.get_extra_info("peername"))


class Admission:
    """One connection's admission: see the module docstring.

    Attributes:
        locked: true until the connection is authenticated (always false
            without ``auth``); only the hello is answered meanwhile.
        principal: what the authenticator returned (``None`` without ``auth``).
    """

    __slots__ = (
        "_connection",
        "_handshake_timer",
        "_heard",
        "_idle_timer",
        "_loop",
        "_quiet_since",
        "_task",
        "_terms",
        "_turned_away",
        "locked",
        "principal",
    )

    def __init__(self, connection: Connection, terms: AdmissionTerms) -> None:
        self._connection = connection
        self._terms = terms
        self._loop = connection.loop
        self.locked = terms.auth is not None
        self.principal: Any = None
        self._task: asyncio.Task[None] | None = None
        self._heard = 0
        self._quiet_since = 0.0
        # Said no once (and closing): what else the peer sent is not answered, nor logged.
        self._turned_away = False
        # Both from the accept: the TLS handshake counts, as the socket is not ours until it ends.
        self._handshake_timer: asyncio.TimerHandle | None = None
        if terms.handshake_timeout is not None:
            self._handshake_timer = self._loop.call_later(terms.handshake_timeout, self._handshake_over)
        self._idle_timer: asyncio.TimerHandle | None = None
        if terms.idle_timeout is not None:
            self._quiet_since = self._loop.time()
            self._idle_timer = self._loop.call_later(terms.idle_timeout / _TICKS, self._idle_tick)

    def stop(self) -> None:
        """The connection is gone: no more timers, and an authenticator still deciding is cancelled."""
        for timer in (self._handshake_timer, self._idle_timer):
            if timer is not None:
                timer.cancel()
        self._handshake_timer = self._idle_timer = None
        if self._task is not None:
            self._task.cancel()
            self._task = None

    # -- the handshake ---------------------------------------------------------------

    def _handshake_over(self) -> None:
        self._handshake_timer = None
        connection = self._connection
        if connection.is_closed:
            return
        timeout = self._terms.handshake_timeout
        if self.locked:
            connection.abort(f"not authenticated within the server's handshake_timeout of {timeout:g}s")
            return
        if connection.bytes_received <= connection.unfinished_bytes:
            # Not one whole message yet (TLS may not even be done).
            what = "no complete message" if connection.bytes_received else "not a byte"
            connection.abort(f"{what} within the server's handshake_timeout of {timeout:g}s")

    # -- authentication -------------------------------------------------------------

    def hello(self, msgid: int, params: list[Any]) -> None:
        """The locked connection's hello: decide on it, and answer it."""
        if self._turned_away or self._task is not None:
            return  # refused already, or a decision is under way (reading is paused)
        connection = self._connection
        payload = params[0] if params else None
        token = payload.get(ext.HELLO_TOKEN) if isinstance(payload, dict) else None
        if not isinstance(token, str):
            token = None
        answer = connection.hello_received(payload)
        auth = self._terms.auth
        assert auth is not None  # locked only with auth
        peer = PeerInfo(peer_address(connection), connection.peer_certificate)
        try:
            decision = auth(token, peer)
        except Exception as exc:
            self._refuse(msgid, peer, token is not None, f"the authenticator raised {type(exc).__name__}")
            return
        if inspect.isawaitable(decision):
            # Nothing more is read until it decides: no call can slip in meanwhile.
            connection.pause_reading(PauseReason.AUTHENTICATING)
            self._task = self._loop.create_task(
                self._decide_later(msgid, decision, peer, token is not None, answer)
            )
            return
        self._decided(msgid, decision, peer, token is not None, answer)

    async def _decide_later(
        self, msgid: int, decision: Any, peer: PeerInfo, had_token: bool, answer: dict[str, Any]
    ) -> None:
        try:
            principal = await decision
        except Exception as exc:
            self._task = None
            self._refuse(msgid, peer, had_token, f"the authenticator raised {type(exc).__name__}")
            return
        self._task = None
        self._decided(msgid, principal, peer, had_token, answer)
        self._connection.resume_reading(PauseReason.AUTHENTICATING)

    def _decided(
        self, msgid: int, principal: Any, peer: PeerInfo, had_token: bool, answer: dict[str, Any]
    ) -> None:
        if principal is None:
            self._refuse(msgid, peer, had_token, "token not accepted" if had_token else "no token")
            return
        self.locked = False
        self.principal = principal
        connection = self._connection
        connection.incoming.unlock()
        connection.incoming.reply(msgid, None, answer | {ext.HELLO_AUTH: True})
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None

    def _refuse(self, msgid: int, peer: PeerInfo, had_token: bool, why: str) -> None:
        self._turned_away = True
        connection = self._connection
        logger.warning("asyncrpc: authentication failed for %s: %s; closing", peer.address, why)
        message = "the server did not accept the token" if had_token else "the server requires a token"
        connection.incoming.reply_error(msgid, AuthenticationFailed(message))
        connection.close()

    def refuse_call(self, method: str, msgid: int | None) -> None:
        """Anything but a hello on a locked connection: ``Unauthenticated``, then close."""
        if self._turned_away:
            return
        self._turned_away = True
        connection = self._connection
        logger.warning(
            "asyncrpc: closing connection from %s: a %s before authenticating",
            peer_address(connection),
            "request" if msgid is not None else "notification",
        )
        if msgid is not None:
            connection.incoming.reply_error(
                msgid, Unauthenticated("this server requires authentication: connect with a token")
            )
        connection.close()

    # -- idleness ---------------------------------------------------------------------

    def _idle_tick(self) -> None:
        self._idle_timer = None
        connection = self._connection
        if connection.state is CLOSING or connection.state is CLOSED:
            return  # closing: the close has its own bound
        idle = self._terms.idle_timeout
        assert idle is not None
        now = self._loop.time()
        heard = connection.bytes_received
        if heard != self._heard or connection.serving_count or connection.pending_count:
            self._heard = heard
            self._quiet_since = now
        elif now - self._quiet_since >= idle:
            connection.abort(f"idle for {idle:g}s (the server's idle_timeout)")
            return
        self._idle_timer = self._loop.call_later(idle / _TICKS, self._idle_tick)
