"""The sans-IO decoder, fed bytes with no socket: whole, byte by byte, in random splits."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncrpc.errors import ProtocolError, RPCError
from asyncrpc.wire import NEED_DATA, Decoder, Encoder, Event, Message, Notification, Request, Response

MAX_MSGID = 2**32 - 1

# -- strategies ----------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
keys = st.text(max_size=10) | st.integers(min_value=-(2**63), max_value=2**64 - 1)
# Every value msgpack round-trips unchanged (tuples come back as lists, so none here).
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=5),
    max_leaves=20,
)
params = st.lists(values, max_size=5)
msgids = st.integers(min_value=0, max_value=MAX_MSGID)
methods = st.text(max_size=30)

requests = st.builds(Request, msgids, methods, params)
responses = st.builds(Response, msgids, values, values)
notifications = st.builds(Notification, methods, params)
events = requests | responses | notifications


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]


def encode_all(messages: Sequence[Message]) -> bytes:
    encoder = Encoder()
    return b"".join(encoder.send(message) for message in messages)


def feed(decoder: Decoder, chunks: list[bytes]) -> list[Event]:
    """Feed each chunk and collect every event complete after it."""
    received: list[Event] = []
    for chunk in chunks:
        decoder.receive_data(chunk)
        received.extend(decoder)
    return received


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in pairwise(edges)]


def decode_one(data: bytes, *, accept_extension: bool = False) -> Event:
    decoder = Decoder(accept_extension=accept_extension)
    decoder.receive_data(data)
    event = decoder.next_event()
    assert event is not NEED_DATA
    return event  # type: ignore[return-value]


def protocol_error(data: bytes, *, accept_extension: bool = False) -> str:
    decoder = Decoder(accept_extension=accept_extension)
    decoder.receive_data(data)
    with pytest.raises(ProtocolError) as info:
        decoder.next_event()
    return str(info.value)


SAMPLE: list[Message] = [
    Request(0, "demo.AsyncFunc", [2.0]),
    Request(MAX_MSGID, "add", [1, 2]),
    Response(0, None, "AsyncFunc slept 2.0s"),
    Response(7, [0, "ValueError: bad"], None),
    Notification("demo.log", ["x", {"level": 3}, b"\x00\xff"]),
    Request(1, "nvim_eval", ["1+1"]),
]


# -- whole stream, byte at a time, random splits ----------------------------------------


def test_whole_stream_in_one_chunk() -> None:
    assert feed(Decoder(), [encode_all(SAMPLE)]) == SAMPLE


def test_one_byte_at_a_time() -> None:
    data = encode_all(SAMPLE)
    assert feed(Decoder(), [data[i : i + 1] for i in range(len(data))]) == SAMPLE


def test_each_message_appears_exactly_when_its_last_byte_arrives() -> None:
    decoder = Decoder()
    encoder = Encoder()
    for message in SAMPLE:
        data = encoder.send(message)
        for i in range(len(data) - 1):
            decoder.receive_data(data[i : i + 1])
            assert decoder.next_event() is NEED_DATA
        decoder.receive_data(data[-1:])
        assert decoder.next_event() == message
        assert decoder.next_event() is NEED_DATA


def test_need_data_on_empty_and_partial_input() -> None:
    decoder = Decoder()
    assert decoder.next_event() is NEED_DATA
    decoder.receive_data(b"")
    assert decoder.next_event() is NEED_DATA
    assert list(decoder) == []
    data = Encoder().request(5, "add", [1, 2])
    decoder.receive_data(data[:-1])
    assert decoder.next_event() is NEED_DATA
    assert decoder.buffered == len(data) - 1
    decoder.receive_data(data[-1:])
    assert decoder.next_event() == Request(5, "add", [1, 2])
    assert decoder.buffered == 0


def test_iteration_stops_at_an_incomplete_message_and_resumes() -> None:
    first, second = Encoder().request(1, "a", []), Encoder().request(2, "b", [])
    decoder = Decoder()
    decoder.receive_data(first + second[:3])
    assert list(decoder) == [Request(1, "a", [])]
    assert decoder.buffered == 3
    decoder.receive_data(second[3:])
    assert list(decoder) == [Request(2, "b", [])]


def test_many_messages_in_one_chunk() -> None:
    messages: list[Message] = [Request(i, "add", [i, i]) for i in range(2000)]
    messages += [Response(i, None, i * 2) for i in range(2000)]
    decoder = Decoder()
    decoder.receive_data(encode_all(messages))
    assert list(decoder) == messages
    assert decoder.next_event() is NEED_DATA


@settings(max_examples=200, deadline=None)
@given(
    st.lists(events, min_size=1, max_size=6),
    st.lists(st.integers(min_value=0, max_value=1024), max_size=16),
)
def test_random_splits(messages: list[Message], cuts: list[int]) -> None:
    data = encode_all(messages)
    assert feed(Decoder(accept_extension=True), split_at(data, cuts)) == messages


@settings(max_examples=200, deadline=None)
@given(events)
def test_encoder_decoder_round_trip(message: Message) -> None:
    assert decode_one(Encoder().send(message)) == message


@settings(max_examples=200, deadline=None)
@given(msgids, methods, params, st.dictionaries(st.text(max_size=10), values, min_size=1, max_size=3))
def test_extension_request_round_trip(
    msgid: int, method: str, args: list[Any], extension: dict[str, Any]
) -> None:
    data = Encoder().request(msgid, method, args, extension)
    assert decode_one(data, accept_extension=True) == Request(msgid, method, args, extension)


def test_msgid_bounds_are_accepted() -> None:
    assert decode_one(pack([0, 0, "m", []])) == Request(0, "m", [])
    assert decode_one(pack([1, MAX_MSGID, None, 1])) == Response(MAX_MSGID, None, 1)


def test_method_sent_as_bin_is_decoded() -> None:
    # Peers from before msgpack's str/bin split send names as raw bytes.
    assert decode_one(pack([0, 3, b"nvim_eval", ["1"]])) == Request(3, "nvim_eval", ["1"])
    assert decode_one(pack([2, b"redraw", []])) == Notification("redraw", [])


def test_invalid_utf8_in_str_is_kept_as_surrogates_and_re_encodes_to_the_same_bytes() -> None:
    # Neovim sends buffer text as msgpack str whatever its encoding: the codec keeps
    # such bytes (surrogateescape, as pynvim does) instead of dropping the connection.
    raw = b"caf\xe9"  # Latin-1, not UTF-8
    data = b"\x94\x01\x09\xc0" + bytes([0xA0 | len(raw)]) + raw  # [1, 9, nil, str "caf\xe9"]
    event = decode_one(data)
    assert isinstance(event, Response)
    assert event.result == "caf\udce9"
    assert Encoder().send(event) == data


def test_earlier_messages_are_delivered_before_the_bad_one_fails() -> None:
    decoder = Decoder()
    decoder.receive_data(Encoder().request(1, "add", [1, 2]) + pack({"not": "an array"}))
    assert decoder.next_event() == Request(1, "add", [1, 2])
    with pytest.raises(ProtocolError, match="not an array"):
        decoder.next_event()


# -- malformed messages: each a ProtocolError naming what was wrong -----------------------

MALFORMED = [
    pytest.param(pack({"a": 1}), "message is not an array", id="map"),
    pytest.param(pack(7), "message is not an array", id="int"),
    pytest.param(pack("hello"), "message is not an array", id="str"),
    pytest.param(pack([]), "message is an empty array", id="empty-array"),
    pytest.param(pack([3, 1, "m", []]), "unknown message type 3", id="type-3"),
    pytest.param(pack([-1, 1, "m", []]), "unknown message type -1", id="type-negative"),
    pytest.param(pack(["0", 1, "m", []]), "unknown message type '0'", id="type-str"),
    pytest.param(pack([0.0, 1, "m", []]), "unknown message type 0.0", id="type-float"),
    pytest.param(pack([False, 1, "m", []]), "unknown message type False", id="type-false"),
    pytest.param(pack([True, 1, None, 1]), "unknown message type True", id="type-true"),
    pytest.param(pack([0, 1, "m"]), "request has 3 elements, expected 4", id="request-3"),
    pytest.param(pack([0, 1, "m", [], {}, 1]), "request has 6 elements, expected 4", id="request-6"),
    pytest.param(pack([0]), "request has 1 elements, expected 4", id="request-1"),
    pytest.param(pack([1, 1, None]), "response has 3 elements, expected 4", id="response-3"),
    pytest.param(pack([1, 1, None, 1, {}]), "response has 5 elements, expected 4", id="response-5"),
    pytest.param(pack([2, "m"]), "notification has 2 elements, expected 3", id="notification-2"),
    pytest.param(pack([2, "m", [], 1]), "notification has 4 elements, expected 3", id="notification-4"),
    pytest.param(pack([0, -1, "m", []]), "request msgid is not a uint32: -1", id="req-msgid-negative"),
    pytest.param(pack([0, 2**32, "m", []]), "request msgid is not a uint32: 4294967296", id="req-msgid-big"),
    pytest.param(pack([0, "1", "m", []]), "request msgid is not a uint32: '1'", id="req-msgid-str"),
    pytest.param(pack([0, 1.0, "m", []]), "request msgid is not a uint32: 1.0", id="req-msgid-float"),
    pytest.param(pack([0, None, "m", []]), "request msgid is not a uint32: None", id="req-msgid-nil"),
    pytest.param(pack([0, True, "m", []]), "request msgid is not a uint32: True", id="req-msgid-bool"),
    pytest.param(pack([0, 1, 5, []]), "request method is not a string: 5", id="req-method-int"),
    pytest.param(pack([0, 1, None, []]), "request method is not a string: None", id="req-method-nil"),
    pytest.param(pack([0, 1, ["m"], []]), "request method is not a string: ['m']", id="req-method-list"),
    pytest.param(pack([0, 1, b"\xff\xfe", []]), "request method is not a string", id="req-method-bad-bin"),
    pytest.param(pack([2, 5, []]), "notification method is not a string: 5", id="notif-method-int"),
    pytest.param(pack([0, 1, "m", {"a": 1}]), "request params is not an array", id="req-params-map"),
    pytest.param(pack([0, 1, "m", "x"]), "request params is not an array: 'x'", id="req-params-str"),
    pytest.param(pack([0, 1, "m", None]), "request params is not an array: None", id="req-params-nil"),
    pytest.param(pack([2, "m", 1]), "notification params is not an array: 1", id="notif-params-int"),
    pytest.param(pack([2, "m", {}]), "notification params is not an array: {}", id="notif-params-map"),
    pytest.param(b"\xc1", "malformed msgpack: invalid type byte", id="byte-0xc1"),
    pytest.param(b"\x94\x00\x01\xc1\x90", "malformed msgpack: invalid type byte", id="0xc1-inside"),
    pytest.param(b"\x81\x91\x01\x02", "malformed msgpack: unhashable", id="array-as-map-key"),
    # Refused at the 65th header (max_depth=64), long before msgpack's own stack limit.
    pytest.param(b"\x91" * 5000, "containers nested deeper than the limit (max_depth=64)", id="deep-stack"),
]


@pytest.mark.parametrize(("data", "reason"), MALFORMED)
def test_malformed_message_is_a_protocol_error_naming_the_fault(data: bytes, reason: str) -> None:
    message = protocol_error(data)
    assert reason in message


@pytest.mark.parametrize(("data", "reason"), MALFORMED)
def test_malformed_message_fails_the_same_way_byte_by_byte(data: bytes, reason: str) -> None:
    decoder = Decoder()
    for i in range(len(data) - 1):
        decoder.receive_data(data[i : i + 1])
        try:
            decoder.next_event()
        except ProtocolError as exc:  # some faults show before the last byte
            assert reason in str(exc)  # noqa: PT017
            return
    decoder.receive_data(data[-1:])
    with pytest.raises(ProtocolError) as info:
        decoder.next_event()
    assert reason in str(info.value)


@pytest.mark.parametrize(("data", "reason"), MALFORMED)
def test_malformed_message_fails_the_same_way_when_iterated(data: bytes, reason: str) -> None:
    # ``for event in decoder`` is the connection's read path; it must check as much.
    decoder = Decoder()
    decoder.receive_data(Encoder().request(1, "ok", []) + data)
    events = iter(decoder)
    assert next(events) == Request(1, "ok", [])
    with pytest.raises(ProtocolError) as info:
        next(events)
    assert reason in str(info.value)


def test_protocol_error_is_an_rpc_error() -> None:
    assert issubclass(ProtocolError, RPCError)


def test_five_element_request_needs_the_extension() -> None:
    data = pack([0, 4, "slow", [], {"timeout": 1.5}])
    assert "request has 5 elements, expected 4" in protocol_error(data)
    assert decode_one(data, accept_extension=True) == Request(4, "slow", [], {"timeout": 1.5})


@pytest.mark.parametrize("fifth", [[1], "timeout", 1.5, None])
def test_extension_must_be_a_map(fifth: Any) -> None:
    data = pack([0, 4, "slow", [], fifth])
    assert "request extension is not a map" in protocol_error(data, accept_extension=True)


def test_extension_flag_can_be_switched_on_mid_stream() -> None:
    # The connection turns it on once the peers negotiated, on the same decoder.
    decoder = Decoder()
    decoder.receive_data(pack([0, 1, "a", []]))
    assert decoder.next_event() == Request(1, "a", [])
    decoder.accept_extension = True
    decoder.receive_data(pack([0, 2, "b", [], {"timeout": 2}]))
    assert decoder.next_event() == Request(2, "b", [], {"timeout": 2})


def test_responses_and_notifications_never_take_an_extension() -> None:
    assert "response has 5 elements" in protocol_error(pack([1, 1, None, 1, {}]), accept_extension=True)
    assert "notification has 4 elements" in protocol_error(pack([2, "m", [], {}]), accept_extension=True)
