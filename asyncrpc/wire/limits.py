"""Decoder limits: what one peer may make us allocate.

Every limit is per message. ``max_message_size`` bounds the bytes buffered for
one unfinished message; the length limits are checked by msgpack when it reads
a header, before it allocates; ``max_depth`` bounds how deeply containers nest
inside a message's params, result or error.
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
        max_array_len: items in one array (msgpack allocates the list when it
            reads the header, so this also bounds memory per level).
        max_map_len: pairs in one map.
        max_depth: containers nested inside params, result or error
            (``[1, [2, [3]]]`` has depth 3).
    """

    max_message_size: int = 16 * MiB
    max_str_len: int = 16 * MiB
    max_bin_len: int = 16 * MiB
    max_ext_len: int = 1 * MiB
    max_array_len: int = 131_072
    max_map_len: int = 65_536
    max_depth: int = 64

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if getattr(self, name) < 1:
                raise ValueError(f"Limits.{name} must be at least 1")


DEFAULT_LIMITS = Limits()
