"""Flow control against careless and hostile peers (behaviours 10 and 12, and a reused msgid).

A peer that never reads, that pipelines thousands of requests in one write,
that floods notifications or reuses one msgid: what it sends beyond the limits
waits unread in the socket, and nothing it sent is lost once it reads again.

Some tests give the server a short window (``WINDOW``) in which, without the
limit, it would have answered or started everything; they check that it did
not. That window is the one place these tests sleep: they wait for something
*not* to happen.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

import asyncrpc
from tests.rawpeer import RawPeer, pack
from tests.services import BOUND

WINDOW = 0.3
BLOB = b"x" * 65536  # one reply: 64 KiB
REQUESTS = 1000  # answered all at once, 64 MiB of replies would pile up


class Tally:
    """A count that tests can await (``await tally.reached(n)``), bumped from any thread."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.value = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def bump(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._bump()
        else:
            self.loop.call_soon_threadsafe(self._bump)

    def _bump(self) -> None:
        self.value += 1
        for count, future in self._waiters:
            if self.value >= count and not future.done():
                future.set_result(None)

    async def reached(self, count: int) -> None:
        if self.value >= count:
            return
        future = self.loop.create_future()
        self._waiters.append((count, future))
        async with asyncio.timeout(BOUND):
            await future


class Blobs:
    """Handlers of every kind that answer with 64 KiB, counting the calls they answer."""

    def __init__(self) -> None:
        self.answered = Tally()
        self.entered = Tally()
        self.finished = Tally()
        self.gate = asyncio.Event()

    def inline(self) -> bytes:
        self.answered.bump()
        return BLOB

    async def task(self) -> bytes:
        self.answered.bump()
        return BLOB

    @asyncrpc.blocking
    def thread(self) -> bytes:
        self.answered.bump()
        return BLOB

    async def hold(self, *_args: Any) -> str:
        self.entered.bump()
        await self.gate.wait()
        self.finished.bump()
        return "released"


@pytest.fixture
async def blobs() -> Blobs:
    return Blobs()


async def start(blobs: Blobs, **options: Any) -> asyncrpc.Server:
    server = asyncrpc.Server(**options)
    server.register(blobs, namespace="b")
    await server.start("127.0.0.1", 0)
    return server


@pytest.fixture
async def server(blobs: Blobs) -> AsyncIterator[asyncrpc.Server]:
    server = await start(blobs, max_inflight=32)
    yield server
    blobs.gate.set()
    await server.close(grace=1.0)


@pytest.mark.parametrize("kind", ["inline", "task", "thread"])
async def test_a_peer_that_never_reads_cannot_make_the_server_buffer_without_bound(
    blobs: Blobs, server: asyncrpc.Server, kind: str
) -> None:
    peer = await RawPeer.connect(server.port)
    try:
        # One write, so that the requests arrive in as few reads as the kernel makes.
        await peer.send(b"".join(pack([0, msgid, f"b.{kind}", []]) for msgid in range(REQUESTS)))
        await blobs.answered.reached(16)
        await asyncio.sleep(WINDOW)  # unbounded, every request would be answered by now
        # What the kernel's socket buffers hold (a few MiB on loopback), the
        # write buffer's high-water mark and one chunk of replies: far below 1000.
        assert blobs.answered.value <= 200, f"{blobs.answered.value} of {REQUESTS} answered into a full pipe"

        # Once the peer reads, every request is answered, none lost, none twice.
        replies = await peer.messages(REQUESTS, within=30)
        assert sorted(msgid for _, msgid, _, _ in replies) == list(range(REQUESTS))
        assert all(error is None and result == BLOB for _, _, error, result in replies)
        assert blobs.answered.value == REQUESTS
    finally:
        peer.close()


async def test_pipelined_requests_in_one_read_pause_between_replies(
    blobs: Blobs, server: asyncrpc.Server
) -> None:
    """Inline handlers answer in the read itself: the read stops as soon as the pipe is full."""
    peer = await RawPeer.connect(server.port)
    try:
        await peer.send(b"".join(pack([0, msgid, "b.inline", []]) for msgid in range(REQUESTS)))
        await blobs.answered.reached(1)
        await asyncio.sleep(WINDOW)
        answered = blobs.answered.value
        assert answered < REQUESTS // 5
        # A last request after the rest waits its turn behind them: order is kept.
        await peer.send(pack([0, REQUESTS, "b.inline", []]))
        replies = await peer.messages(REQUESTS + 1, within=30)
        assert [msgid for _, msgid, _, _ in replies] == list(range(REQUESTS + 1))
    finally:
        peer.close()


async def test_at_most_max_inflight_requests_run_and_the_rest_wait_unread(blobs: Blobs) -> None:
    server = await start(blobs, max_inflight=10)
    peer = await RawPeer.connect(server.port, receive_buffer=1 << 20)
    try:
        await peer.send(b"".join(pack([0, msgid, "b.hold", []]) for msgid in range(500)))
        await blobs.entered.reached(10)
        await asyncio.sleep(WINDOW)
        assert blobs.entered.value == 10
        blobs.gate.set()
        replies = await peer.messages(500)
        assert sorted(msgid for _, msgid, _, _ in replies) == list(range(500))
        assert {result for _, _, _, result in replies} == {"released"}
    finally:
        peer.close()
        blobs.gate.set()
        await server.close(grace=1.0)


async def test_notifications_count_toward_max_inflight(blobs: Blobs) -> None:
    server = await start(blobs, max_inflight=10)
    peer = await RawPeer.connect(server.port, receive_buffer=1 << 20)
    try:
        await peer.send(b"".join(pack([2, "b.hold", [n]]) for n in range(2000)))
        await blobs.entered.reached(10)
        await asyncio.sleep(WINDOW)
        assert blobs.entered.value == 10  # not 2000 handler tasks
        blobs.gate.set()
        await blobs.finished.reached(2000)  # and none of them was dropped
        # Requests still get through once the notifications are done.
        await peer.send(pack([0, 1, "b.inline", []]))
        (reply,) = await peer.messages(1)
        assert reply == [1, 1, None, BLOB]
    finally:
        peer.close()
        await server.close(grace=1.0)


async def test_server_close_waits_for_notification_handlers(blobs: Blobs) -> None:
    server = await start(blobs)
    loop = asyncio.get_running_loop()
    async with asyncrpc.connect("127.0.0.1", server.port) as client:
        client.notify("b.hold", "note")
        await blobs.entered.reached(1)
        loop.call_later(0.2, blobs.gate.set)
        started = loop.time()
        await server.close(grace=5.0)
        assert blobs.finished.value == 1  # the handler ran to its end before close() returned
        assert loop.time() - started >= 0.15


async def test_a_reused_msgid_cannot_slip_past_max_inflight(blobs: Blobs) -> None:
    server = await start(blobs, max_inflight=10)
    peer = await RawPeer.connect(server.port, receive_buffer=1 << 20)
    try:
        await peer.send(b"".join(pack([0, 0, "b.hold", []]) for _ in range(1000)))
        await blobs.entered.reached(1)
        # Every copy after the first is refused at once, with an error naming why.
        refusals = await peer.messages(999)
        assert all(msgid == 0 and result is None for _, msgid, _, result in refusals)
        assert all("InvalidRequest" in str(error) for _, _, error, _ in refusals)
        assert blobs.entered.value == 1
        blobs.gate.set()
        (answer,) = await peer.messages(1)
        assert answer == [1, 0, None, "released"]
    finally:
        peer.close()
        blobs.gate.set()
        await server.close(grace=1.0)
