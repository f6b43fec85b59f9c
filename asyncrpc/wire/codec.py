"""Bytes to events and events to bytes, with no I/O (the h11 shape).

    decoder = Decoder()
    decoder.receive_data(chunk)          # any split of the stream
    for event in decoder:                # every complete message, in order
        ...
    data = Encoder().request(7, "add", [1, 2])

The decoder validates every message's shape and raises :class:`ProtocolError`
naming what was wrong; after that error the stream is out of sync and the
decoder must not be fed again (the connection closes).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgpack

from asyncrpc.errors import EncodeError, ProtocolError
from asyncrpc.wire.events import (
    MAX_MSGID,
    NEED_DATA,
    NOTIFICATION,
    REQUEST,
    RESPONSE,
    Event,
    NeedData,
    Notification,
    Request,
    Response,
)
from asyncrpc.wire.limits import DEFAULT_LIMITS, Limits

__all__ = ["Decoder", "Encoder"]

_TYPE_NAMES = {REQUEST: "request", RESPONSE: "response", NOTIFICATION: "notification"}


# msgpack raises these without a message; say what they mean.
_UNPACK_ERRORS: dict[type[Exception], str] = {
    msgpack.FormatError: "invalid type byte (FormatError)",
    msgpack.StackError: "containers nested deeper than msgpack decodes (StackError)",
}


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_depth(value: Any, remaining: int) -> None:
    """Raise if containers nest deeper than ``remaining`` more levels below ``value``."""
    if remaining < 0:
        raise ProtocolError("message nests containers deeper than the limit (max_depth)")
    items = value.values() if type(value) is dict else value
    if type(value) is dict:
        for key in value:
            if type(key) is list or type(key) is dict:
                _check_depth(key, remaining - 1)
    for item in items:
        if type(item) is list or type(item) is dict:
            _check_depth(item, remaining - 1)


class Decoder:
    """Incremental MessagePack-RPC decoder.

    Args:
        limits: what a peer may make us allocate; see :class:`Limits`.
        accept_extension: accept the five-element request (an extension map
            in the fifth place). Off until the peers negotiated it, so that
            a plain peer's wrong arity is reported as the error it is.
    """

    __slots__ = ("_boundary", "_limits", "_received", "_unpacker", "accept_extension")

    def __init__(self, limits: Limits = DEFAULT_LIMITS, *, accept_extension: bool = False) -> None:
        self._limits = limits
        self.accept_extension = accept_extension
        self._received = 0  # bytes fed so far
        self._boundary = 0  # where the last complete message ended
        self._unpacker = msgpack.Unpacker(
            raw=False,
            # Neovim sends buffer text as msgpack str whatever its bytes (a
            # Latin-1 file is not UTF-8): keep such bytes as lone surrogates,
            # as pynvim does, instead of dropping the connection; the
            # encoder turns them back into the same bytes.
            unicode_errors="surrogateescape",
            strict_map_key=False,
            use_list=True,
            # The size limit is per message, checked in next_event() (as h11's
            # max_incomplete_event_size): msgpack's own buffer limit counts
            # every unread byte, so a chunk of many small pipelined messages
            # would break it. 0 is msgpack's "no limit" (4 GiB).
            max_buffer_size=0,
            max_str_len=limits.max_str_len,
            max_bin_len=limits.max_bin_len,
            max_ext_len=limits.max_ext_len,
            max_array_len=limits.max_array_len,
            max_map_len=limits.max_map_len,
        )

    @property
    def limits(self) -> Limits:
        return self._limits

    @property
    def buffered(self) -> int:
        """Bytes received after the last complete message (non-zero mid-message).

        A peer that closes while this is non-zero cut a message short.
        """
        return self._received - self._boundary

    def receive_data(self, data: bytes) -> None:
        """Buffer ``data``; drain it with :meth:`next_event` before feeding much more."""
        try:
            self._unpacker.feed(data)
        except msgpack.BufferFull:  # only past msgpack's own 4 GiB
            raise ProtocolError("too much unread data buffered") from None
        self._received += len(data)

    def _too_large(self) -> ProtocolError:
        return ProtocolError(
            f"message larger than the limit (max_message_size={self._limits.max_message_size})"
        )

    def next_event(self) -> Event | NeedData:
        """The next complete message, or :data:`NEED_DATA`.

        Raises :class:`ProtocolError` for a malformed message, or one (complete
        or not yet) longer than ``max_message_size``.
        """
        unpacker = self._unpacker
        try:
            message = unpacker.unpack()
        except msgpack.OutOfData:
            if self._received - self._boundary > self._limits.max_message_size:
                raise self._too_large() from None
            return NEED_DATA
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise self._malformed(exc) from exc
        end = unpacker.tell()
        if end - self._boundary > self._limits.max_message_size:
            raise self._too_large()
        self._boundary = end
        return self._to_event(message)

    @staticmethod
    def _malformed(exc: Exception) -> ProtocolError:
        # FormatError, StackError, ExtraData, over-length headers and
        # unhashable map keys (TypeError) all land here.
        detail = str(exc) or _UNPACK_ERRORS.get(type(exc), type(exc).__name__)
        if "exceeds max_" in detail:  # msgpack's own length checks, from our Limits
            return ProtocolError(f"message breaks a decoder limit: {detail}")
        return ProtocolError(f"malformed msgpack: {detail}")

    def __iter__(self) -> Iterator[Event]:
        """Every complete message buffered so far; stops at the first incomplete one."""
        # next_event() in one loop, the read path of every connection:
        # iterating the unpacker ends without raising OutOfData per chunk.
        unpacker = self._unpacker
        limit = self._limits.max_message_size
        to_event = self._to_event
        try:
            for message in unpacker:
                end = unpacker.tell()
                if end - self._boundary > limit:
                    raise self._too_large()
                self._boundary = end
                yield to_event(message)
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise self._malformed(exc) from exc
        if self._received - self._boundary > limit:
            raise self._too_large()

    def _to_event(self, message: Any) -> Event:
        if type(message) is not list:
            raise ProtocolError(f"message is not an array: {_describe(message)}")
        if not message:
            raise ProtocolError("message is an empty array")
        kind = message[0]
        size = len(message)
        depth = self._limits.max_depth
        # The checks of msgid, method and params are inlined for the common
        # case (this runs for every message); the helpers raise the errors.
        if kind == REQUEST and type(kind) is int:
            if size == 5 and self.accept_extension:
                extension = message[4]
                if type(extension) is not dict:
                    raise ProtocolError(f"request extension is not a map: {_describe(extension)}")
                _check_depth(extension, depth - 1)
            elif size != 4:
                raise ProtocolError(f"request has {size} elements, expected 4")
            else:
                extension = None
            msgid = message[1]
            if type(msgid) is not int or not 0 <= msgid <= MAX_MSGID:
                msgid = self._msgid(msgid, kind)
            method = message[2]
            if type(method) is not str:
                method = self._method(method, kind)
            params = message[3]
            if type(params) is not list:
                raise ProtocolError(f"request params is not an array: {_describe(params)}")
            for item in params:
                if type(item) is list or type(item) is dict:
                    _check_depth(params, depth - 1)
                    break
            return Request(msgid, method, params, extension)
        if kind == RESPONSE and type(kind) is int:
            if size != 4:
                raise ProtocolError(f"response has {size} elements, expected 4")
            msgid = message[1]
            if type(msgid) is not int or not 0 <= msgid <= MAX_MSGID:
                msgid = self._msgid(msgid, kind)
            error = message[2]
            result = message[3]
            if type(error) is list or type(error) is dict:
                _check_depth(error, depth - 1)
            if type(result) is list or type(result) is dict:
                _check_depth(result, depth - 1)
            return Response(msgid, error, result)
        if kind == NOTIFICATION and type(kind) is int:
            if size != 3:
                raise ProtocolError(f"notification has {size} elements, expected 3")
            method = self._method(message[1], kind)
            params = message[2]
            if type(params) is not list:
                raise ProtocolError(f"notification params is not an array: {_describe(params)}")
            _check_depth(params, depth - 1)
            return Notification(method, params)
        raise ProtocolError(f"unknown message type {_describe(kind)} (expected 0, 1 or 2)")

    @staticmethod
    def _msgid(value: Any, kind: int) -> int:
        if type(value) is not int or not 0 <= value <= MAX_MSGID:
            raise ProtocolError(f"{_TYPE_NAMES[kind]} msgid is not a uint32: {_describe(value)}")
        return value

    @staticmethod
    def _method(value: Any, kind: int) -> str:
        if type(value) is str:
            return value
        if type(value) is bytes:
            # Peers from before msgpack's str/bin split send names as raw bytes.
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                pass
        raise ProtocolError(f"{_TYPE_NAMES[kind]} method is not a string: {_describe(value)}")


class Encoder:
    """Turns messages into bytes. Values msgpack cannot encode raise :class:`EncodeError`."""

    __slots__ = ("_pack",)

    def __init__(self) -> None:
        # surrogateescape: a str decoded from non-UTF-8 bytes goes back as those bytes.
        self._pack = msgpack.Packer(use_bin_type=True, unicode_errors="surrogateescape").pack

    def _encode(self, message: list[Any]) -> bytes:
        try:
            return self._pack(message)  # type: ignore[no-any-return]
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
            return self._pack([REQUEST, msgid, method, params])  # type: ignore[no-any-return]
        except (TypeError, ValueError, OverflowError) as exc:
            raise EncodeError(f"cannot encode as msgpack: {exc}") from exc

    def response(self, msgid: int, error: Any, result: Any) -> bytes:
        """``[1, msgid, error, result]``."""
        try:  # _encode() inlined: one response per call
            return self._pack([RESPONSE, msgid, error, result])  # type: ignore[no-any-return]
        except (TypeError, ValueError, OverflowError) as exc:
            raise EncodeError(f"cannot encode as msgpack: {exc}") from exc

    def notification(self, method: str, params: list[Any] | tuple[Any, ...]) -> bytes:
        """``[2, method, params]``."""
        return self._encode([NOTIFICATION, method, params])

    def send(self, event: Event) -> bytes:
        """Any event, as bytes (the h11-style entry point)."""
        if isinstance(event, Request):
            return self.request(event.msgid, event.method, event.params, event.extension)
        if isinstance(event, Response):
            return self.response(event.msgid, event.error, event.result)
        return self.notification(event.method, event.params)
