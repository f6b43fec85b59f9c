"""Interrupting a blocking wait never loses a completion (behaviour 15).

A plain thread blocked in ``port.get_blocking()``, ``pump.run_blocking()`` or
``SyncCall.result()`` may be interrupted (Ctrl-C raises ``KeyboardInterrupt``
in the main thread). What the interrupted wait would have taken stays queued
for the next waiter, in order.

The interrupt is real: a SIGINT sent to the main thread from a timer thread
while the main thread is blocked, as Ctrl-C sends it.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator

import pytest

import asyncrpc
from asyncrpc import notify
from asyncrpc.notify.message_pump import WM_APP, Message
from tests.notify import WAIT, LoopThread

INTERRUPT_AFTER = 0.2


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


def interrupt_soon() -> threading.Timer:
    main = threading.main_thread().ident
    assert main is not None
    timer = threading.Timer(INTERRUPT_AFTER, signal.pthread_kill, (main, signal.SIGINT))
    timer.start()
    return timer


def test_an_interrupted_get_blocking_leaves_the_next_completion_queued(loop_thread: LoopThread) -> None:
    port = notify.CompletionPort(loop=loop_thread.loop)
    interrupt_soon()
    with pytest.raises(KeyboardInterrupt):
        port.get_blocking(timeout=WAIT)
    port.post("first")
    port.post("second")
    assert port.get_blocking(timeout=WAIT).key == "first"  # not eaten by the interrupted wait
    assert port.get_blocking(timeout=WAIT).key == "second"
    assert port.qsize() == 0


def test_interrupting_again_and_again_loses_nothing(loop_thread: LoopThread) -> None:
    port = notify.CompletionPort(loop=loop_thread.loop)
    for _ in range(3):
        interrupt_soon()
        with pytest.raises(KeyboardInterrupt):
            port.get_blocking(timeout=WAIT)
    for key in range(5):
        port.post(key)
    assert [port.get_blocking(timeout=WAIT).key for _ in range(5)] == list(range(5))


def test_a_timed_out_get_blocking_leaves_nothing_behind(loop_thread: LoopThread) -> None:
    port = notify.CompletionPort(loop=loop_thread.loop)
    with pytest.raises(TimeoutError):
        port.get_blocking(timeout=0.05)
    port.post("later")
    assert port.get_blocking(timeout=WAIT).key == "later"


def test_an_interrupted_message_loop_leaves_the_next_message_queued(loop_thread: LoopThread) -> None:
    pump = notify.MessagePump(loop=loop_thread.loop)
    seen: list[Message] = []
    pump.register(WM_APP, seen.append)
    interrupt_soon()
    with pytest.raises(KeyboardInterrupt):
        pump.run_blocking(timeout=WAIT)
    pump.post(None, WM_APP, "first")
    pump.post_quit()
    pump.run_blocking(timeout=WAIT)
    assert [m.wparam for m in seen] == ["first"]


class Gate:
    def __init__(self) -> None:
        self.release = threading.Event()

    @asyncrpc.blocking
    def wait(self) -> str:
        self.release.wait(WAIT)
        return "released"


def test_an_interrupted_result_wait_keeps_the_result(loop_thread: LoopThread) -> None:
    gate = Gate()

    async def start() -> asyncrpc.Server:
        server = asyncrpc.Server()
        server.register(gate, namespace="g")
        await server.start("127.0.0.1", 0)
        return server

    server = asyncio.run_coroutine_threadsafe(start(), loop_thread.loop).result(WAIT)
    try:
        with asyncrpc.sync.connect("127.0.0.1", server.port) as client:
            call = client.start("g.wait")
            interrupt_soon()
            with pytest.raises(KeyboardInterrupt):
                call.result(timeout=WAIT)
            gate.release.set()
            assert call.result(timeout=WAIT) == "released"
    finally:
        asyncio.run_coroutine_threadsafe(server.close(grace=1.0), loop_thread.loop).result(WAIT)
