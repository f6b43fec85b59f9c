"""APC: a routine queued for a plain thread, run only in that thread's alertable wait.

Windows queues an asynchronous procedure call to the thread that made the call
(or to a chosen one); the thread runs it only while it sleeps in an alertable
wait (SleepEx(..., TRUE)). Here the plain thread uses the blocking client,
asyncrpc.sync, and asyncrpc.sync.sleep_ex is the alertable wait.

    python examples/notify_apc.py [--connect HOST:PORT]
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import asyncrpc
from asyncrpc import notify
from asyncrpc.sync import pending_apcs, sleep_ex

try:
    from examples.demo_service import demo_server, parse_args
except ImportError:  # run as a script: this directory is on sys.path
    from demo_service import (  # type: ignore[no-redef,import-not-found,unused-ignore]
        demo_server,
        parse_args,
    )


def plain_thread(host: str, port: int) -> None:
    """Code without an event loop, as a Windows client thread would be."""

    def on_complete(call: asyncrpc.AsyncCall[Any], event: asyncrpc.AsyncEvent) -> None:
        print(f"APC: {event.name} in thread {threading.current_thread().name!r}: {call.complete()!r}")

    with asyncrpc.sync.connect(host, port) as c:
        call = c.start("demo.AsyncFunc", 0.2, notify=notify.Apc(on_complete))  # hThread = 0: this thread
        c.call("demo.NonAsyncFunc", "called while AsyncFunc is pending")

        call.wait(5.0)  # a wait that is not alertable (like time.sleep): the call completes, its APC waits
        print(f"call {call.status().name}; {pending_apcs()} APC queued, none run yet")

        ran = sleep_ex(2.0, alertable=True)  # SleepEx(2000, TRUE): runs it, here
        print(f"sleep_ex(alertable=True) returned after running {ran} APC")


async def main(host: str | None = None, port: int | None = None) -> None:
    async with demo_server(host, port) as address:
        thread = threading.Thread(target=plain_thread, args=address, name="client-thread")
        thread.start()
        await asyncio.to_thread(thread.join)


if __name__ == "__main__":
    asyncrpc.run(main(*parse_args(__doc__)))
