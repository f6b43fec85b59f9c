"""``asyncrpc stubgen``: typed interfaces written from a peer's own description of its API.

The generated modules are checked as a user would check them (``mypy
--strict``, ``ruff check``, ``ruff format --check``, with the project's
configuration), and used: imported, served by an implementation, and called
through ``client.stub()`` over real sockets, against a real Neovim too.
"""

from __future__ import annotations

import abc
import asyncio
import copy
import dataclasses
import datetime
import enum
import os
import re
import subprocess
import sys
import types
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

import asyncrpc
from asyncrpc.cli import ExitStatus
from asyncrpc.stubgen import (
    StubgenError,
    _Module,
    _Schemas,
    from_description,
    from_neovim,
    neovim_type,
    python_name,
)
from tests.cli_helpers import cli, peer
from tests.nvim_fixture import NvimProcess, start_nvim, stop_nvim

mypy_api = pytest.importorskip("mypy.api")

Capture = pytest.CaptureFixture[str]
ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "examples" / "nvim_api.py"

DESCRIPTION: dict[str, Any] = {
    "protocol": "asyncrpc",
    "version": 1,
    "methods": [
        {
            "name": "calc.add",
            "interface": "Calc",
            "doc": "Add two integers.",
            "params": [
                {"name": "a", "annotation": "int", "schema": {"type": "integer"}, "variadic": False},
                {
                    "name": "b",
                    "annotation": "int",
                    "schema": {"type": "integer"},
                    "default": 1,
                    "variadic": False,
                },
            ],
            "result": {"annotation": "int", "schema": {"type": "integer"}},
            "kind": "task",
        },
        {
            "name": "calc.stats",
            "interface": "Calc",
            "doc": "How many numbers, and their mean.\n\nThe mean of no numbers is 0, by this service's "
            "choice, "
            "which is a long enough sentence to need wrapping at the line length of the project.",
            "params": [
                {
                    "name": "xs",
                    "annotation": "list[float]",
                    "schema": {"type": "array", "items": {"type": "number"}},
                    "variadic": False,
                }
            ],
            "result": {"annotation": "Stats", "schema": {"$ref": "#/$defs/Stats"}},
            "kind": "inline",
        },
        {
            "name": "calc.paint",
            "interface": "Calc",
            "doc": "",
            "params": [
                {
                    "name": "color",
                    "annotation": "Color",
                    "schema": {"$ref": "#/$defs/Color"},
                    "default": "red",
                    "variadic": False,
                },
                {"name": "extra", "annotation": "int", "schema": {"type": "integer"}, "variadic": True},
            ],
            "result": {
                "annotation": "Color | None",
                "schema": {"anyOf": [{"$ref": "#/$defs/Color"}, {"type": "null"}]},
            },
            "kind": "thread",
        },
        {
            "name": "echo",
            "interface": None,
            "doc": "Whatever it is given.",
            "params": [{"name": "type", "annotation": "Any", "schema": {}, "variadic": False}],
            "result": {"annotation": "Any", "schema": {}},
            "kind": "inline",
        },
        {
            "name": "demo.AsyncFunc",
            "interface": None,
            "doc": None,
            "params": [
                {"name": "seconds", "annotation": "float", "schema": {"type": "number"}, "variadic": False}
            ],
            "result": {"annotation": "str", "schema": {"type": "string"}},
            "kind": "task",
        },
        {
            "name": "odd-name",
            "interface": None,
            "doc": "",
            "params": [],
            "result": {"annotation": "None", "schema": {"type": "null"}},
            "kind": "inline",
        },
    ],
    "interfaces": [
        {
            "name": "Calc",
            "namespace": "calc",
            "doc": "A calculator.",
            "methods": ["calc.add", "calc.stats", "calc.paint"],
        }
    ],
    "components": {
        "Stats": {
            "title": "Stats",
            "description": "What stats() finds.",
            "type": "object",
            "properties": {
                "count": {"type": "integer"},
                "mean": {"type": "number"},
                "when": {"type": "string", "format": "date-time"},
                "id": {"type": "string", "format": "uuid"},
                "raw": {"type": "string", "contentEncoding": "base64"},
                "pair": {
                    "type": "array",
                    "minItems": 2,
                    "maxItems": 2,
                    "prefixItems": [{"type": "integer"}, {"type": "string"}],
                    "items": False,
                },
                "extra": {"type": "object", "additionalProperties": {"type": "integer"}},
                "color": {"$ref": "#/$defs/Color", "default": "green"},
                "tags": {"type": "array", "items": {"type": "string"}, "default": []},
                "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
                "camelCase": {"type": "boolean", "default": False},
            },
            "required": ["count", "mean", "when", "id", "raw", "pair", "extra"],
        },
        "Color": {"title": "Color", "enum": ["green", "red"]},
    },
}


def load(source: str, name: str) -> types.ModuleType:
    """Import generated source as the module ``name`` (registered, as an import would)."""
    module = types.ModuleType(name)
    module.__file__ = f"<{name}>"
    sys.modules[name] = module
    exec(compile(source, f"{name}.py", "exec"), module.__dict__)
    return module


@pytest.fixture
def generated_module(request: pytest.FixtureRequest) -> Iterator[str]:
    """A unique module name, removed from ``sys.modules`` afterwards."""
    name = f"stubgen_{request.node.name.replace('[', '_').replace(']', '').replace('-', '_')}"
    yield name
    sys.modules.pop(name, None)


# -- the pure functions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("neovim", "python"),
    [
        ("Integer", "int"),
        ("Float", "float"),
        ("Boolean", "bool"),
        ("String", "str"),
        ("Object", "Any"),
        ("Dictionary", "dict[str, Any]"),
        ("Dict(option)", "dict[str, Any]"),
        ("Array", "list[Any]"),
        ("ArrayOf(Integer, 2)", "list[int]"),
        ("ArrayOf(String)", "list[str]"),
        ("ArrayOf(Buffer)", "list[Buffer]"),
        ("void", "None"),
        ("Buffer", "Buffer"),
        ("Window", "Window"),
        ("Tabpage", "Tabpage"),
        ("LuaRef", "Any"),
        ("SomethingNew", "Any"),
    ],
)
def test_neovim_types(neovim: str, python: str) -> None:
    assert neovim_type(neovim) == python


def test_neovim_handles_as_arguments_also_take_their_numbers() -> None:
    assert neovim_type("Buffer", argument=True) == "Buffer | int"
    assert neovim_type("Integer", argument=True) == "int"


@pytest.mark.parametrize(
    ("remote", "python"),
    [("a", "a"), ("str", "str_"), ("type", "type_"), ("id", "id_"), ("lambda", "lambda_"), ("self", "self_")],
)
def test_parameter_names_that_python_keeps_get_an_underscore(remote: str, python: str) -> None:
    assert python_name(remote) == python


@pytest.mark.parametrize(
    ("schema", "annotation"),
    [
        ({"type": "integer"}, "int"),
        ({"type": "number"}, "float"),
        ({"type": "string"}, "str"),
        ({"type": "boolean"}, "bool"),
        ({"type": "null"}, "None"),
        ({"type": "string", "format": "uuid"}, "uuid.UUID"),
        ({"type": "string", "format": "date-time"}, "datetime.datetime"),
        ({"type": "string", "format": "date"}, "datetime.date"),
        ({"type": "string", "contentEncoding": "base64"}, "bytes"),
        ({"type": "array", "items": {"type": "integer"}}, "list[int]"),
        ({"type": "array"}, "list[Any]"),
        ({"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]}, "tuple[int, str]"),
        ({"type": "object", "additionalProperties": {"type": "number"}}, "dict[str, float]"),
        ({"type": "object"}, "dict[str, Any]"),
        ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, "int | None"),
        ({"anyOf": [{"type": "null"}, {"$ref": "#/$defs/Stats"}]}, "Stats | None"),
        ({"anyOf": [{"type": "integer"}, {}]}, "Any"),
        ({"type": ["integer", "string"]}, "int | str"),
        ({"enum": ["a", "b"]}, 'Literal["a", "b"]'),
        ({"$ref": "#/$defs/Stats"}, "Stats"),
        ({"$ref": "#/$defs/Unknown"}, "Any"),
        ({}, "Any"),
        ({"type": "something-new"}, "Any"),
        (None, "Any"),
    ],
)
def test_schema_types(schema: Any, annotation: str) -> None:
    assert _Schemas(_Module(), {"Stats": "Stats"}).annotation(schema) == annotation


def test_description_module_reads_as_declared() -> None:
    source = from_description(DESCRIPTION, address="127.0.0.1:6000")
    assert source.startswith(
        "# Generated by `asyncrpc stubgen` from an asyncrpc server (description version 1)"
        " at 127.0.0.1:6000.\n"
        "# Do not edit: run asyncrpc stubgen again to bring it up to date.\n"
    )
    for expected in [
        'class Calc(asyncrpc.Interface, namespace="calc"):\n    """A calculator."""',
        "    async def add(self, a: int, b: int = 1) -> int:\n        " + '"""Add two integers."""',
        "    async def paint(self, color: Color = Color.RED, *extra: int) -> Color | None: ...",
        'class Color(enum.Enum):\n    GREEN = "green"\n    RED = "red"',
        '@dataclasses.dataclass\nclass Stats:\n    """What stats() finds."""\n\n    count: int\n',
        "    color: Color = Color.GREEN\n    tags: list[str] = dataclasses.field(default_factory=list)\n",
        "class Service(asyncrpc.Interface):",
        "    async def echo(self, type_: Any) -> Any:",
        'class DemoMethods(asyncrpc.Interface, namespace="demo"):',
        "# Not declared (their names are not Python identifiers): odd-name",
    ]:
        assert expected in source, expected


def test_class_name_names_the_flat_methods_class() -> None:
    assert "class Flat(asyncrpc.Interface):" in from_description(DESCRIPTION, class_name="Flat")


def test_required_fields_after_defaults_make_a_keyword_only_dataclass() -> None:
    description = copy.deepcopy(DESCRIPTION)
    description["components"]["Late"] = {
        "title": "Late",
        "type": "object",
        "properties": {
            "a": {"type": "integer", "default": 0},
            "b": {"type": "string"},
            "c": {"type": "number"},
        },
        "required": ["b"],
    }
    source = from_description(description)
    assert (
        "@dataclasses.dataclass(kw_only=True)\nclass Late:\n"
        "    a: int = 0\n    b: str\n    c: float | None = None\n" in (source)
    )


def test_an_interface_served_under_another_namespace_is_declared_with_the_served_one() -> None:
    description = copy.deepcopy(DESCRIPTION)
    for method in description["methods"]:
        method["name"] = method["name"].replace("calc.", "math.")
    source = from_description(description)
    assert 'class Calc(asyncrpc.Interface, namespace="math"):\n    """A calculator."""' in source


def test_class_names_never_collide(generated_module: str) -> None:
    description = copy.deepcopy(DESCRIPTION)
    description["components"]["Service"] = {
        "title": "Service",
        "type": "object",
        "properties": {"name": {"type": "string"}},
        "required": ["name"],
    }
    description["methods"][3]["result"]["schema"] = {"$ref": "#/$defs/Service"}
    source = from_description(description)
    assert "class Service:" in source
    assert "class Service_(asyncrpc.Interface):" in source
    assert "    async def echo(self, type_: Any) -> Service:" in source
    api = load(source, generated_module)
    assert api.Service_.__mro__[1] is asyncrpc.Interface


@pytest.mark.parametrize(
    "broken",
    [None, [], {"methods": 1}, {"methods": [{"params": []}]}, {"methods": [{"name": "x", "params": 3}]}],
)
def test_what_is_not_a_description_is_a_stubgen_error(broken: Any) -> None:
    with pytest.raises(StubgenError):
        from_description(broken)


@pytest.mark.parametrize("broken", [None, {}, [1, {"functions": None}], {"functions": [{"since": 1}]}])
def test_what_is_not_neovims_api_info_is_a_stubgen_error(broken: Any) -> None:
    with pytest.raises(StubgenError):
        from_neovim(broken)


NEOVIM_INFO: list[Any] = [
    3,
    {
        "version": {"major": 0, "minor": 9, "patch": 1, "api_level": 11},
        "types": {
            "Buffer": {"id": 0, "prefix": "nvim_buf_"},
            "Window": {"id": 1, "prefix": "nvim_win_"},
            "Tabpage": {"id": 2, "prefix": "nvim_tabpage_"},
        },
        "functions": [
            {
                "name": "nvim_buf_get_lines",
                "parameters": [
                    ["Buffer", "buffer"],
                    ["Integer", "start"],
                    ["Integer", "end"],
                    ["Boolean", "strict"],
                ],
                "return_type": "ArrayOf(String)",
                "since": 1,
                "method": True,
            },
            {"name": "nvim_eval", "parameters": [["String", "expr"]], "return_type": "Object", "since": 1},
            {"name": "nvim_out_write", "parameters": [["String", "str"]], "return_type": "void", "since": 1},
            {
                "name": "buffer_get_line",
                "parameters": [["Buffer", "buffer"], ["Integer", "index"]],
                "return_type": "String",
                "since": 0,
                "deprecated_since": 1,
            },
        ],
    },
]


def test_neovim_module_reads_as_declared() -> None:
    source = from_neovim(NEOVIM_INFO, address="127.0.0.1:6666")
    assert source.startswith(
        "# Generated by `asyncrpc stubgen` from Neovim 0.9.1 (API level 11) at 127.0.0.1:6666.\n"
    )
    assert "Buffer: TypeAlias = msgpack.ExtType\n" in source
    assert "Window" not in source  # no function uses it
    assert (
        "    @abc.abstractmethod\n"
        "    async def nvim_buf_get_lines(self, buffer: Buffer | int, start: int, end: int, strict: bool)"
        " -> list[str]:\n"
        '        """since: 1"""\n'
    ) in source
    assert "async def nvim_out_write(self, str_: str) -> None:" in source
    assert "buffer_get_line" not in source
    with_deprecated = from_neovim(NEOVIM_INFO, class_name="Vim", deprecated=True)
    assert "class Vim(asyncrpc.Interface):" in with_deprecated
    assert (
        "    async def buffer_get_line(self, buffer: Buffer | int, index: int) -> str:\n"
        '        """since: 0, deprecated since: 1"""' in (with_deprecated)
    )


# -- mypy --strict and ruff, as a user runs them ---------------------------------------------


def _awkward() -> dict[str, Any]:
    """A description whose texts and names a generator could easily get wrong."""
    description = copy.deepcopy(DESCRIPTION)
    description["methods"].append(
        {
            "name": "quote",
            "interface": None,
            "doc": 'Says "hi" with a \\ backslash and """triple quotes""";\n\n'
            + "averyveryverylongwordwithoutanyspaces" * 4
            + '\n\tthen a tab, and it ends with a quote: "',
            "params": [
                {"name": name, "annotation": "int", "schema": {"type": "integer"}, "variadic": False}
                for name in (
                    "class",
                    "list",
                    "a_parameter_with_a_long_name",
                    "another_long_one",
                    "x",
                    "y",
                    "z",
                )
            ],
            "result": {
                "annotation": "dict[str, list[int | None]]",
                "schema": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "array",
                        "items": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                    },
                },
            },
            "kind": "inline",
        }
    )
    return description


def _sources() -> dict[str, str]:
    return {
        "description": from_description(DESCRIPTION, address="127.0.0.1:6000"),
        "awkward": from_description(_awkward()),
        "neovim": from_neovim(NEOVIM_INFO, deprecated=True),
        "committed_neovim": COMMITTED.read_text(),
    }


@pytest.mark.timeout(180)
@pytest.mark.parametrize("which", ["description", "awkward", "neovim", "committed_neovim"])
def test_generated_modules_pass_mypy_strict(tmp_path: Path, which: str) -> None:
    source = _sources()[which]
    usage = "\n\nasync def _use(client: asyncrpc.Client) -> None:\n" + (
        "    calc = client.stub(Calc)\n"
        "    reveal_type(await calc.stats([1.0]))\n"
        "    reveal_type(asyncrpc.start(calc.add, timeout=1.0)(1))\n"
        if which in {"description", "awkward"}
        else "    nvim = client.stub(Nvim)\n    reveal_type(await nvim.nvim_buf_get_lines(0, 0, -1, True))\n"
    )
    stdout, stderr, status = mypy_api.run(
        [
            "--strict",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            "--no-error-summary",
            "-c",
            source + usage,
        ]
    )
    assert stderr == ""
    revealed = [line.split("note: ", 1)[1] for line in stdout.splitlines() if "note: Revealed type" in line]
    others = [line for line in stdout.splitlines() if "Revealed type" not in line]
    assert others == [], stdout
    if which in {"description", "awkward"}:
        assert revealed == [
            'Revealed type is "__main__.Stats"',
            'Revealed type is "asyncrpc.handle.AsyncCall[int]"',
        ]
    else:
        assert revealed == ['Revealed type is "list[str]"']
    assert status == 0


@pytest.mark.parametrize("which", ["description", "awkward", "neovim", "committed_neovim"])
def test_generated_modules_pass_ruff_check_and_format(tmp_path: Path, which: str) -> None:
    file = tmp_path / f"{which}_api.py"
    file.write_text(_sources()[which])
    ruff = [sys.executable, "-m", "ruff"]
    # The project's configuration turns on two rules a generated module can break, as the peer
    # made it: N815 (a field's name is the key on the wire, so camelCase stays camelCase) and
    # PLR0917 (a method takes as many positional arguments as the peer's does).
    config = ["--config", str(ROOT / "pyproject.toml")]
    for command in (
        [*ruff, "check", *config, "--extend-ignore", "N815,PLR0917", "--no-cache", str(file)],
        [*ruff, "check", "--isolated", "--no-cache", str(file)],
        [*ruff, "format", *config, "--check", "--no-cache", str(file)],
    ):
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, f"{' '.join(command[2:])}:\n{result.stdout}{result.stderr}"


# -- generated from a description: served and called ------------------------------------------


class Handles(asyncrpc.Interface):
    @abc.abstractmethod
    async def same(self, handle: msgpack.ExtType, more: list[msgpack.ExtType]) -> msgpack.ExtType: ...


class HandlesService(Handles):
    async def same(self, handle: msgpack.ExtType, more: list[msgpack.ExtType]) -> msgpack.ExtType:
        assert type(handle) is msgpack.ExtType
        assert all(type(item) is msgpack.ExtType for item in more)
        return handle


async def test_ext_type_annotations_travel_as_ext_values() -> None:
    server = asyncrpc.Server()
    server.register(HandlesService())
    await server.start("127.0.0.1", 0)
    handle = msgpack.ExtType(0, b"\x01")
    try:
        async with asyncio.timeout(10), asyncrpc.connect("127.0.0.1", server.port) as client:
            assert await client.stub(Handles).same(handle, [handle]) == handle  # sent as ext, not an array
            assert await client.call("same", handle, []) == handle
            with pytest.raises(asyncrpc.InvalidArguments, match="expected ExtType, got list"):
                await client.call("same", [0, b"\x01"], [])
    finally:
        await server.close()


async def test_generated_interfaces_work_against_a_server(generated_module: str) -> None:
    api = load(from_description(DESCRIPTION), generated_module)
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    ident = uuid.UUID(int=7)

    async def add(self: object, a: int, b: int = 1) -> int:
        return a + b

    async def stats(self: object, xs: list[float]) -> Any:
        return api.Stats(len(xs), sum(xs) / len(xs), when, ident, b"\x00\xff", (1, "x"), {"k": 2})

    async def paint(self: object, color: Any = api.Color.RED, *extra: int) -> Any:
        assert isinstance(color, api.Color)
        return None if extra else color

    async def echo(self: object, type_: Any) -> Any:
        return type_

    # Implementations of classes made at run time, made at run time too; registering compares
    # the annotations an implementation gives with the interface's, and these give none.
    for function in (add, stats, paint, echo):
        function.__annotations__ = {}
    calc_service = type("CalcService", (api.Calc,), {"add": add, "stats": stats, "paint": paint})
    flat_service = type("FlatService", (api.Service,), {"echo": echo})

    server = asyncrpc.Server()
    assert server.register(calc_service()) == ["calc.add", "calc.stats", "calc.paint"]
    assert server.register(flat_service()) == ["echo"]
    await server.start("127.0.0.1", 0)
    try:
        async with asyncio.timeout(10), asyncrpc.connect("127.0.0.1", server.port) as client:
            calc = client.stub(api.Calc)
            assert await calc.add(2) == 3
            assert await calc.add(2, 40) == 42
            found = await calc.stats([1.0, 2.0, 6.0])
            assert found == api.Stats(3, 3.0, when, ident, b"\x00\xff", (1, "x"), {"k": 2})
            assert found.color is api.Color.GREEN
            assert await calc.paint() is api.Color.RED
            assert await calc.paint(api.Color.GREEN) is api.Color.GREEN
            assert await calc.paint(api.Color.GREEN, 1, 2) is None
            assert await asyncrpc.start(calc.add, timeout=5.0)(1, 2) == 3
            assert await client.stub(api.Service).echo([1, "two"]) == [1, "two"]
            # What a plain peer sends for the enum is its value, and for the dataclass a map.
            assert await client.call("calc.paint", "green") == "green"
            raw = await client.call("calc.stats", [1.0])
            assert raw["color"] == "green"
            assert raw["id"] == str(ident)
    finally:
        await server.close()


def test_enum_members_are_named_from_their_values(generated_module: str) -> None:
    description = copy.deepcopy(DESCRIPTION)
    description["components"]["Level"] = {"title": "Level", "enum": [1, 2, -3]}
    description["components"]["Mode"] = {"title": "Mode", "enum": ["read-only", "2way", "class"]}
    api = load(from_description(description), generated_module)
    assert [(m.name, m.value) for m in api.Level] == [("VALUE_1", 1), ("VALUE_2", 2), ("VALUE_MINUS_3", -3)]
    assert [(m.name, m.value) for m in api.Mode] == [
        ("READ_ONLY", "read-only"),
        ("V_2WAY", "2way"),
        ("CLASS", "class"),
    ]
    assert issubclass(api.Mode, enum.Enum)


# -- Neovim: a real one ----------------------------------------------------------------------


@pytest.fixture
def nvim_process(tmp_path: Path) -> Iterator[NvimProcess]:
    process = start_nvim(tmp_path)
    yield process
    stop_nvim(process)


@pytest.fixture
async def nvim_client(nvim_process: NvimProcess) -> AsyncIterator[asyncrpc.Client]:
    assert nvim_process.port is not None
    async with asyncrpc.connect("127.0.0.1", nvim_process.port) as client:
        yield client


@pytest.mark.neovim
async def test_generated_neovim_interface_works_against_neovim(
    nvim_client: asyncrpc.Client, generated_module: str
) -> None:
    api = load(from_neovim(await nvim_client.call("nvim_get_api_info")), generated_module)
    nvim = nvim_client.stub(api.Nvim)
    async with asyncio.timeout(10):
        assert await nvim.nvim_eval("6 * 7") == 42
        buffer = await nvim.nvim_create_buf(False, True)
        assert isinstance(buffer, msgpack.ExtType)  # what asyncrpc decodes Neovim's handles as
        assert buffer.code == 0
        await nvim.nvim_buf_set_lines(buffer, 0, -1, True, ["one", "two"])
        assert await nvim.nvim_buf_get_lines(buffer, 0, -1, True) == ["one", "two"]
        assert await nvim.nvim_buf_line_count(buffer) == 2  # a method taking a Buffer
        await nvim.nvim_set_current_buf(buffer)
        assert await nvim.nvim_get_current_buf() == buffer
        assert await nvim.nvim_buf_get_lines(0, 0, 1, True) == ["one"]  # 0: the current buffer
        assert buffer in await nvim.nvim_list_bufs()
        window = await nvim.nvim_get_current_win()
        assert await nvim.nvim_win_get_buf(window) == buffer
        assert await nvim.nvim_win_get_cursor(window) == [1, 0]
        assert isinstance(await nvim.nvim_get_api_info(), list)
        with pytest.raises(asyncrpc.RemoteError):
            await nvim.nvim_eval("no_such_variable")


def _normalised(source: str) -> str:
    """The module without its first line, which names where the peer was reached."""
    first, _, rest = source.partition("\n")
    assert first.startswith("# Generated by `asyncrpc stubgen` from Neovim ")
    return rest


@pytest.mark.neovim
async def test_committed_neovim_module_is_what_stubgen_writes(
    capsys: Capture, nvim_process: NvimProcess, tmp_path: Path
) -> None:
    output = tmp_path / "nvim_api.py"
    ran = await cli(capsys, "stubgen", nvim_process.address, "-o", str(output))
    assert (ran.status, ran.out, ran.err) == (0, "", "")
    written = output.read_text()
    assert written.startswith(
        f"# Generated by `asyncrpc stubgen` from Neovim 0.7.2 (API level 9) at {nvim_process.address}.\n"
    )
    assert _normalised(written) == _normalised(COMMITTED.read_text()), (
        "examples/nvim_api.py is stale: regenerate it with "
        "asyncrpc stubgen 127.0.0.1:6666 -o examples/nvim_api.py "
        "against nvim --headless --listen 127.0.0.1:6666"
    )


@pytest.mark.neovim
async def test_stubgen_writes_to_stdout_with_the_class_name_given(
    capsys: Capture, nvim_process: NvimProcess
) -> None:
    ran = await cli(
        capsys, "stubgen", "--neovim", "--class-name", "Vim", "--deprecated", nvim_process.address
    )
    assert (ran.status, ran.err) == (0, "")
    assert "\nclass Vim(asyncrpc.Interface):\n" in ran.out
    assert "deprecated since: " in ran.out


@pytest.mark.neovim
def test_the_nvim_client_example_runs(nvim_process: NvimProcess) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"NVIM", "NVIM_LISTEN_ADDRESS"}}
    result = subprocess.run(
        [sys.executable, "-m", "examples.nvim_client", nvim_process.address],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "holds 3 lines: ['typed', 'by', 'asyncrpc stubgen']" in result.stdout
    assert 'nvim_eval("6 * 7") = 42' in result.stdout
    assert "-> 'DONE'" in result.stdout


# -- the command's failures ------------------------------------------------------------------


async def answer_every_call_with_an_error(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A plain msgpack-rpc server that knows no method: every request gets a string error."""
    unpacker = msgpack.Unpacker()
    while data := await reader.read(65536):
        unpacker.feed(data)
        for message in unpacker:
            if message[0] == 0:
                writer.write(msgpack.packb([1, message[1], f"unknown method {message[2]}", None]))
        await writer.drain()


async def test_a_peer_that_describes_nothing_is_one_error_line(capsys: Capture) -> None:
    async with peer(answer_every_call_with_an_error) as address:
        ran = await cli(capsys, "stubgen", address)
    assert ran.status == ExitStatus.REMOTE_ERROR
    assert ran.error_line.startswith(
        f"error: {address} does not describe its API: it answered asyncrpc.describe with "
    )
    assert "nvim_get_api_info" in ran.error_line
    assert ran.out == ""


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.1:port", "::1:6000"])
async def test_a_bad_address_is_a_usage_error(capsys: Capture, address: str) -> None:
    ran = await cli(capsys, "stubgen", address)
    assert ran.status == ExitStatus.USAGE
    assert ran.error_line.startswith("error: ")


async def test_nothing_listening_is_a_usage_error(capsys: Capture, tmp_path: Path) -> None:
    ran = await cli(capsys, "stubgen", str(tmp_path / "nobody.sock"), "-o", str(tmp_path / "api.py"))
    assert ran.status == ExitStatus.USAGE
    assert ran.error_line.startswith("error: cannot connect to ")
    assert not (tmp_path / "api.py").exists()


@pytest.mark.neovim
async def test_an_output_that_cannot_be_written_is_one_error_line(
    capsys: Capture, nvim_process: NvimProcess, tmp_path: Path
) -> None:
    ran = await cli(capsys, "stubgen", nvim_process.address, "-o", str(tmp_path / "no" / "such" / "dir.py"))
    assert ran.status == ExitStatus.USAGE
    assert ran.error_line.startswith("error: cannot write ")


# -- an asyncrpc server that describes itself ------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclasses.dataclass
class Stats:
    count: int
    mean: float


class Calc(asyncrpc.Interface, namespace="calc"):
    @abc.abstractmethod
    async def add(self, a: int, b: int) -> int:
        """Add two integers."""

    @abc.abstractmethod
    async def stats(self, xs: list[float]) -> Stats:
        """How many numbers, and their mean."""

    @abc.abstractmethod
    async def paint(self, color: Color) -> Color: ...


class DescribedCalc(Calc):
    async def add(self, a: int, b: int) -> int:
        return a + b

    async def stats(self, xs: list[float]) -> Stats:
        return Stats(len(xs), sum(xs) / len(xs))

    async def paint(self, color: Color) -> Color:
        return color


async def test_stubgen_against_a_server_that_describes_itself(
    capsys: Capture, tmp_path: Path, generated_module: str
) -> None:
    server = asyncrpc.Server()
    server.register(DescribedCalc())
    await server.start("127.0.0.1", 0)
    try:
        output = tmp_path / "calc_api.py"
        ran = await cli(capsys, "stubgen", f"127.0.0.1:{server.port}", "-o", str(output))
        assert (ran.status, ran.err) == (0, "")
        api = load(output.read_text(), generated_module)
        async with asyncio.timeout(10), asyncrpc.connect("127.0.0.1", server.port) as client:
            calc = client.stub(api.Calc)
            assert await calc.add(1, 2) == 3
            stats = await calc.stats([1.0, 2.0, 6.0])
            assert (stats.count, stats.mean) == (3, 3.0)
            assert type(stats).__name__ == "Stats"
            assert await calc.paint(api.Color.GREEN) is api.Color.GREEN
    finally:
        await server.close()


# -- the documentation says what the command does --------------------------------------------

CLI_DOC = ROOT / "docs" / "cli.md"
STUBGEN_DOC = ROOT / "docs" / "stubgen.md"


def _cli_section() -> str:
    text = CLI_DOC.read_text()
    start = text.index("\n## `asyncrpc stubgen`\n")
    return text[start : text.index("\n## ", start + 1)]


async def test_cli_page_gives_the_options_and_defaults_the_help_gives(capsys: Capture) -> None:
    ran = await cli(capsys, "stubgen", "--help")
    assert ran.status == 0
    help_text = " ".join(ran.out.split())
    first_block = CLI_DOC.read_text().split("```text\n", 1)[1].split("```", 1)[0]
    synopsis = next(line for line in first_block.splitlines() if line.startswith("asyncrpc stubgen "))
    rows = re.findall(r"^\| `(-[\w-]+)[^|]*` \| ?([^|]*?) ?\|", _cli_section(), re.M)
    assert [option for option, _ in rows] == [
        "-o",
        "--class-name",
        "--neovim",
        "--deprecated",
        "--timeout",
        "--connect-timeout",
    ]
    for option, default in rows:
        assert option in help_text, option
        assert option in synopsis, option
        for value in default.replace("`", "").split(" / "):
            if value.strip():
                assert f"(default {value.strip()}" in help_text, (option, value)
    assert not re.search(r"\bissue\b|\bhelper\b", ran.out + STUBGEN_DOC.read_text(), re.IGNORECASE)


def test_stubgen_page_shows_real_output() -> None:
    page = STUBGEN_DOC.read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, re.S)
    committed = COMMITTED.read_text()
    header = blocks[0]
    assert committed.startswith(header), (
        "the Neovim header on docs/stubgen.md differs from examples/nvim_api.py"
    )
    functions = blocks[1].split("    ...\n\n", 1)[1]
    for method in functions.split("\n\n"):
        assert method.strip("\n") in committed, method


# -- defaults the description cannot carry ---------------------------------------------------

_ANYWHERE: Any = object()  # a default msgpack cannot carry: only the server has it


def find(key: str, where: Any = _ANYWHERE, limit: int = 10) -> str:
    return f"{key} {'anywhere' if where is _ANYWHERE else where} {limit}"


@pytest.mark.timeout(180)
async def test_a_default_only_the_server_has_is_written_as_dots(
    capsys: Capture, tmp_path: Path, generated_module: str
) -> None:
    server = asyncrpc.Server()
    server.register_function(find)
    await server.start("127.0.0.1", 0)
    try:
        output = tmp_path / "find_api.py"
        ran = await cli(capsys, "stubgen", f"127.0.0.1:{server.port}", "-o", str(output))
        assert (ran.status, ran.err) == (0, "")
        source = output.read_text()
        assert "    async def find(self, key: str, where: Any = ..., limit: int = 10) -> str: ...\n" in source
        api = load(source, generated_module)
        async with asyncio.timeout(10), asyncrpc.connect("127.0.0.1", server.port) as client:
            service = client.stub(api.Service)
            assert await service.find("k") == "k anywhere 10"
            assert await service.find(key="k") == "k anywhere 10"  # left out: the server fills it in
            assert await service.find("k", "here") == "k here 10"
            assert await service.find("k", "here", limit=3) == "k here 3"
            with pytest.raises(TypeError, match="needs argument 'where' when 'limit' is given"):
                await service.find("k", limit=3)
    finally:
        await server.close()
    usage = "\n\nasync def _use(client: asyncrpc.Client) -> None:\n"
    usage += '    reveal_type(await client.stub(Service).find("k", None))\n'
    stdout, stderr, status = await asyncio.to_thread(
        mypy_api.run,
        [
            "--strict",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            "--no-error-summary",
            "-c",
            source + usage,
        ],
    )
    assert (stderr, status) == ("", 0), stdout
    assert [line.split("note: ", 1)[1] for line in stdout.splitlines()] == ['Revealed type is "str"']


async def test_stubgen_reports_a_server_that_cannot_describe_itself(capsys: Capture) -> None:
    class Broken:
        @property
        def __signature__(self) -> Any:
            raise RuntimeError("no signature today")

        def __call__(self) -> None: ...

    server = asyncrpc.Server()
    server.register_function(Broken(), name="broken")
    await server.start("127.0.0.1", 0)
    try:
        address = f"127.0.0.1:{server.port}"
        ran = await cli(capsys, "stubgen", address)
    finally:
        await server.close()
    assert ran.status == ExitStatus.REMOTE_ERROR
    assert ran.error_line == (
        f"error: {address} cannot describe its API: "
        "method 'broken' cannot be described: RuntimeError: no signature today"
    )
