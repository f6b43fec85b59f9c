"""Interop peer for asyncrpc: msgpack-rpc-python 0.4.1 (module ``msgpackrpc``, on tornado 4.5.3).

    python -m tests.interop.python.msgpackrpc_peer serve
    python -m tests.interop.python.msgpackrpc_peer client HOST PORT [CHECK...]

It runs on the old msgpack module (msgpack-python 0.5.6), in a venv of its own, and speaks the
old msgpack spec: str and bytes both go out as msgpack str (``pack_encoding='utf-8'``), and every
msgpack str comes in as bytes (``unpack_encoding=None``, its default). So string arguments reach
its handlers as bytes, and asyncrpc must use ``raw_strings=True`` with it.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import msgpackrpc
from msgpackrpc import error as rpc_error
from msgpackrpc.server import AsyncResult
from msgpackrpc.transport import tcp
from tornado import netutil

from tests.interop.battery import old_spec
from tests.interop.python.common import run_checks, usage


class Handlers:
    def __init__(self, server: Any) -> None:
        self._server = server
        self._notes: list[Any] = []

    def echo(self, x: Any) -> Any:
        return x

    def add(self, a: int, b: int) -> int:
        return a + b

    def delayed_echo(self, ms: int, x: Any) -> Any:
        # An AsyncResult answers later: the ioloop's timer makes the replies come out of order.
        result = AsyncResult()
        self._server._loop._ioloop.call_later(ms / 1000, result.set_result, x)
        return result

    def fail(self, message: bytes) -> None:
        raise ValueError(message.decode())  # sent as str(exception)

    def note(self, x: Any) -> None:
        self._notes.append(x)

    def notes(self) -> list[Any]:
        return self._notes


def serve() -> None:
    server = msgpackrpc.Server(None)
    server._dispatcher = Handlers(server)
    # Server.listen() would bind every interface: bind 127.0.0.1 only, the way its transport would.
    transport = tcp.ServerTransport(None, server._encodings)
    transport._server = server
    listener = tcp.MessagePackServer(transport, io_loop=server._loop._ioloop, encodings=server._encodings)
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    listener.add_sockets(sockets)
    print("LISTENING", sockets[0].getsockname()[1], flush=True)

    def stop_when_stdin_closes() -> None:
        sys.stdin.read()
        server._loop._ioloop.add_callback(server.stop)

    threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
    server.start()


class Session:
    def __init__(self, host: str, port: int) -> None:
        self.client = msgpackrpc.Client(msgpackrpc.Address(host, port), timeout=20)

    def call(self, method: str, *params: Any) -> Any:
        return self.client.call(method, *params)

    def notify(self, method: str, *params: Any) -> None:
        self.client.notify(method, *params)

    def call_many(self, calls: list[tuple[str, list[Any]]]) -> tuple[list[Any], list[int]]:
        order: list[int] = []
        futures = []
        for i, (method, params) in enumerate(calls):
            future = self.client.call_async(method, *params)
            future.attach_callback(lambda _future, i=i: order.append(i))
            futures.append(future)
        return [future.get() for future in futures], order

    def error_text(self, error: BaseException) -> str | None:
        if not isinstance(error, rpc_error.RPCError):
            return None
        message = error.args[0]  # the error object as it came: bytes, for a msgpack str
        return message.decode() if isinstance(message, bytes) else repr(message)


def main() -> None:
    if sys.argv[1:] == ["serve"]:
        serve()
    elif len(sys.argv) >= 4 and sys.argv[1] == "client":
        session = Session(sys.argv[2], int(sys.argv[3]))
        run_checks(session, sys.argv[4:], arrives=old_spec)
        session.client.close()
    else:
        usage()


if __name__ == "__main__":
    main()
