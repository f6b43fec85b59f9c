"""msgpack timestamps (ext -1) as aware ``datetime`` values, both ways."""

from __future__ import annotations

import datetime

import msgpack
import pytest

from asyncrpc import EncodeError, ProtocolError
from asyncrpc.wire import Decoder, Encoder, Request

UTC = datetime.UTC


def decode_one(data: bytes) -> Request:
    decoder = Decoder()
    decoder.receive_data(data)
    event = decoder.next_event()
    assert isinstance(event, Request)
    return event


def test_a_timestamp_arrives_as_an_aware_utc_datetime() -> None:
    data = msgpack.packb([0, 1, "at", [msgpack.Timestamp(1_700_000_000, 500_000_000)]])
    (when,) = decode_one(data).params
    assert when == datetime.datetime(2023, 11, 14, 22, 13, 20, 500_000, tzinfo=UTC)


def test_an_aware_datetime_leaves_as_a_timestamp_and_comes_back_the_same() -> None:
    when = datetime.datetime(
        2026, 12, 1, 21, 44, 40, 123_456, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    )
    data = Encoder().request(1, "at", [when])
    raw = msgpack.unpackb(data)
    assert isinstance(raw[3][0], msgpack.Timestamp)  # a plain peer sees a msgpack timestamp
    (back,) = decode_one(data).params
    assert back == when
    assert back.tzinfo == UTC


def test_a_naive_datetime_cannot_be_sent() -> None:
    with pytest.raises(EncodeError):
        Encoder().request(1, "at", [datetime.datetime(2026, 12, 1)])


def test_a_timestamp_out_of_datetimes_range_is_a_protocol_error_whole_or_split() -> None:
    data = msgpack.packb([0, 1, "at", [msgpack.Timestamp(2**40, 0)]])  # the year 36812

    def feed(chunks: list[bytes]) -> None:
        decoder = Decoder()
        for chunk in chunks:
            decoder.receive_data(chunk)
            list(decoder)

    for chunks in ([data], [data[i : i + 1] for i in range(len(data))]):
        with pytest.raises(ProtocolError) as info:
            feed(chunks)
        assert "\n" not in str(info.value)


def test_timestamp_map_keys_do_not_share_a_hash() -> None:
    # msgpack.Timestamp hashed as (seconds, nanoseconds), which a peer can make collide.
    keys = {msgpack.Timestamp(seconds, 0): seconds for seconds in range(1000)}
    (params,) = decode_one(msgpack.packb([0, 1, "m", [keys]])).params
    assert len({hash(key) for key in params}) == 1000
