"""The grpc.aio benchmark server: ``python -m benchmarks.harness.grpc_server --port 0``.

No ``.proto`` and no code generation: generic handlers with raw bytes in and
out, the bytes being msgpack, so both sides do the same encoding work as the
msgpack-rpc servers. Needs ``grpcio`` (the ``bench`` extra).
"""

from __future__ import annotations

from typing import Any

import msgpack

from benchmarks.harness.common import HOST, announce_port, process_stats, serve_main

__all__ = ["SERVICE", "main"]

SERVICE = "bench"


async def _add(request: bytes, _context: Any) -> bytes:
    a, b = msgpack.unpackb(request)
    return msgpack.packb(a + b)  # type: ignore[no-any-return]


async def _echo(request: bytes, _context: Any) -> bytes:
    (value,) = msgpack.unpackb(request)
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


async def _stats(_request: bytes, _context: Any) -> bytes:
    return msgpack.packb(process_stats())  # type: ignore[no-any-return]


async def serve(port: int, tls_dir: str | None = None) -> None:
    if tls_dir is not None:
        raise SystemExit("the grpc.aio benchmark server has no TLS variant")
    import grpc

    server = grpc.aio.server()
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(fn)
        for name, fn in (("add", _add), ("echo", _echo), ("stats", _stats))
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    bound = server.add_insecure_port(f"{HOST}:{port}")
    await server.start()
    announce_port(bound)
    await server.wait_for_termination()


def main(argv: list[str] | None = None) -> int:
    return serve_main("grpc.aio benchmark server", serve, argv, default_loop="asyncio")


if __name__ == "__main__":
    raise SystemExit(main())
