"""Decoder limits: what one peer may make us allocate.

Every limit is per message. ``max_message_size`` bounds the bytes buffered for
one message, finished or not. msgpack checks the array and map limits when it
reads a header, before it allocates; str, bin and ext values are checked once
their bytes have arrived (so they are bounded by ``max_message_size`` meanwhile).
``max_depth`` bounds how deeply containers nest inside a message's params,
result or error.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_LIMITS", "Limits"]

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what a peer may send; a message over any of them is a ``ProtocolError``.

    Attributes:
        max_message_size: bytes buffered for one incomplete message.
        max_str_len: bytes in one msgpack str.
        max_bin_len: bytes in one msgpack bin.
        max_ext_len: bytes in one msgpack ext value.
        max_array_len: items in one array. msgpack allocates the list when it
            reads the header, before the items arrive; the allocation is
            zero-filled memory the OS maps lazily, so a header that lies costs
            address space, not resident memory. The default admits Neovim
            buffers of a million lines.
        max_map_len: pairs in one map.
        max_depth: containers nested inside params, result or error
            (``[1, [2, [3]]]`` has depth 3).
    """

    max_message_size: int = 16 * MiB
    max_str_len: int = 16 * MiB
    max_bin_len: int = 16 * MiB
    max_ext_len: int = 1 * MiB
    max_array_len: int = 1_048_576
    max_map_len: int = 65_536
    max_depth: int = 64

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if getattr(self, name) < 1:
                raise ValueError(f"Limits.{name} must be at least 1")


DEFAULT_LIMITS = Limits()
