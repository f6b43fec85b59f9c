"""Reflection (issue 10, part 5): a server describes its methods; ``asyncrpc list`` and
``asyncrpc describe`` print them.

Through real sockets on 127.0.0.1: an asyncrpc client, a plain msgpack-rpc
client on a raw socket, a server calling its client back, a real Neovim,
and the command line run in-process.
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import datetime
import enum
import inspect
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

import asyncrpc
from asyncrpc import reflection
from asyncrpc.dispatch import Dispatcher
from asyncrpc.remote_errors import error_from_wire
from asyncrpc.wire.extensions import DESCRIBE_METHOD
from tests.cli_helpers import cli
from tests.nvim_fixture import start_nvim, stop_nvim
from tests.services import BOUND

Capture = pytest.CaptureFixture[str]


@dataclasses.dataclass
class Box:
    width: float
    height: float


@dataclasses.dataclass
class Shelf:
    boxes: list[Box]
    label: str = ""


class Unit(enum.Enum):
    CM = "cm"
    INCH = "in"


class Store(asyncrpc.Interface, namespace="store"):
    """Boxes and shelves."""

    @abc.abstractmethod
    async def area(self, box: Box, unit: Unit = Unit.CM) -> float:
        """The area of a box."""

    @abc.abstractmethod
    async def shelve(self, *boxes: Box) -> Shelf: ...


class StoreService(Store):
    async def area(self, box: Box, unit: Unit = Unit.CM) -> float:
        return box.width * box.height

    async def shelve(self, *boxes: Box) -> Shelf:
        return Shelf(list(boxes))


def untyped(a, b=2):  # type: ignore[no-untyped-def]
    """No annotations at all."""
    return a


@asyncrpc.blocking
def slow_sum(values: list[int]) -> int:
    return sum(values)


@pytest.fixture
async def server() -> AsyncIterator[asyncrpc.Server]:
    server = asyncrpc.Server()
    server.register(StoreService())
    server.register_function(untyped)
    server.register_function(slow_sum)
    async with server:
        await server.start("127.0.0.1", 0)
        yield server


async def describe(server: asyncrpc.Server) -> dict[str, Any]:
    async with asyncrpc.connect("127.0.0.1", server.port) as client:
        return await client.describe()


async def test_the_answer_describes_every_method(server: asyncrpc.Server) -> None:
    answer = await describe(server)
    assert answer["protocol"] == "asyncrpc"
    assert answer["version"] == 1
    assert [m["name"] for m in answer["methods"]] == ["slow_sum", "store.area", "store.shelve", "untyped"]
    by_name = {m["name"]: m for m in answer["methods"]}
    assert by_name["store.area"] == {
        "name": "store.area",
        "interface": "Store",
        "doc": "The area of a box.",
        "params": [
            {
                "name": "box",
                "annotation": "Box",
                "schema": {"$ref": "#/$defs/Box"},
                "variadic": False,
                "has_default": False,
            },
            {
                "name": "unit",
                "annotation": "Unit",
                "schema": {"$ref": "#/$defs/Unit"},
                "variadic": False,
                "has_default": True,
                "default": "cm",
            },
        ],
        "result": {"annotation": "float", "schema": {"type": "number"}},
        "kind": "task",
    }
    assert by_name["store.shelve"]["params"] == [
        {
            "name": "boxes",
            "annotation": "Box",
            "schema": {"$ref": "#/$defs/Box"},
            "variadic": True,
            "has_default": False,
        }
    ]
    assert by_name["store.shelve"]["result"] == {"annotation": "Shelf", "schema": {"$ref": "#/$defs/Shelf"}}
    assert by_name["untyped"]["params"] == [
        {"name": "a", "annotation": "Any", "schema": {}, "variadic": False, "has_default": False},
        {
            "name": "b",
            "annotation": "Any",
            "schema": {},
            "variadic": False,
            "has_default": True,
            "default": 2,
        },
    ]
    assert by_name["untyped"]["doc"] == "No annotations at all."
    assert by_name["untyped"]["kind"] == "inline"
    assert by_name["slow_sum"]["kind"] == "thread"
    assert by_name["slow_sum"]["params"][0]["schema"] == {"type": "array", "items": {"type": "integer"}}
    assert answer["interfaces"] == [
        {
            "name": "Store",
            "namespace": "store",
            "doc": "Boxes and shelves.",
            "methods": ["store.area", "store.shelve"],
        }
    ]
    components = answer["components"]
    assert set(components) == {"Box", "Shelf", "Unit"}
    assert components["Unit"] == {"title": "Unit", "enum": ["cm", "in"]}
    assert components["Shelf"]["properties"]["boxes"] == {"type": "array", "items": {"$ref": "#/$defs/Box"}}


async def test_a_plain_peer_may_ask_too(server: asyncrpc.Server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(msgpack.packb([0, 9, DESCRIBE_METHOD, []]))
        unpacker = msgpack.Unpacker(raw=False)
        async with asyncio.timeout(BOUND):
            while True:
                unpacker.feed(await reader.read(65536))
                replies = list(unpacker)
                if replies:
                    break
    finally:
        writer.close()
    [(kind, msgid, error, answer)] = replies
    assert (kind, msgid, error) == (1, 9, None)
    assert [m["name"] for m in answer["methods"]] == ["slow_sum", "store.area", "store.shelve", "untyped"]


async def test_a_client_describes_what_it_registered_on_its_connection() -> None:
    async def ask_back() -> list[str]:
        answer = await asyncrpc.current_call().peer.describe()
        return [m["name"] for m in answer["methods"]]

    server = asyncrpc.Server()
    server.register_function(ask_back)
    async with server:
        await server.start("127.0.0.1", 0)
        async with asyncrpc.connect("127.0.0.1", server.port) as client:
            client.register(StoreService())
            assert await client.call("ask_back", timeout=BOUND) == ["store.area", "store.shelve"]


async def test_a_handler_of_that_name_answers_instead(server: asyncrpc.Server) -> None:
    server.register_function(lambda: "mine", name=DESCRIBE_METHOD)
    async with asyncrpc.connect("127.0.0.1", server.port) as client:
        assert await client.call(DESCRIBE_METHOD, timeout=BOUND) == "mine"


async def test_describe_takes_a_deadline() -> None:
    async def never() -> None:
        await asyncio.Event().wait()

    server = asyncrpc.Server()
    server.register_function(never, name=DESCRIBE_METHOD)  # a server that does not answer it

    def use() -> None:
        with (
            asyncrpc.sync.connect("127.0.0.1", server.port) as client,
            pytest.raises(asyncrpc.DeadlineExceeded),
        ):
            client.describe(timeout=0.05)

    async with server:
        await server.start("127.0.0.1", 0)
        async with asyncrpc.connect("127.0.0.1", server.port) as client:
            with pytest.raises(asyncrpc.DeadlineExceeded):
                await asyncio.wait_for(client.describe(timeout=0.05), BOUND)
        await asyncio.wait_for(asyncio.to_thread(use), BOUND)


async def test_an_answer_larger_than_the_client_accepts_is_message_too_large() -> None:
    server = asyncrpc.Server()
    for index in range(40):
        server.register_function(untyped, name=f"method_{index:02}")
    small = asyncrpc.Limits(max_message_size=2048)  # announced in the hello
    async with server:
        await server.start("127.0.0.1", 0)
        async with asyncrpc.connect("127.0.0.1", server.port, limits=small) as client:
            with pytest.raises(asyncrpc.MessageTooLarge):
                await client.describe()
            assert client.is_open


async def test_long_docs_are_cut() -> None:
    def wordy() -> None: ...

    wordy.__doc__ = "x" * 10_000
    server = asyncrpc.Server()
    server.register_function(wordy)
    async with server:
        await server.start("127.0.0.1", 0)
        [method] = (await describe(server))["methods"]
    assert len(method["doc"]) == 4000
    assert method["doc"].endswith("\u2026")


def test_the_blocking_client_describes_too() -> None:
    async def run() -> list[str]:
        server = asyncrpc.Server()
        server.register(StoreService())
        async with server:
            await server.start("127.0.0.1", 0)

            def use() -> list[str]:
                with asyncrpc.sync.connect("127.0.0.1", server.port) as client:
                    return [m["name"] for m in client.describe()["methods"]]

            return await asyncio.to_thread(use)

    assert asyncio.run(run()) == ["store.area", "store.shelve"]


_ANYWHERE: Any = object()  # a default msgpack cannot carry


def find(key: str, where: Any = _ANYWHERE, limit: int = 10) -> str:
    """Look ``key`` up."""
    return key


async def test_a_default_msgpack_cannot_carry_is_still_a_default() -> None:
    server = asyncrpc.Server()
    server.register_function(find)
    async with server:
        await server.start("127.0.0.1", 0)
        [method] = (await describe(server))["methods"]
    assert method["params"] == [
        {
            "name": "key",
            "annotation": "str",
            "schema": {"type": "string"},
            "variadic": False,
            "has_default": False,
        },
        {"name": "where", "annotation": "Any", "schema": {}, "variadic": False, "has_default": True},
        {
            "name": "limit",
            "annotation": "int",
            "schema": {"type": "integer"},
            "variadic": False,
            "has_default": True,
            "default": 10,
        },
    ]


class Adder:
    """Adds."""

    def __call__(self, a: int, box: Box) -> list[float]:
        return [a + box.width]


async def test_a_callable_object_is_described_from_its_call_method() -> None:
    server = asyncrpc.Server()
    server.register_function(Adder(), name="add")
    async with server:
        await server.start("127.0.0.1", 0)
        answer = await describe(server)
    [method] = answer["methods"]
    assert [(p["name"], p["annotation"], p["schema"]) for p in method["params"]] == [
        ("a", "int", {"type": "integer"}),
        ("box", "Box", {"$ref": "#/$defs/Box"}),
    ]
    assert method["result"] == {
        "annotation": "list[float]",
        "schema": {"type": "array", "items": {"type": "number"}},
    }
    assert method["doc"] == "Adds."
    assert set(answer["components"]) == {"Box"}


class BrokenSignature:
    """A handler whose signature raises: it cannot be described."""

    @property
    def __signature__(self) -> inspect.Signature:
        raise RuntimeError("no signature today")

    def __call__(self, *args: Any) -> str:
        return "called"


@pytest.fixture
async def broken_server() -> AsyncIterator[asyncrpc.Server]:
    server = asyncrpc.Server()
    server.register(StoreService())
    server.register_function(BrokenSignature(), name="broken")
    async with server:
        await server.start("127.0.0.1", 0)
        yield server


async def test_a_method_that_cannot_be_described_fails_the_request(
    broken_server: asyncrpc.Server, caplog: pytest.LogCaptureFixture
) -> None:
    async with asyncrpc.connect("127.0.0.1", broken_server.port) as client:
        with pytest.raises(asyncrpc.DescribeFailed) as failed:
            await asyncio.wait_for(client.describe(), BOUND)
        # The connection goes on; the method itself still answers.
        assert await client.call("broken", timeout=BOUND) == "called"
    assert failed.value.type == "DescribeFailed"
    assert failed.value.message == "method 'broken' cannot be described: RuntimeError: no signature today"
    assert isinstance(failed.value, asyncrpc.RemoteError)
    assert "cannot answer asyncrpc.describe: method 'broken' cannot be described" in caplog.text


async def test_a_plain_peer_gets_describe_failed_as_an_error(broken_server: asyncrpc.Server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", broken_server.port)
    try:
        writer.write(msgpack.packb([0, 4, DESCRIBE_METHOD, []]))
        unpacker = msgpack.Unpacker(raw=False)
        async with asyncio.timeout(BOUND):
            while True:
                unpacker.feed(await reader.read(65536))
                replies = list(unpacker)
                if replies:
                    break
    finally:
        writer.close()
    [(kind, msgid, error, answer)] = replies
    assert (kind, msgid, answer) == (1, 4, None)
    assert error == [
        0,
        "DescribeFailed: method 'broken' cannot be described: RuntimeError: no signature today",
    ]
    # ... which an asyncrpc client reads back as the class (a plain peer's "Type: message").
    assert type(error_from_wire(error)) is asyncrpc.DescribeFailed


async def test_describe_says_the_server_cannot_describe_itself(
    capsys: Capture, broken_server: asyncrpc.Server
) -> None:
    address = f"127.0.0.1:{broken_server.port}"
    for command in ("list", "describe"):
        ran = await cli(capsys, command, address)
        assert ran.status == 1
        assert ran.error_line == (
            f"error: {address} cannot describe its methods: "
            "method 'broken' cannot be described: RuntimeError: no signature today"
        )


async def test_an_interface_reports_the_namespace_it_was_registered_under() -> None:
    server = asyncrpc.Server()
    server.register(StoreService())
    server.register(StoreService(), namespace="v2")
    server.register(StoreService(), namespace="")
    async with server:
        await server.start("127.0.0.1", 0)
        answer = await describe(server)
    assert [(i["name"], i["namespace"], i["methods"]) for i in answer["interfaces"]] == [
        ("Store", None, ["area", "shelve"]),
        ("Store", "store", ["store.area", "store.shelve"]),
        ("Store", "v2", ["v2.area", "v2.shelve"]),
    ]


# -- the command line ------------------------------------------------------------------------


async def test_list_prints_the_names(capsys: Capture, server: asyncrpc.Server) -> None:
    ran = await cli(capsys, "list", f"127.0.0.1:{server.port}")
    assert (ran.status, ran.err) == (0, "")
    assert ran.out == "slow_sum\nstore.area  (Store)\nstore.shelve  (Store)\nuntyped\n"


async def test_describe_prints_signature_doc_and_types(capsys: Capture, server: asyncrpc.Server) -> None:
    ran = await cli(capsys, "describe", f"127.0.0.1:{server.port}", "store.shelve")
    assert (ran.status, ran.err) == (0, "")
    assert ran.out.splitlines() == [
        "store.shelve(*boxes: Box) -> Shelf",
        "",
        "class Box:",
        "    width: float",
        "    height: float",
        "",
        "class Shelf:",
        "    boxes: list[Box]",
        "    label: str = ''",
    ]


async def test_describe_without_a_method_prints_them_all(capsys: Capture, server: asyncrpc.Server) -> None:
    ran = await cli(capsys, "describe", f"127.0.0.1:{server.port}")
    assert ran.status == 0
    assert ran.out.startswith(
        "slow_sum(values: list[int]) -> int\n\nstore.area(box: Box, unit: Unit = 'cm') -> float\n"
    )
    assert "    No annotations at all.\n" in ran.out


async def test_describe_prints_a_default_it_cannot_show_as_dots(capsys: Capture) -> None:
    server = asyncrpc.Server()
    server.register_function(find)
    async with server:
        await server.start("127.0.0.1", 0)
        ran = await cli(capsys, "describe", f"127.0.0.1:{server.port}", "find")
    assert (ran.status, ran.err) == (0, "")
    assert ran.out == "find(key: str, where: Any = ..., limit: int = 10) -> str\n    Look ``key`` up.\n"


@dataclasses.dataclass
class Reading:
    """One reading.

    Taken at ``when``.
    """

    when: datetime.datetime
    unit: Unit
    values: dict[str, list[float]]
    note: str | None = None
    tags: list[str] = dataclasses.field(default_factory=list)


def read(unit: Unit = Unit.CM) -> Reading | None: ...


async def test_describe_prints_components_class_style(capsys: Capture) -> None:
    server = asyncrpc.Server()
    server.register_function(read)
    async with server:
        await server.start("127.0.0.1", 0)
        ran = await cli(capsys, "describe", f"127.0.0.1:{server.port}", "read")
    assert (ran.status, ran.err) == (0, "")
    assert ran.out.splitlines() == [
        "read(unit: Unit = 'cm') -> Reading | None",
        "",
        "class Unit(Enum):",
        "    'cm'",
        "    'in'",
        "",
        "class Reading:",
        '    """One reading.',
        "",
        "    Taken at ``when``.",
        '    """',
        "    when: datetime.datetime",
        "    unit: Unit",
        "    values: dict[str, list[float]]",
        "    note: str | None = None",
        "    tags: list[str] = []",
    ]


async def test_describe_an_unknown_method(capsys: Capture, server: asyncrpc.Server) -> None:
    address = f"127.0.0.1:{server.port}"
    ran = await cli(capsys, "describe", address, "nosuch")
    assert ran.status == 1
    assert ran.error_line == f"error: {address} has no method 'nosuch' (asyncrpc list shows them)"


@pytest.mark.neovim
async def test_neovim_does_not_describe_itself(capsys: Capture, tmp_path: Path) -> None:
    nvim = start_nvim(tmp_path)
    try:
        assert nvim.port is not None
        async with asyncrpc.connect("127.0.0.1", nvim.port) as client:
            with pytest.raises(asyncrpc.MethodNotFound):
                await client.describe()
        address = f"127.0.0.1:{nvim.port}"
        ran = await cli(capsys, "list", address)
    finally:
        stop_nvim(nvim)
    assert ran.status == 1
    assert ran.error_line == (
        f"error: {address} does not describe its methods (it is not an asyncrpc server); "
        f"for Neovim, try: asyncrpc call {address} nvim_get_api_info"
    )


def test_a_datetime_is_described_as_a_date_time() -> None:
    """msgspec's schema of a bare datetime says only "string"; it travels as a msgpack timestamp."""

    def at(when: datetime.datetime | None, times: list[datetime.datetime]) -> datetime.datetime:
        return times[0]

    dispatcher = Dispatcher()
    dispatcher.register_function(at)
    [method] = reflection.describe(dispatcher)["methods"]
    date_time = {"type": "string", "format": "date-time"}
    assert method["params"][0]["schema"] == {"anyOf": [date_time, {"type": "null"}]}
    assert method["params"][1]["schema"] == {"type": "array", "items": date_time}
    assert method["result"]["schema"] == date_time


@dataclasses.dataclass
class Event:
    when: datetime.datetime
    until: datetime.datetime | None = None


def test_a_dataclass_fields_datetime_is_described_as_a_date_time_too() -> None:
    def log(event: Event) -> None: ...

    dispatcher = Dispatcher()
    dispatcher.register_function(log)
    answer = reflection.describe(dispatcher)
    properties = answer["components"]["Event"]["properties"]
    assert properties["when"] == {"type": "string", "format": "date-time"}
    assert properties["until"] == {
        "anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}],
        "default": None,
    }
