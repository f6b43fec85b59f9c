"""Decoder limits: each one enforced, each one configurable; and the codec needs no asyncio."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import msgpack
import pytest

import asyncrpc
from asyncrpc.errors import ProtocolError
from asyncrpc.wire import DEFAULT_LIMITS, NEED_DATA, Decoder, Encoder, Event, Limits, Request, Response

LIMIT_FIELDS = [field.name for field in dataclasses.fields(Limits)]


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]


def decode(data: bytes, limits: Limits, *, accept_extension: bool = False) -> list[Event]:
    decoder = Decoder(limits, accept_extension=accept_extension)
    decoder.receive_data(data)
    events = list(decoder)
    assert decoder.buffered == 0, "the test message must be complete"
    return events


def rejected(data: bytes, limits: Limits, *, accept_extension: bool = False) -> str:
    """The error for ``data``, the same through next_event() and iteration (the read path)."""
    decoder = Decoder(limits, accept_extension=accept_extension)
    decoder.receive_data(data)
    with pytest.raises(ProtocolError) as info:
        decoder.next_event()
    iterated = Decoder(limits, accept_extension=accept_extension)
    iterated.receive_data(data)
    with pytest.raises(ProtocolError) as info_iterated:
        list(iterated)
    assert str(info_iterated.value) == str(info.value)
    return str(info.value)


def nested(depth: int) -> list[Any]:
    """A list ``depth`` containers deep: nested(3) == [[[0]]]."""
    value: list[Any] = [0]
    for _ in range(depth - 1):
        value = [value]
    return value


def nested_maps(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"k": 0}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


# -- Limits itself ------------------------------------------------------------------------


@pytest.mark.parametrize("field", LIMIT_FIELDS)
@pytest.mark.parametrize("value", [0, -1])
def test_limits_reject_values_below_one(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=f"Limits.{field} must be at least 1"):
        Limits(**{field: value})


@pytest.mark.parametrize("field", LIMIT_FIELDS)
def test_every_limit_is_configurable(field: str) -> None:
    limits = Limits(**{field: 1})
    assert getattr(limits, field) == 1
    assert Decoder(limits).limits is limits


def test_limits_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_LIMITS.max_depth = 1_000  # type: ignore[misc]


def test_limits_are_exported_at_the_top() -> None:
    assert asyncrpc.Limits is Limits


# -- max_message_size ---------------------------------------------------------------------


def test_message_size_limit_is_inclusive() -> None:
    data = Encoder().request(1, "echo", ["x" * 100])
    assert decode(data, Limits(max_message_size=len(data))) == [Request(1, "echo", ["x" * 100])]
    assert "max_message_size=" in rejected(data, Limits(max_message_size=len(data) - 1))


def test_incomplete_message_over_the_size_limit_is_rejected_before_it_completes() -> None:
    # A str header announcing 2 GiB cannot fit in 1 KiB: refused as soon as the
    # header arrives, long before msgpack would have the whole string.
    limits = Limits(max_message_size=1024)
    decoder = Decoder(limits)
    decoder.receive_data(b"\x94\x00\x01\xa1m\x91")
    assert decoder.next_event() is NEED_DATA
    decoder.receive_data(b"\xdb\x7f\xff\xff\xff")
    with pytest.raises(ProtocolError, match=r"max_message_size=1024"):
        decoder.next_event()


def test_incomplete_message_over_the_size_limit_in_one_chunk() -> None:
    data = b"\x94\x00\x01\xa1m\x91\xdb\x7f\xff\xff\xff" + b"a" * 1100
    assert "max_message_size=1024" in rejected(data, Limits(max_message_size=1024))


def test_message_size_is_per_message_not_per_chunk() -> None:
    # Many small pipelined messages in one chunk are each within the limit.
    message = Encoder().request(1, "add", [1, 2])
    limits = Limits(max_message_size=len(message))
    assert len(decode(message * 500, limits)) == 500


def test_message_size_is_per_message_not_per_connection() -> None:
    message = Encoder().request(1, "add", [1, 2])
    decoder = Decoder(Limits(max_message_size=len(message)))
    for _ in range(500):
        decoder.receive_data(message)
        assert decoder.next_event() == Request(1, "add", [1, 2])


# -- lengths ------------------------------------------------------------------------------

LENGTHS = [
    pytest.param("max_str_len", lambda n: "s" * n, id="str"),
    pytest.param("max_bin_len", lambda n: b"b" * n, id="bin"),
    pytest.param("max_array_len", lambda n: [0] * n, id="array"),
    pytest.param("max_map_len", lambda n: dict.fromkeys(range(n), 0), id="map"),
    pytest.param("max_ext_len", lambda n: msgpack.ExtType(5, b"e" * n), id="ext"),
]


@pytest.mark.parametrize(("field", "make"), LENGTHS)
def test_length_limit_enforced_and_configurable(field: str, make: Any) -> None:
    size = limit = 17
    fits = pack([1, 1, None, [make(size)]])
    over = pack([1, 1, None, [make(size + 1)]])
    limits = Limits(**{field: limit})
    assert decode(fits, limits) == [Response(1, None, [make(size)])]
    message = rejected(over, limits)
    assert "breaks a decoder limit" in message
    assert field in message
    # The same message passes a decoder configured with a higher limit.
    assert decode(over, Limits(**{field: limit + 1})) == [Response(1, None, [make(size + 1)])]


def test_array_header_over_the_limit_is_refused_before_its_items_arrive() -> None:
    # A 4-billion-item header: nothing is allocated, no item needs to arrive.
    assert "max_array_len" in rejected(b"\x94\x00\x01\xa1m\xdd\xff\xff\xff\xff", DEFAULT_LIMITS)
    assert "max_map_len" in rejected(b"\x94\x00\x01\xa1m\x91\xdf\xff\xff\xff\xff", DEFAULT_LIMITS)


def test_length_limits_apply_to_the_method_name_too() -> None:
    assert "max_str_len" in rejected(pack([0, 1, "m" * 9, []]), Limits(max_str_len=8))


# -- max_depth ----------------------------------------------------------------------------

DEPTH = 4


def request_params(value: Any) -> bytes:
    return pack([0, 1, "m", value])


def response_result(value: Any) -> bytes:
    return pack([1, 1, None, value])


def response_error(value: Any) -> bytes:
    return pack([1, 1, value, None])


def notification_params(value: Any) -> bytes:
    return pack([2, "m", value])


def request_extension(value: Any) -> bytes:
    return pack([0, 1, "m", [], {"ext": value}])


PLACES = [
    pytest.param(request_params, 0, id="request-params"),
    pytest.param(notification_params, 0, id="notification-params"),
    pytest.param(response_result, 0, id="response-result"),
    pytest.param(response_error, 0, id="response-error"),
    # The extension map is itself one level: {"ext": value}.
    pytest.param(request_extension, 1, id="request-extension"),
]


@pytest.mark.parametrize(("place", "outer"), PLACES)
@pytest.mark.parametrize("make", [nested, nested_maps], ids=["lists", "maps"])
def test_max_depth_enforced_everywhere(place: Any, outer: int, make: Any) -> None:
    limits = Limits(max_depth=DEPTH)
    deepest_allowed = make(DEPTH - outer)
    too_deep = make(DEPTH - outer + 1)
    if place in (request_params, notification_params) and make is nested_maps:
        # params must be an array: the array is the first level.
        deepest_allowed, too_deep = [make(DEPTH - 1)], [make(DEPTH)]
    assert len(decode(place(deepest_allowed), limits, accept_extension=True)) == 1
    message = rejected(place(too_deep), limits, accept_extension=True)
    assert "max_depth" in message
    # Configurable: one more level allowed, the same message passes.
    assert len(decode(place(too_deep), Limits(max_depth=DEPTH + 1), accept_extension=True)) == 1


def test_max_depth_counts_params_array_as_the_first_level() -> None:
    assert decode(pack([0, 1, "m", [1]]), Limits(max_depth=1)) == [Request(1, "m", [1])]
    assert "max_depth" in rejected(pack([0, 1, "m", [[1]]]), Limits(max_depth=1))


def test_scalar_result_and_error_have_no_depth() -> None:
    assert decode(pack([1, 1, "oops", 7]), Limits(max_depth=1)) == [Response(1, "oops", 7)]


# -- no asyncio in the codec ----------------------------------------------------------------


def test_codec_never_imports_asyncio() -> None:
    # Load asyncrpc.wire (and the errors module it raises) with asyncio made
    # unimportable. The package's __init__ re-exports the asyncio client, so
    # the package module is stood in for to keep that file from running.
    package_dir = Path(asyncrpc.__file__).parent
    script = textwrap.dedent(
        f"""
        import sys, types
        sys.modules["asyncio"] = None
        package = types.ModuleType("asyncrpc")
        package.__path__ = [{str(package_dir)!r}]
        sys.modules["asyncrpc"] = package
        from asyncrpc.wire import Decoder, Encoder, Request
        from asyncrpc.wire import extensions
        decoder = Decoder()
        decoder.receive_data(Encoder().request(1, extensions.HELLO_METHOD, [extensions.hello_payload()]))
        event = decoder.next_event()
        assert isinstance(event, Request) and event.method == "asyncrpc.hello", event
        loaded = sorted(name for name in sys.modules if name.startswith("asyncrpc"))
        print(" ".join(loaded))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    loaded = set(result.stdout.split())
    assert {"asyncrpc.wire", "asyncrpc.wire.codec", "asyncrpc.wire.extensions"} <= loaded
    assert "asyncrpc.connection" not in loaded
