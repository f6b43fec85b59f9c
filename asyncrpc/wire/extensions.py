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
"""

from __future__ import annotations

from typing import Any, Final

__all__ = [
    "CANCEL_METHOD",
    "FEATURES",
    "HELLO_METHOD",
    "PROTOCOL_NAME",
    "PROTOCOL_VERSION",
    "hello_payload",
    "parse_hello",
]

HELLO_METHOD: Final = "asyncrpc.hello"
CANCEL_METHOD: Final = "asyncrpc.cancel"
PROTOCOL_NAME: Final = "asyncrpc"
PROTOCOL_VERSION: Final = 1

FEATURE_CANCEL: Final = "cancel"
FEATURE_DEADLINE: Final = "deadline"
FEATURE_ERRORS: Final = "errors"
FEATURES: Final = frozenset({FEATURE_CANCEL, FEATURE_DEADLINE, FEATURE_ERRORS})

EXT_TIMEOUT: Final = "timeout"


def hello_payload(features: frozenset[str] = FEATURES) -> dict[str, Any]:
    """The single parameter of a hello request, and the result of its answer."""
    return {"protocol": PROTOCOL_NAME, "version": PROTOCOL_VERSION, "features": sorted(features)}


def parse_hello(value: Any) -> frozenset[str]:
    """The features a hello payload offers; an unrecognised payload offers none."""
    if not isinstance(value, dict) or value.get("protocol") != PROTOCOL_NAME:
        return frozenset()
    features = value.get("features")
    if not isinstance(features, list):
        return frozenset()
    return frozenset(f for f in features if isinstance(f, str))
