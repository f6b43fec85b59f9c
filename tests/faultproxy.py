"""A TCP proxy on 127.0.0.1 that injects network faults between a client and a real server.

The client connects to the proxy, the proxy to the server, and a test switches,
at any moment, what happens to the bytes flowing each way::

    async with FaultProxy("127.0.0.1", server.port) as proxy:
        client = await asyncrpc.connect("127.0.0.1", proxy.port)
        proxy.set(Direction.TO_CLIENT, Fault.silent())   # replies stop; sockets stay open
        ...
        proxy.set(Direction.TO_CLIENT, Fault.none())     # and flow again, nothing lost

Faults (:class:`Fault`), each for one :class:`Direction` and every connection
through the proxy, now and later, until the next :meth:`FaultProxy.set`:

``Fault.none(chunk=None)``
    Forward everything (``chunk=1``: one byte per write, the receiver reading
    each on its own, to exercise its reassembly of split messages).
``Fault.delay(seconds)``
    Forward each chunk no earlier than ``seconds`` after it arrived, in order.
``Fault.drop()``
    Read and swallow every byte; both connections stay open.
``Fault.cut(after)``
    Forward exactly ``after`` more bytes, then close both connections (FIN): the
    receiver sees a message cut short.
``Fault.reset()``
    Reset the receiving end at once (RST: ``SO_LINGER`` 0, then close) and close
    the other end cleanly, as a proxy whose peer vanished does.
``Fault.silent()``
    Go silent (the half-open network): stop reading from the sending end and
    forward nothing, not even its close; sockets stay open, and the sender's
    kernel buffers fill up.
``Fault.close()``
    Close cleanly (FIN) towards the receiving end, once what was already read is
    forwarded: a half-close; what the receiver does about it travels back as usual.

A close or reset by one end travels in its direction like its bytes do (held
back by a delay, held by silence), and reaches the other end as a clean close.

``upstream`` (client -> server) and ``downstream`` (server -> client) are the
:class:`Flow` of each direction: the fault set for it, and counters of bytes
``seen`` (read), ``forwarded`` and ``dropped``, which a test can await
(:meth:`Flow.wait_seen`, :meth:`Flow.wait_forwarded`) instead of sleeping.
``flow.drop = True`` and ``flow.delay = s`` are shorthands for ``set``.

The proxy tracks every task and socket it makes; leaving ``async with`` (or
:meth:`FaultProxy.close`) aborts every connection and waits until each socket
is closed and each task has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import math
import socket
import struct
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, cast

__all__ = ["Direction", "Fault", "FaultKind", "FaultProxy", "Flow"]

#: Bytes one direction of one connection may hold (delayed or waiting for a slow
#: receiver) before the proxy stops reading from the sender: memory stays bounded.
_BACKLOG_LIMIT: Final = 256 * 1024


class Direction(enum.Enum):
    """Which way bytes flow through the proxy."""

    TO_SERVER = "to-server"
    """What the client sends (``FaultProxy.upstream``)."""
    TO_CLIENT = "to-client"
    """What the server sends (``FaultProxy.downstream``)."""


class FaultKind(enum.Enum):
    """What a :class:`Fault` does; see the module's docstring."""

    NONE = "none"
    DELAY = "delay"
    DROP = "drop"
    CUT = "cut"
    RESET = "reset"
    SILENT = "silent"
    CLOSE = "close"


@dataclass(frozen=True)
class Fault:
    """A fault for one direction; make one with the class methods (``Fault.silent()``)."""

    kind: FaultKind = FaultKind.NONE
    seconds: float = 0.0
    """``delay``: how long each chunk is held."""
    after: int = 0
    """``cut``: how many more bytes go through before the cut."""
    chunk: int | None = None
    """``none``, ``delay``, ``cut``: forward in writes of at most this many bytes."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.seconds) and self.seconds >= 0):
            raise ValueError(f"delay must be a finite number of seconds >= 0, not {self.seconds!r}")
        if self.after < 0:
            raise ValueError(f"cut needs a byte count >= 0, not {self.after!r}")
        if self.chunk is not None and self.chunk < 1:
            raise ValueError(f"chunk must be at least 1 byte, not {self.chunk!r}")

    @classmethod
    def none(cls, *, chunk: int | None = None) -> Fault:
        """Forward everything (in writes of ``chunk`` bytes, if given)."""
        return cls(FaultKind.NONE, chunk=chunk)

    @classmethod
    def delay(cls, seconds: float, *, chunk: int | None = None) -> Fault:
        """Forward each chunk ``seconds`` after it arrived, in order."""
        return cls(FaultKind.DELAY, seconds=seconds, chunk=chunk)

    @classmethod
    def drop(cls) -> Fault:
        """Swallow every byte; both connections stay open."""
        return cls(FaultKind.DROP)

    @classmethod
    def cut(cls, after: int, *, chunk: int | None = None) -> Fault:
        """Forward exactly ``after`` more bytes, then close both connections."""
        return cls(FaultKind.CUT, after=after, chunk=chunk)

    @classmethod
    def reset(cls) -> Fault:
        """Reset the receiving end (RST) and close the other end cleanly, at once."""
        return cls(FaultKind.RESET)

    @classmethod
    def silent(cls) -> Fault:
        """Stop reading and forwarding anything this way; sockets stay open."""
        return cls(FaultKind.SILENT)

    @classmethod
    def close(cls) -> Fault:
        """Half-close (FIN) towards the receiving end once what was read is forwarded."""
        return cls(FaultKind.CLOSE)


class _Mark(enum.Enum):
    """What an end can send besides bytes, queued in order with them."""

    EOF = "eof"  # the end half-closed: forward a FIN
    LOST = "lost"  # the end's socket is gone: close the receiving end


class Flow:
    """One direction through the proxy: its fault and what it has moved, over all connections."""

    def __init__(self, direction: Direction) -> None:
        self.direction = direction
        self.fault = Fault.none()
        self.seen = 0
        """Bytes read from the senders."""
        self.forwarded = 0
        """Bytes written to the receivers."""
        self.dropped = 0
        """Bytes read and thrown away (``drop``, after a cut or a close)."""
        self._pipes: set[_Pipe] = set()
        self._waiters: list[tuple[str, int, asyncio.Future[None]]] = []

    def set(self, fault: Fault) -> None:
        """Apply ``fault`` to every connection, now and later (``FaultProxy.set`` does this)."""
        self.fault = fault
        for pipe in list(self._pipes):
            pipe.apply(fault)

    # Shorthands kept from the first version of this proxy (tests read and set them).

    @property
    def drop(self) -> bool:
        """Whether bytes are being dropped; setting it sets ``drop`` or ``none``."""
        return self.fault.kind is FaultKind.DROP

    @drop.setter
    def drop(self, value: bool) -> None:
        self.set(Fault.drop() if value else Fault.none())

    @property
    def delay(self) -> float:
        """Seconds each chunk is held; setting it sets ``delay`` (or ``none`` for 0)."""
        return self.fault.seconds if self.fault.kind is FaultKind.DELAY else 0.0

    @delay.setter
    def delay(self, seconds: float) -> None:
        self.set(Fault.delay(seconds) if seconds else Fault.none())

    async def wait_seen(self, count: int) -> None:
        """Return once at least ``count`` bytes in all were read in this direction."""
        await self._wait("seen", count)

    async def wait_forwarded(self, count: int) -> None:
        """Return once at least ``count`` bytes in all were forwarded in this direction."""
        await self._wait("forwarded", count)

    async def _wait(self, counter: str, count: int) -> None:
        if getattr(self, counter) >= count:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((counter, count, future))
        await future

    def _count(self, counter: str, size: int) -> None:
        setattr(self, counter, getattr(self, counter) + size)
        waiting = []
        for name, count, future in self._waiters:
            if future.done():
                continue  # its waiter was cancelled
            if getattr(self, name) >= count:
                future.set_result(None)
            else:
                waiting.append((name, count, future))
        self._waiters = waiting

    def __repr__(self) -> str:
        return (
            f"<Flow {self.direction.value} {self.fault.kind.value} seen={self.seen} "
            f"forwarded={self.forwarded} dropped={self.dropped}>"
        )


class _End(asyncio.Protocol):
    """One socket of a proxied connection: the client's, or ours to the server."""

    def __init__(self, link: _Link) -> None:
        self.link = link
        self.transport: asyncio.Transport | None = None
        self.feeds: _Pipe | None = None  # the pipe this end's bytes go into
        self.early: list[bytes | _Mark] = []  # what arrived before that pipe existed
        self.lost = False
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pauses: set[str] = set()
        self._writable = asyncio.Event()
        self._writable.set()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports are not asyncio.Transport subclasses.
        self.transport = cast(asyncio.Transport, transport)
        if self._pauses:
            self.transport.pause_reading()
        self.link.made(self)

    def data_received(self, data: bytes) -> None:
        self._feed(data)

    def eof_received(self) -> bool:
        self._feed(_Mark.EOF)
        return True  # keep our socket open: the other direction may still have bytes to deliver

    def connection_lost(self, exc: Exception | None) -> None:
        if self.lost:
            return  # told already, by abandon()
        self.lost = True
        self._writable.set()  # a pump waiting to write here must wake, and give up
        self._feed(_Mark.LOST)
        if not self.closed.done():
            self.closed.set_result(None)
        self.link.end_lost()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # the proxy's side

    def _feed(self, item: bytes | _Mark) -> None:
        if self.feeds is None:
            self.early.append(item)
        else:
            self.feeds.feed(item)

    def pause(self, reason: str) -> None:
        """Stop reading for ``reason`` (several reasons may hold at once)."""
        self._pauses.add(reason)
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(RuntimeError):  # uvloop, on a transport being closed
                self.transport.pause_reading()

    def resume(self, reason: str) -> None:
        """Drop ``reason``; read again once no reason is left."""
        self._pauses.discard(reason)
        if not self._pauses and self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(RuntimeError):
                self.transport.resume_reading()

    async def writable(self) -> None:
        """Wait while the kernel will not take more bytes for this end."""
        await self._writable.wait()

    def close(self) -> None:
        """Close cleanly: flush what is buffered, then FIN."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def reset(self) -> None:
        """Close with a RST: ``SO_LINGER`` on with a zero timeout, then close."""
        if self.transport is None or self.lost:
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    def abort(self) -> None:
        """Close at once, dropping what is buffered."""
        if self.transport is not None and not self.lost:
            self.transport.abort()

    def abandon(self) -> None:
        """Abort, and count the socket as gone now, without waiting to be told.

        For a connect cut short after the socket came up: uvloop then closes
        the socket without ever calling ``connection_lost``.
        """
        if not self.lost:
            self.abort()
            self.connection_lost(None)


class _Pipe:
    """One direction of one proxied connection: reads from ``source``, writes to ``sink``."""

    def __init__(self, flow: Flow, source: _End, sink: _End, link: _Link) -> None:
        self.flow = flow
        self.source = source
        self.sink = sink
        self.link = link
        self.fault = Fault.none()
        self._queue: deque[tuple[float, bytes | _Mark]] = deque()  # (arrival time, item)
        self._queued = 0
        self._cut_left: int | None = None
        self._finished = False  # a FIN or close went out: what comes later is dropped
        self.eof_sent = False
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def feed(self, item: bytes | _Mark) -> None:
        """Take what the source sent (bytes, its EOF, its loss), in order."""
        if isinstance(item, bytes):
            self.flow._count("seen", len(item))
            if self._finished or self.fault.kind is FaultKind.DROP:
                self.flow._count("dropped", len(item))
                return
            self._queued += len(item)
            if self._queued > _BACKLOG_LIMIT:
                self.source.pause("backlog")
        self._queue.append((self._loop.time(), item))
        self._wake.set()

    def apply(self, fault: Fault) -> None:
        """Switch to ``fault``; its effect on what is already queued is in the module docstring."""
        self.fault = fault
        if fault.kind is FaultKind.SILENT:
            self.source.pause("silent")
        else:
            self.source.resume("silent")
        self._cut_left = fault.after if fault.kind is FaultKind.CUT else None
        if fault.kind is FaultKind.CUT and fault.after == 0:
            self.link.close()
        elif fault.kind is FaultKind.RESET:
            self.link.reset(toward=self.sink)
        elif fault.kind is FaultKind.CLOSE and not self._finished:
            self._queue.append((self._loop.time(), _Mark.EOF))
        self._wake.set()

    async def run(self) -> None:
        """Move the queue to the sink, as the current fault allows, until the link ends."""
        while not self.link.done:
            if not self._queue or self.fault.kind is FaultKind.SILENT:
                self._wake.clear()
                await self._wake.wait()
                continue
            arrived, item = self._queue[0]
            hold = arrived + self.fault.seconds - self._loop.time()
            if self.fault.kind is FaultKind.DELAY and hold > 0:
                # Holding the bytes back is the fault itself; a change of fault wakes us early.
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(hold):
                        await self._wake.wait()
                continue
            self._queue.popleft()
            if isinstance(item, _Mark):
                self._end(item)
            else:
                self._queued -= len(item)
                if self._queued <= _BACKLOG_LIMIT:
                    self.source.resume("backlog")
                await self._forward(item)

    def _end(self, mark: _Mark) -> None:
        """Pass the source's end on to the sink: a FIN for its FIN, a close for its loss."""
        if self._finished:
            return
        self._finished = True
        transport = self.sink.transport
        if mark is _Mark.EOF and transport is not None and not self.sink.lost and transport.can_write_eof():
            with contextlib.suppress(OSError, RuntimeError):
                transport.write_eof()
            self.eof_sent = True
            self.link.eof_sent()
        else:
            self.sink.close()

    async def _forward(self, data: bytes) -> None:
        if self._finished:
            self.flow._count("dropped", len(data))
            return
        while data and not self.link.done:
            size = self.fault.chunk or len(data)
            if self._cut_left is not None:
                size = min(size, self._cut_left)
            piece, data = data[:size], data[size:]
            await self.sink.writable()
            if self.sink.lost or self.sink.transport is None or self.sink.transport.is_closing():
                self.flow._count("dropped", len(piece) + len(data))
                return
            self.sink.transport.write(piece)
            self.flow._count("forwarded", len(piece))
            if self._cut_left is not None:
                self._cut_left -= len(piece)
                if self._cut_left == 0:
                    self.flow._count("dropped", len(data))
                    self.link.close()
                    return
            if self.fault.chunk is not None and data:
                # One loop turn per piece, so that the receiver reads each piece on its own.
                await asyncio.sleep(0)


class _Link:
    """One proxied connection: the client's socket, ours to the server, a pipe each way."""

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self.client = _End(self)
        self.server = _End(self)
        # Nothing is read from the client until the server's socket is up.
        self.client.pause("connecting")
        self.pipes: list[_Pipe] = []
        self.done = False

    def made(self, end: _End) -> None:
        if end is self.client:
            self.proxy._spawn(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: self.server, *self.proxy.target)
        except OSError:
            self.client.abort()
            return
        except BaseException:
            self.server.abandon()  # cancelled by close(), perhaps with the socket already up
            raise
        if self.done or self.client.lost:
            self.server.close()
            return
        up = _Pipe(self.proxy.upstream, self.client, self.server, self)
        down = _Pipe(self.proxy.downstream, self.server, self.client, self)
        self.pipes = [up, down]
        for pipe in self.pipes:
            pipe.flow._pipes.add(pipe)
            pipe.source.feeds = pipe
            for item in pipe.source.early:
                pipe.feed(item)
            pipe.source.early.clear()
            self.proxy._spawn(pipe.run())
        for pipe in self.pipes:
            if not self.done:
                pipe.apply(pipe.flow.fault)
        self.client.resume("connecting")

    def eof_sent(self) -> None:
        # Both ends have half-closed and each FIN was delivered: nothing more can move.
        if all(pipe.eof_sent for pipe in self.pipes):
            self.close()

    def close(self) -> None:
        """Close both ends cleanly (what is buffered goes out, then FIN)."""
        self.client.close()
        self.server.close()

    def reset(self, toward: _End) -> None:
        """RST to ``toward``, a clean close to the other end."""
        other = self.server if toward is self.client else self.client
        toward.reset()
        other.close()

    def abort(self) -> None:
        """Abort both ends at once."""
        self.client.abort()
        self.server.abort()

    def end_lost(self) -> None:
        # Done once neither socket is left (the server's may never have been made).
        if self.client.lost and (self.server.lost or self.server.transport is None):
            self._finish()

    def _finish(self) -> None:
        if self.done:
            return
        self.done = True
        for pipe in self.pipes:
            pipe.flow._pipes.discard(pipe)
            pipe._wake.set()  # its task sees ``done`` and returns
        self.proxy._link_done(self)


class FaultProxy:
    """A fault-injecting TCP proxy on 127.0.0.1 (a free port) in front of ``target_host:target_port``.

    Use it as ``async with FaultProxy("127.0.0.1", port) as proxy``; point the
    client at ``proxy.port``; switch faults with :meth:`set` at any time.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.upstream = Flow(Direction.TO_SERVER)
        self.downstream = Flow(Direction.TO_CLIENT)
        self.accepted = 0
        """Connections accepted so far."""
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._ends: list[_End] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._link_waiters: list[tuple[int, asyncio.Future[None]]] = []

    @property
    def port(self) -> int:
        """The port the client should connect to."""
        assert self._server is not None, "proxy not started"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def links(self) -> int:
        """Connections being proxied now."""
        return len(self._links)

    async def wait_links(self, count: int) -> None:
        """Return once exactly ``count`` connections are being proxied."""
        if len(self._links) == count:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._link_waiters.append((count, future))
        await future

    def flow(self, direction: Direction) -> Flow:
        """The :class:`Flow` of ``direction``."""
        return self.upstream if direction is Direction.TO_SERVER else self.downstream

    def set(self, direction: Direction, fault: Fault) -> None:
        """Apply ``fault`` to ``direction`` on every connection, now and later."""
        self.flow(direction).set(fault)

    def clear(self) -> None:
        """Both directions back to ``Fault.none()``."""
        for direction in Direction:
            self.set(direction, Fault.none())

    def cut(self) -> None:
        """Abort every proxied connection on both sides at once (no goodbye, no flush)."""
        for link in list(self._links):
            link.abort()

    async def start(self) -> None:
        """Listen on 127.0.0.1, on a free port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._accept, "127.0.0.1", 0)

    async def close(self) -> None:
        """Stop listening, abort every connection, and wait for every socket and task to end."""
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for end in self._ends:
            end.abort()  # ends of connections still being set up
        await asyncio.gather(*(end.closed for end in self._ends if end.transport is not None))
        self._ends.clear()
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

    # internals

    def _accept(self) -> _End:
        self.accepted += 1
        link = _Link(self)
        self._links.add(link)
        self._ends += [link.client, link.server]
        self._links_changed()
        return link.client

    def _link_done(self, link: _Link) -> None:
        self._links.discard(link)
        self._links_changed()

    def _links_changed(self) -> None:
        waiting = []
        for count, future in self._link_waiters:
            if future.done():
                continue
            if len(self._links) == count:
                future.set_result(None)
            else:
                waiting.append((count, future))
        self._link_waiters = waiting

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
