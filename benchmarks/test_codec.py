"""The sans-IO codec: encoding and decoding typical messages, no I/O at all.

``raw msgpack`` rows are the floor: the same bytes through ``msgpack`` alone,
without asyncrpc's shape checks and limits.
"""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from asyncrpc.wire.codec import Decoder, Encoder
from asyncrpc.wire.events import Request, Response
from benchmarks.harness.common import ECHO_PAYLOAD

MESSAGES: dict[str, list[Any]] = {
    "request add": [0, 7, "add", [1, 2]],
    "response add": [1, 7, None, 3],
    "request echo 1KiB": [0, 7, "echo", [ECHO_PAYLOAD]],
    "response nested": [1, 7, None, {"rows": [[i, str(i), [i, i]] for i in range(10)]}],
}

#: How many messages one decode round handles: a read from a busy socket.
STREAM = 64


@pytest.fixture(params=sorted(MESSAGES))
def message(request: pytest.FixtureRequest) -> tuple[str, list[Any]]:
    return request.param, MESSAGES[request.param]


def test_encode(benchmark: Any, message: tuple[str, list[Any]]) -> None:
    name, fields = message
    encoder = Encoder()
    benchmark.group = f"encode: {name}"
    if fields[0] == 0:
        data = benchmark(encoder.request, fields[1], fields[2], fields[3])
    else:
        data = benchmark(encoder.response, fields[1], fields[2], fields[3])
    assert msgpack.unpackb(data, raw=False) == fields


def test_encode_raw_msgpack(benchmark: Any, message: tuple[str, list[Any]]) -> None:
    name, fields = message
    pack = msgpack.Packer(use_bin_type=True).pack
    benchmark.group = f"encode: {name}"
    data = benchmark(pack, fields)
    assert msgpack.unpackb(data, raw=False) == fields


def test_decode_stream(benchmark: Any, message: tuple[str, list[Any]]) -> None:
    """``STREAM`` messages arriving in one chunk, decoded into events."""
    name, fields = message
    chunk = msgpack.packb(fields, use_bin_type=True) * STREAM
    decoder = Decoder()
    decoder.accept_extension = True

    def decode() -> list[Any]:
        decoder.receive_data(chunk)
        return list(decoder)

    benchmark.group = f"decode {STREAM} in one chunk: {name}"
    benchmark.extra_info["messages_per_round"] = STREAM
    events = benchmark(decode)
    assert len(events) == STREAM
    assert isinstance(events[0], Request if fields[0] == 0 else Response)


def test_decode_stream_raw_msgpack(benchmark: Any, message: tuple[str, list[Any]]) -> None:
    name, fields = message
    chunk = msgpack.packb(fields, use_bin_type=True) * STREAM
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)

    def decode() -> list[Any]:
        unpacker.feed(chunk)
        return list(unpacker)

    benchmark.group = f"decode {STREAM} in one chunk: {name}"
    benchmark.extra_info["messages_per_round"] = STREAM
    messages = benchmark(decode)
    assert len(messages) == STREAM


def test_decode_byte_by_byte(benchmark: Any) -> None:
    """The worst split: a request fed one byte at a time."""
    data = msgpack.packb(MESSAGES["request add"], use_bin_type=True)
    pieces = [data[i : i + 1] for i in range(len(data))]
    decoder = Decoder()

    def decode() -> list[Any]:
        events: list[Any] = []
        for piece in pieces:
            decoder.receive_data(piece)
            events.extend(decoder)
        return events

    benchmark.group = "decode one request fed byte by byte"
    events = benchmark(decode)
    assert events == [Request(7, "add", [1, 2])]


#: A Neovim buffer of 100,000 lines, as ``nvim_buf_get_lines`` answers (1.2 MiB).
BUFFER = msgpack.packb([1, 9, None, [f"{n:>7}: text" for n in range(100_000)]], use_bin_type=True)


@pytest.mark.parametrize("read", [len(BUFFER), 65_536], ids=["whole", "64KiB-reads"])
def test_decode_large_message(benchmark: Any, read: int) -> None:
    """One large response, arriving whole or in socket-sized reads (the unfinished-message path)."""
    pieces = [BUFFER[i : i + read] for i in range(0, len(BUFFER), read)]
    decoder = Decoder()

    def decode() -> list[Any]:
        events: list[Any] = []
        for piece in pieces:
            decoder.receive_data(piece)
            events.extend(decoder)
        return events

    benchmark.group = "decode a 100,000-line buffer"
    events = benchmark(decode)
    assert len(events) == 1
    assert len(events[0].result) == 100_000
