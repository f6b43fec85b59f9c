"""Responses that answer no call as sent: stray msgids and responses over a limit.

A response whose msgid is not a uint32 (``[1, -1, "Not Implemented", nil]``,
which msgpack-rpc-lite sends for an unknown notification) is a
:class:`StrayResponse`. A response over ``max_message_size`` (or a count limit)
is skipped without being held and becomes a :class:`ResponseTooLarge` in its
place: the messages around it decode as if it were not there. A count over
``max_array_len`` or ``max_map_len`` stays fatal, in a response too: msgpack
refuses it while building a message that arrived whole, and every split of
the stream must give the same outcome. Every case is
fed whole, byte by byte and in random splits; all must agree.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncrpc.errors import ProtocolError
from asyncrpc.wire import (
    Decoder,
    Event,
    Limits,
    Notification,
    Request,
    Response,
    ResponseTooLarge,
    StrayResponse,
)
from tests.wire.test_decoder import feed, split_at

LIMIT = 1024
LIMITS = Limits(max_message_size=LIMIT, max_array_len=100, max_map_len=100)


def pack(obj: Any) -> bytes:
    return bytes(msgpack.packb(obj, use_bin_type=True))


def ways_to_feed(data: bytes) -> dict[str, list[bytes]]:
    return {
        "whole": [data],
        "bytes": [data[i : i + 1] for i in range(len(data))],
        "halves": [data[: len(data) // 2], data[len(data) // 2 :]],
        "small reads": [data[i : i + 300] for i in range(0, len(data), 300)],
    }


def decode(chunks: list[bytes], limits: Limits = LIMITS) -> list[Event]:
    return feed(Decoder(limits), chunks)


# -- stray responses --------------------------------------------------------------------------


@pytest.mark.parametrize("msgid", [-1, -(2**63), 2**32, 2**64 - 1, "7", None, 1.5, [1, 2]])
def test_a_response_whose_msgid_is_not_a_uint32_is_stray_not_fatal(msgid: Any) -> None:
    stream = pack([1, msgid, "Not Implemented", None]) + pack([1, 3, None, "ok"])
    for how, chunks in ways_to_feed(stream).items():
        assert decode(chunks) == [StrayResponse(msgid, "Not Implemented", None), Response(3, None, "ok")], how


def test_a_stray_response_is_still_checked_for_depth() -> None:
    deep: Any = []
    for _ in range(LIMITS.max_depth + 1):
        deep = [deep]
    decoder = Decoder(LIMITS)
    decoder.receive_data(pack([1, -1, deep, None]))
    with pytest.raises(ProtocolError, match="max_depth"):
        decoder.next_event()


def test_requests_with_a_bad_msgid_are_still_fatal() -> None:
    decoder = Decoder(LIMITS)
    decoder.receive_data(pack([0, -1, "m", []]))
    with pytest.raises(ProtocolError, match="request msgid is not a uint32"):
        decoder.next_event()


# -- responses over a limit -------------------------------------------------------------------


BIG_RESULT = pack([1, 7, None, b"\x00" * 5000])
BIG_ERROR = pack([1, 8, [0, "x" * 5000], None])
WIDE_ARRAY = pack([1, 9, None, ["v" * 20] * 90])  # within max_array_len=100, over LIMIT
WIDE_MAP = pack([1, 10, None, {str(i): "v" * 20 for i in range(90)}])  # within max_map_len, over LIMIT


@pytest.mark.parametrize(
    ("message", "msgid"),
    [
        pytest.param(BIG_RESULT, 7, id="bin-result"),
        pytest.param(BIG_ERROR, 8, id="str-in-error"),
        pytest.param(WIDE_ARRAY, 9, id="long-array"),
        pytest.param(WIDE_MAP, 10, id="long-map"),
        pytest.param(pack([1, 200, None, "y" * 2000]), 200, id="uint8-msgid"),
        pytest.param(pack([1, 60000, None, "y" * 2000]), 60000, id="uint16-msgid"),
        pytest.param(pack([1, 2**32 - 1, None, "y" * 2000]), 2**32 - 1, id="uint32-msgid"),
    ],
)
def test_a_response_over_a_limit_is_skipped_and_named_in_its_place(message: bytes, msgid: int) -> None:
    before = [Request(1, "a", [1]), Response(2, None, "small")]
    after = [Notification("n", ["x"]), Response(3, None, "after")]
    stream = pack([0, 1, "a", [1]]) + pack([1, 2, None, "small"]) + message
    stream += pack([2, "n", ["x"]]) + pack([1, 3, None, "after"])
    for how, chunks in ways_to_feed(stream).items():
        assert decode(chunks) == [*before, ResponseTooLarge(msgid, len(message)), *after], how


def test_a_uint64_encoded_msgid_is_found_too() -> None:
    message = b"\x94\x01\xcf" + (5).to_bytes(8, "big") + b"\xc0" + pack("z" * 2000)
    for how, chunks in ways_to_feed(message + pack([1, 6, None, 1])).items():
        assert decode(chunks) == [ResponseTooLarge(5, len(message)), Response(6, None, 1)], how


def test_two_responses_over_the_limit_in_a_row() -> None:
    stream = BIG_RESULT + BIG_ERROR + pack([1, 3, None, "after"])
    expected = [
        ResponseTooLarge(7, len(BIG_RESULT)),
        ResponseTooLarge(8, len(BIG_ERROR)),
        Response(3, None, "after"),
    ]
    for how, chunks in ways_to_feed(stream).items():
        assert decode(chunks) == expected, how


def test_messages_before_a_skipped_response_come_out_first_even_when_not_yet_taken() -> None:
    """The reader took nothing before more data came (a paused connection): nothing is lost or reordered."""
    decoder = Decoder(LIMITS)
    decoder.receive_data(pack([1, 1, None, "one"]) + pack([1, 2, None, "two"]) + BIG_RESULT[:100])
    decoder.receive_data(BIG_RESULT[100:] + pack([1, 3, None, "three"]))
    assert list(decoder) == [
        Response(1, None, "one"),
        Response(2, None, "two"),
        ResponseTooLarge(7, len(BIG_RESULT)),
        Response(3, None, "three"),
    ]


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(pack([0, 1, "m", ["x" * 5000]]), id="request"),
        pytest.param(pack([2, "m", ["x" * 5000]]), id="notification"),
        pytest.param(pack(["x" * 5000]), id="not-an-rpc-message"),
        pytest.param(pack([1, "7", None, "x" * 5000]), id="response-with-a-str-msgid"),
    ],
)
def test_anything_but_a_response_over_the_limit_is_still_fatal(message: bytes) -> None:
    for how, chunks in ways_to_feed(message).items():
        with pytest.raises(ProtocolError, match=r"larger than the limit \(max_message_size=1024\)"):
            decode(chunks)
        assert how


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        pytest.param(pack([1, 4, None, list(range(101))]), "max_array_len", id="array-small"),
        pytest.param(pack([1, 4, None, ["v" * 20] * 101]), "max_array_len", id="array-large"),
        pytest.param(pack([1, 4, None, {str(i): i for i in range(101)}]), "max_map_len", id="map"),
    ],
)
def test_a_count_over_its_limit_in_a_response_is_still_fatal(message: bytes, reason: str) -> None:
    for how, chunks in ways_to_feed(message).items():
        with pytest.raises(ProtocolError, match=reason):
            decode(chunks)
        assert how


def test_nesting_too_deep_inside_a_skipped_response_is_still_fatal() -> None:
    deep: Any = "x" * 2000
    for _ in range(LIMITS.max_depth + 1):
        deep = [deep]
    for how, chunks in ways_to_feed(pack([1, 4, None, deep])).items():
        with pytest.raises(ProtocolError, match="max_depth"):
            decode(chunks)
        assert how


def test_a_skipped_response_is_not_held_in_memory() -> None:
    """64 MiB past a 1 MiB limit, fed in 256 KiB reads: the decoder holds about one read, not the message."""
    size = 64 * 1024 * 1024
    header = b"\x94\x01\x07\xc0\xc6" + size.to_bytes(4, "big")  # [1, 7, nil, bin32 of 64 MiB]
    chunk = bytes(256 * 1024)
    decoder = Decoder(Limits(max_message_size=1024 * 1024))
    tracemalloc.start()
    try:
        decoder.receive_data(header)
        events = list(decoder)
        for _ in range(size // len(chunk)):
            decoder.receive_data(chunk)
            events.extend(decoder)
        decoder.receive_data(pack([1, 8, None, "next"]))
        events.extend(decoder)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert events == [ResponseTooLarge(7, len(header) + size), Response(8, None, "next")]
    assert peak < 4 * 1024 * 1024


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=20_000), max_size=12))
def test_any_split_decodes_the_same(cuts: list[int]) -> None:
    stream = pack([1, 1, None, "a"]) + BIG_RESULT + pack([2, "n", []]) + WIDE_ARRAY + BIG_ERROR
    stream += pack([1, -1, "Not Implemented", None]) + pack([0, 5, "m", []])
    expected = [
        Response(1, None, "a"),
        ResponseTooLarge(7, len(BIG_RESULT)),
        Notification("n", []),
        ResponseTooLarge(9, len(WIDE_ARRAY)),
        ResponseTooLarge(8, len(BIG_ERROR)),
        StrayResponse(-1, "Not Implemented", None),
        Request(5, "m", []),
    ]
    assert decode(split_at(stream, cuts)) == expected
