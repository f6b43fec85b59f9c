"""Enumerations shared by call handles and notification modes."""

from __future__ import annotations

import enum

__all__ = ["AsyncEvent", "CallStatus"]


class CallStatus(enum.Enum):
    """Where a call handle is in its life (``RpcAsyncGetCallStatus``).

    ``INITIALIZED`` is a handle made ahead of time (``RpcAsyncInitializeHandle``)
    or reset, not yet used for a call.
    """

    INITIALIZED = "initialized"
    PENDING = "pending"
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELLED = "cancelled"


class AsyncEvent(enum.IntEnum):
    """Why a notification fired (``RPC_ASYNC_EVENT``; same numbers)."""

    CALL_COMPLETE = 0
    SEND_COMPLETE = 1
    RECEIVE_COMPLETE = 2
    CLIENT_DISCONNECT = 3
    CLIENT_CANCEL = 4
