"""Exceptions to wire error objects and back.

msgpack-rpc leaves the error object's shape to each peer. asyncrpc sends:

* to a peer that negotiated the ``errors`` extension, a map
  ``{"type": "ValueError", "message": "...", "code"?: int, "data"?: any}``;
* to a plain peer, what ``plain_errors`` says (:data:`PlainErrors`): by
  default Neovim's shape ``[code, "Type: message"]``, which Neovim and its
  clients read. Neovim accepts only its own error types as ``code`` (0
  Exception, 1 Validation) and shows any other code as "unknown error", so
  another code (one given to ``CompletionToken.abort``) travels in the
  message: ``[0, "Type[42]: message"]``. ``"string"`` sends the message alone,
  ``"Type: message"``, which most other msgpack-rpc libraries expect (Go's
  net/rpc codecs cannot read anything else); a callable makes its own.

Reading, every shape is accepted and the object is kept as ``RemoteError.raw``.
Known type names map back to their classes (:data:`ERROR_TYPES`); users may
add their own with :func:`register_error_type`. The unknown-method errors of
common peers (Neovim, Go's net/rpc, msgpack-rpc-python, mprpc, aiorpc, the
Node libraries) become :class:`~asyncrpc.MethodNotFound`. Reading never raises: an
error object nothing here can make sense of (or a registered class that
fails to build) still becomes a :class:`RemoteError`, so the call it answers
always ends.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Callable
from typing import Any, Final, Literal, TypeAlias

from asyncrpc.errors import (
    AuthenticationFailed,
    CallCancelled,
    DeadlineExceeded,
    DescribeFailed,
    InvalidArguments,
    MessageTooLarge,
    MethodNotFound,
    RemoteError,
    RPCError,
    Unauthenticated,
)

__all__ = [
    "ERROR_TYPES",
    "MESSAGE_LIMIT",
    "PLAIN_ERROR_SHAPES",
    "PlainErrors",
    "bounded",
    "check_plain_errors",
    "error_from_wire",
    "error_to_wire",
    "names_unknown_method",
    "register_error_type",
]

PlainErrors: TypeAlias = Literal["neovim", "string"] | Callable[[BaseException], Any]
"""How errors are sent to a peer that did not negotiate structured errors.

``"neovim"`` (the default): ``[0, "Type: message"]``, what Neovim, pynvim and
the other Neovim clients read. ``"string"``: ``"Type: message"``, what Go's
net/rpc codecs, msgpack-rpc-python, mprpc, aiorpc and most other libraries
expect. A callable: given the exception, returns the error object to send
(anything msgpack can encode); if it raises or returns something that cannot
be encoded, the ``"string"`` form is sent instead.
"""

PLAIN_ERROR_SHAPES: Final = ("neovim", "string")
"""The named forms :data:`PlainErrors` takes."""


def check_plain_errors(value: object) -> None:
    """Raise ``ValueError`` unless ``value`` is a :data:`PlainErrors`."""
    if value in PLAIN_ERROR_SHAPES and isinstance(value, str):
        return
    if callable(value) and not isinstance(value, str | bytes):
        return
    raise ValueError(f"plain_errors must be 'neovim', 'string' or a callable, not {value!r}")


ERROR_TYPES: Final[dict[str, type[RPCError]]] = {
    "MethodNotFound": MethodNotFound,
    "InvalidArguments": InvalidArguments,
    "CallCancelled": CallCancelled,
    "DeadlineExceeded": DeadlineExceeded,
    "MessageTooLarge": MessageTooLarge,
    "DescribeFailed": DescribeFailed,
    "AuthenticationFailed": AuthenticationFailed,
    "Unauthenticated": Unauthenticated,
}
"""Remote type names that become a specific local class; :func:`register_error_type` adds to it.

Every other type name gives a :class:`~asyncrpc.RemoteError` with that ``type``.
"""

# Neovim's error types (``ErrorType`` in its API): 0 Exception, 1 Validation.
_NEOVIM_TYPES: Final = {0: "Exception", 1: "Validation"}

# "TypeName: message", the plain-peer form we send; only names that look like
# exception classes are split off, so an ordinary "Key: value" message stays whole.
_TYPED_MESSAGE: Final = re.compile(
    r"(?P<type>[A-Za-z_][\w.]*"
    r"(?:Error|Exception|NotFound|Cancelled|Aborted|Exceeded|Warning|Exit|Interrupt|Failed)"
    r"|InvalidArguments|Unauthenticated)"
    r"(?:\[(?P<code>-?\d{1,19})\])?: (?P<message>.*)",
    re.DOTALL,
)


# How the msgpack-rpc peers in use say "no such method" (docs/protocol.md, "Error objects"):
# Neovim "Invalid method: x"; Go's net/rpc "rpc: can't find service x",
# "rpc: can't find method x" and, for a name with no dot in it,
# "rpc: service/method request ill-formed: x"; msgpack-rpc-python "'x' method not found";
# mprpc "Method not found: x"; pynvim's plugin host 'no request handler
# registered for "x"'; aio-msgpack-rpc, which looks the method up as
# an attribute of its handler object, "'Handler' object has no attribute 'x'"
# (the whole message, and not an object of a builtin type, which a handler's
# own AttributeError names far more often); aiorpc and the Node libraries
# "Method not found" / "No such method" / "Unknown method" / "Not Implemented".
_UNKNOWN_METHOD: Final = re.compile(
    r"invalid method\b"
    r"|^'(?!(?:NoneType|str|bytes|int|float|bool|list|dict|tuple|set|module|function)')"
    r"[A-Za-z_]\w{0,100}' object has no attribute '[^'\n]{1,300}'$"
    r"|rpc: can't find (?:service|method)\b"
    r"|rpc: service/method request ill-formed\b"
    r"|\bno request handler registered for\b"
    r"|\bmethod\b[^\n]{0,300}?\b(?:not found|does not exist|is not defined|not implemented)\b"
    r"|\b(?:no such|unknown|undefined) method\b"
    r"|\bno method\b"
    r"|^not implemented\.?$"
    # Exception names in the message: "NoMethodError: ...", "MethodNotFoundError(...)".
    r"|\b(?:NoMethodError|MethodNotFound(?:Error)?)\b",
    re.IGNORECASE,
)
_UNKNOWN_METHOD_TYPES: Final = frozenset({"NoMethodError", "MethodNotFoundError", "MethodNotFound"})
# An error whose type says nothing more: only its message can tell.
_UNTYPED: Final = frozenset({"RemoteError", "Exception", "Error", "RPCError"})


def names_unknown_method(text: str) -> bool:
    """True if ``text`` is how a common msgpack-rpc peer says it has no such method."""
    return _UNKNOWN_METHOD.search(text[:1000]) is not None


def _is_unknown_method(error: RemoteError) -> bool:
    # A typed error (a handler's ValueError about an "unknown method of
    # payment") keeps its type; only an untyped one is read by its message.
    if error.type in _UNKNOWN_METHOD_TYPES:
        return True
    return error.type in _UNTYPED and names_unknown_method(error.message)


def register_error_type(name: str, cls: type[RPCError]) -> None:
    """Raise ``cls`` for remote errors whose type name is ``name``.

    ``cls`` is built like :class:`RemoteError` if it is a subclass of it,
    else with the message as its only argument.
    """
    ERROR_TYPES[name] = cls


def error_type_name(exc: BaseException) -> str:
    """The name an exception travels under."""
    if isinstance(exc, RemoteError):
        return exc.type
    return type(exc).__name__


MESSAGE_LIMIT: Final = 1000
"""Characters of an exception's message an error reply (or a log line) carries.

A handler's exception often repeats the peer's own input (``KeyError`` of a
lookup by the peer's value, as ``repr()``, several times larger than it came):
cut, an error reply never echoes unbounded input.
"""


def bounded(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text``, cut to ``limit`` characters with a note of how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def error_to_wire(
    exc: BaseException, *, structured: bool, code: int | None = None, plain: PlainErrors = "neovim"
) -> Any:
    """The error object for ``exc``, in the shape the peer understands.

    Args:
        exc: the exception to send.
        structured: the peer negotiated the ``errors`` extension: send a map
            ``{"type", "message", "code"?, "data"?}``; else the ``plain`` form.
        code: an error code to send; default the ``code`` of a
            :class:`~asyncrpc.RemoteError` raised with one.
        plain: the form for a plain peer (:data:`PlainErrors`). A callable
            is called here; what it raises reaches the caller.
    """
    if not structured and not isinstance(plain, str):
        return plain(exc)
    name = bounded(error_type_name(exc), 100)
    message = bounded(exc.message if isinstance(exc, RemoteError) else str(exc))
    if code is None and isinstance(exc, RemoteError) and isinstance(exc.code, int):
        code = exc.code if type(exc) is RemoteError else None
    if structured:
        error: dict[str, Any] = {"type": name, "message": message}
        if code is not None:
            error["code"] = code
        data = getattr(exc, "data", None)
        if data is not None:
            error["data"] = data
        return error
    if code is not None and (plain == "string" or code not in _NEOVIM_TYPES):
        text = f"{name or 'RemoteError'}[{code}]: {message}"
        return text if plain == "string" else [0, text]
    text = f"{name}: {message}" if name else message
    return text if plain == "string" else [0 if code is None else code, text]


def _build(name: str, message: str, *, data: Any, code: int | None, raw: Any) -> RPCError:
    cls = ERROR_TYPES.get(name)
    if cls is not None:
        try:
            if issubclass(cls, RemoteError):
                return cls(message, type=name, data=data, code=code, raw=raw)
            error = cls(message)
            error.raw = raw
            return error
        except Exception:
            pass  # a registered class that cannot be built from this: the plain form below
    return RemoteError(message, type=name, data=data, code=code, raw=raw)


def _bounded_repr() -> reprlib.Repr:
    # Attributes, not keywords: Python 3.11's Repr() takes none.
    described = reprlib.Repr()
    described.maxlevel = 3
    described.maxstring = described.maxother = 200
    described.maxlist = described.maxdict = described.maxtuple = 8
    return described


# Bounded descriptions of error objects that have no message of their own.
_describe: Final = _bounded_repr().repr


def error_from_wire(raw: Any) -> RPCError:
    """The exception for an error object received from a peer, whatever its shape; never raises.

    The object is kept as the exception's ``raw``. One that cannot be read
    at all (or a registered class that fails to build from it) gives a
    :class:`~asyncrpc.RemoteError` whose message describes it, in at most a
    few hundred characters.
    """
    try:
        error = _from_wire(raw)
        if type(error) is RemoteError and _is_unknown_method(error):
            return MethodNotFound(error.message, type=error.type, data=error.data, code=error.code, raw=raw)
        return error
    except Exception as exc:
        return RemoteError(
            f"the peer's error could not be read ({type(exc).__name__}): {_describe(raw)}",
            type="RemoteError",
            raw=raw,
        )


def _from_wire(raw: Any) -> RPCError:
    if isinstance(raw, dict) and isinstance(raw.get("message"), str):
        name = raw.get("type")
        code = raw.get("code")
        return _build(
            name if isinstance(name, str) else "RemoteError",
            raw["message"],
            data=raw.get("data"),
            code=code if isinstance(code, int) else None,
            raw=raw,
        )
    if isinstance(raw, list) and len(raw) >= 2 and isinstance(raw[1], str):
        head, message = raw[0], raw[1]
        data = raw[2] if len(raw) > 2 else None
        if isinstance(head, str):
            return _build(head, message, data=data, code=None, raw=raw)
        if isinstance(head, int) and not isinstance(head, bool):
            typed = _TYPED_MESSAGE.fullmatch(message)
            if typed is not None:
                code = int(typed["code"]) if typed["code"] is not None else head or None
                return _build(typed["type"], typed["message"], data=data, code=code, raw=raw)
            return _build(_NEOVIM_TYPES.get(head, "RemoteError"), message, data=data, code=head, raw=raw)
    if isinstance(raw, str):
        # The "string" form of plain errors, "Type: message" or "Type[code]: message".
        typed = _TYPED_MESSAGE.fullmatch(raw)
        if typed is not None:
            code = int(typed["code"]) if typed["code"] is not None else None
            return _build(typed["type"], typed["message"], data=None, code=code, raw=raw)
        return RemoteError(raw, type="RemoteError", raw=raw)
    if isinstance(raw, bytes):
        return RemoteError(raw.decode("utf-8", "replace"), type="RemoteError", raw=raw)
    return RemoteError(_describe(raw), type="RemoteError", raw=raw)
