"""``asyncrpc serve``: every mistake is one line on stderr and exit status 2, never a traceback.

The command runs in-process (``asyncrpc.cli.main``); each mistake is found
before the server would start serving. What a module target serves is also
checked for real, with ``asyncrpc serve`` as a process (as in ``tests/test_cli.py``).
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import asyncrpc
from asyncrpc.cli import ExitStatus
from asyncrpc.cli.serve import load_target, register_target
from tests.cli_helpers import cli, serving

Capture = pytest.CaptureFixture[str]


@pytest.fixture
def write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Write a module into a fresh current directory; returns its (unique) name."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # serve puts the current directory first
    names: list[str] = []

    def write(source: str) -> str:
        name = f"cli_target_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{name}.py").write_text(source)
        importlib.invalidate_caches()
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)


async def test_unknown_module(capsys: Capture) -> None:
    ran = await cli(capsys, "serve", "nosuchmodule:X")
    assert ran.status == ExitStatus.USAGE
    assert ran.error_line.startswith("error: cannot import 'nosuchmodule': No module named 'nosuchmodule' (")


async def test_module_without_the_attribute(capsys: Capture) -> None:
    ran = await cli(capsys, "serve", "json:nope")
    assert ran.status == ExitStatus.USAGE
    assert ran.error_line.startswith("error: module 'json' has no attribute 'nope' (")
    ran = await cli(capsys, "serve", "json:JSONDecoder.nope")
    assert ran.error_line.startswith("error: json:JSONDecoder has no attribute 'nope' (")


async def test_module_that_raises_on_import(capsys: Capture, write_module: Callable[[str], str]) -> None:
    name = write_module("raise RuntimeError('no configuration found')\n")
    ran = await cli(capsys, "serve", f"{name}:Service")
    assert ran.status == ExitStatus.USAGE
    assert ran.error_line == f"error: cannot import {name!r}: it raised RuntimeError: no configuration found"


async def test_module_whose_import_is_missing(capsys: Capture, write_module: Callable[[str], str]) -> None:
    name = write_module("import nosuchdependency\n")
    ran = await cli(capsys, "serve", name)
    assert ran.status == ExitStatus.USAGE
    assert ran.error_line == (
        f"error: cannot import {name!r}: it raised ModuleNotFoundError: No module named 'nosuchdependency'"
    )


async def test_module_with_a_syntax_error(capsys: Capture, write_module: Callable[[str], str]) -> None:
    name = write_module("def broken(:\n")
    ran = await cli(capsys, "serve", name)
    assert ran.status == ExitStatus.USAGE
    assert ran.error_line.startswith(f"error: cannot import {name!r}: it raised SyntaxError: ")


@pytest.mark.parametrize(
    ("source", "target", "line"),
    [
        (
            "class Empty:\n    def _hidden(self) -> None: ...\n",
            "{name}:Empty",
            "error: {name}:Empty has no public methods to serve (names starting with '_' are never served)",
        ),
        (
            "SETTING = 'x'\n",
            "{name}:SETTING",
            "error: {name}:SETTING is a str, not a class, object, function or module",
        ),
        (
            "class NeedsArgs:\n"
            "    def __init__(self, port: int) -> None: ...\n"
            "    def f(self) -> None: ...\n",
            "{name}:NeedsArgs",
            "error: cannot create {name}:NeedsArgs(): TypeError: NeedsArgs.__init__() missing 1 required "
            "positional argument: 'port' (serve instantiates a class with no arguments; name an instance "
            "or a function instead)",
        ),
    ],
    ids=["no-public-methods", "not-servable", "class-needs-arguments"],
)
async def test_targets_that_cannot_be_served(
    capsys: Capture, write_module: Callable[[str], str], source: str, target: str, line: str
) -> None:
    name = write_module(source)
    ran = await cli(capsys, "serve", target.format(name=name))
    assert ran.status == ExitStatus.USAGE
    assert ran.error_line == line.format(name=name)


@pytest.mark.parametrize("spec", [":Demo", "tests.services:", "tests.services:Demo..x"])
async def test_malformed_module_object(capsys: Capture, spec: str) -> None:
    ran = await cli(capsys, "serve", spec)
    assert ran.status == ExitStatus.USAGE
    assert ran.error_line == f"error: expected MODULE:OBJECT (e.g. examples.demo_service:Demo), not {spec!r}"


async def test_port_in_use(capsys: Capture) -> None:
    taken = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = taken.sockets[0].getsockname()[1]
    try:
        ran = await cli(capsys, "serve", "tests.services:Demo", "--port", str(port))
    finally:
        taken.close()
        await taken.wait_closed()
    assert ran.status == ExitStatus.USAGE
    assert ran.error_line.startswith(f"error: cannot listen on 127.0.0.1:{port}: address already in use (")


async def test_unix_socket_in_a_missing_directory(capsys: Capture, tmp_path: Path) -> None:
    path = str(tmp_path / "missing" / "rpc.sock")
    ran = await cli(capsys, "serve", "tests.services:Demo", "--unix", path)
    assert ran.status == ExitStatus.USAGE
    assert ran.error_line == (
        f"error: cannot listen on {path}: no such file or directory (the socket's directory must exist)"
    )


async def test_unix_socket_a_server_listens_on_is_left_alone(capsys: Capture, tmp_path: Path) -> None:
    path = str(tmp_path / "rpc.sock")
    running = asyncrpc.Server()
    running.register_function(abs)
    await running.start(path=path)
    try:
        ran = await cli(capsys, "serve", "tests.services:Demo", "--unix", path)
        assert ran.status == ExitStatus.USAGE
        assert ran.error_line == (
            f"error: cannot listen on {path}: a server is already listening there (choose another path)"
        )
        async with asyncrpc.connect(path=path) as client:  # still reachable: its socket was not replaced
            assert await client.call("abs", -3) == 3
    finally:
        await running.close()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--port", "70000"],
            "asyncrpc serve: error: argument --port/-p: must be a port from 0 to 65535, not '70000'",
        ),
        (
            ["--grace", "-1"],
            "asyncrpc serve: error: argument --grace: must be a number of seconds, 0 or more, not '-1'",
        ),
        (
            ["--unix", "x.sock", "--host", "127.0.0.1"],
            "asyncrpc serve: error: --host is for TCP; with --unix the server listens on a socket path only",
        ),
    ],
)
async def test_bad_options_exit_2_with_the_usage_line(capsys: Capture, argv: list[str], message: str) -> None:
    ran = await cli(capsys, "serve", "tests.services:Demo", *argv)
    assert ran.status == ExitStatus.USAGE
    assert ran.err.startswith("usage: asyncrpc serve ")
    assert ran.err.endswith(message + "\n")


# -- a module target serves what its __all__ lists, and nothing else ---------------------------

SERVICE_MODULE = """\
import asyncio
from os.path import basename

__all__ = ["add", "basename", "Stats", "VERSION"]

VERSION = "1.0"


class Stats:
    def reset(self) -> None: ...


def add(a: int, b: int) -> int:
    return a + b


def helper() -> str:
    return "internal"


async def serve(port: int) -> None:
    await asyncio.start_server(lambda r, w: None, "127.0.0.1", port)
"""


async def test_a_module_target_serves_only_the_functions_in_its_all(
    write_module: Callable[[str], str], tmp_path: Path
) -> None:
    """Its helpers (``serve(port)`` would open a listener) are not served; nor its classes and values."""
    name = write_module(SERVICE_MODULE)
    async with serving(name, "--port", "0", cwd=tmp_path) as served:
        assert sorted(served.methods) == ["add", "basename"]  # a function re-exported on purpose too
        async with asyncrpc.connect(*served.host_port) as client:
            assert await client.call("add", 1, 2) == 3
            for hidden in ("serve", "helper", "VERSION", "Stats", "Stats.reset", "asyncio.sleep"):
                with pytest.raises(asyncrpc.MethodNotFound):
                    await client.call(hidden, 0)


async def test_a_module_targets_functions_take_the_namespace(write_module: Callable[[str], str]) -> None:
    name = write_module(SERVICE_MODULE)
    server = asyncrpc.Server()
    assert register_target(server, load_target(name), "calc", name) == ["calc.add", "calc.basename"]
    assert server.methods == ["calc.add", "calc.basename"]


@pytest.mark.parametrize(
    ("source", "line"),
    [
        (
            "def add(a: int, b: int) -> int:\n    return a + b\n",
            "error: module {name!r} has no __all__: list the functions to serve in its __all__ "
            "(serving a module serves those only), or name one object as {name}:OBJECT",
        ),
        (
            "__all__ = ['add', 'nope']\ndef add() -> None: ...\n",
            "error: {name}.__all__ lists 'nope', which the module does not define",
        ),
        (
            "__all__ = ['_secret']\ndef _secret() -> None: ...\n",
            "error: {name}.__all__ lists '_secret', but names starting with '_' are never served",
        ),
        (
            "__all__ = 'add'\ndef add() -> None: ...\n",
            "error: {name}.__all__ must be a list of names, not a str",
        ),
        (
            "__all__ = ['add', 1]\ndef add() -> None: ...\n",
            "error: {name}.__all__ must be a list of names, not one holding a int",
        ),
        (
            "__all__ = ['Calc', 'LIMIT']\nLIMIT = 3\nclass Calc:\n    def add(self) -> None: ...\n",
            "error: {name} has nothing to serve: its __all__ lists no functions (classes and other "
            "values are not served from a module; to serve a class's methods, name it: {name}:CLASS)",
        ),
    ],
    ids=["no-all", "missing-name", "private-name", "all-a-string", "all-not-names", "no-functions"],
)
async def test_module_targets_that_cannot_be_served(
    capsys: Capture, write_module: Callable[[str], str], source: str, line: str
) -> None:
    name = write_module(source)
    ran = await cli(capsys, "serve", name, "--port", "0")  # were it served, never on a port in use
    assert ran.status == ExitStatus.USAGE
    assert ran.error_line == line.format(name=name)
