"""The demo service: one asynchronous and one ordinary (synchronous) remote procedure.

In the Windows RPC sample, ``AsyncFunc`` is an asynchronous procedure the
server completes later, and ``NonAsyncFunc`` an ordinary one the client calls
while the first is still pending. Serve it with::

    asyncrpc serve examples.demo_service:Demo --namespace demo --port 6000

or run this file, which serves it on 127.0.0.1 (port 6000 unless given).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

import asyncrpc


class Demo:
    """``demo.AsyncFunc`` and ``demo.NonAsyncFunc``."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    async def AsyncFunc(self, delay: float) -> str:
        """Finish after ``delay`` seconds, without holding up other calls."""
        await asyncio.sleep(delay)
        return f"AsyncFunc finished after {delay:g}s"

    def NonAsyncFunc(self, message: str) -> None:
        """Record ``message`` and return at once (a plain def runs inline, no task)."""
        self.messages.append(message)


# -- plumbing shared by the examples: a server to talk to, and the command line -----


@contextlib.asynccontextmanager
async def demo_server(host: str | None, port: int | None) -> AsyncIterator[tuple[str, int]]:
    """The server at ``host:port``, or this service on a free loopback port for one run."""
    if host is not None and port is not None:
        yield host, port
        return
    server = asyncrpc.Server()
    server.register(Demo(), namespace="demo")
    await server.start("127.0.0.1", 0)
    try:
        yield "127.0.0.1", server.port
    finally:
        await server.close(grace=1.0)


def parse_args(doc: str | None) -> tuple[str | None, int | None]:
    """An example's command line: ``[--connect HOST:PORT]``."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument(
        "--connect", metavar="HOST:PORT", help="use a running demo server instead of starting one"
    )
    address = parser.parse_args().connect
    if address is None:
        return None, None
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


async def serve(port: int = 6000) -> None:
    server = asyncrpc.Server()
    server.register(Demo(), namespace="demo")
    await server.start("127.0.0.1", port)
    print(f"serving demo.AsyncFunc and demo.NonAsyncFunc on 127.0.0.1:{server.port}")
    try:
        await server.serve_forever()
    finally:
        await server.close()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C stops the server cleanly
        asyncrpc.run(serve(int(sys.argv[1]) if len(sys.argv) > 1 else 6000))
