"""Deadlines (``timeout=``), end to end over loopback sockets.

Behaviour 7: a deadline ends the call with ``DeadlineExceeded`` on the client
and, where the peer speaks the extension, cancels the handler on the server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

import asyncrpc
from asyncrpc import CallStatus, DeadlineExceeded, notify
from tests.services import BOUND, SLACK, serve, wait


class Probe:
    """Handlers that record what the server saw of their deadline."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.expired = asyncio.Event()  # on_cancel fired
        self.release = asyncio.Event()
        self.deadlines: list[float | None] = []
        self.received_at: list[float] = []
        self.cancel_flags: list[bool] = []  # test_cancel() seen at points of interest
        self.remaining_at_cancel: list[float | None] = []
        self.tokens: list[asyncrpc.CompletionToken] = []
        self.connections: list[asyncrpc.Connection] = []
        self.port = 0

    def _enter(self) -> asyncrpc.ServerCall:
        call = asyncrpc.current_call()
        self.deadlines.append(call.deadline)
        self.received_at.append(asyncio.get_running_loop().time())
        self.connections.append(call.peer.connection)
        self.started.set()
        return call

    async def hang(self) -> str:
        self._enter()
        try:
            await self.release.wait()
            return "released"
        except asyncio.CancelledError:
            self.cancelled.set()
            raise

    @asyncrpc.cooperative
    async def cooperate(self) -> bool:
        call = self._enter()
        self.cancel_flags.append(call.test_cancel())
        turned = asyncio.Event()
        call.on_cancel(lambda _call, _event: turned.set())
        await turned.wait()
        self.cancel_flags.append(call.test_cancel())
        self.remaining_at_cancel.append(call.time_remaining())
        self.expired.set()
        return call.test_cancel()

    @asyncrpc.cooperative
    async def ignore(self) -> str:
        """Cooperative, and never looks at test_cancel(): only a release ends it."""
        self._enter()
        await self.release.wait()
        return "released"

    def park(self) -> None:
        """A plain handler that defers its reply: no task on the server either."""
        call = self._enter()
        self.tokens.append(call.defer())
        call.on_cancel(lambda _call, _event: self.expired.set())

    async def ping(self) -> str:
        return "pong"


@pytest.fixture
async def probe() -> AsyncIterator[Probe]:
    p = Probe()
    server = await serve(p, "p")
    yield p
    p.release.set()
    await server.close(grace=1.0)


@pytest.fixture
async def rpc(probe: Probe) -> AsyncIterator[asyncrpc.Client]:
    async with asyncrpc.connect("127.0.0.1", probe.port) as c:
        yield c


async def test_behaviour_7_deadline_fails_call_and_cancels_server_handler(
    rpc: asyncrpc.Client, probe: Probe
) -> None:
    assert "deadline" in rpc.features
    port = notify.CompletionPort()
    started = time.monotonic()
    call = rpc.call("p.hang", timeout=0.2, notify=port.bind(key="d"))

    async with asyncio.timeout(BOUND):
        completion = await port.get()
    elapsed = time.monotonic() - started
    assert completion.call is call
    assert call.status() is CallStatus.FAILED
    with pytest.raises(DeadlineExceeded):
        call.complete()
    with pytest.raises(DeadlineExceeded):
        await call
    assert 0.2 - SLACK <= elapsed < 1.0

    # The server knew the deadline and cancelled its handler when it passed.
    assert probe.deadlines[0] is not None
    assert probe.deadlines[0] == pytest.approx(probe.received_at[0] + 0.2, abs=0.05)
    await wait(probe.cancelled)
    assert asyncio.get_running_loop().time() >= probe.deadlines[0] - SLACK

    # Its answer (DeadlineExceeded) arrives late and is absorbed.
    async with asyncio.timeout(BOUND):
        await probe.connections[0].drain_serving()
        assert await rpc.call("p.ping") == "pong"
    assert probe.connections[0].serving_count == 0
    assert rpc.connection.pending_count == 0
    assert port.qsize() == 0
    assert call.status() is CallStatus.FAILED


async def test_deadline_is_a_timer_not_a_task(rpc: asyncrpc.Client, probe: Probe) -> None:
    # ``park`` is a plain def that defers, so the server starts no task either:
    # any new task would be a wrapper made for the deadline.
    before = len(asyncio.all_tasks())
    calls = [rpc.call("p.park", timeout=0.1) for _ in range(50)]
    assert len(asyncio.all_tasks()) == before
    async with asyncio.timeout(BOUND):
        for call in calls:
            with pytest.raises(DeadlineExceeded):
                await call
    assert len(asyncio.all_tasks()) == before
    assert all(call.status() is CallStatus.FAILED for call in calls)

    # The server's own deadline passed too: the deferred calls see it.
    await wait(probe.expired)
    for token in probe.tokens:
        token.complete("too late")
    async with asyncio.timeout(BOUND):
        assert await rpc.call("p.ping") == "pong"
    assert rpc.connection.pending_count == 0
    assert probe.connections[0].serving_count == 0


async def test_cooperative_handler_sees_test_cancel_turn_true_at_deadline(
    rpc: asyncrpc.Client, probe: Probe
) -> None:
    call = rpc.call("p.cooperate", timeout=0.2)
    with pytest.raises(DeadlineExceeded):
        async with asyncio.timeout(BOUND):
            await call
    await wait(probe.expired)
    assert probe.cancel_flags == [False, True]
    remaining = probe.remaining_at_cancel[0]
    assert remaining is not None
    assert remaining <= SLACK
    assert not probe.cancelled.is_set()  # cooperative: flagged, not cancelled


async def test_reply_before_deadline_wins(rpc: asyncrpc.Client) -> None:
    port = notify.CompletionPort()
    call = rpc.call("p.ping", timeout=0.1, notify=port)
    async with asyncio.timeout(BOUND):
        assert await call == "pong"
    # Nothing happens when the deadline passes after the reply.
    await asyncio.sleep(0.15)  # a bounded window in which a stray expiry would show
    assert call.status() is CallStatus.COMPLETE
    assert call.complete() == "pong"
    assert port.qsize() == 1


async def test_non_abortive_cancel_timeout_does_not_postpone_deadline(
    rpc: asyncrpc.Client, probe: Probe
) -> None:
    started = time.monotonic()
    call = rpc.call("p.ignore", timeout=0.2)
    await wait(probe.started)
    call.cancel(abort=False, timeout=30.0)
    with pytest.raises(DeadlineExceeded):
        async with asyncio.timeout(BOUND):
            await call
    assert time.monotonic() - started < 1.0
    assert call.status() is CallStatus.FAILED


@pytest.mark.parametrize(
    ("server_extensions", "client_extensions"),
    [(False, True), (True, False)],
    ids=["plain-server", "plain-client"],
)
async def test_deadline_without_extension_ends_call_locally_only(
    server_extensions: bool, client_extensions: bool
) -> None:
    probe = Probe()
    server = await serve(probe, "p", extensions=server_extensions)
    try:
        async with asyncrpc.connect("127.0.0.1", probe.port, extensions=client_extensions) as client:
            assert client.features == frozenset()
            started = time.monotonic()
            call = client.call("p.hang", timeout=0.2)
            with pytest.raises(DeadlineExceeded):
                async with asyncio.timeout(BOUND):
                    await call
            assert 0.2 - SLACK <= time.monotonic() - started < 1.0
            # The request went out as a plain 4-element request: a server that
            # was not told would close the connection on a fifth element.
            assert await client.call("p.ping") == "pong"
            assert probe.deadlines == [None]
            assert not probe.cancelled.is_set()  # nobody told the server
            assert client.connection.pending_count == 1  # id held for the late answer
            probe.release.set()
            async with asyncio.timeout(BOUND):
                await probe.connections[0].drain_serving()
                assert await client.call("p.ping") == "pong"
            assert client.connection.pending_count == 0
            assert call.status() is CallStatus.FAILED
    finally:
        await server.close(grace=1.0)


async def test_bad_timeout_is_refused_at_call_site(rpc: asyncrpc.Client) -> None:
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="timeout"):
            rpc.call("p.ping", timeout=bad)
    assert rpc.connection.pending_count == 0
