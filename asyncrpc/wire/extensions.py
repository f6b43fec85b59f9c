"""asyncrpc's negotiated extensions to MessagePack-RPC.

A plain msgpack-rpc peer never sees any of this unless it answers the probe:

1. The connecting side sends an ordinary request for :data:`HELLO_METHOD` with
   its own feature list. A plain peer answers it with an error (unknown method),
   and from then on both ends speak plain msgpack-rpc.
2. A peer that speaks asyncrpc answers with its feature list. Each side then
   uses only the features both listed.

Features:

``cancel``    a notification ``[2, "asyncrpc.cancel", [msgid]]`` asks the peer
              to cancel the handler of request ``msgid``. The peer still sends a
              response for it (a result, or a ``CallCancelled`` error).
``deadline``  a request may carry a fifth element, a map with ``"timeout"``
              (seconds, float, relative to when the peer receives it); the peer
              cancels the handler when it passes (a ``DeadlineExceeded`` error).
``errors``    errors are sent as maps ``{"type", "message", "data"?, "code"?}``
              instead of Neovim's ``[code, message]``.

Outside the feature list, every asyncrpc peer answers a request for
:data:`PING_METHOD` (no arguments) with ``nil`` at once, without running any
handler: what :mod:`asyncrpc.keepalive` sends to find out whether a silent
peer is still there. A plain peer answers it with an error, which serves as
well: any answer shows the peer is reading.

Each side's hello payload may also carry ``"max_message_size"``: the largest
message, in bytes, that side accepts. The other side then refuses, at the call
site, a request that would be larger, instead of sending bytes that would
cost the connection.

A client's hello may carry ``"token"``: a str the server's authenticator
checks (a server made with ``auth=``). Such a server answers a hello it
refuses with an ``AuthenticationFailed`` error and closes the connection,
and answers every other request it gets before the hello is accepted with an
``Unauthenticated`` error, then closes the connection. Its answer to an
accepted hello carries ``"auth": true``, so that a client knows its token was
checked (and can say so when it was sent to a server that does not check).
"""

from __future__ import annotations

from typing import Any, Final

__all__ = [
    "CANCEL_METHOD",
    "DESCRIBE_METHOD",
    "FEATURES",
    "HELLO_METHOD",
    "PING_METHOD",
    "PROTOCOL_NAME",
    "PROTOCOL_VERSION",
    "checks_tokens",
    "hello_payload",
    "parse_hello",
    "parse_message_limit",
]

HELLO_METHOD: Final = "asyncrpc.hello"
CANCEL_METHOD: Final = "asyncrpc.cancel"
DESCRIBE_METHOD: Final = "asyncrpc.describe"
PING_METHOD: Final = "asyncrpc.ping"
"""Reflection: an ordinary request (params ``[]``) any peer may send; see ``asyncrpc.reflection``."""
PROTOCOL_NAME: Final = "asyncrpc"
PROTOCOL_VERSION: Final = 1

FEATURE_CANCEL: Final = "cancel"
FEATURE_DEADLINE: Final = "deadline"
FEATURE_ERRORS: Final = "errors"
FEATURES: Final = frozenset({FEATURE_CANCEL, FEATURE_DEADLINE, FEATURE_ERRORS})

EXT_TIMEOUT: Final = "timeout"
HELLO_MAX_MESSAGE_SIZE: Final = "max_message_size"
HELLO_TOKEN: Final = "token"
HELLO_AUTH: Final = "auth"


def hello_payload(features: frozenset[str] = FEATURES, max_message_size: int | None = None) -> dict[str, Any]:
    """The single parameter of a hello request, and the result of its answer."""
    payload: dict[str, Any] = {
        "protocol": PROTOCOL_NAME,
        "version": PROTOCOL_VERSION,
        "features": sorted(features),
    }
    if max_message_size is not None:
        payload[HELLO_MAX_MESSAGE_SIZE] = max_message_size
    return payload


def parse_hello(value: Any) -> frozenset[str]:
    """The features a hello payload offers; an unrecognised payload offers none."""
    if not isinstance(value, dict) or value.get("protocol") != PROTOCOL_NAME:
        return frozenset()
    features = value.get("features")
    if not isinstance(features, list):
        return frozenset()
    return frozenset(f for f in features if isinstance(f, str))


def checks_tokens(value: Any) -> bool:
    """Whether a hello answer says its sender checked the token (``"auth": true``)."""
    return isinstance(value, dict) and value.get(HELLO_AUTH) is True


def parse_message_limit(value: Any) -> int | None:
    """The largest message a hello payload says its sender accepts, or ``None`` if it says nothing usable."""
    if not isinstance(value, dict) or value.get("protocol") != PROTOCOL_NAME:
        return None
    limit = value.get(HELLO_MAX_MESSAGE_SIZE)
    if type(limit) is not int or limit < 1:
        return None
    return limit
