"""A msgpack-rpc peer on a plain socket that reads only when told to.

It is the careless (or hostile) client of the flow-control tests: it sends as
much as it likes and never reads, until a test asks it to. Its receive buffer
is small, so the server's replies back up at the server, where they can be
seen.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import msgpack

from tests.services import BOUND

__all__ = ["RawPeer", "pack"]


def pack(message: Any) -> bytes:
    return bytes(msgpack.packb(message, use_bin_type=True))


class RawPeer:
    """One socket to a server on 127.0.0.1, driven byte by byte by a test."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)

    @classmethod
    async def connect(cls, port: int, *, receive_buffer: int = 4096) -> RawPeer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Before connect(): a buffer set later does not shrink the TCP window.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        return cls(sock)

    async def send(self, data: bytes) -> None:
        async with asyncio.timeout(BOUND):
            await asyncio.get_running_loop().sock_sendall(self.sock, data)

    async def messages(self, count: int, *, within: float = BOUND) -> list[Any]:
        """Read until ``count`` messages have come; fail if the socket closes first."""
        loop = asyncio.get_running_loop()
        received: list[Any] = []
        async with asyncio.timeout(within):
            while len(received) < count:
                received.extend(self._unpacker)
                if len(received) >= count:
                    break
                data = await loop.sock_recv(self.sock, 1 << 20)
                assert data, f"the server closed the connection after {len(received)} messages"
                self._unpacker.feed(data)
        return received

    async def closed_by_server(self, *, within: float = BOUND) -> bytes:
        """Read (and keep) everything until the server closes the connection."""
        loop = asyncio.get_running_loop()
        chunks = []
        async with asyncio.timeout(within):
            while data := await loop.sock_recv(self.sock, 1 << 20):
                chunks.append(data)
        return b"".join(chunks)

    def close(self) -> None:
        self.sock.close()
