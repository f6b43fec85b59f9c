"""Replies that answer no call as sent cost the connection nothing (issue 9, item 3).

- A reply larger than this side's ``max_message_size`` fails only the call it
  answers, with ``MessageTooLarge``; the others, before and after it, go on.
- A response whose msgid is not a uint32 (msgpack-rpc-lite answers an
  unknown notification with ``[1, -1, "Not Implemented", nil]``) is logged
  once and ignored.

The peers are real sockets on 127.0.0.1: a scripted plain server, an
asyncrpc server that does not announce our limit to itself (a plain
client), and a real Neovim.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgpack
import pytest

import asyncrpc
from asyncrpc import notify
from tests.nvim_fixture import start_nvim, stop_nvim
from tests.services import BOUND

MiB = 1024 * 1024
SMALL = asyncrpc.Limits(max_message_size=1 * MiB)


@asynccontextmanager
async def scripted_peer(answer: Callable[[int, str, list[Any]], list[bytes]]) -> AsyncIterator[int]:
    """A plain msgpack-rpc server on 127.0.0.1 whose replies ``answer(msgid, method, params)`` writes."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        unpacker = msgpack.Unpacker(raw=False)
        while data := await reader.read(65536):
            unpacker.feed(data)
            for message in unpacker:
                if message[0] == 0:
                    writer.writelines(answer(message[1], message[2], message[3]))
                else:
                    writer.writelines(answer(-1, message[1], message[2]))
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


def pack(message: Any) -> bytes:
    return bytes(msgpack.packb(message, use_bin_type=True))


def big_or_small(msgid: int, method: str, params: list[Any]) -> list[bytes]:
    if method == "big":
        return [pack([1, msgid, None, b"\x00" * (3 * MiB)])]
    return [pack([1, msgid, None, [method, *params]])]


async def test_a_reply_over_the_limit_fails_only_its_call() -> None:
    async with (
        scripted_peer(big_or_small) as port,
        asyncrpc.connect("127.0.0.1", port, limits=SMALL, extensions=False) as client,
    ):
        before = client.call("small", 1)
        big = client.call("big")
        after = client.call("small", 2)
        assert await before == ["small", 1]
        with pytest.raises(asyncrpc.MessageTooLarge) as raised:
            await big
        assert await after == ["small", 2]
        size = len(pack([1, big.msgid, None, b"\x00" * (3 * MiB)]))
        assert f"the reply to 'big' is {size} bytes" in str(raised.value)
        assert "max_message_size=1048576" in str(raised.value)
        assert client.is_open
        assert await client.call("small", 3, timeout=BOUND) == ["small", 3]
        assert client.connection.pending_count == 0


async def test_a_reply_over_the_limit_is_notified_once_in_its_mode() -> None:
    async with (
        scripted_peer(big_or_small) as port,
        asyncrpc.connect("127.0.0.1", port, limits=SMALL, extensions=False) as client,
    ):
        completions = notify.CompletionPort()
        big = client.call("big", notify=completions)
        completion = await completions.get(timeout=BOUND)
        assert completion.call is big
        assert isinstance(big.exception(), asyncrpc.MessageTooLarge)
        assert completions.qsize() == 0


class Blob:
    def blob(self, size: int) -> bytes:
        return b"\x01" * size


async def test_an_asyncrpc_server_reply_too_large_for_a_plain_client() -> None:
    """The client speaks no extension, so the server cannot know its limit: the client skips the reply."""
    server = asyncrpc.Server()
    server.register(Blob(), namespace="b")
    async with server:
        await server.start("127.0.0.1", 0)
        async with asyncrpc.connect("127.0.0.1", server.port, limits=SMALL, extensions=False) as client:
            with pytest.raises(asyncrpc.MessageTooLarge):
                await client.call("b.blob", 2 * MiB, timeout=BOUND)
            assert await client.call("b.blob", 10, timeout=BOUND) == b"\x01" * 10


async def test_a_reply_too_large_for_a_call_already_ended_is_dropped_quietly() -> None:
    gate = asyncio.Event()

    def later(msgid: int, method: str, params: list[Any]) -> list[bytes]:
        if method == "release":
            gate.set()
            return [pack([1, held[0], None, b"\x00" * (2 * MiB)]), pack([1, msgid, None, "released"])]
        held.append(msgid)
        return []

    held: list[int] = []
    async with (
        scripted_peer(later) as port,
        asyncrpc.connect("127.0.0.1", port, limits=SMALL, extensions=False) as client,
    ):
        with pytest.raises(asyncrpc.DeadlineExceeded):
            await client.call("slow", timeout=0.05)
        assert await client.call("release", timeout=BOUND) == "released"
        assert gate.is_set()
        assert client.is_open


def stray_after_notifications(msgid: int, method: str, params: list[Any]) -> list[bytes]:
    if msgid == -1:  # what msgpack-rpc-lite answers to a notification it does not know
        return [pack([1, -1, "Not Implemented", None])]
    return [pack([1, msgid, None, method])]


async def test_a_stray_response_is_logged_once_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncrpc")
    async with (
        scripted_peer(stray_after_notifications) as port,
        asyncrpc.connect("127.0.0.1", port, extensions=False) as client,
    ):
        for _ in range(3):
            client.notify("unknown", 1)
        assert await client.call("after", timeout=BOUND) == "after"
        assert client.is_open
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "msgid -1, which answers no call; ignored (error 'Not Implemented')" in warnings[0]


@pytest.mark.neovim
async def test_reading_a_neovim_buffer_over_the_limit_fails_that_call_only(tmp_path: Path) -> None:
    """A 20 MB buffer: Neovim's reply is over the default 16 MiB limit; the connection survives it."""
    nvim = start_nvim(tmp_path)
    try:
        assert nvim.port is not None
        async with asyncrpc.connect("127.0.0.1", nvim.port) as client:
            lines = "vim.fn['repeat']({string.rep('y', 1000)}, 20000)"
            fill = f"vim.api.nvim_buf_set_lines(0, 0, -1, false, {lines})"
            await client.call("nvim_exec_lua", fill, [], timeout=30)
            assert await client.call("nvim_buf_line_count", 0, timeout=BOUND) == 20000
            whole = client.call("nvim_buf_get_lines", 0, 0, -1, False, timeout=30)
            count = client.call("nvim_eval", "line('$')", timeout=30)
            with pytest.raises(asyncrpc.MessageTooLarge):
                await whole
            assert await count == 20000
            assert await client.call("nvim_buf_get_lines", 0, 0, 2, False, timeout=BOUND) == ["y" * 1000] * 2
    finally:
        stop_nvim(nvim)
