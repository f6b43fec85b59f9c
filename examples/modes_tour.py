"""Every notification mode in turn: how each one tells you that a call completed.

For each mode, start the asynchronous ``demo.AsyncFunc(delay)`` with that
mode, make the ordinary ``demo.NonAsyncFunc`` call while it is pending, then
learn of the completion the way the mode delivers it, and print one line:
awaiting the call, polling its status, an event, a callback on the calling
loop, an APC run by a plain thread's alertable wait, a completion port and a
message pump.

    python examples/modes_tour.py                      # starts its own server
    python examples/modes_tour.py --connect HOST:PORT  # or uses a running one
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncrpc
from asyncrpc import notify

try:
    from examples.demo_service import demo_server, parse_args
except ImportError:  # run as a script: this directory is on sys.path
    from demo_service import (  # type: ignore[no-redef,import-not-found,unused-ignore]
        demo_server,
        parse_args,
    )

WM_RPC_DONE = notify.WM_APP + 1  # the window message the pump's call posts
DELAY = 0.2  # how long each AsyncFunc takes


async def _meanwhile(client: asyncrpc.Client, mode: str) -> None:
    await client.call("demo.NonAsyncFunc", f"called while AsyncFunc ({mode}) is pending")


async def _none(client: asyncrpc.Client, delay: float) -> str:
    call = client.call("demo.AsyncFunc", delay)
    await _meanwhile(client, "await")
    return f"await call -> {await call!r}"


async def _polling(client: asyncrpc.Client, delay: float) -> str:
    call = client.call("demo.AsyncFunc", delay, notify=notify.Polling())
    await _meanwhile(client, "Polling")
    polls = 0
    while call.status() is asyncrpc.CallStatus.PENDING:  # RpcAsyncGetCallStatus until not pending
        polls += 1
        await asyncio.sleep(0.01)  # the other work a polling caller does between polls
    call.complete()
    return f"status() polled {polls} times until {call.status().name}, then complete()"


async def _event(client: asyncrpc.Client, delay: float) -> str:
    done = notify.Event()
    call = client.call("demo.AsyncFunc", delay, notify=done)
    await _meanwhile(client, "Event")
    await done.wait()
    call.complete()
    return "event set, then complete()"


async def _callback(client: asyncrpc.Client, delay: float) -> str:
    loop = asyncio.get_running_loop()
    ran: asyncio.Future[str] = loop.create_future()

    def routine(call: asyncrpc.AsyncCall[Any], event: asyncrpc.AsyncEvent) -> None:
        ran.set_result(f"fn(call, {event.name}) ran on the calling loop ({threading.current_thread().name})")

    call = client.call("demo.AsyncFunc", delay, notify=notify.Callback(routine))
    await _meanwhile(client, "Callback")
    line = await ran
    call.complete()
    return line


async def _apc(client: asyncrpc.Client, delay: float) -> str:
    loop = asyncio.get_running_loop()
    report: asyncio.Future[str] = loop.create_future()
    call_done = threading.Event()
    ran_in: list[str] = []

    def routine(call: asyncrpc.AsyncCall[Any], event: asyncrpc.AsyncEvent) -> None:
        ran_in.append(threading.current_thread().name)

    def plain_thread() -> None:
        call_done.wait(delay + 5.0)  # a wait that is not alertable runs no APC
        queued = asyncrpc.sync.pending_apcs()
        ran = asyncrpc.sync.sleep_ex(5.0, alertable=True)  # the alertable wait runs it, here
        line = f"queued for {ran_in[0]!r}: a plain wait ran 0 of {queued}, sleep_ex(alertable=True) ran {ran}"
        loop.call_soon_threadsafe(report.set_result, line)

    worker = threading.Thread(target=plain_thread, name="apc-thread")
    worker.start()
    call = client.call("demo.AsyncFunc", delay, notify=notify.Apc(routine, thread=worker))
    await _meanwhile(client, "Apc")
    await asyncio.gather(call, return_exceptions=True)  # done: its APC is queued, not run
    call_done.set()
    line = await report
    await asyncio.to_thread(worker.join)
    call.complete()
    return line


async def _completion_port(client: asyncrpc.Client, delay: float) -> str:
    port = notify.CompletionPort()
    call = client.call("demo.AsyncFunc", delay, notify=port.bind(key="AsyncFunc", overlapped={"buf": 1}))
    await _meanwhile(client, "CompletionPort")
    packet = await port.get(timeout=delay + 5.0)
    assert packet.call is call
    call.complete()
    return f"port.get() -> Completion(key={packet.key!r}, call, overlapped={packet.overlapped!r})"


async def _message_pump(client: asyncrpc.Client, delay: float) -> str:
    pump = notify.MessagePump()
    got: list[str] = []

    def window_proc(message: notify.Message) -> None:
        if isinstance(message.lparam, asyncrpc.AsyncCall):
            message.lparam.complete()
            got.append(f"{asyncrpc.AsyncEvent(message.wparam).name} for the call")
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


MODES: list[tuple[str, Callable[[asyncrpc.Client, float], Awaitable[str]]]] = [
    ("none (await)", _none),
    ("Polling", _polling),
    ("Event", _event),
    ("Callback", _callback),
    ("Apc", _apc),
    ("CompletionPort", _completion_port),
    ("MessagePump", _message_pump),
]


async def run_modes_tour(
    client: asyncrpc.Client, out: Callable[[str], None] = print, *, delay: float = DELAY
) -> None:
    """Show every notification mode against a server with ``demo.AsyncFunc`` and ``demo.NonAsyncFunc``.

    Each mode starts ``AsyncFunc(delay)``, makes a ``NonAsyncFunc`` call while
    it is pending, and prints how the completion arrived.
    """
    out(f"  (each: AsyncFunc({delay:g}) with the mode, NonAsyncFunc while it is pending, then...)")
    for name, show in MODES:
        started = time.perf_counter()
        line = await show(client, delay)
        out(f"  {name:<15} {line}  [{time.perf_counter() - started:.2f}s]")


async def main(host: str | None = None, port: int | None = None) -> None:
    async with demo_server(host, port) as address, asyncrpc.connect(*address) as client:
        print(f"Every notification mode in turn, against demo.AsyncFunc on {address[0]}:{address[1]}:")
        await run_modes_tour(client)


if __name__ == "__main__":
    asyncrpc.run(main(*parse_args(__doc__)))
