"""Sans-IO MessagePack-RPC: bytes in, events out; events in, bytes out.

Nothing here imports asyncio, so any transport (asyncio, threads, trio, a
test feeding one byte at a time) can reuse it.
"""

from asyncrpc.wire.codec import Decoder, Encoder
from asyncrpc.wire.events import (
    NEED_DATA,
    Event,
    Message,
    NeedData,
    Notification,
    Request,
    Response,
    ResponseTooLarge,
    StrayResponse,
)
from asyncrpc.wire.limits import DEFAULT_LIMITS, Limits

__all__ = [
    "DEFAULT_LIMITS",
    "NEED_DATA",
    "Decoder",
    "Encoder",
    "Event",
    "Limits",
    "Message",
    "NeedData",
    "Notification",
    "Request",
    "Response",
    "ResponseTooLarge",
    "StrayResponse",
]
