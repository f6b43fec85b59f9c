"""Property tests of the decoder: any split of a valid stream, any mangled or random bytes.

1. A stream of valid messages decodes to the same events however it is cut
   into reads, and however the reader pauses between events.
2. Mangled, truncated or random bytes, fed whole or one byte at a time,
   raise nothing but :class:`ProtocolError`; both ways deliver the same
   events before it and agree on whether the stream is bad.

``tests/fuzz/fuzz_decoder.py`` checks the same with a coverage-guided fuzzer.
"""

from __future__ import annotations

import dataclasses
import tracemalloc
from itertools import pairwise
from typing import Any

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncrpc.errors import ProtocolError
from asyncrpc.wire import NEED_DATA, Decoder, Encoder, Event, Limits, Message, Notification, Request, Response

MAX_MSGID = 2**32 - 1

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
keys = st.text(max_size=10) | st.integers(min_value=-(2**63), max_value=2**64 - 1)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=5),
    max_leaves=20,
)
params = st.lists(values, max_size=5)
msgids = st.integers(min_value=0, max_value=MAX_MSGID)
methods = st.text(max_size=30)
extensions = st.none() | st.dictionaries(st.text(max_size=8), values, min_size=1, max_size=3)
events = (
    st.builds(Request, msgids, methods, params, extensions)
    | st.builds(Response, msgids, values, values)
    | st.builds(Notification, methods, params)
)
cuts = st.lists(st.integers(min_value=0, max_value=4096), max_size=24)

# Small limits, so that random bytes often reach each of them.
SMALL = Limits(
    max_message_size=300,
    max_str_len=40,
    max_bin_len=40,
    max_ext_len=16,
    max_array_len=12,
    max_map_len=6,
    max_depth=5,
)
limit_sets = st.sampled_from([Limits(), SMALL])

# Byte strings that matter to msgpack's grammar: container and length headers
# declaring much, the invalid byte, and ext and timestamp headers.
TRICKY = [
    b"\xc1",
    b"\xdd\xff\xff\xff\xff",
    b"\xdd\x00\x10\x00\x00",
    b"\xdf\xff\xff\xff\xff",
    b"\xdc\xff\xff",
    b"\xdb\x7f\xff\xff\xff",
    b"\xc6\xff\xff\xff\xff",
    b"\xc9\xff\xff\xff\xff\x01",
    b"\xd7\xff\xff\xff\xff\xff\xff\xff\xff\xff",
    b"\xc7\x03\xff\x00\x00\x00",
    b"\x91" * 70,
    b"\x91" * 1000,  # deeper than repr() or a recursive check can go
    b"\x81\xa1k" * 400,
    b"\x81\x91\x01\x02",
    b"\x81\x80\x00",
    b"\xa3\xff\xfe\xfd",
]


def split_at(data: bytes, points: list[int]) -> list[bytes]:
    edges = [0, *sorted({min(point, len(data)) for point in points}), len(data)]
    return [data[a:b] for a, b in pairwise(edges)]


def outcome(decoder: Decoder, chunks: list[bytes]) -> tuple[list[Event], bool]:
    """Every event, and whether a ProtocolError ended the stream; anything else propagates."""
    received: list[Event] = []
    for chunk in chunks:
        decoder.receive_data(chunk)
        try:
            received.extend(decoder)
        except ProtocolError as exc:
            message = str(exc)
            assert "\n" not in message
            assert len(message) < 200, message
            return received, True
    return received, False


def as_bytes(event: Event) -> bytes:
    """An event, comparable as bytes (a NaN in a message is not equal to itself)."""
    fields = [getattr(event, field.name) for field in dataclasses.fields(event)]
    packed = msgpack.packb(
        [type(event).__name__, *fields], use_bin_type=True, unicode_errors="surrogateescape", datetime=True
    )
    return bytes(packed)


def whole_and_byte_by_byte(data: bytes, limits: Limits, *, accept_extension: bool) -> None:
    whole = outcome(Decoder(limits, accept_extension=accept_extension), [data])
    bytewise = outcome(
        Decoder(limits, accept_extension=accept_extension), [data[i : i + 1] for i in range(len(data))]
    )
    # Compared as bytes: a NaN in a message is not equal to itself.
    assert [as_bytes(e) for e in whole[0]] == [as_bytes(e) for e in bytewise[0]]
    assert whole[1] == bytewise[1]


@settings(max_examples=100, deadline=None)
@given(st.lists(events, min_size=1, max_size=8), cuts, st.lists(st.integers(0, 3), max_size=30))
def test_any_split_and_any_pauses_give_the_same_events(
    messages: list[Message], points: list[int], pauses: list[int]
) -> None:
    data = b"".join(Encoder().send(message) for message in messages)
    decoder = Decoder(accept_extension=True)
    received: list[Event] = []
    pause = iter(pauses)
    for chunk in split_at(data, points):
        decoder.receive_data(chunk)
        # The reader takes a few events, then pauses (stops iterating), and
        # takes the rest with a fresh loop or next_event() before more arrives.
        limit = next(pause, 0)
        for taken, event in enumerate(decoder, 1):
            received.append(event)
            if taken >= limit:
                break
        while (event_or_none := decoder.next_event()) is not NEED_DATA:
            received.append(event_or_none)  # type: ignore[arg-type]
    assert received == messages
    assert decoder.buffered == 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(events, min_size=1, max_size=4),
    st.lists(
        st.tuples(
            st.integers(0, 4096), st.sampled_from(["flip", "insert", "delete", "tricky"]), st.integers(0, 255)
        ),
        min_size=1,
        max_size=4,
    ),
    st.integers(0, 4096),
    limit_sets,
    st.booleans(),
)
def test_mangled_streams_raise_only_protocol_errors(
    messages: list[Message],
    mutations: list[tuple[int, str, int]],
    truncate: int,
    limits: Limits,
    accept_extension: bool,
) -> None:
    data = bytearray(b"".join(Encoder().send(message) for message in messages))
    for position, kind, value in mutations:
        at = position % (len(data) + 1)
        if kind == "flip" and at < len(data):
            data[at] = value
        elif kind == "insert":
            data[at:at] = bytes([value])
        elif kind == "delete":
            del data[at : at + 1]
        elif kind == "tricky":
            data[at:at] = TRICKY[value % len(TRICKY)]
    whole_and_byte_by_byte(
        bytes(data[: max(len(data) - truncate, 0)]), limits, accept_extension=accept_extension
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(max_size=24) | st.sampled_from(TRICKY), max_size=12).map(b"".join),
    limit_sets,
    st.booleans(),
)
def test_random_bytes_raise_only_protocol_errors(data: bytes, limits: Limits, accept_extension: bool) -> None:
    whole_and_byte_by_byte(data, limits, accept_extension=accept_extension)


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(keys, c, max_size=3)),
    limit_sets,
)
def test_any_msgpack_value_as_a_message_is_an_event_or_a_protocol_error(value: Any, limits: Limits) -> None:
    # Well-formed msgpack of any shape: a message only if it has the right one.
    whole_and_byte_by_byte(msgpack.packb(value, use_bin_type=True), limits, accept_extension=True)


# Container and payload headers that declare much and bring nothing.
HEADERS = [
    b"\xdd\x00\x10\x00\x00",  # array32 of 2**20 items
    b"\xdc\xff\xff",  # array16 of 65535 items
    b"\xdf\x00\x01\x00\x00",  # map32 of 65536 pairs
    b"\xde\x10\x00",  # map16
    b"\x9f",  # fixarray of 15
    b"\x8f\xa1k",  # fixmap of 15, one key
    b"\xdb\x00\x10\x00\x00",  # str32 of 1 MiB
    b"\xc6\x00\x10\x00\x00",  # bin32 of 1 MiB
    b"\x00",
]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(HEADERS), min_size=1, max_size=80).map(b"".join),
    st.sampled_from([b"", b"\x94\x00\x01\xa1m", b"\x94\x01\x01\xc0"]),
    st.integers(1, 64),
)
def test_bytes_of_an_unfinished_stream_cost_only_their_size(body: bytes, prefix: bytes, read: int) -> None:
    # Whatever the headers declare, what the decoder keeps is the bytes it was
    # given (bounded by max_message_size) plus a constant.
    data = prefix + body
    limits = Limits(max_message_size=64 * 1024 * 1024, max_depth=2000)
    decoder = Decoder(limits)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        outcome(decoder, [data[i : i + read] for i in range(0, len(data), read)])
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < len(data) + 128 * 1024


def deep(depth: int) -> bytes:
    return b"\x91" * depth + b"\x00"


@settings(max_examples=60, deadline=None)
@given(events, st.integers(0, 4), st.sampled_from([2, 70, 1000, 1020]), st.booleans())
def test_any_element_nested_deep_is_a_protocol_error(
    message: Message, element: int, depth: int, byte_by_byte: bool
) -> None:
    # Each element of a message (type, msgid, method, params...) replaced by
    # a value nested up to msgpack's own limit: never a RecursionError.
    # (Hypothesis raises the recursion limit while it runs a test, so
    # test_hostile.py holds the cases that overflowed repr() before.)
    fields = msgpack.unpackb(Encoder().send(message), raw=False, strict_map_key=False)
    parts = [msgpack.packb(field, use_bin_type=True) for field in fields]
    parts[element % len(parts)] = deep(depth)
    data = bytes([0x90 | len(parts)]) + b"".join(parts)
    chunks = [data[i : i + 1] for i in range(len(data))] if byte_by_byte else [data]
    outcome(Decoder(accept_extension=True), chunks)
