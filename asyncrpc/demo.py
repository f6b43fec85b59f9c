"""``asyncrpc demo``: an asynchronous call stays pending while an ordinary call completes.

A server and a client in one process, on 127.0.0.1. The client starts the
asynchronous ``demo.AsyncFunc`` with an event to tell it when the call is
done, makes the ordinary ``demo.NonAsyncFunc`` call on the same connection
while the first is pending, asks for the result too early, waits for the
event and completes the call. Every step is printed with the time it happened.
(These are the steps of the Windows RPC sample "Making the asynchronous call",
whose call model asyncrpc follows.)

Every notification mode in turn is shown by ``examples/modes_tour.py`` in the
source repository, not here: the installed package carries no tours.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final

from asyncrpc.client import Client
from asyncrpc.connector import connect
from asyncrpc.errors import CallPending
from asyncrpc.handle import AsyncCall
from asyncrpc.notify.event import Event
from asyncrpc.server import Server

__all__ = ["MODES_TOUR", "DemoService", "Timeline", "run_demo", "show_pending_call"]

MODES_TOUR: Final = "examples/modes_tour.py"
"""Where the tour of every notification mode is, in the source repository."""


class Timeline:
    """Lines stamped with the time since the demo started."""

    def __init__(self, out: Callable[[str], None]) -> None:
        self._out = out
        self._start = time.perf_counter()

    def __call__(self, who: str, what: str) -> None:
        self._out(f"  {time.perf_counter() - self._start:>+8.3f}s  {who:<6}  {what}")


class DemoService:
    """``demo.AsyncFunc`` and ``demo.NonAsyncFunc``, telling the timeline when the server runs them."""

    def __init__(self, timeline: Timeline) -> None:
        self._timeline = timeline

    async def AsyncFunc(self, delay: float) -> str:
        """Finish after ``delay`` seconds, without holding up other calls."""
        self._timeline("server", f"AsyncFunc({delay:g}) started; it will finish later")
        await asyncio.sleep(delay)
        self._timeline("server", "AsyncFunc finished; reply sent")
        return f"AsyncFunc finished after {delay:g}s"

    def NonAsyncFunc(self, message: str) -> None:
        """Return at once (a plain ``def`` runs inline, no task)."""
        self._timeline("server", f"NonAsyncFunc({message!r}) ran inline and returned")


async def show_pending_call(client: Client, timeline: Timeline, delay: float) -> None:
    """Start ``AsyncFunc(delay)``, call ``NonAsyncFunc`` while it is pending, then complete it."""
    # A handle made ahead of time, told of the completion by an event.
    done = Event()
    handle: AsyncCall[str] = AsyncCall(notify=done, user_info="demo")
    call = client.call("demo.AsyncFunc", delay, handle=handle)
    timeline("client", f"AsyncFunc({delay:g}) called: handle {call.status().name}, notify=Event")

    await client.stub("demo").NonAsyncFunc("called while AsyncFunc is pending")
    timeline("client", f"NonAsyncFunc returned; AsyncFunc is still {call.status().name}")

    try:
        call.complete()
    except CallPending as exc:
        timeline("client", f"complete() too early -> CallPending ({exc.code}), nothing changed")

    await done.wait()
    timeline("client", f"event set: AsyncFunc is {call.status().name}")
    timeline("client", f"complete() -> {call.complete()!r}")


async def run_demo(out: Callable[[str], None] = print, *, delay: float = 0.5) -> None:
    """Serve the demo on a loopback port and show an asynchronous call pending beside an ordinary one."""
    timeline = Timeline(out)
    server = Server()
    server.register(DemoService(timeline), namespace="demo")
    await server.start("127.0.0.1", 0)
    out(f"asyncrpc demo: a server and a client on 127.0.0.1:{server.port}")
    out("")
    out("An asynchronous call stays pending while an ordinary call completes on the same connection:")
    try:
        async with connect("127.0.0.1", server.port) as client:
            await show_pending_call(client, timeline, delay)
    finally:
        await server.close(grace=1.0)
    out("")
    out("done.")
    out("")
    out("Every notification mode in turn (polling, an event, a callback, an APC, a completion port,")
    out(f"a message pump): python {MODES_TOUR}, in a checkout of the asyncrpc source repository.")
