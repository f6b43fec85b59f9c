"""Reconnect: a client that survives its connection dropping.

``connect(..., reconnect=asyncrpc.Reconnect(...))`` gives a client whose
connection is made again, with backoff, each time it drops:

- calls in flight when it drops fail with :class:`~asyncrpc.ConnectionLost`
  and are never sent again (the server may or may not have run them);
- a call made while there is no connection is pending at once and waits for
  the next one, within its own deadline (``DeadlineExceeded`` if that passes
  first); waiting calls are sent in the order they were made;
- what the client registered (``register_function``) stays registered, and
  the extensions are negotiated again with whichever server answers;
- ``client.close()``, or running out of ``attempts``, ends every waiting call
  with ``ConnectionLost``.

The :class:`Reconnector` is the client's half of this: it owns the backoff
loop (one task, only while reconnecting) and tells the client which table
its calls go to: the live connection's, or the waiting one.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asyncrpc.errors import AuthenticationFailed, ConnectionLost
from asyncrpc.handle import WaitingCalls

if TYPE_CHECKING:
    from asyncrpc.connection import Connection
    from asyncrpc.dispatch import Dispatcher

__all__ = ["ClientState", "Reconnect", "Reconnector"]

logger = logging.getLogger("asyncrpc")


class ClientState(enum.Enum):
    """Where a client is: ``client.state``."""

    CONNECTED = "connected"
    """A connection is up: calls are sent as they are made."""
    CONNECTING = "connecting"
    """The connection dropped and a new one is being made: calls wait for it."""
    CLOSED = "closed"
    """Closed by ``client.close()``, or given up: calls raise ``ConnectionLost``."""


def _positive(name: str, value: float) -> None:
    if type(value) not in (int, float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"Reconnect.{name} must be a positive number of seconds, not {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconnect:
    """How a client reconnects: exponential backoff with jitter.

    The first attempt after a drop waits ``initial`` seconds; each next one
    waits ``multiplier`` times longer, up to ``maximum``; each wait is
    spread by up to ``jitter`` of itself either way, so that many clients
    dropped together do not all come back at the same moment.

    Attributes:
        initial: seconds before the first attempt (default 0.1).
        maximum: the longest wait between attempts (default 10.0).
        multiplier: how much longer each wait is than the last (default 2.0; at least 1).
        jitter: the fraction each wait may be shortened or lengthened by, at
            random (default 0.1; from 0 to below 1).
        attempts: attempts per drop before giving up, or ``None`` (default)
            to keep trying until ``client.close()``.

    Raises:
        ValueError: a wait that is not a positive finite number, ``maximum``
            below ``initial``, ``multiplier`` below 1, ``jitter`` outside
            ``[0, 1)``, or ``attempts`` below 1.
    """

    initial: float = 0.1
    maximum: float = 10.0
    multiplier: float = 2.0
    jitter: float = 0.1
    attempts: int | None = None

    def __post_init__(self) -> None:
        _positive("initial", self.initial)
        _positive("maximum", self.maximum)
        if self.maximum < self.initial:
            raise ValueError(f"Reconnect.maximum ({self.maximum!r}) is below initial ({self.initial!r})")
        if (
            type(self.multiplier) not in (int, float)
            or not math.isfinite(self.multiplier)
            or self.multiplier < 1
        ):
            raise ValueError(f"Reconnect.multiplier must be a number of at least 1, not {self.multiplier!r}")
        if type(self.jitter) not in (int, float) or not 0 <= self.jitter < 1:
            raise ValueError(f"Reconnect.jitter must be a fraction from 0 to below 1, not {self.jitter!r}")
        if self.attempts is not None and (type(self.attempts) is not int or self.attempts < 1):
            raise ValueError(f"Reconnect.attempts must be a positive integer or None, not {self.attempts!r}")

    def delays(self) -> Iterator[float]:
        """The waits before each attempt after one drop (as many as ``attempts`` allows)."""
        delay = self.initial
        made = 0
        while self.attempts is None or made < self.attempts:
            made += 1
            yield delay * random.uniform(1 - self.jitter, 1 + self.jitter)
            delay = min(delay * self.multiplier, self.maximum)


#: What a reconnector does to (re)open its connection: the hello included, bounded by connect_timeout.
Opener = Callable[["Dispatcher", Callable[["Connection", list[asyncio.Task[None]]], object]], Any]


class Reconnector:
    """The reconnecting half of one client: made by ``connect()`` with its first connection.

    Args:
        policy: the backoff.
        address: the peer, for messages.
        open_connection: ``await open_connection(dispatcher, on_lost)`` makes a
            new connection (raising ``OSError``, ``TimeoutError`` or
            ``ConnectionLost`` when it cannot).
        dispatcher: the client's own handlers, shared by every connection.
        max_pending: the most calls that may wait for a connection.
    """

    __slots__ = (
        "_address",
        "_changed",
        "_closing",
        "_connection",
        "_dispatcher",
        "_max_pending",
        "_open",
        "_policy",
        "_switch",
        "_task",
        "_waiting",
        "state",
    )

    def __init__(
        self,
        policy: Reconnect,
        address: str,
        open_connection: Opener,
        dispatcher: Dispatcher,
        *,
        max_pending: int,
    ) -> None:
        self._policy = policy
        self._address = address
        self._open = open_connection
        self._dispatcher = dispatcher
        self._max_pending = max_pending
        self._connection: Connection | None = None
        self._waiting: WaitingCalls | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._changed = asyncio.Event()  # set and cleared at each change of state
        self._switch: Callable[[Connection, Any], None] | None = None
        #: Where the client is (read it, don't set it).
        self.state = ClientState.CONNECTING

    @property
    def dispatcher(self) -> Dispatcher:
        """The client's own handlers (what the peer may call), kept across connections."""
        return self._dispatcher

    @property
    def on_lost(self) -> Callable[[Connection, list[asyncio.Task[None]]], object]:
        """What each connection calls when its socket is gone."""
        return self._lost

    def attach(self, connection: Connection, switch: Callable[[Connection, Any], None]) -> None:
        """The first connection is up; ``switch(connection, calls)`` points the client at a table."""
        self._switch = switch
        self._connection = connection
        self._set_state(ClientState.CONNECTED)

    def _set_state(self, state: ClientState) -> None:
        self.state = state
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_connected(self) -> None:
        """Return once connected; raise ``ConnectionLost`` if the client closes first."""
        while self.state is not ClientState.CONNECTED:
            if self.state is ClientState.CLOSED:
                raise ConnectionLost(f"client for {self._address} is closed")
            await self._changed.wait()

    def _lost(self, connection: Connection, _still_running: list[asyncio.Task[None]]) -> None:
        if connection is not self._connection or self._closing:
            return
        reason = f"reconnecting to {self._address}"
        waiting = WaitingCalls(
            connection.loop,
            connection.thread,
            max_pending=self._max_pending,
            encoder=connection.encoder,
            reason=f"the connection dropped; {reason}",
        )
        self._waiting = waiting
        assert self._switch is not None
        self._switch(connection, waiting)
        logger.info("asyncrpc: %s: %s; %s", self._address, connection.closed_reason, reason)
        self._set_state(ClientState.CONNECTING)
        self._task = connection.loop.create_task(self._reconnect(waiting))

    async def _reconnect(self, waiting: WaitingCalls) -> None:
        last: BaseException | None = None
        tried = 0
        for delay in self._policy.delays():
            await asyncio.sleep(delay)
            tried += 1
            try:
                connection: Connection = await self._open(self._dispatcher, self._lost)
            except (OSError, TimeoutError, ConnectionLost) as exc:
                last = exc
                logger.debug("asyncrpc: reconnecting to %s: attempt %d failed: %s", self._address, tried, exc)
                continue
            except AuthenticationFailed as exc:
                # The server is there and said no: asking again would get the same answer.
                logger.warning("asyncrpc: reconnecting to %s: %s; giving up", self._address, exc)
                last = exc
                break
            if not connection.accepting_calls:  # up, and gone again before we could use it
                last = ConnectionLost(connection.closed_reason)
                continue
            self._connection = connection
            assert self._switch is not None
            self._switch(connection, connection.outgoing)
            self._waiting = None
            for call, method, params in waiting.take():
                connection.outgoing.adopt(call, method, params)
            logger.info("asyncrpc: reconnected to %s after %d attempt(s)", self._address, tried)
            self._task = None
            self._set_state(ClientState.CONNECTED)
            return
        self._task = None
        self._give_up()
        waiting.fail_all(f"could not reconnect to {self._address} in {tried} attempt(s): {last}", last)

    def _give_up(self) -> None:
        """No more connections: calls go to the last one's table again, which refuses them."""
        self._waiting = None
        if self._connection is not None and self._switch is not None:
            self._switch(self._connection, self._connection.outgoing)
        self._set_state(ClientState.CLOSED)

    async def close(self) -> None:
        """End it all: no more attempts, waiting calls fail, the connection closes."""
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        waiting = self._waiting
        self._give_up()
        if waiting is not None:
            waiting.fail_all("client closed", None)
        connection = self._connection
        if connection is not None:
            connection.close()
            await connection.wait_closed()
