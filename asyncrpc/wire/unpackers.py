"""msgpack's ``Unpacker``, set up for each of the decoder's three uses.

The decoder (``codec.py``) runs msgpack's C parser three ways: a *builder*
that builds every complete message, a *skipper* that only finds where
messages end, and a throwaway *counter* that finds where the n-th one ends.
How each is configured (which limits msgpack itself enforces, how text that
is not UTF-8 decodes, how buffers grow) is decided here, in one place, and
so is what msgpack raises for bytes it cannot decode.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Final

import msgpack

from asyncrpc.wire.limits import Limits

__all__ = ["UNPACK_FAILURES", "new_builder", "new_skipper", "skipped_to"]

#: Initial buffer of the builder; it grows to what one read or one message needs.
_READ_SIZE: Final = 64 * 1024
#: The skipper's: what it holds is consumed at once, so it grows only with the reads.
_SKIPPER_READ_SIZE: Final = 16 * 1024

#: What msgpack raises for bytes it cannot decode (UnicodeDecodeError and
#: msgpack's own errors are ValueErrors; an unhashable map key is a TypeError;
#: a timestamp outside what ``datetime`` holds is an OverflowError).
UNPACK_FAILURES: Final = (ValueError, TypeError, OverflowError, msgpack.UnpackException)

#: A new skipper. It builds nothing, so none of the limits apply to it. A
#: partial, not a function: it is made on the read path, with no Python frame.
new_skipper: Final = partial(msgpack.Unpacker, max_buffer_size=0, read_size=_SKIPPER_READ_SIZE)


def new_builder(limits: Limits, *, raw_strings: bool = False) -> Any:
    """A new builder: an ``Unpacker`` that enforces ``limits``' length limits as it builds.

    With ``raw_strings``, every msgpack str is built as ``bytes`` (for peers
    from before msgpack's str/bin split, which pack bytes as str).
    """
    return msgpack.Unpacker(
        raw=raw_strings,
        # Neovim sends buffer text as msgpack str whatever its bytes (a
        # Latin-1 file is not UTF-8): keep such bytes as lone surrogates,
        # as pynvim does, instead of dropping the connection; the
        # encoder turns them back into the same bytes.
        unicode_errors="surrogateescape",
        strict_map_key=False,
        # Timestamps (ext -1) as aware datetimes in UTC, not msgpack.Timestamp:
        # that hashes as the tuple (seconds, nanoseconds), whose hash can be
        # inverted, so one message of timestamp map keys that all share a hash
        # would take n**2/2 Python-level comparisons to build (128 KiB stopped
        # the loop for 4 s). A datetime's hash is the string hash of its bytes,
        # randomised per process. A timestamp out of datetime's range (years
        # 1 to 9999) is a ProtocolError.
        timestamp=3,
        use_list=True,
        # The size limit is per message, checked as messages are found:
        # msgpack's own buffer limit counts every unread byte, so a chunk
        # of many small pipelined messages would break it. 0 is msgpack's
        # "no limit" (2 GiB).
        max_buffer_size=0,
        read_size=_READ_SIZE,
        max_str_len=limits.max_str_len,
        max_bin_len=limits.max_bin_len,
        max_ext_len=limits.max_ext_len,
        max_array_len=limits.max_array_len,
        max_map_len=limits.max_map_len,
    )


def skipped_to(data: bytes, pos: int, found: int) -> int:
    """The offset in ``data`` after the first ``found`` messages of ``data[pos:]``."""
    counter = msgpack.Unpacker(max_buffer_size=0, read_size=min(len(data) - pos, _READ_SIZE) or 1)
    counter.feed(memoryview(data)[pos:])
    for _ in range(found):
        counter.skip()
    return pos + int(counter.tell())
