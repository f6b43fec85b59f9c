"""How the decoder words what a peer got wrong.

Two things live here: bounded one-line descriptions of a peer's values, and
the texts of the errors that more than one reader can find. They are kept
apart from the readers so that one fault reads the same whichever finds it:
a message split across reads is refused by the header scanner, the same
message arriving whole by msgpack or by the shape checks, and the error a
peer's bad message raises must not depend on how the socket cut it.
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping
from typing import Any, Final

import msgpack

from asyncrpc.errors import ProtocolError

__all__ = ["UNPACK_ERRORS", "describe", "malformed", "too_deep", "too_large"]

#: msgpack raises these without a message; say what they mean.
UNPACK_ERRORS: Final[Mapping[type[Exception], str]] = {
    msgpack.FormatError: "invalid type byte (FormatError)",
    msgpack.StackError: "containers nested deeper than msgpack decodes (StackError)",
}


class _BoundedRepr(reprlib.Repr):
    """``repr()`` that stays short and shallow whatever it is given.

    A peer's value can be nested a thousand levels deep or megabytes long;
    builtin ``repr`` would recurse through all of it (``RecursionError``) or
    copy all of it into the error message.
    """

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxlist = self.maxtuple = self.maxdict = 4
        self.maxstring = self.maxother = 40

    def repr_bytes(self, x: bytes, level: int) -> str:
        if len(x) <= self.maxstring:
            return repr(x)
        return repr(x[: self.maxstring]) + self.fillvalue

    def repr_dict(self, x: dict[Any, Any], level: int) -> str:
        # reprlib sorts every key first: wasted work on a 65,536-key map.
        if not x:
            return "{}"
        if level <= 0:
            return "{" + self.fillvalue + "}"
        pieces = []
        for index, (key, value) in enumerate(x.items()):
            if index == self.maxdict:
                pieces.append(self.fillvalue)
                break
            pieces.append(f"{self.repr1(key, level - 1)}: {self.repr1(value, level - 1)}")
        return "{" + ", ".join(pieces) + "}"

    def repr_ExtType(self, x: msgpack.ExtType, level: int) -> str:
        return f"ExtType(code={x.code}, data={self.repr_bytes(x.data, level)})"


_bounded_repr = _BoundedRepr().repr


def describe(value: Any) -> str:
    """A one-line description of a peer's value, at most 60 characters, for error messages."""
    text = _bounded_repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def malformed(exc: Exception) -> ProtocolError:
    """The error for bytes msgpack refused to decode (``exc``)."""
    # FormatError, StackError, over-length values (from our Limits) and
    # unhashable map keys (TypeError) all land here. msgpack's messages
    # are short fixed texts; cut anyway, never echo input.
    detail = str(exc)[:120] or UNPACK_ERRORS.get(type(exc), type(exc).__name__)
    if "exceeds max_" in detail:  # msgpack's own length checks, from our Limits
        return ProtocolError(f"message breaks a decoder limit: {detail}")
    return ProtocolError(f"malformed msgpack: {detail}")


def too_deep(max_depth: int) -> ProtocolError:
    """Containers nested past ``max_depth``: found on headers or on a built message."""
    return ProtocolError(f"containers nested deeper than the limit (max_depth={max_depth})")


def too_large(max_message_size: int) -> ProtocolError:
    """A message past ``max_message_size``: found by the scanner or by the skipper's count."""
    return ProtocolError(f"message larger than the limit (max_message_size={max_message_size})")
