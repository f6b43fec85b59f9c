"""Event: completion sets an event object, which the caller waits on.

notify.Event() sets an asyncio.Event (always on the loop it belongs to, even from
another thread), or a threading.Event for code that waits in a plain thread.
As on Windows, asyncrpc never resets the event: clear it before reusing it.

    python examples/notify_event.py [--connect HOST:PORT]
"""

from __future__ import annotations

import asyncio
import threading

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
        # An asyncio.Event, awaited on this loop.
        done = notify.Event()
        call = client.call("demo.AsyncFunc", 0.2, notify=done)
        await client.stub("demo").NonAsyncFunc("called while AsyncFunc is pending")
        await done.wait()
        print(f"asyncio.Event set: {call.complete()!r}")

        # A threading.Event, waited on by a plain thread (here one from asyncio's pool).
        flag = threading.Event()
        call = client.call("demo.AsyncFunc", 0.2, notify=notify.Event(flag))
        await client.stub("demo").NonAsyncFunc("called while AsyncFunc is pending")
        await asyncio.to_thread(flag.wait, 5.0)
        print(f"threading.Event set: {call.complete()!r}")


if __name__ == "__main__":
    asyncrpc.run(main(*parse_args(__doc__)))
