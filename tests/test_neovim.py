"""Interop with a real Neovim (``nvim --headless --listen``): issue 2, item 7.

Neovim is a plain msgpack-rpc peer: it knows none of asyncrpc's extensions, it
sends errors as ``[code, message]``, and it calls us back (``rpcrequest`` /
``rpcnotify``) on the connection we opened, while our own call is pending.
Each test gets its own Neovim process (about 10 ms to start).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

import asyncrpc
from asyncrpc import CallStatus
from tests.nvim_fixture import NvimProcess, start_nvim, stop_nvim

pytestmark = pytest.mark.neovim


@pytest.fixture
def nvim_process(tmp_path: Path) -> Iterator[NvimProcess]:
    """Neovim listening on a free 127.0.0.1 port."""
    process = start_nvim(tmp_path)
    yield process
    stop_nvim(process)


@pytest.fixture
def nvim_unix_process(tmp_path: Path) -> Iterator[NvimProcess]:
    """Neovim listening on a Unix socket in the test's temporary directory."""
    process = start_nvim(tmp_path, unix=True)
    yield process
    stop_nvim(process)


@pytest.fixture
async def nvim(nvim_process: NvimProcess) -> AsyncIterator[asyncrpc.Client]:
    """A client connected to Neovim over TCP."""
    assert nvim_process.host is not None
    assert nvim_process.port is not None
    async with asyncrpc.connect(nvim_process.host, nvim_process.port) as client:
        yield client


async def channel_id(client: asyncrpc.Client) -> int:
    """Our channel as Neovim numbers it: what ``rpcrequest``/``rpcnotify`` take."""
    info = await client.call("nvim_get_api_info")
    channel: int = info[0]
    return channel


async def error_types(client: asyncrpc.Client) -> dict[str, int]:
    """Neovim's own error type ids (``{"Exception": 0, "Validation": 1}``)."""
    _, metadata = await client.call("nvim_get_api_info")
    return {name: entry["id"] for name, entry in metadata["error_types"].items()}


def record_error_events(client: asyncrpc.Client) -> list[tuple[Any, ...]]:
    """Collect ``nvim_error_event``: Neovim's notification that a message it got made no sense.

    Neovim answers an unknown *notification* (say, an ``asyncrpc.cancel`` it
    does not understand) with this event, so an empty list after a round trip
    proves nothing unknown was sent (see the control test below).
    """
    events: list[tuple[Any, ...]] = []
    client.register_function(lambda *args: events.append(args), name="nvim_error_event")
    return events


class Hold:
    """A callback Neovim calls with ``rpcrequest`` that answers only when released.

    While it holds, Neovim is blocked inside ``rpcrequest`` (it still answers
    our other requests there), so a call of ours that made Neovim call it
    cannot be answered: the slow remote call the cancel and deadline tests need.
    """

    def __init__(self, client: asyncrpc.Client, channel: int) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.after = asyncio.Event()
        client.register_function(self.hold, name="py_hold")
        client.register_function(self.after.set, name="py_after")
        # rpcnotify after rpcrequest returns: Neovim writes that notification,
        # then the eval's reply, before it reads our next request.
        self.expression = f"[rpcrequest({channel}, 'py_hold'), rpcnotify({channel}, 'py_after')]"

    async def hold(self) -> str:
        self.entered.set()
        await self.release.wait()
        return "late"


# -- calls into Neovim ------------------------------------------------------------------


async def test_eval_returns_neovims_values(nvim: asyncrpc.Client) -> None:
    assert await nvim.call("nvim_eval", "1+2") == 3
    assert await nvim.stub().nvim_eval("'a' . 'b'") == "ab"
    assert await nvim.call("nvim_eval", "[1, 2.5, v:true, v:null, {'k': 'v'}]") == [
        1,
        2.5,
        True,
        None,
        {"k": "v"},
    ]


async def test_get_api_info_names_our_channel(nvim: asyncrpc.Client) -> None:
    channel, metadata = await nvim.call("nvim_get_api_info")
    assert isinstance(channel, int)
    assert channel > 0
    assert isinstance(metadata["version"]["api_level"], int)
    names = {function["name"] for function in metadata["functions"]}
    assert {"nvim_eval", "nvim_buf_get_lines", "nvim_get_api_info"} <= names
    chan_info = await nvim.call("nvim_get_chan_info", channel)
    assert chan_info["id"] == channel
    assert chan_info["mode"] == "rpc"


async def test_buffer_lines_set_and_get(nvim: asyncrpc.Client) -> None:
    lines = ["alpha", "beta", "gamma"]
    assert await nvim.call("nvim_buf_set_lines", 0, 0, -1, True, lines) is None
    assert await nvim.call("nvim_buf_get_lines", 0, 0, -1, True) == lines
    await nvim.call("nvim_buf_set_lines", 0, 1, 2, True, ["BETA", "beta2"])
    assert await nvim.call("nvim_buf_get_lines", 0, 0, -1, True) == ["alpha", "BETA", "beta2", "gamma"]
    assert await nvim.call("nvim_buf_line_count", 0) == 4
    assert await nvim.call("nvim_eval", "getline(2)") == "BETA"


async def test_buffer_and_window_ext_types_round_trip(nvim: asyncrpc.Client, tmp_path: Path) -> None:
    _, metadata = await nvim.call("nvim_get_api_info")
    buffer = await nvim.call("nvim_get_current_buf")
    assert isinstance(buffer, msgpack.ExtType)
    assert buffer.code == metadata["types"]["Buffer"]["id"]
    # The ext payload is the buffer number, msgpack-encoded.
    assert msgpack.unpackb(buffer.data) == await nvim.call("nvim_eval", "bufnr('%')")

    name = str(tmp_path / "notes.txt")
    await nvim.call("nvim_buf_set_name", buffer, name)
    assert await nvim.call("nvim_buf_get_name", buffer) == name
    assert buffer in await nvim.call("nvim_list_bufs")

    window = await nvim.call("nvim_get_current_win")
    assert isinstance(window, msgpack.ExtType)
    assert window.code == metadata["types"]["Window"]["id"]
    assert await nvim.call("nvim_win_get_buf", window) == buffer


async def test_buffer_text_that_is_not_utf8_round_trips(nvim: asyncrpc.Client) -> None:
    # Neovim keeps a file's bytes as they are (a Latin-1 file is not UTF-8) and
    # sends them as msgpack str; the connection must survive that.
    await nvim.call("nvim_buf_set_lines", 0, 0, -1, True, [b"caf\xe9", "plain"])
    lines = await nvim.call("nvim_buf_get_lines", 0, 0, -1, True)
    assert lines == ["caf\udce9", "plain"]
    assert lines[0].encode("utf-8", "surrogateescape") == b"caf\xe9"
    # Sent back, the str becomes the same bytes in Neovim.
    await nvim.call("nvim_buf_set_lines", 0, 1, 2, True, [lines[0]])
    assert await nvim.call("nvim_eval", 'getline(2) ==# "caf\\xe9"') == 1
    assert nvim.is_open


# -- negotiation -----------------------------------------------------------------------


async def test_neovim_is_a_plain_peer(nvim: asyncrpc.Client) -> None:
    # Neovim answered the hello probe with an error: no extension is used.
    assert nvim.features == frozenset()
    assert await nvim.call("nvim_eval", "40+2") == 42


async def test_connect_without_probe(nvim_process: NvimProcess) -> None:
    assert nvim_process.port is not None
    async with asyncrpc.connect("127.0.0.1", nvim_process.port, extensions=False) as client:
        assert client.features == frozenset()
        assert await client.call("nvim_eval", "6*7") == 42


# -- errors ----------------------------------------------------------------------------


async def test_eval_error_keeps_neovims_error_object(nvim: asyncrpc.Client) -> None:
    types = await error_types(nvim)
    with pytest.raises(asyncrpc.RemoteError) as info:
        await nvim.call("nvim_eval", "undefined_var_xyz")
    error = info.value
    assert type(error) is asyncrpc.RemoteError
    assert isinstance(error.raw, list)
    assert error.raw == [error.code, error.message]
    assert error.code == types["Exception"]
    assert error.type == "Exception"
    assert "E121" in error.message
    assert "undefined_var_xyz" in error.message
    assert await nvim.call("nvim_eval", "1") == 1


async def test_command_error_keeps_neovims_error_object(nvim: asyncrpc.Client) -> None:
    types = await error_types(nvim)
    with pytest.raises(asyncrpc.RemoteError) as info:
        await nvim.call("nvim_command", "bogus")
    assert info.value.raw == [types["Exception"], info.value.message]
    assert "E492" in info.value.message
    assert "bogus" in info.value.message


async def test_validation_error_has_neovims_code(nvim: asyncrpc.Client) -> None:
    types = await error_types(nvim)
    with pytest.raises(asyncrpc.RemoteError) as info:
        await nvim.call("nvim_buf_get_lines", 99999, 0, -1, True)
    assert info.value.code == types["Validation"]
    assert info.value.type == "Validation"
    assert info.value.raw == [types["Validation"], info.value.message]
    assert "99999" in info.value.message


async def test_unknown_method_is_method_not_found(nvim: asyncrpc.Client) -> None:
    with pytest.raises(asyncrpc.MethodNotFound) as info:
        await nvim.call("nvim_does_not_exist")
    error = info.value
    assert isinstance(error, asyncrpc.RemoteError)
    assert isinstance(error.raw, list)
    assert error.raw == [error.code, error.message]
    assert isinstance(error.code, int)
    assert error.message.startswith("Invalid method")
    assert "nvim_does_not_exist" in error.message
    assert await nvim.call("nvim_eval", "1") == 1


# -- Neovim calling us back --------------------------------------------------------------


async def test_rpcrequest_calls_us_while_our_call_is_pending(nvim: asyncrpc.Client) -> None:
    channel = await channel_id(nvim)
    outer: list[asyncrpc.AsyncCall[Any]] = []
    seen: list[CallStatus] = []

    def py_add(a: int, b: int) -> int:
        seen.append(outer[0].status())
        return a + b

    nvim.register_function(py_add, name="py_add")
    call = nvim.call("nvim_eval", f"rpcrequest({channel}, 'py_add', 1, 2)")
    outer.append(call)
    assert await call == 3
    assert seen == [CallStatus.PENDING]  # Neovim called us while our call was pending
    assert await nvim.call("nvim_eval", f"rpcrequest({channel}, 'py_add', 40, 2) * 10") == 420


async def test_async_callback_calls_neovim_back(nvim: asyncrpc.Client) -> None:
    # Three levels on one connection: our eval -> Neovim's rpcrequest -> our
    # async handler -> its own call into Neovim (answered inside rpcrequest).
    channel = await channel_id(nvim)

    async def py_nested(x: int) -> Any:
        peer = asyncrpc.current_call().peer
        return await peer.call("nvim_eval", f"{x} * 10")

    nvim.register_function(py_nested, name="py_nested")
    assert await nvim.call("nvim_eval", f"rpcrequest({channel}, 'py_nested', 4) + 1") == 41


async def test_rpcnotify_reaches_our_notification_handler(nvim: asyncrpc.Client) -> None:
    channel = await channel_id(nvim)
    received: list[tuple[Any, ...]] = []
    arrived = asyncio.Event()

    def py_note(*args: Any) -> None:
        received.append(args)
        arrived.set()

    nvim.register_function(py_note, name="py_note")
    assert (
        await nvim.call("nvim_eval", f"rpcnotify({channel}, 'py_note', 'hi', [1, 2], {{'k': v:true}})") == 1
    )
    async with asyncio.timeout(5):
        await arrived.wait()
    assert received == [("hi", [1, 2], {"k": True})]


async def test_our_notification_reaches_neovim(nvim: asyncrpc.Client) -> None:
    nvim.notify("nvim_set_var", "from_python", [7, "x"])
    # Neovim handles a channel's messages in order: the notification came first.
    assert await nvim.call("nvim_get_var", "from_python") == [7, "x"]


async def test_failing_callback_gives_neovim_an_error_it_understands(nvim: asyncrpc.Client) -> None:
    channel = await channel_id(nvim)

    def py_boom() -> None:
        raise ValueError("kaboom from python")

    nvim.register_function(py_boom, name="py_boom")
    # Our pending eval fails with Neovim's error, which carries our message.
    with pytest.raises(asyncrpc.RemoteError) as info:
        await nvim.call("nvim_eval", f"rpcrequest({channel}, 'py_boom')")
    assert "py_boom" in info.value.message
    assert "ValueError: kaboom from python" in info.value.message
    assert info.value.raw == [info.value.code, info.value.message]
    # Inside Neovim, Vim script sees the same text (Neovim only shows the
    # message of an error in its own [type, message] shape).
    script = f"try\n  call rpcrequest({channel}, 'py_boom')\ncatch\n  let g:caught = v:exception\nendtry"
    await nvim.call("nvim_exec", script, False)
    caught = await nvim.call("nvim_get_var", "caught")
    assert "ValueError: kaboom from python" in caught
    assert nvim.is_open


async def test_aborted_callback_keeps_code_and_message_for_neovim(nvim: asyncrpc.Client) -> None:
    # Neovim accepts only its own error types as an error's code; any other
    # code made it show "unknown error" and drop the message.
    channel = await channel_id(nvim)

    def py_abort() -> None:
        asyncrpc.current_call().defer().abort(42, "no such record")

    nvim.register_function(py_abort, name="py_abort")
    script = f"try\n  call rpcrequest({channel}, 'py_abort')\ncatch\n  let g:caught = v:exception\nendtry"
    await nvim.call("nvim_exec", script, False)
    caught = await nvim.call("nvim_get_var", "caught")
    assert "unknown error" not in caught
    assert "CallAborted[42]: no such record" in caught


async def test_unknown_callback_method_is_reported_to_neovim(nvim: asyncrpc.Client) -> None:
    channel = await channel_id(nvim)
    with pytest.raises(asyncrpc.RemoteError) as info:
        await nvim.call("nvim_eval", f"rpcrequest({channel}, 'py_not_registered')")
    assert "MethodNotFound" in info.value.message
    assert "py_not_registered" in info.value.message


# -- interleaving, cancel, deadline -----------------------------------------------------


async def test_many_concurrent_calls(nvim: asyncrpc.Client) -> None:
    calls = [nvim.call("nvim_eval", f"{i} * 3 + 1") for i in range(200)]
    assert len({call.msgid for call in calls}) == 200
    assert await asyncio.gather(*calls) == [i * 3 + 1 for i in range(200)]
    assert nvim.connection.pending_count == 0


async def test_unknown_notification_comes_back_as_error_event(nvim: asyncrpc.Client) -> None:
    # Control for the cancel and deadline tests: had we sent Neovim an
    # asyncrpc.cancel while it waits in rpcrequest, we would hear of it.
    errors = record_error_events(nvim)
    hold = Hold(nvim, await channel_id(nvim))
    slow = nvim.call("nvim_eval", hold.expression)
    await hold.entered.wait()
    assert slow.msgid is not None
    nvim.notify("asyncrpc.cancel", slow.msgid)
    assert await nvim.call("nvim_eval", "1") == 1  # answered inside rpcrequest, after the notification
    assert len(errors) == 1
    assert "asyncrpc.cancel" in errors[0][1]
    hold.release.set()
    assert await slow == ["late", 1]


async def test_abortive_cancel_of_call_into_neovim(nvim: asyncrpc.Client) -> None:
    errors = record_error_events(nvim)
    hold = Hold(nvim, await channel_id(nvim))
    slow = nvim.call("nvim_eval", hold.expression)
    await hold.entered.wait()  # Neovim is blocked in rpcrequest: it cannot answer slow
    assert await nvim.call("nvim_eval", "'meanwhile'") == "meanwhile"

    assert slow.cancel() is True
    assert slow.status() is CallStatus.CANCELLED  # at once, without Neovim
    with pytest.raises(asyncrpc.CallCancelled):
        await slow
    # Neovim has no cancel: its reply will still come, so the msgid stays held.
    assert nvim.features == frozenset()
    assert nvim.connection.pending_count == 1

    hold.release.set()
    async with asyncio.timeout(5):
        await hold.after.wait()
    # The late reply is dropped, not given to this call (or any other).
    assert await nvim.call("nvim_eval", "'fresh'") == "fresh"
    assert nvim.connection.pending_count == 0
    assert slow.status() is CallStatus.CANCELLED
    assert errors == []  # nothing Neovim does not understand was sent


async def test_deadline_on_call_into_neovim(nvim: asyncrpc.Client) -> None:
    errors = record_error_events(nvim)
    hold = Hold(nvim, await channel_id(nvim))
    slow = nvim.call("nvim_eval", hold.expression, timeout=0.05)
    with pytest.raises(asyncrpc.DeadlineExceeded):
        await slow
    assert hold.entered.is_set()
    assert not hold.release.is_set()  # Neovim really could not answer in time
    assert slow.status() is CallStatus.FAILED
    assert nvim.connection.pending_count == 1
    assert await nvim.call("nvim_eval", "'meanwhile'") == "meanwhile"

    hold.release.set()
    async with asyncio.timeout(5):
        await hold.after.wait()
    assert await nvim.call("nvim_eval", "'fresh'") == "fresh"
    assert nvim.connection.pending_count == 0
    assert errors == []  # no 5-element request, no cancel: nothing unknown was sent


async def test_neovim_exiting_fails_pending_calls(nvim: asyncrpc.Client) -> None:
    hold = Hold(nvim, await channel_id(nvim))
    slow = nvim.call("nvim_eval", hold.expression)
    await hold.entered.wait()  # slow can only be answered once we release hold: never
    quit_call = nvim.call("nvim_command", "qa!")  # run inside rpcrequest; Neovim exits
    results = await asyncio.gather(slow, quit_call, return_exceptions=True)
    assert all(isinstance(result, asyncrpc.ConnectionLost) for result in results), results
    assert nvim.connection.pending_count == 0
    assert not nvim.is_open
    with pytest.raises(asyncrpc.ConnectionLost):
        nvim.call("nvim_eval", "1")


# -- other transports and clients --------------------------------------------------------


async def test_unix_socket(nvim_unix_process: NvimProcess) -> None:
    assert nvim_unix_process.path is not None
    async with asyncrpc.connect(path=nvim_unix_process.path) as client:
        assert client.features == frozenset()
        assert await client.call("nvim_eval", "1+2") == 3
        assert await client.call("nvim_eval", "v:servername") == nvim_unix_process.path
        client.register_function(lambda a, b: a * b, name="py_mul")
        channel = await channel_id(client)
        assert await client.call("nvim_eval", f"rpcrequest({channel}, 'py_mul', 6, 7)") == 42


def test_blocking_client(nvim_process: NvimProcess) -> None:
    assert nvim_process.port is not None
    with asyncrpc.sync.connect("127.0.0.1", nvim_process.port) as client:
        assert client.call("nvim_eval", "1+2") == 3
        with pytest.raises(asyncrpc.RemoteError) as info:
            client.call("nvim_eval", "undefined_var_xyz")
        assert info.value.raw == [info.value.code, info.value.message]
