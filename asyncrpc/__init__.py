"""asyncrpc: asyncio-native MessagePack-RPC with the Windows RPC asynchronous call model.

Every remote call is an awaitable :class:`AsyncCall` handle; how its completion
is announced is chosen per call from :mod:`asyncrpc.notify`; calls can be
cancelled, given deadlines, completed later by the server, and interleaved
freely on one connection.
"""

from asyncrpc import notify, sync
from asyncrpc.client import Client, Connector, Stub, StubMethod, connect
from asyncrpc.connection import Connection
from asyncrpc.dispatch import blocking, cooperative
from asyncrpc.errors import (
    AlreadyCompleted,
    CallCancelled,
    CallPending,
    ConnectionLost,
    DeadlineExceeded,
    EncodeError,
    HandleInUseError,
    MethodNotFound,
    ProtocolError,
    RemoteError,
    RPCError,
    TooManyPendingCalls,
)
from asyncrpc.handle import AsyncCall
from asyncrpc.options import ConnectOptions
from asyncrpc.remote_errors import register_error_type
from asyncrpc.runner import run
from asyncrpc.server import Server
from asyncrpc.server_call import CompletionToken, ServerCall, current_call
from asyncrpc.status import AsyncEvent, CallStatus
from asyncrpc.wire.limits import Limits

__version__ = "0.1.0"

__all__ = [
    "AlreadyCompleted",
    "AsyncCall",
    "AsyncEvent",
    "CallCancelled",
    "CallPending",
    "CallStatus",
    "Client",
    "CompletionToken",
    "ConnectOptions",
    "Connection",
    "ConnectionLost",
    "Connector",
    "DeadlineExceeded",
    "EncodeError",
    "HandleInUseError",
    "Limits",
    "MethodNotFound",
    "ProtocolError",
    "RPCError",
    "RemoteError",
    "Server",
    "ServerCall",
    "Stub",
    "StubMethod",
    "TooManyPendingCalls",
    "__version__",
    "blocking",
    "connect",
    "cooperative",
    "current_call",
    "notify",
    "register_error_type",
    "run",
    "sync",
]
