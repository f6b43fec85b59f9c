"""The sans-IO encoder: events to the exact MessagePack-RPC bytes, and what it refuses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack
import pytest

from asyncrpc.errors import EncodeError, RPCError
from asyncrpc.wire import Encoder, Notification, Request, Response


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False)


def test_request_bytes_match_the_spec() -> None:
    # fixarray(4), 0, 7, fixstr "add", fixarray(2) [1, 2].
    assert Encoder().request(7, "add", [1, 2]) == b"\x94\x00\x07\xa3add\x92\x01\x02"


def test_response_and_notification_bytes_match_the_spec() -> None:
    assert Encoder().response(7, None, 3) == b"\x94\x01\x07\xc0\x03"
    assert Encoder().notification("log", ["x"]) == b"\x93\x02\xa3log\x91\xa1x"


def test_request_without_extension_has_four_elements() -> None:
    encoder = Encoder()
    assert unpack(encoder.request(1, "m", [1])) == [0, 1, "m", [1]]
    # An empty extension map is the same as none: a plain peer never sees five elements.
    assert unpack(encoder.request(1, "m", [1], {})) == [0, 1, "m", [1]]


def test_request_with_extension_has_the_map_fifth() -> None:
    assert unpack(Encoder().request(9, "slow", [], {"timeout": 1.5})) == [0, 9, "slow", [], {"timeout": 1.5}]


def test_tuple_params_go_out_as_an_array() -> None:
    assert unpack(Encoder().request(1, "add", (1, 2))) == [0, 1, "add", [1, 2]]
    assert unpack(Encoder().notification("n", ("a",))) == [2, "n", ["a"]]


def test_bytes_are_bin_and_str_is_str() -> None:
    data = Encoder().response(1, None, [b"\x00\xff", "text"])
    assert msgpack.unpackb(data, raw=True) == [1, 1, None, [b"\x00\xff", b"text"]]
    assert unpack(data) == [1, 1, None, [b"\x00\xff", "text"]]


@pytest.mark.parametrize(
    "event",
    [
        Request(3, "add", [1, 2]),
        Request(4, "slow", [], {"timeout": 2.0}),
        Response(3, None, 3),
        Response(5, {"type": "ValueError", "message": "bad"}, None),
        Notification("demo.log", ["x"]),
    ],
)
def test_send_is_the_same_as_the_specific_method(event: Request | Response | Notification) -> None:
    encoder = Encoder()
    if isinstance(event, Request):
        expected = encoder.request(event.msgid, event.method, event.params, event.extension)
    elif isinstance(event, Response):
        expected = encoder.response(event.msgid, event.error, event.result)
    else:
        expected = encoder.notification(event.method, event.params)
    assert encoder.send(event) == expected


UNENCODABLE = [
    pytest.param(object(), id="object"),
    pytest.param(2**64, id="int-too-large"),
    pytest.param(-(2**63) - 1, id="int-too-small"),
    pytest.param({1, 2}, id="set"),
    pytest.param([1, [2, object()]], id="nested-object"),
]


@pytest.mark.parametrize("value", UNENCODABLE)
def test_unencodable_value_raises_encode_error(value: Any) -> None:
    encoder = Encoder()
    encodings: list[Callable[[], bytes]] = [
        lambda: encoder.request(1, "m", [value]),
        lambda: encoder.response(1, None, value),
        lambda: encoder.response(1, value, None),
        lambda: encoder.notification("m", [value]),
    ]
    for encode in encodings:
        with pytest.raises(EncodeError, match="cannot encode as msgpack") as info:
            encode()
        assert isinstance(info.value, TypeError)
        assert isinstance(info.value, RPCError)
        assert info.value.__cause__ is not None


def test_encoder_still_works_after_an_encode_error() -> None:
    encoder = Encoder()
    with pytest.raises(EncodeError):
        encoder.request(1, "m", [object()])
    assert unpack(encoder.request(2, "m", [1])) == [0, 2, "m", [1]]


@pytest.mark.parametrize(
    "encode",
    [
        lambda e, v: e.request(1, "m", [v]),
        lambda e, v: e.request(1, "m", [v], {"timeout": 1.0}),
        lambda e, v: e.response(1, None, v),
        lambda e, v: e.notification("m", [v]),
    ],
    ids=["request", "request+extension", "response", "notification"],
)
def test_strs_kept_from_bytes_that_were_not_utf8_go_back_as_those_bytes(encode: Any) -> None:
    """Every kind of message: a str holding escaped bytes (what the decoder makes of
    non-UTF-8 text) is written as the original bytes; plain strs take the quick path."""
    encoder = Encoder()
    sent = encode(encoder, "caf\udce9")
    assert b"\xa4caf\xe9" in sent
    assert msgpack.unpackb(sent, raw=True) == msgpack.unpackb(encode(encoder, b"caf\xe9"), raw=True)
    with pytest.raises(EncodeError):
        encode(encoder, "\ud800")  # a lone surrogate that stands for no byte
