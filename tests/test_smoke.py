"""The seed's scenario through real loopback sockets (behaviour 4)."""

from __future__ import annotations

import asyncrpc
from asyncrpc import CallStatus


async def test_sync_call_completes_while_async_call_pending(client: asyncrpc.Client) -> None:
    pending = client.call("demo.AsyncFunc", 0.5)
    await client.stub("demo").NonAsyncFunc("meanwhile")
    assert pending.status() is CallStatus.PENDING
    assert await pending == "AsyncFunc slept 0.5s"
    assert pending.status() is CallStatus.COMPLETE
