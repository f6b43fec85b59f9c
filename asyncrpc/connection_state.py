"""A connection's life, as one table (the h11 ``_state`` shape).

Theory of operation
-------------------
Every change of a :class:`~asyncrpc.Connection`'s state is one step of
:data:`TRANSITIONS`; a step the table does not have changes nothing (which
is what makes ``close()`` idempotent)::

    NEW      --made-->        OPEN      the socket is up; calls go out as plain msgpack-rpc
    NEW      --close-->       CLOSING   closed before its socket was up: closed as it comes
    OPEN     --negotiated-->  READY     the hello was answered (extensions or none)
    OPEN     --close-->       CLOSING   close(): no new calls; what is queued still leaves
    READY    --close-->       CLOSING
    any but CLOSED --lost-->  CLOSED    the socket is gone; every pending call has failed

Calls may be made in ``OPEN`` and ``READY`` only.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["TRANSITIONS", "ConnectionState"]


class ConnectionState(enum.Enum):
    """Where a connection is in its life; see the module's theory of operation.

    Attributes:
        NEW: made, the socket not connected yet.
        OPEN: the socket is up; calls go out as plain msgpack-rpc (a
            connection made with ``extensions=False`` stays here).
        READY: the hello was answered; the extensions both ends speak are in use.
        CLOSING: ``close()`` was called: no new calls; what is queued still leaves.
        CLOSED: the socket is gone; every pending call has failed with ``ConnectionLost``.
    """

    NEW = "new"
    OPEN = "open"
    READY = "ready"
    CLOSING = "closing"
    CLOSED = "closed"


NEW: Final = ConnectionState.NEW
OPEN: Final = ConnectionState.OPEN
READY: Final = ConnectionState.READY
CLOSING: Final = ConnectionState.CLOSING
CLOSED: Final = ConnectionState.CLOSED

TRANSITIONS: Final[dict[tuple[ConnectionState, str], ConnectionState]] = {
    (NEW, "made"): OPEN,
    (OPEN, "negotiated"): READY,
    (READY, "negotiated"): READY,  # a peer may say hello again; the last one counts
    (NEW, "close"): CLOSING,
    (OPEN, "close"): CLOSING,
    (READY, "close"): CLOSING,
    (NEW, "lost"): CLOSED,
    (OPEN, "lost"): CLOSED,
    (READY, "lost"): CLOSED,
    (CLOSING, "lost"): CLOSED,
}
