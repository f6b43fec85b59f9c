"""Interop peer for asyncrpc: pynvim 0.6.0's msgpack-rpc session (``pynvim.msgpack_rpc``).

    python -m tests.interop.python.pynvim_peer client HOST PORT [CHECK...]
    python -m tests.interop.python.pynvim_peer callee HOST PORT

pynvim has no server: it is a client, which Neovim calls back on the same connection. So
``callee`` connects to an asyncrpc server, calls its ``ready`` (which hands the test a client
for this connection, ``current_call().peer``), then answers the battery's methods as they come,
until the connection closes. It runs each request in a greenlet; ``delayed_echo`` yields its
greenlet to pynvim's loop while it waits, so the replies come back out of order.

pynvim reads an error as ``[code, message]`` (asyncrpc's default for plain peers) and raises
``Exception(message)``; a handler's exception goes back as the string
``repr(exception) + "\\n" + traceback``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import greenlet
from pynvim import msgpack_rpc
from pynvim.msgpack_rpc import ErrorResponse

from tests.interop.python.common import run_checks, usage


class Session:
    def __init__(self, host: str, port: int) -> None:
        self.session = msgpack_rpc.tcp_session(host, port)

    def call(self, method: str, *params: Any) -> Any:
        return self.session.request(method, *params)

    def notify(self, method: str, *params: Any) -> None:
        self.session.request(method, *params, async_=True)

    def call_many(self, calls: list[tuple[str, list[Any]]]) -> tuple[list[Any], list[int]]:
        # Concurrent requests are pynvim's way only inside its loop: one greenlet per call.
        results: list[Any] = [None] * len(calls)
        order: list[int] = []

        def one(i: int, method: str, params: list[Any]) -> None:
            try:
                results[i] = self.session.request(method, *params)
            except Exception as error:
                results[i] = error
            order.append(i)
            if len(order) == len(calls):
                self.session.stop()

        def start() -> None:
            for i, (method, params) in enumerate(calls):
                self.session.threadsafe_call(one, i, method, params)

        self.session.run(_refuse, _ignore, start)
        return results, order

    def error_text(self, error: BaseException) -> str | None:
        # pynvim's default error_wrapper: Exception(error[1]), of that exact class.
        return str(error) if type(error) is Exception else None


def _refuse(name: str, args: list[Any]) -> None:
    raise ErrorResponse(f"the client battery answers no request ({name})")


def _ignore(name: str, args: list[Any]) -> None:
    pass


class Callee:
    """The battery's methods, answered by pynvim's session on the connection it opened."""

    def __init__(self, host: str, port: int) -> None:
        self.session = msgpack_rpc.tcp_session(host, port)
        self.notes: list[Any] = []
        self.methods: dict[str, Callable[..., Any]] = {
            "echo": lambda x: x,
            "add": lambda a, b: a + b,
            "delayed_echo": self.delayed_echo,
            "fail": self.fail,
            "notes": lambda: self.notes,
        }

    def delayed_echo(self, ms: int, x: Any) -> Any:
        # Yield this request's greenlet to pynvim's (asyncio) loop until the timer resumes it.
        current = greenlet.getcurrent()
        self.session.loop._loop.call_later(ms / 1000, current.switch)
        current.parent.switch()
        return x

    def fail(self, message: str) -> None:
        raise ValueError(message)

    def on_request(self, name: str, args: list[Any]) -> Any:
        method = self.methods.get(name)
        if method is None:  # as pynvim's plugin host answers a request it has no handler for
            raise ErrorResponse(f'no request handler registered for "{name}"')
        return method(*args)

    def on_notification(self, name: str, args: list[Any]) -> None:
        if name == "note":
            self.notes.extend(args)

    def run(self) -> None:
        # ready: the asyncrpc server now has this connection's peer, and calls us back on it.
        self.session.run(self.on_request, self.on_notification, lambda: self.session.request("ready"))


def main() -> None:
    if len(sys.argv) >= 4 and sys.argv[1] == "client":
        session = Session(sys.argv[2], int(sys.argv[3]))
        run_checks(session, sys.argv[4:])
        session.session.close()
    elif len(sys.argv) == 4 and sys.argv[1] == "callee":
        Callee(sys.argv[2], int(sys.argv[3])).run()  # until the connection closes
    else:
        usage()


if __name__ == "__main__":
    main()
