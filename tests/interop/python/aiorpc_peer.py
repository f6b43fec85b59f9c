"""Interop peer for asyncrpc: aiorpc 0.1.7's server (asyncio), in its own venv.

    python -m tests.interop.python.aiorpc_peer serve

Only ``serve``: aiorpc's client cannot run on Python 3.10 and later (it passes ``loop=`` to
``asyncio.open_connection``). Its server handles one request at a time per connection, in order;
it parses requests only (a notification is dropped, logged), never answers a method it does not
know, reads str as str and bin as bytes but sends bytes as msgpack str (``use_bin_type=False``),
and sends an error as ``[exception type name, message]``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import aiorpc

from tests.interop.python.common import usage

NOTES: list[Any] = []


async def delayed_echo(ms: int, x: Any) -> Any:
    await asyncio.sleep(ms / 1000)  # the delay under test
    return x


def fail(message: str) -> None:
    raise ValueError(message)


async def serve() -> None:
    for name, function in {
        "echo": lambda x: x,
        "add": lambda a, b: a + b,
        "delayed_echo": delayed_echo,
        "fail": fail,
        "note": NOTES.append,
        "notes": lambda: NOTES,
    }.items():
        aiorpc.register(name, function)
    # Its IO timeout (3 s by default) also closes a connection idle that long: longer than a test.
    aiorpc.set_timeout(20)
    server = await asyncio.start_server(aiorpc.serve, "127.0.0.1", 0)
    print("LISTENING", server.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until stdin closes
    server.close()


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        asyncio.run(serve())
    else:
        usage()
