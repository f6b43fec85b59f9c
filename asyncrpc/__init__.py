"""asyncrpc: asyncio-native MessagePack-RPC with the Windows RPC asynchronous call model.

Every remote call is an awaitable :class:`AsyncCall` handle; how its completion
is announced is chosen per call from :mod:`asyncrpc.notify`; calls can be
cancelled, given deadlines, completed later by the server, and interleaved
freely on one connection.

The names below are loaded on first use, so that ``import asyncrpc.wire`` (the
sans-IO codec) loads neither asyncio nor the rest of the library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asyncrpc import notify, sync, tls
    from asyncrpc.auth import PeerInfo, TokenAuth
    from asyncrpc.client import Client, Stub, StubMethod
    from asyncrpc.connection import Connection
    from asyncrpc.connection_state import ConnectionState
    from asyncrpc.connector import Connector, connect
    from asyncrpc.dispatch import blocking, cooperative
    from asyncrpc.errors import (
        AlreadyCompleted,
        AuthenticationFailed,
        CallCancelled,
        CallPending,
        ConnectionLost,
        DeadlineExceeded,
        DescribeFailed,
        EncodeError,
        HandleInUseError,
        InvalidArguments,
        InvalidResult,
        MessageTooLarge,
        MethodNotFound,
        ProtocolError,
        RemoteError,
        RPCError,
        TooManyPendingCalls,
        Unauthenticated,
    )
    from asyncrpc.handle import AsyncCall
    from asyncrpc.interface import Interface
    from asyncrpc.options import ConnectOptions
    from asyncrpc.reconnect import ClientState, Reconnect
    from asyncrpc.remote_errors import register_error_type
    from asyncrpc.runner import run
    from asyncrpc.server import Server
    from asyncrpc.server_call import CompletionToken, ServerCall, current_call
    from asyncrpc.status import AsyncEvent, CallStatus
    from asyncrpc.typed_stub import start
    from asyncrpc.wire.limits import Limits

__version__ = "0.1.0"

# Public name -> the module that defines it (a name that is itself a module maps to "").
_EXPORTS: dict[str, str] = {
    "AlreadyCompleted": "asyncrpc.errors",
    "AsyncCall": "asyncrpc.handle",
    "AsyncEvent": "asyncrpc.status",
    "AuthenticationFailed": "asyncrpc.errors",
    "CallCancelled": "asyncrpc.errors",
    "CallPending": "asyncrpc.errors",
    "CallStatus": "asyncrpc.status",
    "Client": "asyncrpc.client",
    "ClientState": "asyncrpc.reconnect",
    "CompletionToken": "asyncrpc.server_call",
    "ConnectOptions": "asyncrpc.options",
    "Connection": "asyncrpc.connection",
    "ConnectionLost": "asyncrpc.errors",
    "ConnectionState": "asyncrpc.connection_state",
    "Connector": "asyncrpc.connector",
    "DeadlineExceeded": "asyncrpc.errors",
    "DescribeFailed": "asyncrpc.errors",
    "EncodeError": "asyncrpc.errors",
    "HandleInUseError": "asyncrpc.errors",
    "Interface": "asyncrpc.interface",
    "InvalidArguments": "asyncrpc.errors",
    "InvalidResult": "asyncrpc.errors",
    "Limits": "asyncrpc.wire.limits",
    "MessageTooLarge": "asyncrpc.errors",
    "MethodNotFound": "asyncrpc.errors",
    "PeerInfo": "asyncrpc.auth",
    "ProtocolError": "asyncrpc.errors",
    "RPCError": "asyncrpc.errors",
    "Reconnect": "asyncrpc.reconnect",
    "RemoteError": "asyncrpc.errors",
    "Server": "asyncrpc.server",
    "ServerCall": "asyncrpc.server_call",
    "Stub": "asyncrpc.client",
    "StubMethod": "asyncrpc.client",
    "TokenAuth": "asyncrpc.auth",
    "TooManyPendingCalls": "asyncrpc.errors",
    "Unauthenticated": "asyncrpc.errors",
    "blocking": "asyncrpc.dispatch",
    "connect": "asyncrpc.connector",
    "cooperative": "asyncrpc.dispatch",
    "current_call": "asyncrpc.server_call",
    "notify": "",
    "register_error_type": "asyncrpc.remote_errors",
    "run": "asyncrpc.runner",
    "start": "asyncrpc.typed_stub",
    "sync": "",
    "tls": "",
}

__all__ = [
    "AlreadyCompleted",
    "AsyncCall",
    "AsyncEvent",
    "AuthenticationFailed",
    "CallCancelled",
    "CallPending",
    "CallStatus",
    "Client",
    "ClientState",
    "CompletionToken",
    "ConnectOptions",
    "Connection",
    "ConnectionLost",
    "ConnectionState",
    "Connector",
    "DeadlineExceeded",
    "DescribeFailed",
    "EncodeError",
    "HandleInUseError",
    "Interface",
    "InvalidArguments",
    "InvalidResult",
    "Limits",
    "MessageTooLarge",
    "MethodNotFound",
    "PeerInfo",
    "ProtocolError",
    "RPCError",
    "Reconnect",
    "RemoteError",
    "Server",
    "ServerCall",
    "Stub",
    "StubMethod",
    "TokenAuth",
    "TooManyPendingCalls",
    "Unauthenticated",
    "__version__",
    "blocking",
    "connect",
    "cooperative",
    "current_call",
    "notify",
    "register_error_type",
    "run",
    "start",
    "sync",
    "tls",
]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'asyncrpc' has no attribute {name!r}")
    if module_name:
        value = getattr(importlib.import_module(module_name), name)
    else:
        value = importlib.import_module(f"asyncrpc.{name}")
    globals()[name] = value  # the next lookup is an ordinary one
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
