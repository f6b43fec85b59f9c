"""Nothing leaks: thousands of calls that are cancelled, time out or lose their
connection leave every table empty, and their handles are freed."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from collections.abc import AsyncIterator
from typing import Any

import pytest

import asyncrpc
from asyncrpc import CallCancelled, CallStatus, ConnectionLost, DeadlineExceeded
from tests.services import serve

BOUND = 10.0  # seconds any single wait in these tests may take before it counts as a hang
N = 700  # calls of each kind; six kinds, so 4200 calls in the first test


class Probe:
    """Handlers for every way a call can end early; they keep no strong reference to calls."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.connections: set[asyncrpc.Connection] = set()
        self.server_calls: list[weakref.ref[asyncrpc.ServerCall]] = []
        self.tokens: list[asyncrpc.CompletionToken] = []
        self.port = 0

    def _enter(self) -> asyncrpc.ServerCall:
        call = asyncrpc.current_call()
        self.connections.add(call.peer.connection)
        self.server_calls.append(weakref.ref(call))
        return call

    async def hang(self) -> str:
        self._enter()
        await self.release.wait()
        return "released"

    @asyncrpc.cooperative
    async def coop(self) -> bool:
        call = self._enter()
        cancelled = asyncio.Event()
        call.on_cancel(lambda _c, _e: cancelled.set())
        await cancelled.wait()
        return call.test_cancel()

    @asyncrpc.cooperative
    async def ignore(self) -> str:
        self._enter()
        await self.release.wait()
        return "released"

    def park(self) -> None:
        self.tokens.append(self._enter().defer())

    async def ping(self) -> str:
        return "pong"


@pytest.fixture
async def probe() -> AsyncIterator[Probe]:
    p = Probe()
    server = await serve(p, "p")
    yield p
    p.release.set()
    await server.close(grace=1.0)


async def complete_tokens_in_thread(tokens: list[asyncrpc.CompletionToken]) -> None:
    def complete_all() -> None:
        for token in tokens:
            token.complete("late")

    thread = threading.Thread(target=complete_all)
    thread.start()
    await asyncio.to_thread(thread.join)


async def drained(client: asyncrpc.Client, probe: Probe) -> None:
    """Every request read and answered by the server, every answer read by us."""
    async with asyncio.timeout(BOUND):
        assert await client.call("p.ping") == "pong"
        for connection in probe.connections:
            await connection.drain_serving()
        assert await client.call("p.ping") == "pong"


def start_every_kind(client: asyncrpc.Client, n: int) -> dict[str, list[asyncrpc.AsyncCall[Any]]]:
    """``n`` calls of each kind that ends early, already cancelled where that is their kind."""
    kinds = {
        "abortive": [client.call("p.hang") for _ in range(n)],
        "non-abortive": [client.call("p.hang") for _ in range(n)],
        "cooperative": [client.call("p.coop") for _ in range(n)],
        "escalated": [client.call("p.ignore") for _ in range(n)],
        "deadline": [client.call("p.hang", timeout=0.05) for _ in range(n)],
        "deferred-deadline": [client.call("p.park", timeout=0.05) for _ in range(n)],
    }
    for call in kinds["abortive"]:
        assert call.cancel()
    for call in kinds["non-abortive"] + kinds["cooperative"]:
        assert call.cancel(abort=False)
    for call in kinds["escalated"]:
        assert call.cancel(abort=False, timeout=0.05)
    return kinds


async def finish_every_kind(kinds: dict[str, list[asyncrpc.AsyncCall[Any]]]) -> dict[str, set[type]]:
    outcomes: dict[str, set[type]] = {}
    async with asyncio.timeout(BOUND):
        for name, calls in kinds.items():
            results = await asyncio.gather(*calls, return_exceptions=True)
            outcomes[name] = {type(r) for r in results}
    return outcomes


async def test_no_leaks_after_thousands_of_calls_ended_early(probe: Probe) -> None:
    async with asyncrpc.connect("127.0.0.1", probe.port) as client:
        kinds = start_every_kind(client, N)
        outcomes = await finish_every_kind(kinds)
        assert outcomes == {
            "abortive": {CallCancelled},
            "non-abortive": {CallCancelled},
            "cooperative": {bool},  # the handler answered True: it saw the cancel
            "escalated": {CallCancelled},
            "deadline": {DeadlineExceeded},
            "deferred-deadline": {DeadlineExceeded},
        }
        assert all(call.done() for calls in kinds.values() for call in calls)

        # The server is still working on some (cooperative handlers that ignore
        # the cancel, deferred calls nobody completed yet): finish them late.
        await complete_tokens_in_thread(probe.tokens)
        probe.release.set()
        await drained(client, probe)

        assert client.connection.pending_count == 0
        (server_connection,) = probe.connections
        assert server_connection.serving_count == 0
        assert all(token.done() for token in probe.tokens)
        assert len(probe.tokens) == N
        # The late answers changed nothing.
        assert {call.status() for call in kinds["escalated"]} == {CallStatus.CANCELLED}
        assert {call.status() for call in kinds["deferred-deadline"]} == {CallStatus.FAILED}


async def test_no_leaks_after_thousands_of_calls_lose_their_connection(probe: Probe) -> None:
    client = await asyncrpc.connect("127.0.0.1", probe.port)
    calls = [client.call("p.hang") for _ in range(N)] + [client.call("p.park") for _ in range(N)]
    calls += [client.call("p.ignore", timeout=30.0) for _ in range(N)]
    async with asyncio.timeout(BOUND):
        assert await client.call("p.ping") == "pong"  # the server has them all
    (server_connection,) = probe.connections
    assert server_connection.serving_count == 3 * N

    await client.close()
    assert client.connection.pending_count == 0
    assert {call.status() for call in calls} == {CallStatus.FAILED}
    with pytest.raises(ConnectionLost):
        calls[0].complete()
    async with asyncio.timeout(BOUND):
        await server_connection.wait_closed()
    assert server_connection.serving_count == 0
    # Tokens of the lost calls still work, and send nothing.
    await complete_tokens_in_thread(probe.tokens)
    assert all(token.done() for token in probe.tokens)
    probe.release.set()  # the cooperative handlers finish; nobody hears them


async def test_handles_and_server_calls_are_freed(probe: Probe) -> None:
    handles: list[weakref.ref[asyncrpc.AsyncCall[Any]]] = []
    async with asyncrpc.connect("127.0.0.1", probe.port) as client:
        kinds = start_every_kind(client, 20)
        kinds["ok"] = [client.call("p.ping") for _ in range(20)]
        # Cancels of handlers that are already running, too.
        kinds["running-abortive"] = [client.call("p.hang") for _ in range(20)]
        kinds["running-non-abortive"] = [client.call("p.hang") for _ in range(20)]
        async with asyncio.timeout(BOUND):
            assert await client.call("p.ping") == "pong"  # every handler above has started
        assert all(call.cancel() for call in kinds["running-abortive"])
        assert all(call.cancel(abort=False) for call in kinds["running-non-abortive"])
        await finish_every_kind(kinds)
        handles += [weakref.ref(call) for calls in kinds.values() for call in calls]
        del kinds
        await complete_tokens_in_thread(probe.tokens)
        probe.release.set()
        await drained(client, probe)

    lost = await asyncrpc.connect("127.0.0.1", probe.port)
    dropped = [lost.call("p.hang") for _ in range(20)] + [lost.call("p.park") for _ in range(20)]
    async with asyncio.timeout(BOUND):
        assert await lost.call("p.ping") == "pong"
    handles += [weakref.ref(call) for call in dropped]
    del dropped
    await lost.close()
    async with asyncio.timeout(BOUND):
        for connection in probe.connections:
            await connection.wait_closed()
    probe.tokens.clear()

    gc.collect()
    assert len(handles) == 9 * 20 + 40
    # Calls cancelled before their handler ran never reach _enter(); all others do.
    assert len(probe.server_calls) >= 6 * 20 + 40
    assert [ref() for ref in handles if ref() is not None] == []
    assert [ref() for ref in probe.server_calls if ref() is not None] == []
