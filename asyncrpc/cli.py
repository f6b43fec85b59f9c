"""The ``asyncrpc`` command: serve, call, demo, bench.

asyncrpc serve MODULE:OBJECT [--namespace N] [--host H] [--port P | --unix PATH]
asyncrpc call HOST:PORT METHOD [JSON_ARG ...]
asyncrpc demo
asyncrpc bench [OPTIONS]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import importlib
import inspect
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from asyncrpc.client import connect
from asyncrpc.errors import RemoteError, RPCError
from asyncrpc.runner import has_uvloop, run
from asyncrpc.server import Server

__all__ = ["main"]


def _load_target(spec: str) -> Any:
    """``package.module:attr.path`` (or just a module) to the object it names."""
    module_name, _, attr_path = spec.partition(":")
    if not module_name:
        raise ValueError(f"expected MODULE:OBJECT, got {spec!r}")
    # Like `python -m`, look in the current directory first.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    target: Any = importlib.import_module(module_name)
    for part in filter(None, attr_path.split(".")):
        target = getattr(target, part)
    return target


def _register_target(server: Server, target: Any, namespace: str | None) -> list[str]:
    if inspect.isclass(target):
        return server.register(target(), namespace)
    if inspect.isfunction(target) or inspect.isbuiltin(target):
        name = f"{namespace}.{target.__name__}" if namespace else target.__name__
        server.register_function(target, name)
        return [name]
    return server.register(target, namespace)


async def _serve(args: argparse.Namespace) -> int:
    server = Server()
    names = _register_target(server, _load_target(args.target), args.namespace)
    if args.unix:
        await server.start(path=args.unix)
        where = args.unix
    else:
        await server.start(args.host, args.port)
        where = f"{args.host}:{server.port}"
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    engine = type(loop).__module__.split(".")[0]
    print(f"asyncrpc: serving {len(names)} methods on {where} ({engine})", flush=True)
    for name in names:
        print(f"  {name}", flush=True)
    await stop.wait()
    print(f"asyncrpc: shutting down (grace {args.grace:g}s)", flush=True)
    await server.close(grace=args.grace)
    return 0


def _to_json(value: Any) -> Any:
    """msgpack values JSON cannot hold, in a readable form."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, tuple) and hasattr(value, "code") and hasattr(value, "data"):
        return {"ext": value.code, "data": base64.b64encode(value.data).decode("ascii")}
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    return value


def _parse_address(address: str) -> dict[str, Any]:
    if "/" in address or address.endswith(".sock"):
        return {"path": address}
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT or a socket path, got {address!r}")
    return {"host": host or "127.0.0.1", "port": int(port)}


def _parse_arg(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a bare word is a string: `asyncrpc call ... echo hello`


async def _call(args: argparse.Namespace) -> int:
    params = [_parse_arg(a) for a in args.args]
    try:
        async with connect(**_parse_address(args.address)) as client:
            if args.notify:
                client.notify(args.method, *params)
                return 0
            result = await client.call(args.method, *params, timeout=args.timeout)
    except RemoteError as exc:
        print(f"error: {exc}", file=sys.stderr)  # already "Type: message"
        return 1
    except RPCError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot connect to {args.address}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(_to_json(result), ensure_ascii=False))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asyncrpc",
        description="asyncio-native MessagePack-RPC with the Windows RPC asynchronous call model.",
    )
    parser.add_argument("--no-uvloop", action="store_true", help="use asyncio's default loop")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve an object's methods over msgpack-rpc")
    serve.add_argument(
        "target", metavar="MODULE:OBJECT", help="a class (instantiated), object, function or module"
    )
    serve.add_argument("--namespace", "-n", help="prefix method names: NAMESPACE.method")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    where = serve.add_mutually_exclusive_group()
    where.add_argument("--port", "-p", type=int, default=6000, help="TCP port (default 6000; 0 picks one)")
    where.add_argument("--unix", metavar="PATH", help="listen on a Unix socket instead of TCP")
    serve.add_argument("--grace", type=float, default=5.0, help="seconds in-flight calls get on shutdown")

    call = commands.add_parser("call", help="call a method and print its result as JSON")
    call.add_argument("address", metavar="HOST:PORT", help="HOST:PORT, or a Unix socket path")
    call.add_argument("method")
    call.add_argument(
        "args", nargs="*", metavar="JSON_ARG", help="arguments, as JSON (bare words are strings)"
    )
    call.add_argument("--timeout", type=float, default=30.0, help="deadline in seconds (default 30)")
    call.add_argument("--notify", action="store_true", help="send a notification; expect no reply")

    demo = commands.add_parser(
        "demo", help="watch an asynchronous call stay pending while an ordinary call completes"
    )
    demo.add_argument("--delay", type=float, default=0.5, help="how long AsyncFunc takes (default 0.5)")

    commands.add_parser("bench", help="compare asyncrpc with a minimal baseline and grpc.aio", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``asyncrpc`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    if argv[:1] == ["bench"]:
        # The runner has its own options; hand it the rest of the line untouched.
        from asyncrpc.benchmark.compare import main as bench_main

        return bench_main(argv[1:])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    use_uvloop = not args.no_uvloop and has_uvloop()
    with contextlib.suppress(KeyboardInterrupt):
        if args.command == "serve":
            return run(_serve(args), use_uvloop=use_uvloop)
        if args.command == "call":
            return run(_call(args), use_uvloop=use_uvloop)
        if args.command == "demo":
            from asyncrpc.demo import run_demo

            run(run_demo(delay=args.delay), use_uvloop=use_uvloop)
            return 0
    return 130
