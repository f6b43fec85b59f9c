"""A call made from a thread or event loop other than the client's is refused where it is made (behaviour 13).

asyncio objects belong to one loop and are not thread-safe: such a call used to
be accepted and fail later with asyncio's "attached to a different loop", after
touching the connection from the wrong thread. Now it raises ``RuntimeError``
at once, naming ``asyncrpc.sync`` (the client for plain threads), sends
nothing, and no notification of any mode is ever delivered for it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

import asyncrpc
from asyncrpc import notify


def in_thread(fn: Callable[[], Any]) -> BaseException | None:
    """Run ``fn`` in a plain thread; return what it raised (None if nothing)."""
    raised: list[BaseException | None] = [None]

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            raised[0] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(5)
    assert not thread.is_alive()
    return raised[0]


def in_other_loop(fn: Callable[[], Any]) -> BaseException | None:
    """Run ``fn`` inside a running event loop of another thread."""

    async def main() -> None:
        fn()

    return in_thread(lambda: asyncio.run(main()))


@pytest.mark.parametrize("where", [in_thread, in_other_loop], ids=["thread", "other-loop"])
async def test_call_from_elsewhere_raises_at_the_call_site_and_delivers_nothing(
    client: asyncrpc.Client, where: Callable[[Callable[[], Any]], BaseException | None]
) -> None:
    polling = notify.Polling()
    handle: asyncrpc.AsyncCall[Any] = asyncrpc.AsyncCall(notify=polling)
    error = where(lambda: client.call("add", 1, 2, notify=polling))
    assert isinstance(error, RuntimeError)
    assert "asyncrpc.sync" in str(error)
    error = where(lambda: client.call("add", 1, 2, handle=handle))
    assert isinstance(error, RuntimeError)
    assert handle.status() is asyncrpc.CallStatus.INITIALIZED  # the handle is untouched
    error = where(lambda: client.notify("demo.NonAsyncFunc", "from elsewhere"))
    assert isinstance(error, RuntimeError)
    assert client.connection.pending_count == 0
    # The connection is unharmed, and nothing was ever delivered.
    assert await client.call("add", 1, 2) == 3
    assert polling.completed == 0
    assert await client.call("add", 2, 2, handle=handle) == 4
