"""Polling: nothing is delivered; ask call.status() until it is not PENDING.

The Windows RPC client calls RpcAsyncGetCallStatus in a loop. It is the simplest
mode and the most wasteful: the caller spends time asking. Poll between other work.

    python examples/notify_polling.py [--connect HOST:PORT]
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


async def main(host: str | None = None, port: int | None = None) -> None:
    async with demo_server(host, port) as address, asyncrpc.connect(*address) as client:
        call = client.call("demo.AsyncFunc", 0.3, notify=notify.Polling())
        await client.stub("demo").NonAsyncFunc("called while AsyncFunc is pending")

        polls = 0
        while call.status() is asyncrpc.CallStatus.PENDING:  # RpcAsyncGetCallStatus
            polls += 1
            await asyncio.sleep(0.02)  # "other work" between polls

        # The status is final now: COMPLETE, FAILED or CANCELLED.
        print(f"polled {polls} times; status {call.status().name}; result {call.complete()!r}")


if __name__ == "__main__":
    asyncrpc.run(main(*parse_args(__doc__)))
