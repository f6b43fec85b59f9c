"""The minimal baseline: msgpack-rpc by hand on an ``asyncio.Protocol``, no features at all.

What anyone would write in an afternoon, and the floor asyncrpc is measured
against: one ``msgpack.Unpacker`` per connection, a dict of futures on the
client, plain functions on the server. No validation, limits, extensions,
cancellation, deadlines or notification modes. The server answers everything
it decoded from one read in one write; the client writes each request as it
is made.

``python -m benchmarks.harness.baseline --port 0`` runs the server.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import msgpack

from benchmarks.harness.common import (
    HOST,
    announce_port,
    process_stats,
    serve_main,
    tls_client_context,
    tls_server_context,
)

__all__ = ["BaselineClient", "BaselineServer", "connect", "main"]


def _nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _add(a: Any, b: Any) -> Any:
    return a + b


def _echo(value: Any) -> Any:
    return value


HANDLERS: dict[str, Callable[..., Any]] = {"add": _add, "echo": _echo, "stats": process_stats}


class BaselineServer(asyncio.Protocol):
    def __init__(self) -> None:
        self._unpacker = msgpack.Unpacker(raw=False)
        self._pack = msgpack.Packer(use_bin_type=True).pack
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        _nodelay(transport)

    def data_received(self, data: bytes) -> None:
        self._unpacker.feed(data)
        pack = self._pack
        out = []
        for _kind, msgid, method, params in self._unpacker:
            try:
                out.append(pack([1, msgid, None, HANDLERS[method](*params)]))
            except Exception as exc:
                out.append(pack([1, msgid, repr(exc), None]))
        if out and self._transport is not None:
            self._transport.write(b"".join(out))


class BaselineClient(asyncio.Protocol):
    def __init__(self) -> None:
        self._unpacker = msgpack.Unpacker(raw=False)
        self._pack = msgpack.Packer(use_bin_type=True).pack
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._next_msgid = 0
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        _nodelay(transport)

    def call(self, method: str, *params: Any) -> asyncio.Future[Any]:
        msgid = self._next_msgid
        self._next_msgid = (msgid + 1) & 0xFFFFFFFF
        future = self._loop.create_future()
        self._pending[msgid] = future
        self._transport.write(self._pack([0, msgid, method, params]))  # type: ignore[union-attr]
        return future

    def data_received(self, data: bytes) -> None:
        self._unpacker.feed(data)
        pending = self._pending
        for _kind, msgid, error, result in self._unpacker:
            future = pending.pop(msgid)
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(RuntimeError(error))

    def connection_lost(self, exc: Exception | None) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(ConnectionError("connection lost"))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def connect(port: int, tls_dir: str | None = None) -> BaselineClient:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(BaselineClient, HOST, port, ssl=tls_client_context(tls_dir))
    return client


async def serve(port: int, tls_dir: str | None = None) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(BaselineServer, HOST, port, ssl=tls_server_context(tls_dir))
    announce_port(server.sockets[0].getsockname()[1])
    await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    return serve_main("minimal msgpack-rpc baseline server", serve, argv)


if __name__ == "__main__":
    raise SystemExit(main())
