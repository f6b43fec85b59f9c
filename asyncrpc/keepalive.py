"""Keepalive: find out that a silent peer is gone, instead of waiting for it forever.

A connection made with ``keepalive=`` seconds watches what it receives. Once
nothing at all has arrived for that long, it sends a ping (a request for
``asyncrpc.ping``, which an asyncrpc peer answers at once and a plain peer
answers with an error: either answer will do). No answer within another
``keepalive`` seconds, and the peer (or the network between) is taken to be
gone: the connection is aborted, every pending call fails with
:class:`~asyncrpc.ConnectionLost` saying so, and a server's handlers for that
peer see the disconnect.

The watch costs nothing per message: it reads the connection's count of
bytes received on a timer that fires four times per interval, so a ping goes
out after between 1 and 1.25 intervals of silence. A ping is an ordinary
request queued with the calls (it never holds one up), and at most one is out
at a time. The operating system's TCP keepalive is turned on too, with the
same interval, for what only the kernel can see (a peer host that vanished
while nothing was being sent).

A peer that has stopped reading because it is busy (a server at its
``max_inflight``, with every call running longer than the interval) cannot
answer a ping either, and is taken to be gone: choose an interval longer than
the longest call such a peer may run while full.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
from typing import TYPE_CHECKING, Any, Final

from asyncrpc.errors import DeadlineExceeded, RPCError
from asyncrpc.wire.extensions import PING_METHOD

if TYPE_CHECKING:
    import asyncio

    from asyncrpc.connection import Connection
    from asyncrpc.handle import AsyncCall

__all__ = ["Keepalive", "set_tcp_keepalive"]

logger = logging.getLogger("asyncrpc")

#: Timer ticks per interval: how finely silence is measured.
_TICKS: Final = 4

#: TCP keepalive probes the kernel sends, an interval apart, before it gives up.
_TCP_PROBES: Final = 3


def set_tcp_keepalive(sock: socket.socket, interval: float) -> None:
    """Turn on the kernel's keepalive for ``sock``: probes after ``interval`` seconds idle,
    then every ``interval`` seconds, giving up after three unanswered.

    Options the platform lacks are skipped (only ``SO_KEEPALIVE`` is everywhere).
    """
    seconds = max(1, math.ceil(interval))
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        options = (("TCP_KEEPIDLE", seconds), ("TCP_KEEPINTVL", seconds), ("TCP_KEEPCNT", _TCP_PROBES))
        for name, value in options:
            option = getattr(socket, name, None)
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)


class Keepalive:
    """The silence watch of one connection: made, started and stopped by the connection.

    Args:
        connection: the connection to watch; its ``outgoing`` table sends the pings.
        interval: seconds of silence before a ping, and seconds a ping has to be answered.
    """

    __slots__ = ("_connection", "_heard", "_interval", "_loop", "_ping", "_silent_ticks", "_timer")

    def __init__(self, connection: Connection, interval: float) -> None:
        self._connection = connection
        self._interval = interval
        self._loop: asyncio.AbstractEventLoop = connection.loop
        self._timer: asyncio.TimerHandle | None = None
        self._heard = -1  # bytes received at the last tick
        self._silent_ticks = 0
        self._ping: AsyncCall[Any] | None = None

    @property
    def interval(self) -> float:
        """Seconds of silence before a ping, and seconds a ping has to be answered."""
        return self._interval

    def start(self) -> None:
        """Begin watching (the socket is up)."""
        if self._timer is None:
            self._timer = self._loop.call_later(self._interval / _TICKS, self._tick)

    def stop(self) -> None:
        """Stop watching (the socket is gone); a ping still out fails with the other calls."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        self._timer = None
        connection = self._connection
        if not connection.accepting_calls:
            return  # closing: the close has its own bound
        heard = connection.bytes_received
        if heard != self._heard:
            self._heard = heard
            self._silent_ticks = 0
        else:
            self._silent_ticks += 1
            if self._silent_ticks >= _TICKS and self._ping is None:
                self._send_ping()
        self._timer = self._loop.call_later(self._interval / _TICKS, self._tick)

    def _send_ping(self) -> None:
        try:
            ping = self._connection.outgoing.call(PING_METHOD, [], timeout=self._interval)
        except RPCError:
            # max_pending calls are out (TooManyPendingCalls): their answers,
            # or their absence, will tell soon enough. Try again next tick.
            return
        self._ping = ping
        ping.add_done_callback(self._answered)

    def _answered(self, ping: AsyncCall[Any]) -> None:
        self._ping = None
        if isinstance(ping.exception(), DeadlineExceeded):
            self._connection.abort(
                f"no answer to a keepalive ping within {self._interval:g}s: the peer or the network is gone"
            )
        # Any other outcome is an answer (a plain peer's "no such method"
        # error), or the connection already going (ConnectionLost).
