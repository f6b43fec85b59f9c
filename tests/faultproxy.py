"""A TCP proxy on 127.0.0.1 that cuts connections and drops or delays bytes.

In the spirit of asyncpg's ``_testbase/fuzzer.py``: the client connects to
the proxy, the proxy to the real server, and a test decides what happens to
the bytes in between::

    async with FaultProxy("127.0.0.1", server.port) as proxy:
        client = await asyncrpc.connect("127.0.0.1", proxy.port)
        proxy.downstream.drop = True          # replies vanish on the way back
        call = client.call("add", 1, 2)
        await proxy.downstream.wait_seen(1)   # the reply reached the proxy...
        proxy.cut()                           # ...and never the client

``upstream`` carries client -> server bytes, ``downstream`` server -> client.
Every byte read from one side is counted (``seen``) and then forwarded,
delayed by ``delay`` seconds, or dropped, so a test can await "the bytes got
this far" instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

__all__ = ["Direction", "FaultProxy"]

_CHUNK = 65536


class Direction:
    """What the proxy does to the bytes flowing one way, and what it has seen."""

    def __init__(self, name: str) -> None:
        self.name = name
        #: Drop every byte read from now on instead of forwarding it.
        self.drop = False
        #: Seconds to hold each chunk before forwarding it.
        self.delay = 0.0
        self.seen = 0
        self.forwarded = 0
        self.dropped = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    async def wait_seen(self, count: int) -> None:
        """Return once at least ``count`` bytes in total were read in this direction."""
        if self.seen >= count:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((count, future))
        await future

    def _saw(self, size: int) -> None:
        self.seen += size
        waiting = []
        for count, future in self._waiters:
            if self.seen >= count:
                if not future.done():
                    future.set_result(None)
            else:
                waiting.append((count, future))
        self._waiters = waiting

    def __repr__(self) -> str:
        return (
            f"<Direction {self.name} seen={self.seen} forwarded={self.forwarded} "
            f"dropped={self.dropped} drop={self.drop} delay={self.delay}>"
        )


class _Link:
    """One proxied connection: the client's socket and ours to the server."""

    def __init__(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> None:
        self.client = client
        self.server = server
        self.pumps: list[asyncio.Task[None]] = []

    def abort(self) -> None:
        for writer in (self.client, self.server):
            writer.transport.abort()


class FaultProxy:
    """A fault-injecting TCP proxy in front of ``target_host:target_port``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self.upstream = Direction("upstream")
        self.downstream = Direction("downstream")
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self.accepted = 0

    @property
    def port(self) -> int:
        assert self._server is not None, "proxy not started"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def links(self) -> int:
        """Connections being proxied now."""
        return len(self._links)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    def cut(self) -> None:
        """Abort every proxied connection on both sides at once (no goodbye, no flush)."""
        for link in list(self._links):
            link.abort()

    async def close(self) -> None:
        """Stop listening, cut every connection and wait for the proxy's own tasks to end."""
        if self._server is not None:
            self._server.close()
        self.cut()
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.accepted += 1
        try:
            await self._proxy(reader, writer)
        finally:
            self._handlers.discard(task)

    async def _proxy(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self._target)
        except OSError:
            client_writer.transport.abort()
            return
        link = _Link(client_writer, server_writer)
        self._links.add(link)
        try:
            await asyncio.gather(
                self._pump(client_reader, server_writer, self.upstream),
                self._pump(server_reader, client_writer, self.downstream),
            )
        finally:
            self._links.discard(link)
            # Both sides finished (or were cut): let what is queued go out.
            client_writer.close()
            server_writer.close()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, way: Direction) -> None:
        try:
            while True:
                data = await reader.read(_CHUNK)
                if not data:
                    # A clean close on one side is a clean close on the other.
                    if writer.can_write_eof():
                        with contextlib.suppress(OSError):
                            writer.write_eof()
                    return
                way._saw(len(data))
                if way.drop:
                    way.dropped += len(data)
                    continue
                if way.delay:
                    # Holding the bytes back is this proxy's job, not a wait for an event.
                    await asyncio.sleep(way.delay)
                writer.write(data)
                way.forwarded += len(data)
                await writer.drain()
        except (ConnectionError, OSError):
            # The other pump (or cut()) aborted the link; nothing more to move.
            return
