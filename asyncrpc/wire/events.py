"""The three MessagePack-RPC messages, as plain typed events.

``Request``   ``[0, msgid, method, params]`` (plus an optional extension map,
              ``[0, msgid, method, params, ext]``, only between peers that
              negotiated it; see ``docs/protocol.md``)
``Response``  ``[1, msgid, error, result]``
``Notification`` ``[2, method, params]``

and two events for responses that answer no call as sent:

``StrayResponse``     ``[1, msgid, error, result]`` whose msgid is not a uint32
                      (``[1, -1, "Not Implemented", nil]``); nothing can match it
``ResponseTooLarge``  a response over ``max_message_size``, skipped unread;
                      only the call it answers fails
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "NEED_DATA",
    "Event",
    "Message",
    "NeedData",
    "Notification",
    "Request",
    "Response",
    "ResponseTooLarge",
    "StrayResponse",
]

REQUEST: Final = 0
RESPONSE: Final = 1
NOTIFICATION: Final = 2

MAX_MSGID: Final = 0xFFFFFFFF


@dataclass(slots=True)
class Request:
    """A call that expects a :class:`Response` with the same ``msgid``.

    Attributes:
        msgid: the message id (uint32) its response carries.
        method: the method name.
        params: the positional arguments.
        extension: the extension map of a five-element request
            (``{"timeout": seconds}``), or ``None``.
    """

    msgid: int
    method: str
    params: list[Any]
    extension: dict[str, Any] | None = None


@dataclass(slots=True)
class Response:
    """The answer to a :class:`Request`: ``error`` is ``None`` on success.

    Attributes:
        msgid: the id of the request it answers.
        error: the error object; ``None`` on success.
        result: the result (meaningful when ``error`` is ``None``).
    """

    msgid: int
    error: Any
    result: Any


@dataclass(slots=True)
class Notification:
    """A one-way message: no ``msgid``, never answered.

    Attributes:
        method: the method name.
        params: the positional arguments.
    """

    method: str
    params: list[Any]


@dataclass(slots=True)
class StrayResponse:
    """A response whose msgid is not a uint32, so it answers no call; ignored, never fatal.

    Attributes:
        msgid: what the peer put where the msgid goes (``-1``, ``None``, ...).
        error: the error object.
        result: the result.
    """

    msgid: Any
    error: Any
    result: Any


@dataclass(slots=True)
class ResponseTooLarge:
    """A response larger than ``max_message_size``: its bytes were skipped, never held.

    The call with ``msgid`` fails with ``MessageTooLarge``; the connection goes on.

    Attributes:
        msgid: the id of the request it answers.
        size: its size in bytes, or the least it declared when it was refused.
    """

    msgid: int
    size: int


Message = Request | Response | Notification
"""One of the three MessagePack-RPC messages: what ``Encoder.send()`` takes."""

Event = Request | Response | Notification | StrayResponse | ResponseTooLarge
"""What the decoder yields: a message, or one of the two responses that answer no call as sent."""


class NeedData:
    """Sentinel type: the decoder has no complete message buffered."""

    _instance: NeedData | None = None

    def __new__(cls) -> NeedData:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()
"""What :meth:`Decoder.next_event` returns while no complete message is buffered."""
