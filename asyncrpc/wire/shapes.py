"""From a decoded msgpack value to an event: the MessagePack-RPC shape checks.

:class:`ShapeChecker` turns one complete, decoded message into a
:class:`Request`, :class:`Response` or :class:`Notification` (or a
:class:`StrayResponse`, one whose msgid is not a uint32), or raises
:class:`ProtocolError` naming the first fault: arity, msgid, method, params,
the extension map, and the nesting depth of what the message carries.

It knows nothing of bytes or buffering, and the decoder knows nothing of
what a message must look like: the decoder only finds complete messages and
hands each one here, so these rules can be read (and changed) in one place.
"""

from __future__ import annotations

from typing import Any, Final

from asyncrpc.errors import ProtocolError
from asyncrpc.wire.describe import describe, too_deep
from asyncrpc.wire.events import (
    MAX_MSGID,
    NOTIFICATION,
    REQUEST,
    RESPONSE,
    Event,
    Notification,
    Request,
    Response,
    StrayResponse,
)

__all__ = ["ShapeChecker"]

_TYPE_NAMES: Final = {REQUEST: "request", RESPONSE: "response", NOTIFICATION: "notification"}

#: The types a decoded value nests in (msgpack arrays and maps), for the depth check.
_CONTAINERS: Final = (list, dict)

#: Up to this max_depth the depth check recurses (the fastest way in CPython),
#: far below Python's recursion limit.
_RECURSIVE_DEPTH: Final = 200


class ShapeChecker:
    """Checks the shape of each decoded message and builds its event.

    Args:
        max_depth: containers allowed to nest inside params, result, error
            or the extension map (:attr:`Limits.max_depth`).
        accept_extension: accept the five-element request. The connection
            turns it on (through ``Decoder.accept_extension``) once the peers
            have negotiated, maybe between two messages of one read, so it is
            read for every message, never cached.
    """

    __slots__ = ("accept_extension", "max_depth")

    def __init__(self, max_depth: int, *, accept_extension: bool = False) -> None:
        self.max_depth = max_depth
        self.accept_extension = accept_extension

    def to_event(self, message: Any) -> Event:
        """The event ``message`` is; raises :class:`ProtocolError` naming its first fault."""
        # Runs for every message: the common valid shapes return from here,
        # checked inline; anything else (and every error) takes _checked_event.
        if type(message) is list:
            size = len(message)
            if size == 4:
                kind, msgid, third, fourth = message
                if type(kind) is int and type(msgid) is int and 0 <= msgid <= MAX_MSGID:
                    if kind == RESPONSE:
                        if third is None:  # success, the most common message of all
                            if type(fourth) in _CONTAINERS:
                                _check_depth(fourth, self.max_depth, 1)
                            return Response(msgid, None, fourth)
                        if type(third) in _CONTAINERS:
                            _check_depth(third, self.max_depth, 1)
                        if type(fourth) in _CONTAINERS:
                            _check_depth(fourth, self.max_depth, 1)
                        return Response(msgid, third, fourth)
                    if kind == REQUEST and type(third) is str and type(fourth) is list:
                        for item in fourth:
                            if type(item) in _CONTAINERS:
                                _check_depth(fourth, self.max_depth, 1)
                                break
                        return Request(msgid, third, fourth)
            elif size == 3:
                kind, method, params = message
                if (
                    type(kind) is int
                    and kind == NOTIFICATION
                    and type(method) is str
                    and type(params) is list
                ):
                    for item in params:
                        if type(item) in _CONTAINERS:
                            _check_depth(params, self.max_depth, 1)
                            break
                    return Notification(method, params)
        return self._checked_event(message)

    def to_event_raw(self, message: Any) -> Event:
        """:meth:`to_event` for a stream whose strs arrive as bytes (``raw_strings``).

        Method names become str in the checks (as for any peer); an error
        object's strs are made str one level deep (``b"ValueError: x"``,
        ``[0, b"..."]``, ``{b"message": b"..."}``), so that it reads as
        errors do. Results and params stay as they came.
        """
        event = self.to_event(message)
        if type(event) is Response and event.error is not None:
            event.error = _text_one_level(event.error)
        return event

    def _checked_event(self, message: Any) -> Event:
        """Every shape check, in order; raises :class:`ProtocolError` naming the first fault."""
        if type(message) is not list:
            raise ProtocolError(f"message is not an array: {describe(message)}")
        if not message:
            raise ProtocolError("message is an empty array")
        kind = message[0]
        size = len(message)
        depth = self.max_depth
        if kind == REQUEST and type(kind) is int:
            if size == 5 and self.accept_extension:
                extension = message[4]
                if type(extension) is not dict:
                    raise ProtocolError(f"request extension is not a map: {describe(extension)}")
                _check_depth(extension, depth, 1)
            elif size != 4:
                raise ProtocolError(f"request has {size} elements, expected 4")
            else:
                extension = None
            msgid = _msgid(message[1], kind)
            method = _method(message[2], kind)
            params = message[3]
            if type(params) is not list:
                raise ProtocolError(f"request params is not an array: {describe(params)}")
            _check_depth(params, depth, 1)
            return Request(msgid, method, params, extension)
        if kind == RESPONSE and type(kind) is int:
            if size != 4:
                raise ProtocolError(f"response has {size} elements, expected 4")
            for value in message[1:]:  # a stray msgid may be a container too
                if type(value) is list or type(value) is dict:
                    _check_depth(value, depth, 1)
            msgid = message[1]
            if type(msgid) is not int or not 0 <= msgid <= MAX_MSGID:
                # It answers nothing we sent: some peers answer a notification
                # with [1, -1, error, nil]. Not worth the connection.
                return StrayResponse(msgid, message[2], message[3])
            return Response(msgid, message[2], message[3])
        if kind == NOTIFICATION and type(kind) is int:
            if size != 3:
                raise ProtocolError(f"notification has {size} elements, expected 3")
            method = _method(message[1], kind)
            params = message[2]
            if type(params) is not list:
                raise ProtocolError(f"notification params is not an array: {describe(params)}")
            _check_depth(params, depth, 1)
            return Notification(method, params)
        raise ProtocolError(f"unknown message type {describe(kind)} (expected 0, 1 or 2)")


def _text(value: Any) -> Any:
    return value.decode("utf-8", "surrogateescape") if type(value) is bytes else value


def _text_one_level(error: Any) -> Any:
    if type(error) is list:
        return [_text(item) for item in error]
    if type(error) is dict:
        return {_text(key): _text(item) for key, item in error.items()}
    return _text(error)


def _msgid(value: Any, kind: int) -> int:
    if type(value) is not int or not 0 <= value <= MAX_MSGID:
        raise ProtocolError(f"{_TYPE_NAMES[kind]} msgid is not a uint32: {describe(value)}")
    return value


def _method(value: Any, kind: int) -> str:
    if type(value) is str:
        return value
    if type(value) is bytes:
        # Peers from before msgpack's str/bin split send names as raw bytes.
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            pass
    raise ProtocolError(f"{_TYPE_NAMES[kind]} method is not a string: {describe(value)}")


def _check_depth(value: list[Any] | dict[Any, Any], max_depth: int, level: int) -> None:
    """Raise if containers nest past ``max_depth``, ``value`` being at ``level``.

    Map keys are never containers here: msgpack refuses a list or a map as
    a key (unhashable).
    """
    if max_depth <= _RECURSIVE_DEPTH:
        _check_nesting(value, max_depth - level, max_depth)
        return
    # A limit past Python's recursion limit: a loop over one level at a time.
    current: list[Any] = [value]
    while current:
        if level > max_depth:
            raise too_deep(max_depth)
        below: list[Any] = []
        for container in current:
            items = container.values() if type(container) is dict else container
            below.extend([item for item in items if type(item) is list or type(item) is dict])
        current = below
        level += 1


def _check_nesting(value: list[Any] | dict[Any, Any], left: int, max_depth: int) -> None:
    if left < 0:
        raise too_deep(max_depth)
    items = value.values() if type(value) is dict else value
    # A long container (a Neovim buffer's lines) is first searched for
    # containers at C speed: most hold none.
    if len(items) >= 64 and list not in (present := set(map(type, items))) and dict not in present:
        return
    for item in items:
        if type(item) is list or type(item) is dict:
            _check_nesting(item, left - 1, max_depth)
