"""Callback: fn(call, AsyncEvent.CALL_COMPLETE) runs on an event loop.

With no loop, on the loop that made the call; with loop=, on that loop, even one
running in another thread (the Windows hThread case). A coroutine function runs
as a task there. Callbacks run on a loop: they must not block.

    python examples/notify_callback.py [--connect HOST:PORT]
"""

from __future__ import annotations

import asyncio
import threading
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


async def main(host: str | None = None, port: int | None = None) -> None:
    async with demo_server(host, port) as address, asyncrpc.connect(*address) as client:
        loop = asyncio.get_running_loop()
        finished = asyncio.Event()

        def on_complete(call: asyncrpc.AsyncCall[Any], event: asyncrpc.AsyncEvent) -> None:
            where = threading.current_thread().name
            print(f"{event.name} for {call.method} on thread {where!r}: {call.complete()!r}")
            loop.call_soon_threadsafe(finished.set)  # safe from any thread

        # On the calling loop.
        client.call("demo.AsyncFunc", 0.2, notify=notify.Callback(on_complete))
        await client.stub("demo").NonAsyncFunc("called while AsyncFunc is pending")
        await finished.wait()

        # On another loop, running in a thread of its own.
        other = asyncio.new_event_loop()
        thread = threading.Thread(target=other.run_forever, name="other-loop")
        thread.start()
        try:
            finished.clear()
            client.call("demo.AsyncFunc", 0.2, notify=notify.Callback(on_complete, loop=other))
            await client.stub("demo").NonAsyncFunc("called while AsyncFunc is pending")
            await finished.wait()
        finally:
            other.call_soon_threadsafe(other.stop)
            await asyncio.to_thread(thread.join)
            other.close()


if __name__ == "__main__":
    asyncrpc.run(main(*parse_args(__doc__)))
