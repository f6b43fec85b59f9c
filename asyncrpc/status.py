"""Enumerations shared by call handles and notification modes."""

from __future__ import annotations

import enum

__all__ = ["AsyncEvent", "CallStatus"]


class CallStatus(enum.Enum):
    """Where a call handle is in its life (``RpcAsyncGetCallStatus``).

    Attributes:
        INITIALIZED: a handle made ahead of time (``RpcAsyncInitializeHandle``)
            or reset, not yet used for a call.
        PENDING: the call is on its way; no outcome yet
            (``RPC_S_ASYNC_CALL_PENDING``).
        COMPLETE: the call returned a result.
        FAILED: the call failed: a remote error, its deadline passed, or its
            connection was lost.
        CANCELLED: the call was cancelled: an abortive cancel here, or the
            server cancelled its handler.
    """

    INITIALIZED = "initialized"
    PENDING = "pending"
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELLED = "cancelled"


class AsyncEvent(enum.IntEnum):
    """Why a notification fired (``RPC_ASYNC_EVENT``; same numbers).

    Attributes:
        CALL_COMPLETE: the call finished, whatever its outcome (``RpcCallComplete``);
            delivered exactly once for every call that was started.
        SEND_COMPLETE: reserved for pipes (``RpcSendComplete``); never delivered yet.
        RECEIVE_COMPLETE: reserved for pipes (``RpcReceiveComplete``); never delivered yet.
        CLIENT_DISCONNECT: server side: the client went away with the call open
            (``RpcClientDisconnect``); see :meth:`asyncrpc.ServerCall.on_disconnect`.
        CLIENT_CANCEL: server side: the client asked to cancel the call, or
            its deadline passed (``RpcClientCancel``); see
            :meth:`asyncrpc.ServerCall.on_cancel`.
    """

    CALL_COMPLETE = 0
    SEND_COMPLETE = 1
    RECEIVE_COMPLETE = 2
    CLIENT_DISCONNECT = 3
    CLIENT_CANCEL = 4
