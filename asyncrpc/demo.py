"""``asyncrpc demo``: the seed's scenario, end to end on loopback, as a timeline.

The Windows RPC page "Making the asynchronous call" initialises an async
handle with an event, starts the asynchronous ``AsyncFunc``, makes the
ordinary ``NonAsyncFunc`` call while it is pending, waits for the event and
completes the call. This runs exactly that, server and client in one process
on 127.0.0.1, and prints who did what when.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from asyncrpc.client import Client
from asyncrpc.connector import connect
from asyncrpc.errors import CallPending
from asyncrpc.handle import AsyncCall
from asyncrpc.notify.event import Event
from asyncrpc.server import Server

__all__ = ["DemoService", "Timeline", "run_demo"]


class Timeline:
    """Lines stamped with the time since the demo started."""

    def __init__(self, out: Callable[[str], None]) -> None:
        self._out = out
        self._start = time.perf_counter()

    def __call__(self, who: str, what: str) -> None:
        self._out(f"  {time.perf_counter() - self._start:>+8.3f}s  {who:<6}  {what}")


class DemoService:
    """The seed's two procedures, telling the timeline when the server runs them."""

    def __init__(self, timeline: Timeline) -> None:
        self._timeline = timeline
        self.verbose = True

    def _say(self, what: str) -> None:
        if self.verbose:
            self._timeline("server", what)

    async def AsyncFunc(self, delay: float) -> str:
        self._say(f"AsyncFunc({delay:g}) started; it will finish later")
        await asyncio.sleep(delay)
        self._say("AsyncFunc finished; reply sent")
        return f"AsyncFunc finished after {delay:g}s"

    def NonAsyncFunc(self, message: str) -> None:
        self._say(f"NonAsyncFunc({message!r}) ran inline and returned")


async def seed_scenario(client: Client, timeline: Timeline, delay: float) -> None:
    # RpcAsyncInitializeHandle: a handle made ahead of time, notified by an event.
    done = Event()
    handle: AsyncCall[str] = AsyncCall(notify=done, user_info="seed")
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


async def run_demo(out: Callable[[str], None] = print, *, delay: float = 0.5, modes: bool = True) -> None:
    """Serve the demo on a loopback port, run the seed's scenario, then every notification mode."""
    timeline = Timeline(out)
    server = Server()
    service = DemoService(timeline)
    server.register(service, namespace="demo")
    await server.start("127.0.0.1", 0)
    out(f"asyncrpc demo: server and client on 127.0.0.1:{server.port}")
    out("")
    out("The seed's scenario (an asynchronous call pending while a synchronous one completes):")
    try:
        async with connect("127.0.0.1", server.port) as client:
            await seed_scenario(client, timeline, delay)
            if modes:
                from asyncrpc.modes_demo import run_modes_demo

                service.verbose = False
                out("")
                out("Every notification mode in turn:")
                await run_modes_demo(client, out)
    finally:
        await server.close(grace=1.0)
    out("")
    out("done.")
