"""What the type checker is told about documented usage (CI runs mypy --strict over this file).

Each function is also run, so the types it states are what the objects really are.
"""

from __future__ import annotations

from typing import Any, assert_type

import asyncrpc
from asyncrpc import notify


async def test_connect_returns_a_public_type_that_gives_a_client(server: asyncrpc.Server) -> None:
    connector = asyncrpc.connect("127.0.0.1", server.port)
    assert_type(connector, asyncrpc.Connector)
    assert isinstance(connector, asyncrpc.Connector)
    async with connector as client:
        assert_type(client, asyncrpc.Client)
        call = client.call("add", 1, 2)
        assert_type(call, asyncrpc.AsyncCall[Any])
        assert await call == 3
    client = await asyncrpc.connect("127.0.0.1", server.port)
    assert_type(client, asyncrpc.Client)
    await client.close()


async def test_a_completion_gives_its_call_as_the_docs_use_it(client: asyncrpc.Client) -> None:
    port = notify.CompletionPort()
    client.call("add", 20, 22, notify=port.bind(key="answer"))
    completion = await port.get(timeout=5)
    assert_type(completion.call, asyncrpc.AsyncCall[Any])
    assert (completion.key, completion.call.complete()) == ("answer", 42)
    port.post("stop")
    stop = await port.get(timeout=5)
    assert not stop.has_call
