"""Every notification mode in turn, for ``asyncrpc demo``.

For each mode: start ``demo.AsyncFunc(delay)`` with that mode, make the
ordinary ``demo.NonAsyncFunc`` call while it is pending, then learn of the
completion the way the mode delivers it, and print one line.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from asyncrpc.client import Client
from asyncrpc.handle import AsyncCall
from asyncrpc.notify.apc import Apc, pending_apcs, sleep_ex
from asyncrpc.notify.callback import Callback
from asyncrpc.notify.completion_port import CompletionPort
from asyncrpc.notify.event import Event
from asyncrpc.notify.message_pump import WM_APP, Message, MessagePump
from asyncrpc.notify.polling import Polling
from asyncrpc.status import AsyncEvent, CallStatus

__all__ = ["run_modes_demo"]

WM_RPC_DONE = WM_APP + 1


async def _meanwhile(client: Client, mode: str) -> None:
    await client.call("demo.NonAsyncFunc", f"called while AsyncFunc ({mode}) is pending")


async def _none(client: Client, delay: float) -> str:
    call = client.call("demo.AsyncFunc", delay)
    await _meanwhile(client, "await")
    return f"await call -> {await call!r}"


async def _polling(client: Client, delay: float) -> str:
    call = client.call("demo.AsyncFunc", delay, notify=Polling())
    await _meanwhile(client, "Polling")
    polls = 0
    while call.status() is CallStatus.PENDING:  # RpcAsyncGetCallStatus until not pending
        polls += 1
        await asyncio.sleep(0.01)
    call.complete()
    return f"status() polled {polls} times until {call.status().name}, then complete()"


async def _event(client: Client, delay: float) -> str:
    done = Event()
    call = client.call("demo.AsyncFunc", delay, notify=done)
    await _meanwhile(client, "Event")
    await done.wait()
    call.complete()
    return "event set, then complete()"


async def _callback(client: Client, delay: float) -> str:
    loop = asyncio.get_running_loop()
    ran: asyncio.Future[str] = loop.create_future()

    def routine(call: AsyncCall[Any], event: AsyncEvent) -> None:
        ran.set_result(f"fn(call, {event.name}) ran on the calling loop ({threading.current_thread().name})")

    call = client.call("demo.AsyncFunc", delay, notify=Callback(routine))
    await _meanwhile(client, "Callback")
    line = await ran
    call.complete()
    return line


async def _apc(client: Client, delay: float) -> str:
    loop = asyncio.get_running_loop()
    report: asyncio.Future[str] = loop.create_future()
    call_done = threading.Event()
    ran_in: list[str] = []

    def routine(call: AsyncCall[Any], event: AsyncEvent) -> None:
        ran_in.append(threading.current_thread().name)

    def plain_thread() -> None:
        call_done.wait(delay + 5.0)  # a wait that is not alertable runs no APC
        queued = pending_apcs()
        ran = sleep_ex(5.0, alertable=True)  # the alertable wait runs it, here
        line = f"queued for {ran_in[0]!r}: a plain wait ran 0 of {queued}, sleep_ex(alertable=True) ran {ran}"
        loop.call_soon_threadsafe(report.set_result, line)

    worker = threading.Thread(target=plain_thread, name="apc-thread")
    worker.start()
    call = client.call("demo.AsyncFunc", delay, notify=Apc(routine, thread=worker))
    await _meanwhile(client, "Apc")
    await asyncio.gather(call, return_exceptions=True)  # done: its APC is queued, not run
    call_done.set()
    line = await report
    await asyncio.to_thread(worker.join)
    call.complete()
    return line


async def _completion_port(client: Client, delay: float) -> str:
    port = CompletionPort()
    call = client.call("demo.AsyncFunc", delay, notify=port.bind(key="AsyncFunc", overlapped={"buf": 1}))
    await _meanwhile(client, "CompletionPort")
    packet = await port.get(timeout=delay + 5.0)
    assert packet.call is call
    call.complete()
    return f"port.get() -> Completion(key={packet.key!r}, call, overlapped={packet.overlapped!r})"


async def _message_pump(client: Client, delay: float) -> str:
    pump = MessagePump()
    got: list[str] = []

    def window_proc(message: Message) -> None:
        if isinstance(message.lparam, AsyncCall):
            message.lparam.complete()
            got.append(f"{AsyncEvent(message.wparam).name} for the call")
            pump.post_quit()
        else:
            got.append(str(message.lparam))

    pump.register(WM_RPC_DONE, window_proc)
    call = client.call("demo.AsyncFunc", delay, notify=pump.target(WM_RPC_DONE, hwnd="demo-window"))
    pump.post("demo-window", WM_RPC_DONE, None, "user message")  # user messages share the queue
    await _meanwhile(client, "MessagePump")
    await pump.run()
    assert call.done()
    return f"pump.run() dispatched: {', then '.join(got)}"


MODES: list[tuple[str, Callable[[Client, float], Awaitable[str]]]] = [
    ("none (await)", _none),
    ("Polling", _polling),
    ("Event", _event),
    ("Callback", _callback),
    ("Apc", _apc),
    ("CompletionPort", _completion_port),
    ("MessagePump", _message_pump),
]


async def run_modes_demo(client: Client, out: Callable[[str], None] = print, *, delay: float = 0.2) -> None:
    """Show every notification mode against a server with ``demo.AsyncFunc`` and ``demo.NonAsyncFunc``.

    Each mode starts ``AsyncFunc(delay)``, makes a ``NonAsyncFunc`` call while
    it is pending, and prints how the completion arrived.
    """
    out(f"  (each: AsyncFunc({delay:g}) with the mode, NonAsyncFunc while it is pending, then...)")
    for name, show in MODES:
        started = time.perf_counter()
        line = await show(client, delay)
        out(f"  {name:<15} {line}  [{time.perf_counter() - started:.2f}s]")
