"""Error objects on the wire <-> exceptions: every shape a peer may send, kept exactly in ``.raw``."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from asyncrpc.errors import (
    CallCancelled,
    DeadlineExceeded,
    MethodNotFound,
    RemoteError,
    RPCError,
)
from asyncrpc.remote_errors import ERROR_TYPES, error_from_wire, error_to_wire, register_error_type

# -- to the wire --------------------------------------------------------------------------


def test_structured_error_is_a_map_of_type_and_message() -> None:
    assert error_to_wire(ValueError("bad value"), structured=True) == {
        "type": "ValueError",
        "message": "bad value",
    }


def test_structured_error_carries_code_and_data_when_there_are_some() -> None:
    exc = RemoteError("nope", type="CallAborted", code=42, data={"why": [1, 2]})
    assert error_to_wire(exc, structured=True) == {
        "type": "CallAborted",
        "message": "nope",
        "code": 42,
        "data": {"why": [1, 2]},
    }
    assert error_to_wire(KeyError("k"), structured=True, code=7)["code"] == 7


def test_plain_peer_gets_neovims_shape() -> None:
    assert error_to_wire(ValueError("bad value"), structured=False) == [0, "ValueError: bad value"]
    # Neovim's own error types (0 Exception, 1 Validation) go in the code slot...
    assert error_to_wire(ValueError("bad value"), structured=False, code=1) == [1, "ValueError: bad value"]
    # ...any other code travels in the message, since Neovim shows it as "unknown error".
    assert error_to_wire(ValueError("bad value"), structured=False, code=5) == [0, "ValueError[5]: bad value"]
    aborted = RemoteError("nope", type="CallAborted", code=42)
    assert error_to_wire(aborted, structured=False) == [0, "CallAborted[42]: nope"]


def test_remote_error_keeps_the_type_name_it_came_with() -> None:
    exc = RemoteError("gone", type="KeyError")
    assert error_to_wire(exc, structured=True) == {"type": "KeyError", "message": "gone"}
    assert error_to_wire(exc, structured=False) == [0, "KeyError: gone"]


# -- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("structured", [True, False], ids=["structured", "plain"])
@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (ValueError("bad value"), RemoteError),
        (ZeroDivisionError("division by zero"), RemoteError),
        (MethodNotFound("no method 'x'"), MethodNotFound),
        (CallCancelled("'slow' cancelled on the server"), CallCancelled),
        (DeadlineExceeded("deadline passed for 'slow' on the server"), DeadlineExceeded),
    ],
)
def test_round_trip_gives_back_type_and_message(structured: bool, exc: Exception, cls: type[Any]) -> None:
    wire = error_to_wire(exc, structured=structured)
    back = error_from_wire(wire)
    assert type(back) is cls
    message = exc.message if isinstance(exc, RemoteError) else str(exc)
    assert message in str(back)
    if isinstance(back, RemoteError):
        assert back.type == type(exc).__name__
        assert back.message == message
    assert back.raw is wire


def test_abort_code_survives_both_shapes() -> None:
    exc = RemoteError("disk full", type="CallAborted", code=28)
    for structured in (True, False):
        back = error_from_wire(error_to_wire(exc, structured=structured))
        assert isinstance(back, RemoteError)
        assert (back.type, back.message, back.code) == ("CallAborted", "disk full", 28)


def test_structured_data_survives() -> None:
    back = error_from_wire(error_to_wire(RemoteError("m", type="T", data=[1, {"a": b"b"}]), structured=True))
    assert isinstance(back, RemoteError)
    assert back.data == [1, {"a": b"b"}]


# -- every foreign shape --------------------------------------------------------------------

SHAPES: list[Any] = [
    pytest.param(
        {"type": "ValueError", "message": "bad", "data": {"x": 1}, "code": 3},
        RemoteError,
        "ValueError",
        "bad",
        3,
        id="our-map",
    ),
    pytest.param({"message": "untyped"}, RemoteError, "RemoteError", "untyped", None, id="map-without-type"),
    pytest.param(
        {"type": 5, "message": "odd type", "code": "x"},
        RemoteError,
        "RemoteError",
        "odd type",
        None,
        id="map-with-odd-fields",
    ),
    pytest.param(
        {"type": "MethodNotFound", "message": "m"}, MethodNotFound, "MethodNotFound", "m", None, id="map-mnf"
    ),
    pytest.param(
        [0, "something broke"], RemoteError, "Exception", "something broke", 0, id="neovim-exception"
    ),
    pytest.param(
        [1, "Wrong type for argument 1"],
        RemoteError,
        "Validation",
        "Wrong type for argument 1",
        1,
        id="neovim-validation",
    ),
    pytest.param(
        [0, "Invalid method: nvim_nope"],
        MethodNotFound,
        "Exception",
        "Invalid method: nvim_nope",
        0,
        id="neovim-unknown-method",
    ),
    pytest.param([0, "ValueError: bad"], RemoteError, "ValueError", "bad", None, id="neovim-shape-typed"),
    pytest.param(
        [0, "Note: a plain message"],
        RemoteError,
        "Exception",
        "Note: a plain message",
        0,
        id="key-value-message-stays-whole",
    ),
    pytest.param([17, "custom failure"], RemoteError, "RemoteError", "custom failure", 17, id="int-str"),
    pytest.param([17, "KeyError: 'k'"], RemoteError, "KeyError", "'k'", 17, id="int-typed-str"),
    pytest.param([0, "CallAborted[42]: nope"], RemoteError, "CallAborted", "nope", 42, id="code-in-message"),
    pytest.param([0, "msg", {"extra": 1}], RemoteError, "Exception", "msg", 0, id="int-str-data"),
    pytest.param(["ValueError", "bad"], RemoteError, "ValueError", "bad", None, id="str-str"),
    pytest.param(["CallCancelled", "gone"], CallCancelled, None, "gone", None, id="str-str-known"),
    pytest.param("plain failure", RemoteError, "RemoteError", "plain failure", None, id="str"),
    pytest.param(b"bytes failure", RemoteError, "RemoteError", "bytes failure", None, id="bytes"),
    pytest.param(b"\xff\xfe", RemoteError, "RemoteError", "\ufffd\ufffd", None, id="bytes-not-utf8"),
    pytest.param(42, RemoteError, "RemoteError", "42", None, id="int"),
    pytest.param(True, RemoteError, "RemoteError", "True", None, id="bool"),
    pytest.param([True, "bool head"], RemoteError, "RemoteError", "[True, 'bool head']", None, id="bool-str"),
    pytest.param(
        [1.5, "float head"], RemoteError, "RemoteError", "[1.5, 'float head']", None, id="float-str"
    ),
    pytest.param([0], RemoteError, "RemoteError", "[0]", None, id="one-element"),
    pytest.param([0, 1], RemoteError, "RemoteError", "[0, 1]", None, id="int-int"),
    pytest.param({"code": 1}, RemoteError, "RemoteError", "{'code': 1}", None, id="map-without-message"),
    pytest.param(
        [[1, 2], {"a": None}], RemoteError, "RemoteError", "[[1, 2], {'a': None}]", None, id="nested"
    ),
]


@pytest.mark.parametrize(("raw", "cls", "type_name", "message", "code"), SHAPES)
def test_every_shape_becomes_an_exception_with_raw_kept_exactly(
    raw: Any, cls: type[RPCError], type_name: str | None, message: str, code: int | None
) -> None:
    pristine = copy.deepcopy(raw)
    error = error_from_wire(raw)
    assert type(error) is cls
    assert error.raw is raw
    assert raw == pristine  # not altered while being read
    assert message in str(error)
    if isinstance(error, RemoteError):
        assert error.type == type_name
        assert error.message == message
        if cls is RemoteError:
            assert error.code == code


def test_data_is_taken_from_each_shape_that_has_it() -> None:
    def remote(raw: Any) -> RemoteError:
        error = error_from_wire(raw)
        assert isinstance(error, RemoteError)
        return error

    assert remote({"type": "T", "message": "m", "data": [1]}).data == [1]
    assert remote([0, "m", {"extra": 1}]).data == {"extra": 1}
    assert remote(["T", "m", "d"]).data == "d"


def test_method_not_found_is_a_remote_error() -> None:
    error = error_from_wire([0, "Invalid method: nvim_nope"])
    assert isinstance(error, MethodNotFound)
    assert isinstance(error, RemoteError)


# -- registered types ------------------------------------------------------------------------


@pytest.fixture
def registered() -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        ERROR_TYPES.pop(name, None)


class QuotaExceeded(RemoteError):
    pass


class PlainFailure(RPCError):
    pass


def test_registered_remote_error_subclass(registered: list[str]) -> None:
    register_error_type("QuotaExceeded", QuotaExceeded)
    registered.append("QuotaExceeded")
    raw = {"type": "QuotaExceeded", "message": "over by 3", "data": 3}
    error = error_from_wire(raw)
    assert type(error) is QuotaExceeded
    assert (error.type, error.message, error.data, error.raw) == ("QuotaExceeded", "over by 3", 3, raw)
    # From a plain peer too.
    assert type(error_from_wire([0, "QuotaExceeded: over by 3"])) is QuotaExceeded


def test_registered_plain_rpc_error_gets_message_and_raw(registered: list[str]) -> None:
    register_error_type("PlainFailure", PlainFailure)
    registered.append("PlainFailure")
    raw = ["PlainFailure", "it failed"]
    error = error_from_wire(raw)
    assert type(error) is PlainFailure
    assert str(error) == "it failed"
    assert error.raw is raw
