"""Hostile bytes: what an unfinished message may cost, nesting that would recurse, pausing mid-stream.

Every test feeds bytes to the decoder directly (sans-IO); memory is measured
with tracemalloc around the decoder, never by polling a process.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import pytest

from asyncrpc.errors import ProtocolError
from asyncrpc.wire import (
    DEFAULT_LIMITS,
    NEED_DATA,
    Decoder,
    Encoder,
    Event,
    Limits,
    Message,
    Request,
    Response,
)

MiB = 1024 * 1024

#: The request prefix ``[0, 1, "m", `` (params follow): params are at depth 1.
REQUEST_PREFIX = b"\x94\x00\x01\xa1m"


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]


def deep_list(depth: int, leaf: bytes = b"\x00") -> bytes:
    """``depth`` one-item arrays around ``leaf``, as bytes (msgpack's packer refuses this deep)."""
    return b"\x91" * depth + leaf


def deep_map(depth: int, leaf: bytes = b"\x00") -> bytes:
    """``{"k": {"k": ... leaf}}``, ``depth`` maps deep."""
    return b"\x81\xa1k" * depth + leaf


def byte_by_byte(data: bytes) -> Iterator[bytes]:
    return (data[i : i + 1] for i in range(len(data)))


def in_one_chunk(data: bytes) -> Iterator[bytes]:
    return iter([data])


CHUNKINGS = [pytest.param(in_one_chunk, id="whole"), pytest.param(byte_by_byte, id="byte-by-byte")]


def drain(decoder: Decoder) -> list[Event]:
    return list(decoder)


def held_by(make: Callable[[], Any]) -> tuple[int, Any]:
    """Bytes still allocated after ``make()`` returns (what it keeps), and its result."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = make()
        return tracemalloc.get_traced_memory()[0] - before, result
    finally:
        tracemalloc.stop()


def error_at(decoder: Decoder, data: bytes) -> int | None:
    """Feed ``data`` byte by byte; the index of the byte after which ProtocolError came, or None."""
    for index, piece in enumerate(byte_by_byte(data)):
        decoder.receive_data(piece)
        try:
            drain(decoder)
        except ProtocolError:
            return index
    return None


# -- an unfinished message costs its bytes, however much its headers declare ---------------


@pytest.mark.parametrize("chunks", CHUNKINGS)
def test_unfinished_array_headers_allocate_nothing_for_the_items_they_declare(
    chunks: Callable[[bytes], Iterator[bytes]],
) -> None:
    # Twenty nested headers of 2**20 items each: within every limit (64 MiB
    # leaves room for 20 Mi items), so nothing refuses them. msgpack alone
    # would allocate a list of 2**20 slots (8 MiB) for each header at once.
    limits = Limits(max_message_size=64 * MiB)
    data = REQUEST_PREFIX + b"\xdd\x00\x10\x00\x00" * 20
    decoder = Decoder(limits)

    def feed() -> None:
        for piece in chunks(data):
            decoder.receive_data(piece)
            assert decoder.next_event() is NEED_DATA

    held, _ = held_by(feed)
    assert decoder.buffered == len(data)
    # Its bytes, and a constant: a skipper (msgpack's Unpacker carries a 40 KiB
    # parse stack, and a first buffer of 16 KiB) and the header scanner.
    assert held < len(data) + 96 * 1024


def test_twenty_connections_of_unfinished_nested_headers_cost_only_their_bytes() -> None:
    # 5 KiB of array32 headers each declaring 2**20 items, nested, never finished.
    attack = b"\xdd\x00\x10\x00\x00" * 1000
    decoders = [Decoder() for _ in range(20)]

    def feed_all() -> list[str]:
        errors = []
        for decoder in decoders:
            for start in range(0, len(attack), 1024):  # as a socket would deliver it
                decoder.receive_data(attack[start : start + 1024])
                try:
                    drain(decoder)
                except ProtocolError as exc:
                    errors.append(str(exc))
                    break
        return errors

    held, errors = held_by(feed_all)
    # Refused at the 17th header: 17 Mi items can never fit in 16 MiB.
    assert len(errors) == 20
    assert all(error.startswith("message larger than the limit (max_message_size=") for error in errors)
    assert held < 20 * (len(attack) + 96 * 1024)


def test_memory_returns_to_a_small_constant_after_a_huge_message() -> None:
    # msgpack's buffer grows to the largest message and never shrinks; once
    # nothing is buffered the decoder starts again with small buffers.
    decoder = Decoder()
    big = pack([1, 1, None, "x" * (12 * MiB)])
    small = Encoder().request(2, "add", [1, 2])

    def exchange() -> None:
        for start in range(0, len(big), 64 * 1024):
            decoder.receive_data(big[start : start + 64 * 1024])
            for event in decoder:
                assert isinstance(event, Response)
                del event  # drop the 12 MiB result: what is measured is the decoder
        decoder.receive_data(small)
        assert drain(decoder) == [Request(2, "add", [1, 2])]

    held, _ = held_by(exchange)
    assert held < 1 * MiB


# -- limits on what an unfinished message declares, enforced at the header --------------------


def test_nesting_past_max_depth_is_refused_at_the_header_that_breaks_it() -> None:
    # params is depth 1; with max_depth=8 the ninth nested array is one too many.
    header = b"\xdd\x00\x00\x00\x02"  # array32 of two items: 5 bytes
    data = REQUEST_PREFIX + header * 20
    assert error_at(Decoder(Limits(max_depth=8)), data) == len(REQUEST_PREFIX) + 9 * len(header) - 1


@pytest.mark.parametrize(
    ("headers", "breaking"),
    [
        # One array declaring more items than 1000 bytes can hold (each needs a byte).
        pytest.param([b"\xdc\x03\xe8"], 0, id="array16"),
        pytest.param([b"\xdd\x00\x00\x03\xe8"], 0, id="array32"),
        # A map's pairs are two items each.
        pytest.param([b"\xde\x01\xf4"], 0, id="map16-pairs"),
        # Each fits alone; the second, nested in the first, no longer does.
        pytest.param([b"\xdc\x02\x58", b"\xdc\x02\x58"], 1, id="nested-total"),
        # A payload's bytes count too.
        pytest.param([b"\xc6\x00\x00\x13\x88"], 0, id="bin32"),
        pytest.param([b"\xdb\x7f\xff\xff\xff"], 0, id="str32"),
        pytest.param([b"\xc9\x00\x00\x13\x88\x05"], 0, id="ext32"),
    ],
)
def test_declared_sizes_that_cannot_fit_are_refused_at_the_header(
    headers: list[bytes], breaking: int
) -> None:
    limits = Limits(max_message_size=1000)
    data = REQUEST_PREFIX + b"\x91" + b"".join(headers)
    last_byte = len(REQUEST_PREFIX) + 1 + sum(len(h) for h in headers[: breaking + 1]) - 1
    assert error_at(Decoder(limits), data) == last_byte
    decoder = Decoder(limits)
    decoder.receive_data(data)
    with pytest.raises(ProtocolError, match=r"max_message_size=1000\): its headers so far need at least"):
        decoder.next_event()


def test_items_that_no_longer_fit_are_refused_before_the_message_would_pass_the_limit() -> None:
    # An array of 100 items in a 500-byte limit: each uint64 item takes 9
    # bytes, and each item still to come at least one. After the 50th item
    # 8 + 50 * 9 + 50 > 500: the message can no longer fit, long before its
    # bytes alone pass 500 (after the 55th).
    limits = Limits(max_message_size=500)
    decoder = Decoder(limits)
    decoder.receive_data(REQUEST_PREFIX + b"\xdc\x00\x64")
    assert decoder.next_event() is NEED_DATA
    item = b"\xcf" + b"\x00" * 8
    for _ in range(49):
        decoder.receive_data(item)
        assert decoder.next_event() is NEED_DATA
    decoder.receive_data(item)
    with pytest.raises(ProtocolError, match=r"max_message_size=500"):
        decoder.next_event()


def test_a_message_that_fits_exactly_is_never_refused_early() -> None:
    data = Encoder().request(1, "m", [list(range(100)), "x" * 200, {"k": b"v" * 50}])
    limits = Limits(max_message_size=len(data))
    for chunks in (in_one_chunk, byte_by_byte):
        decoder = Decoder(limits)
        events: list[Event] = []
        for piece in chunks(data):
            decoder.receive_data(piece)
            events.extend(decoder)
        assert len(events) == 1


def test_msgpack_stack_limit_is_named_when_max_depth_is_higher() -> None:
    decoder = Decoder(Limits(max_depth=5000))
    for piece in byte_by_byte(deep_list(1100)):
        decoder.receive_data(piece)
        try:
            drain(decoder)
        except ProtocolError as exc:
            assert "containers nested deeper than msgpack decodes (StackError)" in str(exc)  # noqa: PT017
            return
    pytest.fail("no error")


def test_a_max_depth_past_the_recursion_limit_checks_complete_messages_too() -> None:
    # 1010 levels of params, allowed by max_depth=1020 and within msgpack's own
    # limit: the depth check must not recurse once per level.
    data = REQUEST_PREFIX + deep_list(1010)
    decoder = Decoder(Limits(max_depth=1020))
    decoder.receive_data(data)
    event = decoder.next_event()
    assert isinstance(event, Request)
    decoder = Decoder(Limits(max_depth=900))
    decoder.receive_data(data)
    with pytest.raises(ProtocolError, match=r"max_depth=900"):
        decoder.next_event()


# -- nesting that would recurse: a ProtocolError, described in one short line ---------------

DEEP = 1000  # 1 to 3 KB of bytes; deeper than Python's recursion limit lets repr() go

RECURSIVE_SHAPES = [
    pytest.param(deep_map(DEEP), "message is not an array", id="message-is-a-deep-map"),
    pytest.param(b"\x94" + deep_list(DEEP) + b"\x01\xa1m\x90", "unknown message type", id="type"),
    pytest.param(b"\x94\x00" + deep_list(DEEP) + b"\xa1m\x90", "request msgid", id="request-msgid"),
    pytest.param(b"\x94\x00\x01" + deep_list(DEEP) + b"\x90", "request method", id="request-method"),
    pytest.param(b"\x94\x01" + deep_list(DEEP) + b"\xc0\xc0", "max_depth", id="response-msgid"),
    pytest.param(b"\x93\x02" + deep_list(DEEP) + b"\x90", "notification method", id="notification-method"),
    pytest.param(REQUEST_PREFIX + deep_map(DEEP), "request params is not an array", id="request-params"),
    pytest.param(b"\x93\x02\xa1m" + deep_map(DEEP), "notification params", id="notification-params"),
    pytest.param(b"\x95\x00\x01\xa1m\x90" + deep_list(DEEP), "extension is not a map", id="extension"),
    pytest.param(
        b"\x94\x00" + deep_list(DEEP, b"\xd4\x01\x00") + b"\xa1m\x90", "request msgid", id="ext-deep-inside"
    ),
    pytest.param(b"\x94\x00" + b"\x81\x00" * DEEP + b"\x00\xa1m\x90", "request msgid", id="maps-of-int-keys"),
]


@pytest.mark.parametrize(("data", "reason"), RECURSIVE_SHAPES)
def test_deep_nesting_anywhere_is_a_protocol_error_never_a_recursion_error(data: bytes, reason: str) -> None:
    decoder = Decoder(accept_extension=True)
    decoder.receive_data(data)
    with pytest.raises(ProtocolError) as info:
        decoder.next_event()
    message = str(info.value)
    assert reason in message
    assert "\n" not in message
    assert len(message) < 160


@pytest.mark.parametrize(("data", "reason"), RECURSIVE_SHAPES)
def test_deep_nesting_fed_byte_by_byte_is_refused_at_max_depth(data: bytes, reason: str) -> None:
    decoder = Decoder(accept_extension=True)
    for piece in byte_by_byte(data):
        decoder.receive_data(piece)
        try:
            drain(decoder)
        except ProtocolError as exc:
            assert "max_depth=64" in str(exc)  # noqa: PT017
            return
    pytest.fail("no error")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(["x" * 1_000_000], id="long-str"),
        pytest.param([b"\xff" * 1_000_000], id="long-bin"),
        pytest.param([dict.fromkeys(range(60_000), 0)], id="wide-map"),
        pytest.param([list(range(1_000_000))], id="long-array"),
        pytest.param([msgpack.ExtType(3, b"e" * 100_000)], id="long-ext"),
    ],
)
def test_error_messages_never_echo_long_input(value: list[Any]) -> None:
    decoder = Decoder()
    decoder.receive_data(pack([0, value, "m", []]))
    with pytest.raises(ProtocolError) as info:
        decoder.next_event()
    assert len(str(info.value)) < 160


# -- every error is a ProtocolError, and stays one -----------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        # A timestamp (ext type -1) of three bytes, and one with nanoseconds past 10**9.
        pytest.param(b"\x94\x01\x01\xc0\xc7\x03\xff\x00\x00\x00", id="timestamp-of-3-bytes"),
        pytest.param(b"\x94\x01\x01\xc0\xd7\xff" + b"\xff" * 8, id="timestamp-nanoseconds"),
        pytest.param(b"\x94\x01\x01\xc0\x81\x81\x01\x02\x03", id="map-as-map-key"),
    ],
)
def test_values_msgpack_cannot_build_are_protocol_errors(data: bytes) -> None:
    decoder = Decoder()
    decoder.receive_data(data)
    with pytest.raises(ProtocolError, match="malformed msgpack"):
        decoder.next_event()


def test_the_error_stays_raised_and_later_bytes_are_ignored() -> None:
    decoder = Decoder()
    decoder.receive_data(Encoder().request(1, "a", []) + b"\xc1" + Encoder().request(2, "b", []))
    assert decoder.next_event() == Request(1, "a", [])
    for _ in range(3):
        with pytest.raises(ProtocolError, match="invalid type byte"):
            decoder.next_event()
    decoder.receive_data(Encoder().request(3, "c", []))
    with pytest.raises(ProtocolError, match="invalid type byte"):
        list(decoder)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(pack([0, 2, "m", ["x" * 50]]), id="over-max_str_len"),  # refused by msgpack
        pytest.param(pack([7, 2, "m", []]), id="unknown-type"),  # refused by the shape checks
    ],
)
def test_no_message_after_a_bad_complete_one_is_delivered(bad: bytes) -> None:
    decoder = Decoder(Limits(max_str_len=10))
    decoder.receive_data(Encoder().request(1, "a", []) + bad + Encoder().request(3, "c", []))
    assert decoder.next_event() == Request(1, "a", [])
    for _ in range(2):
        with pytest.raises(ProtocolError):
            decoder.next_event()
    with pytest.raises(ProtocolError):
        list(decoder)


# -- pausing: stop after any event, resume later, nothing lost or repeated ------------------


def test_iteration_can_stop_after_any_event_and_resume_later() -> None:
    encoder = Encoder()
    sent: list[Message] = []
    for i in range(60):
        sent.append(Request(i, "m", [i, "x" * (i % 7)]))
        sent.append(Response(i, None, {"n": [i] * (i % 5)}))
    data = b"".join(encoder.send(event) for event in sent)
    cut = len(data) // 3 + 5  # mid-message
    decoder = Decoder()
    decoder.receive_data(data[:cut])
    got: list[Event] = []
    # The connection pauses after every third event and resumes with a fresh
    # loop, or one next_event(); more bytes arrive while events are still ready.
    for event in decoder:
        got.append(event)
        if len(got) == 3:
            break
    decoder.receive_data(data[cut : 2 * cut])
    held = iter(decoder)  # a paused loop, still alive while next_event() is used
    got.append(next(held))
    first = decoder.next_event()
    assert first is not NEED_DATA
    got.append(first)  # type: ignore[arg-type]
    decoder.receive_data(data[2 * cut :])
    while True:
        taken = 0
        for event in decoder:
            got.append(event)
            taken += 1
            if taken == 3:
                break
        event_or_none = decoder.next_event()
        if event_or_none is NEED_DATA:
            if taken == 0:
                break
            continue
        got.append(event_or_none)  # type: ignore[arg-type]
    assert got == sent
    assert decoder.buffered == 0
    assert list(held) == []


# -- huge legitimate messages (Neovim's buffers) -----------------------------------------------


def neovim_buffer(lines: int) -> bytes:
    """A response carrying a buffer's lines, as ``nvim_buf_get_lines`` answers."""
    return pack([1, 9, None, [f"{n:>7}: text" for n in range(lines)]])


def test_a_buffer_of_a_million_lines_decodes_whole_and_split_anywhere() -> None:
    data = neovim_buffer(1_000_000)
    assert 12 * MiB < len(data) <= DEFAULT_LIMITS.max_message_size
    expected = msgpack.unpackb(data)[3]
    for size in (len(data), 256 * 1024, 65_536 + 3, 4093):
        decoder = Decoder()
        events: list[Event] = []
        for start in range(0, len(data), size):
            decoder.receive_data(data[start : start + size])
            events.extend(decoder)
        assert len(events) == 1
        assert isinstance(events[0], Response)
        assert events[0].result == expected


def test_a_buffer_fed_one_byte_at_a_time_decodes() -> None:
    data = neovim_buffer(2000) * 2
    decoder = Decoder()
    events: list[Event] = []
    for piece in byte_by_byte(data):
        decoder.receive_data(piece)
        events.extend(decoder)
    assert len(events) == 2
    assert events[0] == events[1]


def test_a_huge_str_fed_in_reads_is_held_once() -> None:
    # One 12 MiB str arriving in 64 KiB reads: the skipper must not hold a
    # second copy of it while it is unfinished.
    data = pack([1, 1, None, "y" * (12 * MiB)])
    most, rest = data[:-1024], data[-1024:]
    decoder = Decoder()

    def feed_most() -> None:
        for start in range(0, len(most), 64 * 1024):
            decoder.receive_data(most[start : start + 64 * 1024])
            assert decoder.next_event() is NEED_DATA

    held, _ = held_by(feed_most)
    # msgpack doubles its buffer as it grows: at most twice the bytes, of
    # which only the bytes themselves are ever written.
    assert held < 2 * len(most) + 1 * MiB
    decoder.receive_data(rest)
    assert decoder.next_event() == Response(1, None, "y" * (12 * MiB))
