"""Events to bytes: the MessagePack-RPC encoder.

Separate from the decoder because the two share nothing but the event types:
encoding is one msgpack call per message, with none of the decoder's
buffering, limits or shape checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack

from asyncrpc.errors import EncodeError
from asyncrpc.wire.events import NOTIFICATION, REQUEST, RESPONSE, Message, Request, Response

__all__ = ["Encoder"]


class Encoder:
    """Turns messages into bytes. Values msgpack cannot encode raise :class:`EncodeError`."""

    __slots__ = ("_pack", "_pack_escaped")

    def __init__(self, *, raw_strings: bool = False) -> None:
        # raw_strings: bytes go out as msgpack str too (the old spec has no bin),
        # which peers from before the str/bin split read.
        # surrogateescape: a str decoded from non-UTF-8 bytes goes back as those bytes.
        # msgpack is untyped: say what its pack() returns, once, here.
        # datetime=True: an aware datetime goes out as a msgpack timestamp, as
        # the decoder gives timestamps back (a naive one cannot say when it is).
        self._pack: Callable[[object], bytes] = msgpack.Packer(
            use_bin_type=not raw_strings, datetime=True
        ).pack
        # msgpack encodes every str through an extra copy once unicode_errors
        # is set, so a second packer has it, for the messages the first refuses.
        self._pack_escaped: Callable[[object], bytes] = msgpack.Packer(
            use_bin_type=not raw_strings, unicode_errors="surrogateescape", datetime=True
        ).pack

    def _encode(self, message: list[Any]) -> bytes:
        try:
            return self._pack(message)
        except UnicodeEncodeError:
            pass  # a lone surrogate: a str decoded from bytes that were not UTF-8
        except (TypeError, ValueError, OverflowError) as exc:
            raise EncodeError(f"cannot encode as msgpack: {exc}") from exc
        try:
            return self._pack_escaped(message)
        except (TypeError, ValueError, OverflowError) as exc:
            raise EncodeError(f"cannot encode as msgpack: {exc}") from exc

    def request(
        self,
        msgid: int,
        method: str,
        params: list[Any] | tuple[Any, ...],
        extension: dict[str, Any] | None = None,
    ) -> bytes:
        """``[0, msgid, method, params]``, with the extension map only when given."""
        if extension:
            return self._encode([REQUEST, msgid, method, params, extension])
        try:  # _encode() inlined: one request per call
            return self._pack([REQUEST, msgid, method, params])
        except (TypeError, ValueError, OverflowError):
            return self._encode([REQUEST, msgid, method, params])  # a surrogate, or the error

    def response(self, msgid: int, error: Any, result: Any) -> bytes:
        """``[1, msgid, error, result]``."""
        try:  # _encode() inlined: one response per call
            return self._pack([RESPONSE, msgid, error, result])
        except (TypeError, ValueError, OverflowError):
            return self._encode([RESPONSE, msgid, error, result])  # a surrogate, or the error

    def notification(self, method: str, params: list[Any] | tuple[Any, ...]) -> bytes:
        """``[2, method, params]``."""
        return self._encode([NOTIFICATION, method, params])

    def send(self, event: Message) -> bytes:
        """Any event, as bytes (the h11-style entry point)."""
        if isinstance(event, Request):
            return self.request(event.msgid, event.method, event.params, event.extension)
        if isinstance(event, Response):
            return self.response(event.msgid, event.error, event.result)
        return self.notification(event.method, event.params)
