"""Interop peer for asyncrpc: aio-msgpack-rpc 0.2.0 (asyncio), in its own venv.

    python -m tests.interop.python.aio_msgpack_rpc_peer serve
    python -m tests.interop.python.aio_msgpack_rpc_peer client HOST PORT [CHECK...]

Its server answers each request in a task of its own (so out of order), looks a method up with
``getattr`` on the handler object (an unknown one fails with the AttributeError's message) and
sends a handler's error as ``str(exception)``. Its client reads an error as whatever came.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from aio_msgpack_rpc import Client, Server
from aio_msgpack_rpc.error import RPCResponseError

from tests.interop.python.common import run_checks, usage


class H:
    """The battery's methods (the class name shows in its unknown-method error: 'H' object ...)."""

    def __init__(self) -> None:
        self._notes: list[Any] = []

    def echo(self, x: Any) -> Any:
        return x

    def add(self, a: int, b: int) -> int:
        return a + b

    async def delayed_echo(self, ms: int, x: Any) -> Any:
        await asyncio.sleep(ms / 1000)  # the delay under test
        return x

    def fail(self, message: str) -> None:
        raise ValueError(message)

    def note(self, x: Any) -> None:
        self._notes.append(x)

    def notes(self) -> list[Any]:
        return self._notes


async def serve() -> None:
    server = await asyncio.start_server(Server(H()), "127.0.0.1", 0)
    print("LISTENING", server.sockets[0].getsockname()[1], flush=True)
    # Serve until the test closes our stdin.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    server.close()


class Session:
    def __init__(self, loop: asyncio.AbstractEventLoop, host: str, port: int) -> None:
        self.loop = loop
        reader, writer = loop.run_until_complete(asyncio.open_connection(host, port))
        self.client = Client(reader, writer, loop=loop, response_timeout=20)

    def call(self, method: str, *params: Any) -> Any:
        return self.loop.run_until_complete(self.client.call(method, *params))

    def notify(self, method: str, *params: Any) -> None:
        self.loop.run_until_complete(self.client.notify(method, *params))

    def call_many(self, calls: list[tuple[str, list[Any]]]) -> tuple[list[Any], list[int]]:
        order: list[int] = []

        async def one(i: int, method: str, params: list[Any]) -> Any:
            result = await self.client.call(method, *params)
            order.append(i)
            return result

        async def run() -> list[Any]:
            return await asyncio.gather(*(one(i, m, p) for i, (m, p) in enumerate(calls)))

        return self.loop.run_until_complete(run()), order

    def error_text(self, error: BaseException) -> str | None:
        return str(error.args[0]) if isinstance(error, RPCResponseError) else None


def main() -> None:
    if sys.argv[1:] == ["serve"]:
        asyncio.run(serve())
    elif len(sys.argv) >= 4 and sys.argv[1] == "client":
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        session = Session(loop, sys.argv[2], int(sys.argv[3]))
        run_checks(session, sys.argv[4:])
        session.client.close()
        receiver = session.client._receiver_task  # cancelled by close(): let it end before the loop
        if receiver is not None:
            loop.run_until_complete(asyncio.gather(receiver, return_exceptions=True))
        loop.close()
    else:
        usage()


if __name__ == "__main__":
    main()
