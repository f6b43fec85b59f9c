"""What the benchmark servers and the client worker share.

Each server module is run (from the repository root) as
``python -m benchmarks.harness.<module> --port 0``;
it binds 127.0.0.1, prints the port it got on one line of stdout, and serves
until it is terminated. Every server answers ``add(a, b)``, ``echo(value)``
and ``stats()``, the last giving the server's own CPU time and peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Final, TypeVar

__all__ = [
    "ECHO_PAYLOAD",
    "HOST",
    "LOOPS",
    "announce_port",
    "exit_with_parent",
    "loop_factory",
    "peak_rss_bytes",
    "process_stats",
    "run_on",
    "server_arguments",
    "tls_client_context",
    "tls_server_context",
]

T = TypeVar("T")

HOST: Final = "127.0.0.1"
LOOPS: Final = ("uvloop", "asyncio")

#: The 1 KiB ``echo`` argument: bytes, so it travels as msgpack bin.
ECHO_PAYLOAD: Final = bytes(range(256)) * 4


def peak_rss_bytes() -> int:
    """This process's peak resident memory, in bytes (``ru_maxrss``; 0 where unknown)."""
    try:
        import resource
    except ImportError:  # Windows
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return int(peak if sys.platform == "darwin" else peak * 1024)


def process_stats() -> dict[str, float]:
    """CPU seconds used so far by this process (all threads) and its peak memory."""
    return {"cpu": time.process_time(), "maxrss": float(peak_rss_bytes())}


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    if name == "asyncio":
        return asyncio.new_event_loop
    raise ValueError(f"unknown loop {name!r} (expected one of {', '.join(LOOPS)})")


def tls_server_context(directory: str | None) -> ssl.SSLContext | None:
    """The server side of a TLS benchmark (``--tls-dir``), or None for plain TCP."""
    if directory is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(Path(directory) / "server.pem"), str(Path(directory) / "server.key"))
    return context


def tls_client_context(directory: str | None) -> ssl.SSLContext | None:
    """The client side of a TLS benchmark: trusts the CA in ``directory``."""
    if directory is None:
        return None
    return ssl.create_default_context(cafile=str(Path(directory) / "ca.pem"))


def run_on(loop_name: str, main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on a new loop of the named kind."""
    with asyncio.Runner(loop_factory=loop_factory(loop_name)) as runner:
        return runner.run(main)


def server_arguments(description: str, argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--loop", choices=LOOPS, default="uvloop")
    parser.add_argument(
        "--handlers",
        choices=("plain", "async", "typed", "typed-async", "hold"),
        default="plain",
        help="plain def or async def handlers; typed: an asyncrpc.Interface implementation "
        "with its arguments checked (typed-async: async def); hold: defer every call and never answer",
    )
    parser.add_argument(
        "--tls-dir", default=None, help="serve TLS with the files write_tls_files() made there"
    )
    return parser.parse_args(argv)


def announce_port(port: int) -> None:
    """Tell the runner which port we listen on (the first line of stdout)."""
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()


def exit_with_parent() -> None:
    """Exit when the runner goes away: it holds our stdin open while it lives.

    A daemon thread waits for stdin's end, so a runner that crashed or was
    killed never leaves a server behind.
    """
    import os
    import threading

    def watch() -> None:
        try:
            sys.stdin.buffer.read()
        finally:
            os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def serve_main(
    description: str,
    serve: Callable[[int, str | None], Coroutine[Any, Any, None]],
    argv: list[str] | None,
    *,
    default_loop: str = "uvloop",
) -> int:
    """The ``main()`` of a benchmark server without options of its own: ``--port``, ``--loop``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--loop", choices=LOOPS, default=default_loop)
    parser.add_argument(
        "--tls-dir", default=None, help="serve TLS with the files write_tls_files() made there"
    )
    args = parser.parse_args(argv)
    exit_with_parent()
    run_on(args.loop, serve(args.port, args.tls_dir))
    return 0
