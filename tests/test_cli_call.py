"""``asyncrpc call``: mistakes, timeouts and peers that are not msgpack-rpc, as a user sees them.

Each test runs the command in-process (``asyncrpc.cli.main``) against real
servers on 127.0.0.1 started by the test: asyncrpc itself, Neovim, and small
asyncio servers that answer like an HTTP server, never answer, or hang up.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

import asyncrpc
from asyncrpc.cli import ExitStatus
from tests.cli_helpers import (
    answer_http,
    answer_only_hello,
    cli,
    close_at_once,
    drop_on_call,
    never_answer,
    peer,
)
from tests.nvim_fixture import start_nvim, stop_nvim

Capture = pytest.CaptureFixture[str]


def echo(value: Any) -> Any:
    return value


async def hang() -> None:
    await asyncio.Event().wait()


@pytest.fixture
async def server() -> AsyncIterator[str]:
    """An asyncrpc server on a loopback port; yields HOST:PORT."""
    srv = asyncrpc.Server()
    srv.register_function(echo)
    srv.register_function(hang)
    srv.register_function(lambda: {b"key": b"value", 1: [b"\xff\x00", msgpack.ExtType(5, b"x")]}, name="keys")
    srv.register_function(lambda: msgpack.Timestamp(1, 0), name="timestamp")
    srv.register_function(lambda: "caf\udce9", name="latin1")  # a str whose bytes are not UTF-8
    await srv.start("127.0.0.1", 0)
    yield f"127.0.0.1:{srv.port}"
    await srv.close(grace=0.5)


# -- the command line is checked before any I/O ------------------------------------------------


@pytest.mark.parametrize(
    ("address", "line"),
    [
        (
            "127.0.0.1",
            "error: '127.0.0.1' has no port: give HOST:PORT (e.g. 127.0.0.1:6000), "
            "or the path of a Unix socket (./NAME for one in this directory)",
        ),
        (
            "127.0.0.1:http",
            "error: bad port 'http' in '127.0.0.1:http': give HOST:PORT with a port from 1 to 65535",
        ),
        ("::1:6000", "error: write an IPv6 address in brackets, e.g. [::1]:6000, not '::1:6000'"),
        (
            "127.0.0.1:70000",
            "error: bad address '127.0.0.1:70000': port must be an integer from 1 to 65535, not 70000",
        ),
        ("127.0.0.1:0", "error: bad address '127.0.0.1:0': port must be an integer from 1 to 65535, not 0"),
    ],
)
async def test_bad_address_is_one_line_and_status_2(capsys: Capture, address: str, line: str) -> None:
    ran = await cli(capsys, "call", address, "add", "1", "2")
    assert ran.status == ExitStatus.USAGE
    assert ran.error_line == line
    assert ran.out == ""


async def test_malformed_json_argument_is_an_error_naming_it(capsys: Capture, server: str) -> None:
    ran = await cli(capsys, "call", server, "echo", "1", "hello")
    assert ran.status == ExitStatus.USAGE
    assert ran.error_line == (
        "error: argument 2 is not valid JSON: Expecting value at character 0 in 'hello' "
        "(write a string as '\"text\"', or use --raw to send arguments as plain strings)"
    )
    assert ran.out == ""


async def test_json_arguments_keep_their_types_and_raw_sends_strings(capsys: Capture, server: str) -> None:
    ran = await cli(capsys, "call", server, "echo", '{"a": [1, 2.5, true, null, "x"]}')
    assert (ran.status, json.loads(ran.out)) == (0, {"a": [1, 2.5, True, None, "x"]})
    ran = await cli(capsys, "call", "--raw", server, "echo", '{"a": 1}')
    assert (ran.status, json.loads(ran.out)) == (0, '{"a": 1}')
    ran = await cli(capsys, "call", "--raw", server, "echo", "--", "-not-an-option")
    assert (ran.status, json.loads(ran.out)) == (0, "-not-an-option")


async def test_an_argument_msgpack_cannot_hold_is_a_usage_error(capsys: Capture, server: str) -> None:
    ran = await cli(capsys, "call", server, "echo", str(2**64))
    assert ran.status == ExitStatus.USAGE
    assert ran.error_line.startswith("error: the arguments cannot be sent as MessagePack: ")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--timeout", "0", "argument --timeout: must be a positive number of seconds, not '0'"),
        ("--timeout", "soon", "argument --timeout: 'soon' is not a number of seconds"),
        (
            "--connect-timeout",
            "-1",
            "argument --connect-timeout: must be a positive number of seconds, not '-1'",
        ),
        (
            "--connect-timeout",
            "nan",
            "argument --connect-timeout: must be a positive number of seconds, not 'nan'",
        ),
    ],
)
async def test_bad_option_values_exit_2_with_the_usage_line(
    capsys: Capture, option: str, value: str, message: str
) -> None:
    ran = await cli(capsys, "call", option, value, "127.0.0.1:6000", "add")
    assert ran.status == ExitStatus.USAGE
    assert ran.err.startswith("usage: asyncrpc call ")
    assert ran.err.endswith(f"asyncrpc call: error: {message}\n")


# -- results --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "shown"),
    [
        ("keys", {"key": "value", "1": [{"base64": "/wA="}, {"ext": 5, "data": "eA=="}]}),
        ("timestamp", "1970-01-01T00:00:01+00:00"),  # a msgpack timestamp, in ISO 8601
        ("latin1", {"base64": "Y2Fm6Q=="}),
    ],
)
async def test_values_json_cannot_hold_are_printed_readably(
    capsys: Capture, server: str, method: str, shown: Any
) -> None:
    ran = await cli(capsys, "call", server, method)
    assert (ran.status, ran.err) == (0, "")
    assert json.loads(ran.out) == shown


# -- peers that cannot be called --------------------------------------------------------------


async def test_nothing_listening_is_cannot_connect(capsys: Capture) -> None:
    async with peer(close_at_once) as address:
        pass  # the port is free again
    ran = await cli(capsys, "call", address, "add")
    assert ran.status == ExitStatus.USAGE
    assert (
        ran.error_line == f"error: cannot connect to {address}: connection refused (is the server running?)"
    )


async def test_missing_unix_socket_is_cannot_connect(capsys: Capture, tmp_path: Path) -> None:
    path = str(tmp_path / "none.sock")
    ran = await cli(capsys, "call", path, "add")
    assert ran.status == ExitStatus.USAGE
    assert (
        ran.error_line
        == f"error: cannot connect to {path}: no such file or directory (is the server running?)"
    )


async def test_http_server_is_named_as_not_msgpack_rpc_at_once(capsys: Capture) -> None:
    async with peer(answer_http) as address:
        ran = await cli(capsys, "call", address, "add", "1", "2")
    assert ran.status == ExitStatus.USAGE
    assert ran.error_line.startswith(f"error: {address} does not speak msgpack-rpc: ")
    assert ran.seconds < 3.0  # recognised from its answer, not by waiting for a timeout


async def test_silent_peer_ends_within_the_connect_timeout(capsys: Capture) -> None:
    async with peer(never_answer) as address:
        ran = await cli(capsys, "call", "--connect-timeout", "0.5", address, "add", "1", "2")
    assert ran.status == ExitStatus.USAGE
    assert ran.error_line == (
        f"error: no reply from {address} within 0.5s: is it a msgpack-rpc server? "
        "(--connect-timeout S waits longer)"
    )
    assert 0.4 < ran.seconds < 2.5  # not the hello's wait plus the call's --timeout


async def test_peer_that_hangs_up_at_once_is_named(capsys: Capture) -> None:
    async with peer(close_at_once) as address:
        ran = await cli(capsys, "call", address, "add", "1", "2")
    assert ran.status == ExitStatus.USAGE
    assert ran.error_line == (
        f"error: {address} closed the connection without answering: is it a msgpack-rpc server? "
        "(if it speaks TLS: --tls, or --tls-ca FILE)"
    )


# -- calls that get no reply ------------------------------------------------------------------


async def test_call_timeout_exits_3(capsys: Capture, server: str) -> None:
    ran = await cli(capsys, "call", "--timeout", "0.2", server, "hang")
    assert ran.status == ExitStatus.NO_REPLY
    assert ran.error_line == f"error: no reply to 'hang' from {server} within 0.2s (--timeout S waits longer)"
    assert ran.seconds < 3.0


async def test_call_timeout_on_a_plain_peer_exits_3(capsys: Capture) -> None:
    async with peer(answer_only_hello) as address:
        ran = await cli(capsys, "call", "--timeout", "0.2", address, "add", "1", "2")
    assert ran.status == ExitStatus.NO_REPLY
    assert ran.error_line.startswith(f"error: no reply to 'add' from {address} within 0.2s")


async def test_connection_dropped_before_the_reply_exits_3(capsys: Capture) -> None:
    async with peer(drop_on_call) as address:
        ran = await cli(capsys, "call", address, "add", "1", "2")
    assert ran.status == ExitStatus.NO_REPLY
    assert ran.error_line.startswith(f"error: the connection to {address} was lost before the reply came")


# -- Neovim, a plain msgpack-rpc peer --------------------------------------------------------


@pytest.mark.neovim
async def test_neovim_answers_within_a_short_connect_timeout(capsys: Capture, tmp_path: Path) -> None:
    nvim = start_nvim(tmp_path)
    try:
        ran = await cli(capsys, "call", "--connect-timeout", "2", nvim.address, "nvim_eval", '"1+2"')
        assert (ran.status, ran.out, ran.err) == (0, "3\n", "")
        assert ran.seconds < 2.0  # Neovim answers the hello with an error at once
        ran = await cli(capsys, "call", "--connect-timeout", "2", nvim.address, "nvim_eval", '"1+"')
        assert ran.status == ExitStatus.REMOTE_ERROR
        assert ran.error_line.startswith("error: Exception: Vim:E15: Invalid expression")
    finally:
        stop_nvim(nvim)
