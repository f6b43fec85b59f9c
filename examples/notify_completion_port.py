"""Completion port: completions from many calls on one queue, shared by many consumers.

Each call is bound to the port with its own key and overlapped value
(CreateIoCompletionPort); consumers take Completion(key, call, overlapped) with
await port.get() (GetQueuedCompletionStatus), each completion exactly once.
port.post() queues a packet of your own (PostQueuedCompletionStatus).

    python examples/notify_completion_port.py [--connect HOST:PORT]
"""

from __future__ import annotations

import asyncio

import asyncrpc
from asyncrpc import notify

try:
    from examples.demo_service import demo_server, parse_args
except ImportError:  # run as a script: this directory is on sys.path
    from demo_service import (  # type: ignore[no-redef,import-not-found,unused-ignore]
        demo_server,
        parse_args,
    )


async def consumer(name: str, port: notify.CompletionPort) -> None:
    while True:
        packet = await port.get()
        if not packet.has_call:  # a packet we posted ourselves: time to stop
            return
        print(f"{name} took key={packet.key!r} overlapped={packet.overlapped!r}: {packet.call.complete()!r}")


async def main(host: str | None = None, port: int | None = None) -> None:
    async with demo_server(host, port) as address, asyncrpc.connect(*address) as client:
        completions = notify.CompletionPort()
        workers = [asyncio.create_task(consumer(f"consumer-{i}", completions)) for i in range(2)]

        calls = [
            client.call(
                "demo.AsyncFunc", delay, notify=completions.bind(key=f"call-{i}", overlapped={"n": i})
            )
            for i, delay in enumerate([0.3, 0.1, 0.2, 0.15])
        ]
        await client.stub("demo").NonAsyncFunc("called while four AsyncFunc calls are pending")

        await asyncio.gather(*calls, return_exceptions=True)
        for _ in workers:
            completions.post("stop")  # a packet of our own (no call) for each consumer
        await asyncio.gather(*workers)


if __name__ == "__main__":
    asyncrpc.run(main(*parse_args(__doc__)))
