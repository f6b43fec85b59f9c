"""What each notification mode costs per call, delivery and pickup included.

A round makes ``BATCH`` calls on an in-memory connection pair (see
``conftest.Pair``), each with its own mode, and waits until the caller has
learnt of every completion the way that mode tells it (divide by ``BATCH``
for the cost per call). ``none`` is plain ``await call``, the reference.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from asyncrpc import AsyncCall, AsyncEvent, CallStatus, notify
from asyncrpc.notify.message_pump import WM_USER, Message
from asyncrpc.sync import sleep_ex
from benchmarks.conftest import Pair, open_pair

BATCH = 100
WM_DONE = WM_USER + 1

Round = Callable[[Pair], Awaitable[int]]


async def none_mode(pair: Pair) -> int:
    calls = [pair.client.call("add", 1, 2) for _ in range(BATCH)]
    results: list[int] = [await call for call in calls]
    return sum(results) // 3


async def polling(pair: Pair) -> int:
    mode = notify.Polling()
    calls = [pair.client.call("add", 1, 2, notify=mode) for _ in range(BATCH)]
    for call in calls:
        # The polling loop is what this mode stands for (RpcAsyncGetCallStatus).
        while call.status() is CallStatus.PENDING:  # noqa: ASYNC110
            await asyncio.sleep(0)
    return mode.completed


async def event(pair: Pair) -> int:
    modes = [notify.Event() for _ in range(BATCH)]
    for mode in modes:
        pair.client.call("add", 1, 2, notify=mode)
    for mode in modes:
        await mode.wait()
    return len(modes)


async def callback(pair: Pair) -> int:
    done = asyncio.get_running_loop().create_future()
    seen = [0]

    def routine(_call: AsyncCall[Any], _event: AsyncEvent) -> None:
        seen[0] += 1
        if seen[0] == BATCH:
            done.set_result(None)

    mode = notify.Callback(routine)
    for _ in range(BATCH):
        pair.client.call("add", 1, 2, notify=mode)
    await done
    return seen[0]


async def completion_port(pair: Pair) -> int:
    port = notify.CompletionPort()
    for _ in range(BATCH):
        pair.client.call("add", 1, 2, notify=port)
    for _ in range(BATCH):
        await port.get()
    return BATCH


async def message_pump(pair: Pair) -> int:
    pump = notify.MessagePump()
    seen = [0]

    def proc(_message: Message) -> None:
        seen[0] += 1

    pump.register(WM_DONE, proc)
    target = pump.target(WM_DONE)
    calls = [pair.client.call("add", 1, 2, notify=target) for _ in range(BATCH)]
    await calls[-1]  # replies come in order: all have completed
    pump.post_quit()
    await pump.run()
    return seen[0]


async def apc(pair: Pair) -> int:
    seen = [0]

    def routine(_call: AsyncCall[Any], _event: AsyncEvent) -> None:
        seen[0] += 1

    mode = notify.Apc(routine)  # this thread: run in its next alertable wait
    calls = [pair.client.call("add", 1, 2, notify=mode) for _ in range(BATCH)]
    await calls[-1]
    sleep_ex(0, alertable=True)  # returns at once: the routines are queued
    return seen[0]


MODES: dict[str, Round] = {
    "none": none_mode,
    "polling": polling,
    "event": event,
    "callback": callback,
    "completion_port": completion_port,
    "message_pump": message_pump,
    "apc": apc,
}


@pytest.mark.parametrize("mode", list(MODES))
def test_notify_mode(benchmark: Any, loop: asyncio.AbstractEventLoop, mode: str) -> None:
    pair: Pair = loop.run_until_complete(open_pair())
    one_round = MODES[mode]
    benchmark.group = f"notification modes, {BATCH} calls per round"
    benchmark.extra_info["calls_per_round"] = BATCH
    counts = benchmark(lambda: loop.run_until_complete(one_round(pair)))
    assert counts == BATCH
    loop.run_until_complete(pair.close())
