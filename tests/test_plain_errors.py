"""Errors to plain msgpack-rpc peers in the form each expects, and their unknown-method errors read back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import asyncrpc
from asyncrpc.remote_errors import PlainErrors, error_from_wire
from tests.rawpeer import RawPeer, pack


def fail(text: str) -> None:
    raise ValueError(text)


def unencodable(exc: BaseException) -> Any:
    return object()  # msgpack cannot encode it: the "string" form of the EncodeError is sent


def broken(exc: BaseException) -> Any:
    raise RuntimeError("shaper broke")


async def ask(plain_errors: PlainErrors, *message: Any) -> Any:
    """The error object a plain peer gets for ``message`` from a server with ``plain_errors``."""
    server = asyncrpc.Server(plain_errors=plain_errors)
    server.register_function(fail, name="fail")
    await server.start("127.0.0.1", 0)
    try:
        assert server.port is not None
        peer = await RawPeer.connect(server.port)
        try:
            await peer.send(pack(list(message)))
            (reply,) = await peer.messages(1)
        finally:
            peer.close()
    finally:
        await server.close()
    assert reply[:2] == [1, message[1]]
    assert reply[3] is None
    return reply[2]


async def test_default_is_neovims_shape() -> None:
    assert await ask("neovim", 0, 1, "fail", ["boom"]) == [0, "ValueError: boom"]


async def test_string_form_is_type_and_message() -> None:
    assert await ask("string", 0, 2, "fail", ["boom"]) == "ValueError: boom"
    assert await ask("string", 0, 3, "nosuch", []) == "MethodNotFound: no method 'nosuch'"


async def test_a_callable_makes_the_error_object() -> None:
    def shape(exc: BaseException) -> Any:
        return {"kind": type(exc).__name__, "text": str(exc)}

    assert await ask(shape, 0, 4, "fail", ["boom"]) == {"kind": "ValueError", "text": "boom"}


@pytest.mark.parametrize(
    ("shaper", "answer"),
    [(unencodable, "EncodeError: cannot encode as msgpack"), (broken, "ValueError: boom")],
)
async def test_a_callable_that_fails_still_answers_the_call(
    shaper: Callable[[BaseException], Any], answer: str
) -> None:
    assert (await ask(shaper, 0, 5, "fail", ["boom"])).startswith(answer)


@pytest.mark.parametrize("value", ["json", "", None, 3, b"string"])
def test_nonsense_plain_errors_is_refused_at_once(value: Any) -> None:
    with pytest.raises(ValueError, match="plain_errors"):
        asyncrpc.Server(plain_errors=value)
    with pytest.raises(ValueError, match="plain_errors"):
        asyncrpc.connect("127.0.0.1", 1, plain_errors=value)


@pytest.fixture
async def string_server() -> AsyncIterator[asyncrpc.Server]:
    server = asyncrpc.Server(plain_errors="string", extensions=False)
    server.register_function(fail, name="fail")
    await server.start("127.0.0.1", 0)
    yield server
    await server.close()


async def test_asyncrpc_reads_its_own_string_form_back(string_server: asyncrpc.Server) -> None:
    assert string_server.port is not None
    async with asyncrpc.connect("127.0.0.1", string_server.port) as client:
        with pytest.raises(asyncrpc.RemoteError) as info:
            await client.call("fail", "boom")
        assert (info.value.type, info.value.message, info.value.raw) == (
            "ValueError",
            "boom",
            "ValueError: boom",
        )
        with pytest.raises(asyncrpc.MethodNotFound):
            await client.call("nosuch")


# What each peer sends for a method it does not have (docs/protocol.md, "Error objects").
UNKNOWN_METHOD_ERRORS = [
    [0, "Invalid method: nvim_nosuch"],  # Neovim
    "rpc: can't find method Arith.Nosuch",  # Go net/rpc
    "rpc: can't find service Nosuch.Add",  # Go net/rpc
    "rpc: service/method request ill-formed: nosuch",  # Go net/rpc, a name without a dot
    "'nosuch' method not found",  # msgpack-rpc-python
    "Method not found: nosuch",  # mprpc
    "('Method not found: %s', 'nosuch')",  # mprpc, with its arguments as a tuple
    "No such method nosuch",
    "Unknown method 'nosuch'",
    "Not Implemented",  # msgpack-rpc-lite
    "'H' object has no attribute 'no_such_method'",  # aio-msgpack-rpc
    "'Service' object has no attribute 'nosuch'",  # aio-msgpack-rpc
    ["NoMethodError", "nosuch"],
    {"message": "Method nosuch not found", "type": "RemoteError"},
]


@pytest.mark.parametrize("raw", UNKNOWN_METHOD_ERRORS, ids=repr)
def test_common_unknown_method_errors_are_method_not_found(raw: Any) -> None:
    error = error_from_wire(raw)
    assert isinstance(error, asyncrpc.MethodNotFound)
    assert error.raw is raw


@pytest.mark.parametrize(
    "raw",
    [
        [0, "ValueError: unknown method of payment"],  # a handler's own error keeps its type
        "KeyError: 'method not found in table'",
        "the method worked, nothing was found wanting",
        "division by zero",
        "'NoneType' object has no attribute 'split'",  # a handler's own AttributeError
        "'dict' object has no attribute 'name'",
        "AttributeError: 'Service' object has no attribute 'x'",  # typed: keeps its type
        "'H' object has no attribute 'x' (and more)",
    ],
    ids=repr,
)
def test_other_errors_are_not_taken_for_an_unknown_method(raw: Any) -> None:
    assert not isinstance(error_from_wire(raw), asyncrpc.MethodNotFound)
