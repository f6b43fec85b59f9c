"""Decoder limits: what one peer may make us allocate.

Every limit is per message, and each is enforced while the message is still
arriving, not only once it is complete:

- An unfinished message is held as bytes only: nothing is built from it until
  its last byte has arrived, so it costs its own bytes (at most
  ``max_message_size``) plus a constant, whatever its headers declare.
- Its headers are read as they arrive. A container nested past ``max_depth``,
  an array or map header over ``max_array_len`` or ``max_map_len``, or headers
  that declare more than ``max_message_size`` leaves room for, are refused at
  that header: every item declared needs at least one more byte (a map pair
  two) and every str, bin or ext its payload, so a message whose bytes so far
  plus what it still declares pass ``max_message_size`` can never fit.
- str, bin and ext lengths are checked against their limits once their bytes
  have arrived (they are bounded by ``max_message_size`` meanwhile).

A complete message is then built as Python objects, which cost more than its
bytes: typically 2 to 15 times, at worst about 80 times (a message made of
one-byte empty maps, each a new ``dict``). Lower ``max_message_size`` to bound
that on a server that faces untrusted peers.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_LIMITS", "Limits"]

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what a peer may send; a message over any of them is a ``ProtocolError``.

    Attributes:
        max_message_size: bytes of one message, finished or not (default
            16 MiB, what Neovim may send). Costs, per connection, up to this
            many bytes while a message arrives (msgpack grows its buffer by
            doubling, so up to twice this is allocated, this much written),
            and the objects of the message once it is complete (see above).
            Each connection also holds a constant of about 100 KiB (two
            msgpack unpackers: each carries a 40 KiB parse stack).
        max_str_len: bytes in one msgpack str (default 16 MiB); a str costs
            about its length once built.
        max_bin_len: bytes in one msgpack bin (default 16 MiB), the same.
        max_ext_len: bytes in one msgpack ext value (default 1 MiB), the same.
        max_array_len: items in one array (default 1,048,576: Neovim
            buffers of a million lines). A built array costs 8 bytes a slot
            plus its items; its items must all arrive before anything is
            built, so a header that lies costs nothing.
        max_map_len: pairs in one map (default 65,536); a built map costs
            about 50 bytes a pair plus its keys and values.
        max_depth: containers nested inside params, result or error
            (``[1, [2, [3]]]`` has depth 3; default 64). Checked on the
            headers of an unfinished message anywhere in it; nesting costs
            about 60 bytes a level, and bounds the work of the depth check.
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
"""``Limits()``: what every connection enforces unless given others."""
