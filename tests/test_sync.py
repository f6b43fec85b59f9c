"""asyncrpc.sync: the blocking client, and every notification mode from plain threads.

The tests are plain ``def``s running in the test's (main) thread; the server
runs on an event loop in a background thread (anyio's blocking portal), and
the sync client has its own loop thread, as a program without asyncio would.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

import asyncrpc
from asyncrpc import AsyncCall, AsyncEvent, CallStatus, notify
from asyncrpc.notify.message_pump import WM_APP
from asyncrpc.sync import SyncCall, SyncClient, pending_apcs, sleep_ex
from tests.notify import WAIT, LoopThread, Probe

NOT_HAPPENING = 0.05
"""How long a test watches for something that must not happen."""


@dataclass
class Served:
    portal: BlockingPortal
    probe: Probe
    port: int

    def release(self, name: str) -> None:
        self.portal.call(self.probe.release, name)

    def started(self, name: str) -> None:
        self.portal.call(self.probe.started, name)


async def _start_server(probe: Probe) -> asyncrpc.Server:
    server = asyncrpc.Server()
    probe.register_on(server)
    await server.start("127.0.0.1", 0)
    return server


@pytest.fixture
def served() -> Iterator[Served]:
    with start_blocking_portal(backend="asyncio") as portal:
        probe = Probe()
        server = portal.call(_start_server, probe)
        try:
            yield Served(portal, probe, server.port)
        finally:
            portal.call(probe.release_all)
            portal.call(server.close, 1.0)


@pytest.fixture
def c(served: Served) -> Iterator[SyncClient]:
    with asyncrpc.sync.connect("127.0.0.1", served.port) as client:
        yield client


def test_call_returns_results_and_raises_errors(c: SyncClient) -> None:
    assert c.call("probe.add", 1, 2) == 3
    with pytest.raises(asyncrpc.RemoteError) as info:
        c.call("probe.fail", "bad value")
    assert info.value.type == "ValueError"
    assert "bad value" in info.value.message
    with pytest.raises(asyncrpc.MethodNotFound):
        c.call("probe.nope")
    with pytest.raises(asyncrpc.DeadlineExceeded):
        c.call("probe.hold", "never", timeout=0.02)
    assert c.client.features  # the extensions were negotiated


def test_start_returns_a_handle_with_blocking_waits(c: SyncClient, served: Served) -> None:
    h = c.start("probe.hold", "h")
    assert isinstance(h, SyncCall)
    served.started("h")
    assert h.status() is CallStatus.PENDING
    assert not h.done()
    assert h.last_event is None
    with pytest.raises(asyncrpc.CallPending):
        h.complete()
    assert h.wait(NOT_HAPPENING) is False  # still pending: nothing changed
    with pytest.raises(asyncrpc.CallPending):
        h.result(timeout=0)
    assert h.status() is CallStatus.PENDING

    served.release("h")
    assert h.wait(WAIT) is True
    assert h.result() == "h"
    assert h.complete() == "h"
    assert h.exception() is None
    assert h.status() is CallStatus.COMPLETE
    assert h.call.last_event is AsyncEvent.CALL_COMPLETE  # the same field, seen through the handle
    assert h.method == "probe.hold"


def test_the_seed_scenario_from_a_plain_thread(c: SyncClient, served: Served) -> None:
    """Event notification, a synchronous call while the asynchronous one is pending, wait, complete."""
    done = threading.Event()
    h = c.start("probe.hold", "async", notify=notify.Event(done))
    h.user_info = "seed"
    assert c.call("probe.count", "meanwhile") == 1  # runs while the first call is pending
    assert h.status() is CallStatus.PENDING
    served.release("async")
    assert done.wait(WAIT)
    assert h.complete() == "async"
    assert h.user_info == "seed"


def test_cancel_from_a_plain_thread(c: SyncClient, served: Served) -> None:
    abort = c.start("probe.hold", "abort")
    served.started("abort")
    assert abort.cancel() is True
    assert abort.status() is CallStatus.CANCELLED  # done when cancel() returns
    with pytest.raises(asyncrpc.CallCancelled):
        abort.result(WAIT)
    assert abort.cancel() is False

    polite = c.start("probe.hold", "polite")
    served.started("polite")
    assert polite.cancel(abort=False) is True
    with pytest.raises(asyncrpc.CallCancelled):
        polite.result(WAIT)  # completes when the server honours it
    assert polite.status() is CallStatus.CANCELLED


def test_handles_made_ahead_of_time_and_reset(c: SyncClient) -> None:
    handle: AsyncCall[Any] = AsyncCall(user_info="mine")
    h = c.start("probe.add", 1, 1, handle=handle)
    assert h.call is handle
    assert h.result(WAIT) == 2
    with pytest.raises(asyncrpc.HandleInUseError):
        c.start("probe.add", 2, 2, handle=h)
    h.reset()
    assert h.status() is CallStatus.INITIALIZED
    assert c.start("probe.add", 2, 2, handle=h) is h
    assert h.result(WAIT) == 4
    assert h.user_info == "mine"


def test_errors_making_a_call_raise_here_and_deliver_nothing(c: SyncClient) -> None:
    ran: list[object] = []
    apc = notify.Apc(lambda call, event: ran.append(call))
    with pytest.raises(ValueError, match="timeout"):
        c.start("probe.add", 1, 1, notify=apc, timeout=-1)
    with pytest.raises(asyncrpc.EncodeError):
        c.start("probe.add", object(), 1, notify=apc)
    with pytest.raises(TypeError):
        c.start("probe.add", 1, 1, notify=threading.Event())  # type: ignore[arg-type]
    assert pending_apcs() == 0
    ok = c.start("probe.add", 1, 1, notify=apc)
    assert sleep_ex(WAIT, alertable=True) == 1
    assert ran == [ok.call]


def test_apc_runs_in_the_callers_thread_only_in_its_alertable_wait(c: SyncClient) -> None:
    ran: list[tuple[Any, AsyncEvent, int]] = []

    def routine(call: AsyncCall[Any], event: AsyncEvent) -> None:
        ran.append((call.complete(), event, threading.get_ident()))

    h = c.start("probe.add", 20, 22, notify=notify.Apc(routine))  # hThread = 0: this thread
    assert h.wait(WAIT)
    time.sleep(NOT_HAPPENING)  # a plain sleep runs nothing
    assert sleep_ex(NOT_HAPPENING, alertable=False) == 0
    assert ran == []
    assert sleep_ex(WAIT, alertable=True) == 1
    assert ran == [(42, AsyncEvent.CALL_COMPLETE, threading.get_ident())]
    assert sleep_ex(0, alertable=True) == 0


def test_polling_from_a_plain_thread(c: SyncClient, served: Served) -> None:
    polling = notify.Polling()
    h = c.start("probe.hold", "poll", notify=polling)
    served.started("poll")
    served.release("poll")
    deadline = time.monotonic() + WAIT
    while h.status() is CallStatus.PENDING:  # RpcAsyncGetCallStatus until not pending
        assert time.monotonic() < deadline
        time.sleep(0)  # give up the GIL between polls
    assert h.complete() == "poll"
    assert polling.completed == 1


def test_callback_on_the_clients_loop_thread(c: SyncClient) -> None:
    got: queue.Queue[tuple[Any, int]] = queue.Queue()
    h = c.start(
        "probe.add", 1, 2, notify=notify.Callback(lambda call, event: got.put((call, threading.get_ident())))
    )
    call, thread = got.get(timeout=WAIT)
    assert call is h.call
    assert thread != threading.get_ident()  # the client's loop thread, not this one


def test_callback_onto_a_loop_of_our_own(c: SyncClient) -> None:
    other = LoopThread("my-loop")
    try:
        got: queue.Queue[tuple[Any, int]] = queue.Queue()

        def routine(call: AsyncCall[Any], event: AsyncEvent) -> None:
            got.put((call.complete(), threading.get_ident()))

        c.start("probe.add", 2, 3, notify=notify.Callback(routine, loop=other.loop))
        assert got.get(timeout=WAIT) == (5, other.ident)
    finally:
        other.close()


def test_completion_port_with_get_blocking(c: SyncClient) -> None:
    port = c.completion_port()
    handles = [c.start("probe.add", i, 100, notify=port.bind(key=i, overlapped=f"buf{i}")) for i in range(10)]
    got = [port.get_blocking(timeout=WAIT) for _ in range(10)]
    assert sorted(completion.key for completion in got) == list(range(10))
    for completion in got:
        assert completion.call is handles[completion.key].call
        assert completion.overlapped == f"buf{completion.key}"
        assert completion.call.complete() == completion.key + 100
    with pytest.raises(TimeoutError):
        port.get_blocking(timeout=0.01)


def test_completion_port_shared_by_a_pool_of_threads(c: SyncClient) -> None:
    port = c.completion_port()
    taken: queue.Queue[tuple[int, int]] = queue.Queue()

    def pool_thread() -> None:
        while (completion := port.get_blocking(timeout=WAIT)).key is not None:
            taken.put((completion.key, threading.get_ident()))

    pool = [threading.Thread(target=pool_thread) for _ in range(3)]
    for thread in pool:
        thread.start()
    handles = [c.start("probe.add", i, 0, notify=port.bind(key=i)) for i in range(30)]
    assert all(h.wait(WAIT) for h in handles)  # every completion is posted now
    for _ in pool:
        port.post(None)  # then one "stop" packet per thread
    for thread in pool:
        thread.join(WAIT)
    keys = sorted(taken.get_nowait()[0] for _ in range(taken.qsize()))
    assert keys == list(range(30))


def test_message_pump_run_blocking_in_this_thread(c: SyncClient) -> None:
    pump = c.message_pump()
    seen: list[tuple[Any, Any, int]] = []

    def proc(message: notify.Message) -> None:
        seen.append((message.wparam, message.lparam.complete(), threading.get_ident()))
        pump.post_quit()

    pump.register(WM_APP + 7, proc)
    c.start("probe.add", 3, 3, notify=pump.target(WM_APP + 7, hwnd="w"))
    pump.run_blocking(timeout=WAIT)
    assert seen == [(AsyncEvent.CALL_COMPLETE, 6, threading.get_ident())]


def test_connect_needs_an_address() -> None:
    with pytest.raises(ValueError, match="host and port"), asyncrpc.sync.connect("127.0.0.1"):
        pass


def test_connection_refused_raises(served: Served) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free_port = sock.getsockname()[1]
    with pytest.raises(ConnectionRefusedError), asyncrpc.sync.connect("127.0.0.1", free_port):
        pass


def test_sync_connect_checks_its_address_like_connect() -> None:
    with pytest.raises(ValueError, match="not both"), asyncrpc.sync.connect("127.0.0.1", 1, path="/x.sock"):
        pass
    with pytest.raises(ValueError, match="not both"):
        asyncrpc.connect("127.0.0.1", 1, path="/tmp/x.sock")
    with pytest.raises(ValueError, match="port"):
        asyncrpc.connect("127.0.0.1", 70000)
