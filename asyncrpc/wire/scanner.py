"""The header scanner: what an unfinished message declares, read as it arrives.

msgpack's ``Unpacker`` builds a container the moment it reads its header, so
the decoder never lets it see a message before its last byte (see
``codec.py``). Until then, :class:`HeaderScanner` reads the message's token
headers in Python, resumably and building nothing, and refuses it at the
first header that breaks a limit: too deep, a count over ``max_array_len``
or ``max_map_len``, or more declared than ``max_message_size`` leaves room
for. It also finds where the message ends when the decoder has no skipper.

A response refused for its size need not cost the connection:
made with ``may_skip=True``, the scanner refuses it by turning to *skipping*
instead of raising: it reads on to the message's end with no size or count
limit, still building nothing, and the decoder drops the message's bytes and
fails only the call it answers (its msgid is among its first bytes, kept in
``head``). Nesting depth and counts stay faults: depth bounds the scanner's
own stack, and a count over its limit in a message that arrived whole is
refused by msgpack as it builds it, so a split read must refuse it too.

Separate from the decoder because it is a parser of its own (a token table
and one flat loop, tuned for speed) with one small interface: ``feed()``.
"""

from __future__ import annotations

import struct
import sys
from typing import Final

import msgpack

from asyncrpc.errors import ProtocolError
from asyncrpc.wire.describe import UNPACK_ERRORS, too_deep, too_large
from asyncrpc.wire.limits import Limits

__all__ = ["HeaderScanner", "response_msgid"]

#: msgpack's C parser refuses to open more containers than this at once.
_MSGPACK_STACK: Final = 1024

# How the first byte of each msgpack token reads: a kind, and one number whose
# meaning depends on the kind.
_SIZED: Final = 0  # the token's whole size is known from its first byte; number: that size
_STR: Final = 1  # str or bin; number: bytes of its length field
_EXT: Final = 2  # number: bytes of its length field (a type byte follows it)
_ARRAY: Final = 3  # number: bytes of its count field, 0 for a fixarray
_MAP: Final = 4  # number: bytes of its count field, 0 for a fixmap
_INVALID: Final = 5


def _token_table() -> tuple[tuple[int, ...], tuple[int, ...]]:
    kinds = [_SIZED] * 256
    numbers = [1] * 256  # positive and negative fixint, nil, false, true
    for byte in range(0x80, 0xA0):  # fixmap, fixarray
        kinds[byte], numbers[byte] = (_MAP if byte <= 0x8F else _ARRAY), 0
    for byte in range(0xA0, 0xC0):  # fixstr
        numbers[byte] = 1 + (byte & 0x1F)
    sizes = {0xCA: 5, 0xCB: 9, 0xCC: 2, 0xCD: 3, 0xCE: 5, 0xCF: 9, 0xD0: 2, 0xD1: 3, 0xD2: 5, 0xD3: 9}
    for byte, size in sizes.items():  # float 32 and 64, uint and int 8 to 64
        numbers[byte] = size
    for offset, size in enumerate((1, 2, 4, 8, 16)):  # fixext: a type byte, then the data
        numbers[0xD4 + offset] = 2 + size
    for first, kind in ((0xC4, _STR), (0xC7, _EXT), (0xD9, _STR)):  # bin, ext, str 8/16/32
        for offset, width in enumerate((1, 2, 4)):
            kinds[first + offset], numbers[first + offset] = kind, width
    for first, kind in ((0xDC, _ARRAY), (0xDE, _MAP)):  # array, map 16/32
        for offset, width in enumerate((2, 4)):
            kinds[first + offset], numbers[first + offset] = kind, width
    kinds[0xC1] = _INVALID
    return tuple(kinds), tuple(numbers)


_KINDS, _NUMBERS = _token_table()
#: The whole size of each token that has one (scalars, fixstr, fixext), else 0.
_SIZES = tuple(number if kind == _SIZED else 0 for kind, number in zip(_KINDS, _NUMBERS, strict=True))
_UINT16 = struct.Struct(">H").unpack_from
_UINT32 = struct.Struct(">I").unpack_from
_UINT64 = struct.Struct(">Q").unpack_from

#: The first bytes of a message kept to find a response's msgid: fixarray(4),
#: the type, and a uint64 msgid at the longest.
_HEAD: Final = 11

#: The bounds of a message being skipped: none.
_UNLIMITED: Final = sys.maxsize


def response_msgid(head: bytes) -> int | None:
    """The msgid of the response whose first bytes are ``head``, or None if it is not one.

    Only the canonical shape is recognised (``[1, msgid, ...]`` as a fixarray
    of four, the msgid a uint32 in any integer encoding msgpack allows).
    """
    if len(head) < 3 or head[0] != 0x94 or head[1] != 0x01:
        return None
    first = head[2]
    if first <= 0x7F:
        return first
    widths = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
    width = widths.get(first)
    if width is None or len(head) < 3 + width:
        return None
    msgid = int.from_bytes(head[3 : 3 + width], "big")
    return msgid if msgid <= 0xFFFFFFFF else None


class HeaderScanner:
    """Reads the token headers of one unfinished message, resumably, building nothing.

    It tracks what the headers so far declare: the open containers (their
    items not yet started), the payload bytes still to come, and the bytes
    seen. Each item needs at least one more byte and each payload its bytes,
    so ``seen + payload + items`` is the least the message can still come
    to; it only grows, and once past ``max_message_size`` the message is
    refused. So is a header over ``max_array_len`` or ``max_map_len``, and a
    container nested past ``max_depth``. :meth:`feed` returns where the
    message ends, or -1 while it goes on.

    With ``may_skip``, a response over ``max_message_size`` is not
    refused but skipped (see the module's docstring): ``skipping`` turns
    true, and ``msgid`` and ``size`` say what was skipped once it has ended.
    """

    __slots__ = (
        "_bounds",
        "_done",
        "_head",
        "_limits",
        "_may_skip",
        "_need",
        "_open",
        "_outer",
        "_partial",
        "_remaining",
        "_seen",
        "msgid",
        "skipping",
    )

    def __init__(self, limits: Limits, *, may_skip: bool = False) -> None:
        self._limits = limits
        self._may_skip = may_skip
        # max_message_size, max_array_len, max_map_len: none once skipping.
        self._bounds = (limits.max_message_size, limits.max_array_len, limits.max_map_len)
        self._head = b""  # the message's first bytes (up to _HEAD), while may_skip
        self.skipping = False
        self.msgid = -1  # the skipped response's msgid, once skipping
        self._open: list[int] = []  # items not yet started, of each enclosing container
        self._outer = 0  # their sum
        self._remaining = 1  # items not yet started in the innermost (the message is one item)
        self._need = 0  # bytes of the last token still to come (its value is never read)
        self._done = False  # the message ends when those bytes have come
        self._seen = 0  # bytes of the message read so far
        self._partial = b""  # the start of a header cut off by the end of a read

    def feed(self, data: bytes, pos: int) -> int:  # noqa: PLR0915 - one flat loop: the slow path's speed
        """Read ``data[pos:]``; the offset in ``data`` where the message ends, or -1."""
        if self._may_skip and len(self._head) < _HEAD:
            self._head += bytes(data[pos : pos + _HEAD - len(self._head)])
        end = len(data)
        need = self._need
        if need:  # the rest of a token: skipped, never looked at
            if pos + need > end:
                self._need = need - (end - pos)
                self._seen += end - pos
                return -1
            pos += need
            self._seen += need
            self._need = 0
            if self._done:
                return pos
        shift = 0
        partial = self._partial
        if partial:
            # A header was cut in two: read it whole from a joined copy. The
            # copy costs a read's bytes once; scanning them costs more.
            shift = len(partial) - pos
            data = partial + bytes(data[pos:])
            pos = 0
            end = len(data)
            self._partial = b""
        max_size, max_array, max_map = self._bounds
        max_depth = self._limits.max_depth
        max_open = min(max_depth, _MSGPACK_STACK - 1)
        kinds = _KINDS
        numbers = _NUMBERS
        sizes = _SIZES
        opened = self._open
        outer = self._outer
        remaining = self._remaining
        # The message's size so far is always `before + pos`: pos may run past
        # the end of the read by the bytes the last token still needs.
        before = self._seen - pos
        while pos < end:
            byte = data[pos]
            size = sizes[byte]
            if size:  # the most common tokens first: scalars and short strs
                pos += size
                remaining -= 1
                if remaining:
                    continue
                while not remaining:  # the token ends containers (as below)
                    if not opened:
                        if before + pos > max_size:
                            max_size, max_array, max_map = self._refuse(
                                self._too_large() if pos <= end else self._cannot_fit(before + pos)
                            )
                        if pos <= end:
                            self._seen = before + pos
                            return pos - shift
                        self._done = True
                        break
                    remaining = opened.pop()
                    outer -= remaining
                continue
            kind = kinds[byte]
            if kind == _STR:
                width = numbers[byte]
                if pos + 1 + width > end:
                    break
                if width == 1:
                    pos += 2 + data[pos + 1]
                elif width == 2:
                    pos += 3 + _UINT16(data, pos + 1)[0]
                else:
                    pos += 5 + _UINT32(data, pos + 1)[0]
            elif kind == _EXT:
                width = numbers[byte]
                if pos + 2 + width > end:
                    break
                if width == 1:
                    pos += 3 + data[pos + 1]
                elif width == 2:
                    pos += 4 + _UINT16(data, pos + 1)[0]
                else:
                    pos += 6 + _UINT32(data, pos + 1)[0]
            elif kind != _INVALID:  # array or map
                width = numbers[byte]
                if pos + 1 + width > end:
                    break
                if not width:
                    items = byte & 0x0F
                elif width == 2:
                    items = _UINT16(data, pos + 1)[0]
                else:
                    items = _UINT32(data, pos + 1)[0]
                # A count over its limit is refused even in a response: msgpack
                # refuses it too when it builds a message that came whole.
                if kind == _MAP:
                    if items > max_map:
                        raise self._over(items, "max_map_len", max_map)
                    items *= 2  # a key and a value
                elif items > max_array:
                    raise self._over(items, "max_array_len", max_array)
                if len(opened) > max_open:
                    if len(opened) > max_depth:
                        raise too_deep(max_depth)
                    raise ProtocolError(f"malformed msgpack: {UNPACK_ERRORS[msgpack.StackError]}")
                pos += 1 + width
                if items:
                    remaining -= 1
                    opened.append(remaining)
                    outer += remaining
                    remaining = items
                    if before + pos + outer + remaining > max_size:
                        max_size, max_array, max_map = self._refuse(
                            self._cannot_fit(before + pos + outer + remaining)
                        )
                    continue
            else:
                raise ProtocolError(f"malformed msgpack: {UNPACK_ERRORS[msgpack.FormatError]}")
            # A token has been read: so has every container whose last item it was.
            remaining -= 1
            while not remaining:
                if not opened:  # the message itself
                    if before + pos > max_size:
                        max_size, max_array, max_map = self._refuse(
                            self._too_large() if pos <= end else self._cannot_fit(before + pos)
                        )
                    if pos <= end:
                        self._seen = before + pos
                        return pos - shift
                    self._done = True
                    break
                remaining = opened.pop()
                outer -= remaining
        if pos < end:  # a header cut off by the end of the read
            self._partial = bytes(data[pos:end])
        else:
            self._need = pos - end
        self._seen = before + min(pos, end)
        self._outer = outer
        self._remaining = remaining
        if before + pos + outer + remaining > max_size:
            self._refuse(self._cannot_fit(before + pos + outer + remaining))
        return -1

    @property
    def size(self) -> int:
        """Bytes of the message read so far (all of it, once it has ended)."""
        return self._seen

    def _refuse(self, error: ProtocolError) -> tuple[int, int, int]:
        """Raise ``error``, or, for a response when skipping is allowed, start skipping it:
        the bounds to go on with (none)."""
        msgid = response_msgid(self._head) if self._may_skip else None
        if msgid is None:
            raise error
        self.skipping = True
        self.msgid = msgid
        self._bounds = (_UNLIMITED, _UNLIMITED, _UNLIMITED)
        return self._bounds

    def _cannot_fit(self, least: int) -> ProtocolError:
        return ProtocolError(
            f"message larger than the limit (max_message_size={self._limits.max_message_size}):"
            f" its headers so far need at least {least} bytes"
        )

    def _too_large(self) -> ProtocolError:
        return too_large(self._limits.max_message_size)

    @staticmethod
    def _over(count: int, name: str, limit: int) -> ProtocolError:
        # The words msgpack uses for the same check on a complete message.
        return ProtocolError(f"message breaks a decoder limit: {count} exceeds {name}({limit})")
