"""The asyncrpc benchmark server: ``python -m benchmarks.harness.asyncrpc_server --port 0``.

``--handlers plain`` registers plain ``def`` handlers (run inline),
``--handlers async`` registers ``async def`` ones (a task per call),
``--handlers typed`` an implementation of a typed interface (``add(a: int,
b: int) -> int``, ``echo(value: bytes) -> bytes``) whose arguments are
checked before each call (``typed-async``: its methods ``async def``), and
``--handlers hold`` answers nothing: every ``add``/``echo`` is deferred and
its token kept, for the pending-calls memory measurement.
"""

from __future__ import annotations

import abc
from typing import Any

import asyncrpc
from benchmarks.harness.common import (
    HOST,
    announce_port,
    exit_with_parent,
    process_stats,
    run_on,
    server_arguments,
    tls_server_context,
)

__all__ = ["main", "make_server"]


def add(a: Any, b: Any) -> Any:
    return a + b


def echo(value: Any) -> Any:
    return value


async def add_async(a: Any, b: Any) -> Any:
    return a + b


async def echo_async(value: Any) -> Any:
    return value


class Bench(asyncrpc.Interface):
    """The benchmark's two methods, typed."""

    @abc.abstractmethod
    async def add(self, a: int, b: int) -> int: ...

    @abc.abstractmethod
    async def echo(self, value: bytes) -> bytes: ...


class InlineBench(Bench):
    # Plain defs run inline, as for untyped handlers. (A type checker wants an
    # override of an async def to be one; the runtime takes either.)
    def add(self, a: int, b: int) -> int:  # type: ignore[override]
        return a + b

    def echo(self, value: bytes) -> bytes:  # type: ignore[override]
        return value


class AsyncBench(Bench):
    async def add(self, a: int, b: int) -> int:
        return a + b

    async def echo(self, value: bytes) -> bytes:
        return value


def make_server(handlers: str) -> tuple[asyncrpc.Server, list[asyncrpc.CompletionToken]]:
    """A server answering ``add``, ``echo`` and ``stats`` with the chosen kind of handler."""
    server = asyncrpc.Server(max_inflight=1_000_000)
    held: list[asyncrpc.CompletionToken] = []

    def hold(*_args: Any) -> None:
        held.append(asyncrpc.current_call().defer())

    if handlers == "plain":
        server.register_function(add, name="add")
        server.register_function(echo, name="echo")
    elif handlers == "async":
        server.register_function(add_async, name="add")
        server.register_function(echo_async, name="echo")
    elif handlers == "typed":
        server.register(InlineBench())
    elif handlers == "typed-async":
        server.register(AsyncBench())
    elif handlers == "hold":
        server.register_function(hold, name="add")
        server.register_function(hold, name="echo")
    else:
        raise ValueError(f"unknown handlers {handlers!r}")

    def stats() -> dict[str, float]:
        return {**process_stats(), "held": float(len(held))}

    server.register_function(stats, name="stats")
    return server, held


async def serve(port: int, handlers: str, tls_dir: str | None) -> None:
    server, _held = make_server(handlers)
    await server.start(HOST, port, ssl=tls_server_context(tls_dir))
    announce_port(server.port)
    await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    args = server_arguments("asyncrpc benchmark server", argv)
    exit_with_parent()
    run_on(args.loop, serve(args.port, args.handlers, args.tls_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
