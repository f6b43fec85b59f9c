"""The in-process cost of a call: made, sent, answered, completed, with no socket.

Both ends are real connections (see ``conftest.Pair``); a round makes
``batch`` calls, awaits them all and checks their results. With ``batch=1`` a
round is one sequential call, loop turns included; with ``batch=100`` the
cost is spread as when many callers share a connection (divide by 100).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from benchmarks.conftest import Pair, open_pair


@pytest.mark.parametrize("batch", [1, 100])
@pytest.mark.parametrize("handlers", ["plain", "async", "typed"])
def test_call_round_trip_in_memory(
    benchmark: Any, loop: asyncio.AbstractEventLoop, handlers: str, batch: int
) -> None:
    pair: Pair = loop.run_until_complete(open_pair(handlers))
    call = pair.client.call

    async def round_of_calls() -> None:
        calls = [call("add", 1, 2) for _ in range(batch)]
        for each in calls:
            assert await each == 3

    benchmark.group = f"round trip in memory, {batch} call(s) per round"
    benchmark.extra_info["calls_per_round"] = batch
    benchmark(lambda: loop.run_until_complete(round_of_calls()))
    loop.run_until_complete(pair.close())
    assert pair.client_connection.pending_count == 0


def test_call_and_complete_client_only(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    """Client side only: ``call()`` plus the decoding of its response, no loop turn."""
    pair: Pair = loop.run_until_complete(open_pair())
    connection = pair.client_connection
    pair.client_transport.peer = None  # requests go nowhere; we answer them ourselves
    call = pair.client.call

    benchmark.group = "client side of one call, no loop turn"

    async def inside_loop() -> None:
        import msgpack

        pack = msgpack.Packer().pack

        def one() -> None:
            handle = call("add", 1, 2)
            connection.data_received(pack([1, handle.msgid, None, 3]))
            assert handle.complete() == 3

        benchmark(one)

    loop.run_until_complete(inside_loop())
    loop.run_until_complete(pair.close())
