"""Why a connection stops reading: flow control has reasons, each added and removed on its own."""

from __future__ import annotations

import enum

__all__ = ["PauseReason"]


class PauseReason(enum.Enum):
    """Why a connection stopped reading from its socket.

    A connection reads again only when no reason is left: a handler finishing
    (under the in-flight limit again) never resumes reading that a full write
    buffer paused, nor the other way round. ``connection.pause_reasons`` says
    which hold now.

    Attributes:
        WRITE_BUFFER_FULL: the peer is not reading what we send: the
            transport's write buffer passed its high-water mark. Ends when it
            drains below the low-water mark.
        IN_FLIGHT_LIMIT: ``max_inflight`` of the peer's requests and
            notifications are running. Ends when one of them finishes.
        AUTHENTICATING: a server's authenticator is deciding on the peer's
            hello; nothing else the peer sent is read until it has.
    """

    WRITE_BUFFER_FULL = "the peer is not reading what we send"
    IN_FLIGHT_LIMIT = "the peer's calls reached max_inflight"
    AUTHENTICATING = "the server is deciding whether to let the peer in"
