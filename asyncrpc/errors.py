"""The one exception family of asyncrpc.

Local misuse (a handle in use, a result asked for too early) and remote
misbehaviour (bad bytes, an error reply) are different classes, all under
:class:`RPCError`, so ``except asyncrpc.RPCError`` catches everything the
library raises on purpose.

Where the Windows RPC runtime has a status code for the same situation, the
class carries it as ``code`` (``CallPending.code == 997`` is
``RPC_S_ASYNC_CALL_PENDING``), so people porting Windows code can map them.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AlreadyCompleted",
    "AuthenticationFailed",
    "CallCancelled",
    "CallPending",
    "ConnectionLost",
    "DeadlineExceeded",
    "DescribeFailed",
    "EncodeError",
    "HandleInUseError",
    "InvalidArguments",
    "InvalidResult",
    "MessageTooLarge",
    "MethodNotFound",
    "ProtocolError",
    "RPCError",
    "RemoteError",
    "TooManyPendingCalls",
    "Unauthenticated",
]

# Windows RPC status codes kept as names (rpcasync.h / winerror.h).
RPC_S_ASYNC_CALL_PENDING = 997
RPC_S_CALL_CANCELLED = 1818
RPC_S_INVALID_ASYNC_HANDLE = 1914
RPC_S_INVALID_ASYNC_CALL = 1915
RPC_S_CALL_FAILED = 1726
RPC_S_PROCNUM_OUT_OF_RANGE = 1745
RPC_S_PROTOCOL_ERROR = 1728
RPC_S_CALL_TIMEOUT = 1460  # ERROR_TIMEOUT


class RPCError(Exception):
    """Base class of every error asyncrpc raises on purpose.

    ``except asyncrpc.RPCError`` catches them all. Subclasses that are also a
    built-in exception (:class:`ConnectionLost` a :class:`ConnectionError`,
    :class:`DeadlineExceeded` a :class:`TimeoutError`, :class:`EncodeError`
    a :class:`TypeError`, :class:`MessageTooLarge` a :class:`ValueError`,
    :class:`AlreadyCompleted` a :class:`RuntimeError`) are caught by code
    written for those too.

    Attributes:
        code: the Windows RPC status code for the same situation, where there is one.
        raw: for an error that came from the peer, its error object exactly as
            it came off the wire; ``None`` otherwise.
    """

    code: int | None = None
    raw: Any = None


class ProtocolError(RPCError):
    """The bytes on a connection are not valid MessagePack-RPC, or break a limit.

    Raised by the sans-IO decoder; the connection that received the bytes is
    closed, and its pending calls fail with :class:`ConnectionLost` whose
    ``__cause__`` is this error.
    """

    code = RPC_S_PROTOCOL_ERROR


class EncodeError(RPCError, TypeError):
    """A value given to a call cannot be encoded as MessagePack.

    Raised at the call site, before anything is sent; no notification is
    ever delivered for the call. Also a :class:`TypeError`.
    """


class HandleInUseError(RPCError):
    """The call handle is pending, or finished and not :meth:`~asyncrpc.AsyncCall.reset`.

    Raised where the call is made; nothing is sent.
    """

    code = RPC_S_INVALID_ASYNC_HANDLE


class CallPending(RPCError):
    """:meth:`~asyncrpc.AsyncCall.complete` was called before the call finished.

    Not final: the call goes on unchanged (``RPC_S_ASYNC_CALL_PENDING``).
    """

    code = RPC_S_ASYNC_CALL_PENDING


class AlreadyCompleted(RPCError, RuntimeError):
    """A server-side completion token was used a second time. Also a :class:`RuntimeError`.

    Raised by :meth:`~asyncrpc.CompletionToken.complete`,
    :meth:`~asyncrpc.CompletionToken.abort` or
    :meth:`~asyncrpc.CompletionToken.fail` after the first of them; nothing
    more is sent (``RPC_S_INVALID_ASYNC_CALL``).
    """

    code = RPC_S_INVALID_ASYNC_CALL


class TooManyPendingCalls(RPCError):
    """The connection already has ``max_pending`` calls of ours waiting for replies.

    Raised at the call site; nothing is sent. Calls that ended locally while
    the peer may still answer them (an abortive cancel, a deadline) count
    until that answer comes.
    """


class CallCancelled(RPCError):
    """The call was cancelled: locally (abortive cancel) or by the server's decision."""

    code = RPC_S_CALL_CANCELLED


class DeadlineExceeded(RPCError, TimeoutError):
    """The call's deadline (``timeout=``) passed before the reply came.

    Also a :class:`TimeoutError`, so code written for asyncio timeouts catches it.
    """

    code = RPC_S_CALL_TIMEOUT


class ConnectionLost(RPCError, ConnectionError):
    """The connection closed or dropped while the call was pending (or before it was made).

    Also a :class:`ConnectionError` (an :class:`OSError`), as a dropped socket
    is everywhere else in Python. ``__cause__`` is the error that ended the
    connection, when there was one (a :class:`ProtocolError` for bad bytes).
    The message says what happened: ``"connection closed"``, ``"connection
    closed by peer"``, ``"connection lost: ..."``, or, when ``close()`` had to
    abort a socket whose peer did not read, how many bytes were dropped.
    """

    code = RPC_S_CALL_FAILED


class MessageTooLarge(RPCError, ValueError):
    """A message is larger than the receiving side accepts. Also a :class:`ValueError`.

    Raised at the call site when the encoded request (or notification) is
    larger than the peer's limit: the one it announced in the hello, or this
    side's own ``Limits.max_message_size`` for a peer that announces none.
    Nothing is sent and the connection stays usable.

    It is also a call's outcome: a reply that would be larger than the
    caller accepts is replaced, on the answering side, by this error, so the
    caller gets ``MessageTooLarge`` instead of a connection closed over an
    oversized message.
    """


class RemoteError(RPCError):
    """The peer answered the call with an error.

    Reading a peer's error object never fails: whatever its shape, the call
    ends with a ``RemoteError`` (or the class registered for its type name),
    and an object that cannot be read at all still gives a ``RemoteError``
    describing it, with the object itself in ``raw``.

    Attributes:
        type: the remote exception's type name (``"ValueError"``), or a name
            derived from a foreign error shape (``"Exception"`` for Neovim's
            ``[0, message]``).
        message: the human-readable message.
        data: optional structured detail sent by the peer.
        code: an integer error code when the peer sent one (Neovim's error
            type, or the code given to ``CompletionToken.abort``).
        raw: the error object exactly as it came off the wire, never altered (with
            ``raw_strings=True``, its strs are read as text first).
    """

    def __init__(
        self,
        message: str,
        *,
        type: str | None = None,
        data: Any = None,
        code: int | None = None,
        raw: Any = None,
    ) -> None:
        super().__init__(message)
        self.type = type if type is not None else self.__class__.__name__
        self.message = message
        self.data = data
        if code is not None:  # else keep the class's own code (MethodNotFound's)
            self.code = code
        self.raw = raw

    def __str__(self) -> str:
        return f"{self.type}: {self.message}" if self.type else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(type={self.type!r}, message={self.message!r}, code={self.code!r})"


class MethodNotFound(RemoteError):
    """The peer has no handler for the method that was called."""

    code = RPC_S_PROCNUM_OUT_OF_RANGE


class InvalidArguments(RemoteError):
    """The server refused the call's arguments before running the handler.

    Sent for a method of a typed interface (:class:`~asyncrpc.Interface`)
    when the arguments do not fit its annotations: too few, too many, or one
    of the wrong type. The message names the parameter and what it expected.
    """


class DescribeFailed(RemoteError):
    """The peer could not describe its methods (its answer to ``asyncrpc.describe``).

    Raised by :meth:`~asyncrpc.Client.describe` (and ``asyncrpc list``,
    ``describe`` and ``stubgen`` report it) when building the description
    raised on the serving side: rather than a partial answer that looks
    whole, the request fails. The message names the method that could not
    be described and why; the serving side logs the traceback. The
    connection goes on.
    """


class AuthenticationFailed(RemoteError):
    """The server refused to let us in: the token was missing or wrong, or its
    authenticator turned the connection down.

    Raised by :func:`asyncrpc.connect` (and :func:`asyncrpc.sync.connect`);
    the server closes the connection after saying so. The message never
    repeats the token.
    """


class Unauthenticated(RemoteError):
    """A call reached a server that requires authentication before the connection was
    authenticated (a plain msgpack-rpc peer, or a client that sent no hello).

    The server answers with this error and closes the connection.
    """


class InvalidResult(RPCError, TypeError):
    """A typed call's result does not fit the interface's result annotation.

    Raised at the caller's end, for that call only; the connection goes on.
    Also a :class:`TypeError`.

    Attributes:
        value: the result as it came, before any conversion.
    """

    def __init__(self, message: str, value: Any = None) -> None:
        super().__init__(message)
        self.value = value
