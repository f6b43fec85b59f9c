"""Typed interfaces (issue 10, parts 1 to 4): the interface is the contract, the server enforces it.

Every call goes through real sockets on 127.0.0.1: a typed stub against a
server that registered an implementation, and plain msgpack-rpc clients
(a raw socket, an asyncrpc client without extensions) that send whatever
they like.
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import datetime
import enum
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

import asyncrpc
from asyncrpc import notify
from tests.nvim_fixture import start_nvim, stop_nvim
from tests.services import BOUND


@dataclasses.dataclass
class Point:
    x: float
    y: float


@dataclasses.dataclass
class Stats:
    count: int
    mean: float
    labels: list[str]


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Calc(asyncrpc.Interface, namespace="calc"):
    @abc.abstractmethod
    async def add(self, a: int, b: int) -> int:
        """Add two integers."""

    @abc.abstractmethod
    async def scale(self, factor: float, by: float = 2.0) -> float:
        """factor * by."""

    @abc.abstractmethod
    async def stats(self, xs: list[float], labels: list[str]) -> Stats:
        """Count and mean of xs."""

    @abc.abstractmethod
    async def midpoint(self, a: Point, b: Point) -> Point: ...

    @abc.abstractmethod
    async def paint(
        self, color: Color, ident: uuid.UUID, when: datetime.datetime | None = None
    ) -> list[Color]: ...

    @abc.abstractmethod
    async def concat(self, *parts: str) -> str: ...

    @abc.abstractmethod
    async def raw(
        self, data: bytes, text: str, pair: tuple[int, str], table: dict[str, int]
    ) -> list[Any]: ...

    @abc.abstractmethod
    async def either(self, value: int | str) -> str: ...

    @abc.abstractmethod
    async def log(self, message: str) -> None: ...


class CalcService(Calc):
    def __init__(self) -> None:
        self.ran: list[str] = []
        self.logged = asyncio.Queue[str]()

    async def add(self, a: int, b: int) -> int:
        self.ran.append("add")
        return a + b

    # A plain def runs inline, as for any handler (to a type checker, an
    # override of an async def must be one too).
    def scale(self, factor: float, by: float = 2.0) -> float:  # type: ignore[override]
        self.ran.append("scale")
        assert type(factor) is float
        assert type(by) is float
        return factor * by

    async def stats(self, xs: list[float], labels: list[str]) -> Stats:
        return Stats(len(xs), sum(xs) / len(xs), labels)

    async def midpoint(self, a: Point, b: Point) -> Point:
        assert isinstance(a, Point)
        assert isinstance(b, Point)
        return Point((a.x + b.x) / 2, (a.y + b.y) / 2)

    async def paint(
        self, color: Color, ident: uuid.UUID, when: datetime.datetime | None = None
    ) -> list[Color]:
        assert isinstance(color, Color)
        assert isinstance(ident, uuid.UUID)
        assert when is None or isinstance(when, datetime.datetime)
        return [color, Color.GREEN]

    async def concat(self, *parts: str) -> str:
        return "".join(parts)

    async def raw(self, data: bytes, text: str, pair: tuple[int, str], table: dict[str, int]) -> list[Any]:
        assert isinstance(pair, tuple)
        return [data, text, list(pair), table]

    async def either(self, value: int | str) -> str:
        return f"{type(value).__name__}:{value}"

    async def log(self, message: str) -> None:
        self.ran.append("log")
        self.logged.put_nowait(message)

    async def not_in_the_interface(self) -> str:  # public, but not declared: never reachable
        return "exposed"


@pytest.fixture
async def service() -> AsyncIterator[tuple[CalcService, asyncrpc.Server]]:
    implementation = CalcService()
    server = asyncrpc.Server()
    server.register(implementation)
    async with server:
        await server.start("127.0.0.1", 0)
        yield implementation, server


@pytest.fixture
async def calc(service: tuple[CalcService, asyncrpc.Server]) -> AsyncIterator[Calc]:
    _, server = service
    async with asyncrpc.connect("127.0.0.1", server.port) as client:
        yield client.stub(Calc)


@pytest.fixture
async def plain(service: tuple[CalcService, asyncrpc.Server]) -> AsyncIterator[asyncrpc.Client]:
    """A plain msgpack-rpc client: no extensions, so errors come as Neovim-style [0, "Type: message"]."""
    _, server = service
    async with asyncrpc.connect("127.0.0.1", server.port, extensions=False) as client:
        yield client


# -- registration ---------------------------------------------------------------------------


def test_the_interface_gives_the_names() -> None:
    server = asyncrpc.Server()
    names = server.register(CalcService())
    assert names == [
        "calc.add",
        "calc.scale",
        "calc.stats",
        "calc.midpoint",
        "calc.paint",
        "calc.concat",
        "calc.raw",
        "calc.either",
        "calc.log",
    ]
    assert "calc.not_in_the_interface" not in server.methods


def test_a_namespace_given_at_registration_wins() -> None:
    server = asyncrpc.Server()
    assert server.register(CalcService(), namespace="v2")[0] == "v2.add"


def test_an_implementation_that_lacks_a_method_cannot_be_made() -> None:
    class Partial(Calc):
        async def add(self, a: int, b: int) -> int:
            return a + b

    with pytest.raises(TypeError, match="abstract"):
        Partial()  # type: ignore[abstract]


class Small(asyncrpc.Interface, namespace="small"):
    @abc.abstractmethod
    async def add(self, a: int, b: int) -> int: ...


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            "async def add(self, a: int, c: int) -> int: return a",
            r"it takes \(a, c\), the interface says \(a, b\)",
        ),
        ("async def add(self, a: int) -> int: return a", r"it takes \(a\), the interface says \(a, b\)"),
        ("async def add(self, a: int, b: int = 1) -> int: return a", r"it takes \(a, b=1\)"),
        (
            "async def add(self, a: int, b: str) -> int: return a",
            "parameter 'b' is str, the interface says int",
        ),
        ("async def add(self, a: int, b: int) -> str: return ''", "it returns str, the interface says int"),
    ],
)
def test_an_implementation_with_another_signature_is_refused_at_registration(body: str, problem: str) -> None:
    scope: dict[str, Any] = {"Small": Small}
    exec(f"class Wrong(Small):\n    {body}\n", scope)
    with pytest.raises(TypeError, match=f"Wrong.add does not match Small.add: {problem}"):
        asyncrpc.Server().register(scope["Wrong"]())


def test_an_implementation_may_leave_the_annotations_to_the_interface() -> None:
    class Terse(Small):
        async def add(self, a, b):  # type: ignore[no-untyped-def]
            return a + b

    assert asyncrpc.Server().register(Terse()) == ["small.add"]


def test_interface_declarations_are_checked_where_they_are_made() -> None:
    with pytest.raises(TypeError, match="an interface's methods are async def"):

        class NotAsync(asyncrpc.Interface):
            def add(self, a: int) -> int:
                return a

    with pytest.raises(TypeError, match="namespace must be a non-empty string"):

        class Empty(asyncrpc.Interface, namespace=""):
            @abc.abstractmethod
            async def add(self, a: int) -> int: ...

    with pytest.raises(TypeError, match="namespace= belongs on the declaration"):

        class Impl(Small, namespace="x"):
            async def add(self, a: int, b: int) -> int:
                return a


def test_declarations_are_read_on_first_use_and_explain_what_is_wrong() -> None:
    class KeywordOnly(asyncrpc.Interface):
        @abc.abstractmethod
        async def f(self, *, a: int) -> int: ...

    class Forward(asyncrpc.Interface):
        @abc.abstractmethod
        async def f(self, a: NotDefinedAnywhere) -> int: ...  # type: ignore[name-defined]  # noqa: F821

    class Opaque(asyncrpc.Interface):
        @abc.abstractmethod
        async def f(self, a: asyncio.Lock) -> int: ...

    class Nothing(asyncrpc.Interface):
        pass

    for declaration, message in [
        (KeywordOnly, "keyword-only parameter 'a' needs a default"),
        (Forward, "cannot read the annotations of .*Forward.f: name 'NotDefinedAnywhere' is not defined"),
        (Opaque, "parameter 'a': cannot carry values of type Lock over msgpack"),
        (Nothing, "declares no async def methods"),
    ]:
        with pytest.raises(TypeError, match=message):
            asyncrpc.Server().register(type("Impl", (declaration,), {"f": lambda self, *a, **k: None})())


def test_plain_classes_register_as_before() -> None:
    class Plain:
        def add(self, a: int, b: int) -> int:
            return a + b

        def other(self) -> None: ...

    assert asyncrpc.Server().register(Plain(), namespace="p") == ["p.add", "p.other"]


# -- typed calls -------------------------------------------------------------------------------


async def test_a_stub_is_an_instance_of_its_interface(calc: Calc) -> None:
    assert isinstance(calc, Calc)
    assert type(calc).__name__ == "CalcStub"
    assert "Calc stub on" in repr(calc)


async def test_typed_calls_round_trip_their_values(calc: Calc) -> None:
    assert await calc.add(1, 2) == 3
    assert await calc.scale(3) == 6.0
    assert await calc.scale(3, by=0.5) == 1.5
    assert await calc.stats([1, 2, 3], ["a"]) == Stats(3, 2.0, ["a"])
    assert await calc.midpoint(Point(0, 0), Point(2, 4)) == Point(1.0, 2.0)
    assert await calc.paint(Color.RED, uuid.UUID(int=7)) == [Color.RED, Color.GREEN]
    when = datetime.datetime(2026, 12, 2, tzinfo=datetime.UTC)
    assert await calc.paint(Color.GREEN, uuid.uuid4(), when) == [Color.GREEN, Color.GREEN]
    assert await calc.concat("a", "b", "c") == "abc"
    assert await calc.concat() == ""
    table = {"k": 1}
    assert await calc.raw(b"\x00\xff", "t\u00e9xt", (1, "one"), table) == [
        b"\x00\xff",
        "t\u00e9xt",
        [1, "one"],
        table,
    ]
    assert await calc.either(5) == "int:5"
    assert await calc.either("5") == "str:5"
    await calc.log("x")


async def test_a_plain_peer_sees_ordinary_msgpack(service: tuple[CalcService, asyncrpc.Server]) -> None:
    _, server = service
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        point = {"x": 1.0, "y": 2.0}
        writer.write(msgpack.packb([0, 1, "calc.midpoint", [point, {"x": 3, "y": 4}]]))
        writer.write(msgpack.packb([0, 2, "calc.paint", ["red", str(uuid.UUID(int=1))]]))
        unpacker = msgpack.Unpacker(raw=False)
        replies: dict[int, Any] = {}
        async with asyncio.timeout(BOUND):
            while len(replies) < 2:
                unpacker.feed(await reader.read(65536))
                for _, msgid, error, result in unpacker:
                    replies[msgid] = (error, result)
    finally:
        writer.close()
    assert replies == {1: (None, {"x": 2.0, "y": 3.0}), 2: (None, ["red", "green"])}


async def test_start_gives_a_typed_handle_with_the_call_options(calc: Calc) -> None:
    port = notify.CompletionPort()
    call = asyncrpc.start(calc.stats, notify=port, timeout=BOUND)([1.0, 3.0], ["x"])
    assert isinstance(call, asyncrpc.AsyncCall)
    completion = await port.get(timeout=BOUND)
    assert completion.call is call
    assert call.complete() == Stats(2, 2.0, ["x"])
    handle: asyncrpc.AsyncCall[int] = asyncrpc.AsyncCall()
    assert await asyncrpc.start(calc.add, handle=handle)(2, 2) == 4
    handle.reset()
    assert await asyncrpc.start(calc.add, handle=handle)(3, 3) == 6


async def test_start_takes_only_typed_stub_methods(plain: asyncrpc.Client) -> None:
    async def not_a_stub(a: int) -> int:
        return a

    with pytest.raises(TypeError, match=r"start\(\) takes a method of a typed stub"):
        asyncrpc.start(not_a_stub)
    with pytest.raises(TypeError, match=r"takes a namespace or an asyncrpc\.Interface"):
        plain.stub(Point)  # type: ignore[type-var]


async def test_python_call_mistakes_raise_before_anything_is_sent(calc: Calc) -> None:
    with pytest.raises(TypeError):
        await calc.add(1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        await calc.add(1, 2, 3)  # type: ignore[call-arg]
    with pytest.raises(asyncrpc.EncodeError):
        await calc.raw(object(), "", (1, ""), {})  # type: ignore[arg-type]
    assert await calc.add(1, 1) == 2


# -- arguments checked on the server -----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "args", "message"),
    [
        ("calc.add", ["1", 2], "add() argument 'a': expected int, got str"),
        ("calc.add", [1, 2.5], "add() argument 'b': expected int, got float"),
        ("calc.add", [True, 2], "add() argument 'a': expected int, got bool"),
        ("calc.add", [1], "add() missing argument 'b' (int): it takes (a: int, b: int), got 1 argument"),
        ("calc.add", [], "add() missing argument 'a' (int): it takes (a: int, b: int), got 0 arguments"),
        ("calc.add", [1, 2, 3], "add() takes at most 2 arguments (a: int, b: int), got 3"),
        ("calc.scale", ["x"], "scale() argument 'factor': expected float, got str"),
        ("calc.stats", [[1, "a"], []], "stats() argument 'xs': expected float, got str at [1]"),
        ("calc.midpoint", [{"x": 1}, {"x": 1, "y": 1}], "midpoint() argument 'a': "),
        ("calc.midpoint", [[1, 2], {"x": 1, "y": 1}], "midpoint() argument 'a': expected object, got array"),
        ("calc.paint", ["blue", str(uuid.UUID(int=1))], "paint() argument 'color': "),
        ("calc.paint", ["red", "not-a-uuid"], "paint() argument 'ident': "),
        ("calc.concat", ["a", 1], "concat() argument 'parts': expected str, got int"),
        ("calc.raw", ["text", "t", [1, "x"], {}], "raw() argument 'data': expected bytes, got str"),
        ("calc.raw", [b"", "t", [1, "x", 3], {}], "raw() argument 'pair': "),
        ("calc.either", [1.5], "either() argument 'value': "),
    ],
)
async def test_bad_arguments_get_invalid_arguments_and_the_handler_never_runs(
    service: tuple[CalcService, asyncrpc.Server],
    plain: asyncrpc.Client,
    method: str,
    args: list[Any],
    message: str,
) -> None:
    implementation, _ = service
    with pytest.raises(asyncrpc.InvalidArguments) as raised:
        await plain.call(method, *args, timeout=BOUND)
    assert raised.value.type == "InvalidArguments"
    assert raised.value.message.startswith(message)
    assert "Traceback" not in raised.value.message
    assert implementation.ran == []
    assert await plain.call("calc.add", 1, 2, timeout=BOUND) == 3  # the connection goes on


async def test_an_extension_peer_gets_the_same_error_as_a_structured_map(
    service: tuple[CalcService, asyncrpc.Server],
) -> None:
    _, server = service
    async with asyncrpc.connect("127.0.0.1", server.port) as client:
        with pytest.raises(asyncrpc.InvalidArguments) as raised:
            await client.call("calc.add", "x", 1, timeout=BOUND)
    assert raised.value.raw == {
        "type": "InvalidArguments",
        "message": "add() argument 'a': expected int, got str",
    }


async def test_a_notification_with_bad_arguments_is_logged_in_one_line_and_not_run(
    service: tuple[CalcService, asyncrpc.Server], plain: asyncrpc.Client, caplog: pytest.LogCaptureFixture
) -> None:
    implementation, _ = service
    caplog.set_level(logging.WARNING, logger="asyncrpc")
    plain.notify("calc.log", 42)
    plain.notify("calc.log", "fine")
    async with asyncio.timeout(BOUND):
        assert await implementation.logged.get() == "fine"
    assert implementation.ran == ["log"]
    lines = [r.getMessage() for r in caplog.records if "calc.log" in r.getMessage()]
    assert len(lines) == 1
    assert "log() argument 'message': expected str, got int" in lines[0]
    assert "\n" not in lines[0]


# -- results checked on the client ------------------------------------------------------------


async def test_a_result_that_does_not_fit_is_invalid_result_and_the_connection_goes_on() -> None:
    server = asyncrpc.Server()  # an untyped server answering under the interface's names
    server.register_function(lambda a, b: "not an int", name="small.add")
    async with server:
        await server.start("127.0.0.1", 0)
        async with asyncrpc.connect("127.0.0.1", server.port) as client:
            small = client.stub(Small)
            with pytest.raises(asyncrpc.InvalidResult) as raised:
                await small.add(1, 2)
            assert isinstance(raised.value, TypeError)
            assert raised.value.value == "not an int"
            assert "the result of 'small.add' does not fit its annotation: expected int, got str" in str(
                raised.value
            )
            completions = notify.CompletionPort()
            call = asyncrpc.start(small.add, notify=completions)(1, 2)
            assert (await completions.get(timeout=BOUND)).call is call
            assert isinstance(call.exception(), asyncrpc.InvalidResult)
            assert await client.call("small.add", 1, 2, timeout=BOUND) == "not an int"


# -- the blocking client -----------------------------------------------------------------------


async def test_the_blocking_client_runs_typed_calls(service: tuple[CalcService, asyncrpc.Server]) -> None:
    _, server = service

    def use() -> tuple[int, Stats, str]:
        with asyncrpc.sync.connect("127.0.0.1", server.port) as client:
            calc = client.stub(Calc)
            try:
                client.run(calc.add, "x", 1)  # type: ignore[arg-type]
            except asyncrpc.InvalidArguments as exc:
                refused = exc.message
            return client.run(calc.add, 2, 3), client.run(calc.stats, [2.0], labels=["l"]), refused

    added, stats, refused = await asyncio.to_thread(use)
    assert added == 5
    assert stats == Stats(1, 2.0, ["l"])
    assert refused == "add() argument 'a': expected int, got str"


# -- Neovim calling a typed interface on the client ------------------------------------------


class Callbacks(asyncrpc.Interface):
    @abc.abstractmethod
    async def double(self, n: int) -> int: ...


class CallbacksForNeovim(Callbacks):
    async def double(self, n: int) -> int:
        return n * 2


@pytest.mark.neovim
async def test_neovim_gets_a_readable_invalid_arguments_error(tmp_path: Path) -> None:
    nvim = start_nvim(tmp_path)
    try:
        assert nvim.port is not None
        async with asyncrpc.connect("127.0.0.1", nvim.port) as client:
            assert client.register(CallbacksForNeovim()) == ["double"]
            info = await client.call("nvim_get_api_info", timeout=BOUND)
            channel = info[0]
            assert await client.call("nvim_eval", f"rpcrequest({channel}, 'double', 21)", timeout=BOUND) == 42
            lua = "local ok, err = pcall(vim.fn.rpcrequest, ..., 'double', 'x'); return {ok, err}"
            ok, error = await client.call("nvim_exec_lua", lua, [channel], timeout=BOUND)
    finally:
        stop_nvim(nvim)
    assert ok is False
    assert "InvalidArguments: double() argument 'n': expected int, got str" in error
    assert "Traceback" not in error
