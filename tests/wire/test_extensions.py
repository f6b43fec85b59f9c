"""The hello payload of asyncrpc's negotiated extensions, and the extension messages' shapes."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import pytest

from asyncrpc.wire import Decoder, Encoder, Notification, Request
from asyncrpc.wire import extensions as ext

ALL_SUBSETS = [
    frozenset(subset) for size in range(len(ext.FEATURES) + 1) for subset in combinations(ext.FEATURES, size)
]


def test_hello_payload_names_protocol_version_and_sorted_features() -> None:
    payload = ext.hello_payload()
    assert payload == {
        "protocol": ext.PROTOCOL_NAME,
        "version": ext.PROTOCOL_VERSION,
        "features": sorted(ext.FEATURES),
    }
    assert set(payload["features"]) == {"cancel", "deadline", "errors"}


@pytest.mark.parametrize("features", ALL_SUBSETS, ids=lambda f: "+".join(sorted(f)) or "none")
def test_parse_hello_reads_back_what_hello_payload_offers(features: frozenset[str]) -> None:
    assert ext.parse_hello(ext.hello_payload(features)) == features


@pytest.mark.parametrize("features", ALL_SUBSETS, ids=lambda f: "+".join(sorted(f)) or "none")
def test_hello_survives_the_wire(features: frozenset[str]) -> None:
    decoder = Decoder()
    decoder.receive_data(Encoder().request(0, ext.HELLO_METHOD, [ext.hello_payload(features)]))
    request = decoder.next_event()
    assert isinstance(request, Request)
    assert request.method == "asyncrpc.hello"
    assert request.extension is None  # an ordinary four-element request: a plain peer can answer it
    assert ext.parse_hello(request.params[0]) == features


def test_parse_hello_keeps_features_it_does_not_know() -> None:
    # A newer peer may offer more; the connection intersects with what it speaks.
    payload = {"protocol": "asyncrpc", "version": 2, "features": ["cancel", "streams"]}
    assert ext.parse_hello(payload) == {"cancel", "streams"}


def test_parse_hello_drops_feature_entries_that_are_not_strings() -> None:
    payload = {"protocol": "asyncrpc", "version": 1, "features": ["cancel", 3, None, ["deadline"], b"errors"]}
    assert ext.parse_hello(payload) == {"cancel"}


@pytest.mark.parametrize(
    "payload",
    [
        None,
        "asyncrpc",
        ["asyncrpc", 1, ["cancel"]],
        {},
        {"features": ["cancel"]},
        {"protocol": "other", "version": 1, "features": ["cancel"]},
        {"protocol": b"asyncrpc", "version": 1, "features": ["cancel"]},
        {"protocol": "asyncrpc", "version": 1},
        {"protocol": "asyncrpc", "version": 1, "features": "cancel"},
        {"protocol": "asyncrpc", "version": 1, "features": {"cancel": True}},
        # What Neovim answers to an unknown method, had it been taken for a result.
        [0, "Invalid method: asyncrpc.hello"],
    ],
)
def test_unrecognised_hello_offers_nothing(payload: Any) -> None:
    assert ext.parse_hello(payload) == frozenset()


def test_cancel_notification_shape() -> None:
    data = Encoder().notification(ext.CANCEL_METHOD, [41])
    decoder = Decoder()
    decoder.receive_data(data)
    assert decoder.next_event() == Notification("asyncrpc.cancel", [41])


def test_deadline_request_shape() -> None:
    data = Encoder().request(8, "slow", [1], {ext.EXT_TIMEOUT: 0.25})
    decoder = Decoder(accept_extension=True)
    decoder.receive_data(data)
    assert decoder.next_event() == Request(8, "slow", [1], {"timeout": 0.25})
