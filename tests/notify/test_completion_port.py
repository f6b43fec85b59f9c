"""notify.CompletionPort: completions on one queue that many calls feed and many consumers share."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from asyncrpc import AsyncCall, CallStatus, notify
from tests.notify import WAIT, assert_no_task_or_thread_per_call, probe_setup, receiver


async def test_many_calls_many_consumers_each_completion_taken_once() -> None:
    async with probe_setup() as setup:
        port = notify.CompletionPort()
        n, consumers = 120, 4
        overlapped = [{"buffer": i} for i in range(n)]
        taken: list[tuple[str, notify.Completion]] = []
        all_taken = asyncio.Event()

        async def consumer(name: str) -> None:
            while True:
                completion = await port.get()
                taken.append((name, completion))
                if len(taken) == n:
                    all_taken.set()
                await asyncio.sleep(0)  # let the other consumers take their share

        tasks = [asyncio.create_task(consumer(f"c{i}")) for i in range(consumers)]
        try:
            calls = [
                setup.client.call("probe.add", i, 0, notify=port.bind(key=i, overlapped=overlapped[i]))
                for i in range(n)
            ]
            async with asyncio.timeout(WAIT):
                await all_taken.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        assert sorted(completion.key for _, completion in taken) == list(range(n))  # once each
        for _, completion in taken:
            assert completion.call is calls[completion.key]
            assert completion.overlapped is overlapped[completion.key]
            assert completion.call.complete() == completion.key
        assert len({name for name, _ in taken}) > 1  # the consumers shared the work
        assert port.qsize() == 0


async def test_get_with_timeout_raises_timeout_error() -> None:
    port = notify.CompletionPort()
    with pytest.raises(TimeoutError):
        await port.get(timeout=0.01)
    port.post("k")  # a completion that came is still taken after a timed-out get
    assert await port.get(timeout=0.01) == notify.Completion("k", None, None)


async def test_get_nowait() -> None:
    async with probe_setup() as setup:
        port = notify.CompletionPort()
        with pytest.raises(asyncio.QueueEmpty):
            port.get_nowait()
        call = setup.client.call("probe.add", 2, 2, notify=port)  # the port itself: key None
        assert await call == 4
        assert port.qsize() == 1
        assert port.get_nowait() == notify.Completion(None, call, None)
        with pytest.raises(asyncio.QueueEmpty):
            port.get_nowait()


async def test_async_for_and_user_posts_in_order() -> None:
    async with probe_setup() as setup:
        port = notify.CompletionPort()
        port.post("user-1", None, "mine")  # PostQueuedCompletionStatus
        first: AsyncCall[int] = setup.client.call("probe.add", 1, 0, notify=port.bind(key="call-1"))
        await first
        port.post("user-2")
        second: AsyncCall[int] = setup.client.call("probe.add", 2, 0, notify=port.bind(key="call-2"))
        await second
        got: list[notify.Completion] = []
        async with asyncio.timeout(WAIT):
            async for completion in port:
                got.append(completion)
                if len(got) == 4:
                    break
        assert got == [
            notify.Completion("user-1", None, "mine"),
            notify.Completion("call-1", first, None),
            notify.Completion("user-2", None, None),
            notify.Completion("call-2", second, None),
        ]


async def test_failed_and_cancelled_calls_complete_on_the_port_too() -> None:
    async with probe_setup() as setup:
        port = notify.CompletionPort()
        bad = setup.client.call("probe.fail", "x", notify=port.bind(key="bad"))
        gone = setup.client.call("probe.hold", "gone", notify=port.bind(key="gone"))
        gone.cancel()
        got = {(await port.get(timeout=WAIT)).key for _ in range(2)}
        assert got == {"bad", "gone"}
        assert (bad.status(), gone.status()) == (CallStatus.FAILED, CallStatus.CANCELLED)


async def test_get_blocking_from_plain_threads() -> None:
    async with probe_setup() as setup:
        port = notify.CompletionPort()
        loop = asyncio.get_running_loop()
        results: list[Any] = []
        lock = threading.Lock()
        n = 6

        def plain() -> None:
            for _ in range(n // 2):
                completion = port.get_blocking(timeout=WAIT)
                with lock:
                    results.append(
                        (completion.key, completion.call.complete() if completion.has_call else None)
                    )

        threads = [threading.Thread(target=plain) for _ in range(2)]
        for thread in threads:
            thread.start()
        for i in range(n - 1):
            setup.client.call("probe.add", i, 10, notify=port.bind(key=i))
        await asyncio.to_thread(port.post, "from-a-thread")  # post() is safe from any thread
        async with asyncio.timeout(WAIT):
            for thread in threads:
                await asyncio.to_thread(thread.join)
        assert sorted(results, key=str) == sorted(
            [(i, i + 10) for i in range(n - 1)] + [("from-a-thread", None)], key=str
        )

        with pytest.raises(RuntimeError, match="own loop"):
            port.get_blocking(timeout=0.01)  # on the port's loop it would deadlock

        def times_out() -> str:
            try:
                port.get_blocking(timeout=0.01)
            except TimeoutError:
                return "timeout"
            return "got one"

        assert await loop.run_in_executor(None, times_out) == "timeout"


def test_port_built_outside_a_loop_needs_one_to_post() -> None:
    port = notify.CompletionPort()
    with pytest.raises(RuntimeError, match="no loop"):
        port.post("k")
    with pytest.raises(RuntimeError, match="no loop"):
        port.get_blocking(timeout=0.01)


async def test_completion_port_adds_no_task_or_thread_per_call() -> None:
    async with probe_setup() as setup, receiver("completion-port") as rx:
        await assert_no_task_or_thread_per_call(setup, rx)
