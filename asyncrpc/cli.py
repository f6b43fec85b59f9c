"""The ``asyncrpc`` command: serve, call, demo, bench.

    asyncrpc serve MODULE:OBJECT [--namespace N] [--host H] [--port P | --unix PATH] [--grace S]
    asyncrpc call HOST:PORT|PATH METHOD [JSON_ARG ...] [--raw] [--timeout S] [--connect-timeout S]
    asyncrpc demo [--delay S]
    asyncrpc bench [ARGS ...]

A user's mistake never ends in a traceback: it is one ``error: ...`` line on
stderr that says what was wrong and what to do, and an exit status from
:class:`ExitStatus` (the table is in ``--help`` and ``docs/cli.md``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import enum
import errno
import importlib
import inspect
import json
import logging
import math
import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from asyncrpc import __version__
from asyncrpc.connector import Connector, connect
from asyncrpc.errors import (
    ConnectionLost,
    DeadlineExceeded,
    EncodeError,
    ProtocolError,
    RemoteError,
    RPCError,
)
from asyncrpc.runner import has_uvloop, run
from asyncrpc.server import Server

__all__ = ["EXIT_STATUSES", "CommandError", "ExitStatus", "main"]


class ExitStatus(enum.IntEnum):
    """What the ``asyncrpc`` command's exit status means."""

    OK = 0
    REMOTE_ERROR = 1
    USAGE = 2
    NO_REPLY = 3
    INTERRUPTED = 130


EXIT_STATUSES: Final[tuple[tuple[ExitStatus, str], ...]] = (
    (ExitStatus.OK, "success"),
    (ExitStatus.REMOTE_ERROR, 'the peer answered the call with an error ("error: Type: message")'),
    (
        ExitStatus.USAGE,
        "a usage mistake (an option, an address, a JSON argument, MODULE:OBJECT,\n"
        "a port in use), or the peer cannot be reached or is not msgpack-rpc",
    ),
    (ExitStatus.NO_REPLY, "no reply: the call's --timeout passed, or the connection dropped first"),
    (ExitStatus.INTERRUPTED, "interrupted (Ctrl-C)"),
)
"""Every exit status with its meaning, for ``--help`` (``docs/cli.md`` has the same table)."""

DEFAULT_CALL_TIMEOUT: Final = 30.0
DEFAULT_CONNECT_TIMEOUT: Final = 5.0
DEFAULT_GRACE: Final = 5.0
DEFAULT_PORT: Final = 6000
BENCH_RUNNER: Final = Path("benchmarks") / "compare.py"
"""Where ``asyncrpc bench`` finds the benchmark runner, relative to the current directory."""

_BENCH_STOP_TIMEOUT: Final = 10.0  # seconds an interrupted benchmark gets to stop its servers


class CommandError(Exception):
    """A mistake or a failure the user can act on: one ``error:`` line, no traceback."""

    def __init__(self, message: str, status: ExitStatus = ExitStatus.USAGE) -> None:
        super().__init__(message)
        self.status = status


# -- helpers for messages -------------------------------------------------------------


def _reason(exc: OSError) -> str:
    """An OS error as a short phrase, without the event loop's wrapping.

    ``create_server`` puts a whole sentence into ``strerror`` ("error while
    attempting to bind on address ('127.0.0.1', 6000): address already in
    use"), repeating the address the message already names; the errno says it
    once. Name-resolution errors carry no usable errno, only their text.
    """
    if not isinstance(exc, socket.gaierror) and exc.errno is not None and exc.errno > 0:
        text = os.strerror(exc.errno)
    else:
        text = exc.strerror or str(exc) or type(exc).__name__
    # "Address already in use" reads better mid-sentence in lower case; "AF_UNIX ..." stays.
    if text[:1].isupper() and text[1:2].islower():
        text = text[0].lower() + text[1:]
    return text


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


# -- serve ------------------------------------------------------------------------------


def _import(module_name: str) -> Any:
    # Like `python -m`, look in the current directory first.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            raise CommandError(
                f"cannot import {module_name!r}: {exc} (asyncrpc serve looks in the current "
                "directory first, then on the Python path)"
            ) from None
        # The module exists; something it imports does not.
        raise CommandError(f"cannot import {module_name!r}: it raised ModuleNotFoundError: {exc}") from None
    except Exception as exc:  # whatever the module's own code raises while it is imported
        raise CommandError(f"cannot import {module_name!r}: it raised {type(exc).__name__}: {exc}") from None


def _load_target(spec: str) -> Any:
    """``package.module:attr.path`` (or just a module) to the object it names."""
    module_name, colon, attr_path = spec.partition(":")
    parts = attr_path.split(".") if colon else []
    if not module_name or not all(parts):
        raise CommandError(f"expected MODULE:OBJECT (e.g. examples.demo_service:Demo), not {spec!r}")
    target = _import(module_name)
    for depth, part in enumerate(parts):
        where = f"{module_name}:{'.'.join(parts[:depth])}" if depth else f"module {module_name!r}"
        try:
            target = getattr(target, part)
        except AttributeError:
            raise CommandError(
                f"{where} has no attribute {part!r} "
                "(MODULE:OBJECT names a class, object or function in MODULE)"
            ) from None
        except Exception as exc:  # a property or a module __getattr__ that fails
            raise CommandError(f"cannot get {part!r} from {where}: {type(exc).__name__}: {exc}") from None
    return target


def _register_target(server: Server, target: Any, namespace: str | None, spec: str) -> list[str]:
    """Serve ``target``'s public methods; returns their names."""
    if inspect.isclass(target):
        try:
            target = target()
        except Exception as exc:
            raise CommandError(
                f"cannot create {spec}(): {type(exc).__name__}: {exc} (serve instantiates a class "
                "with no arguments; name an instance or a function instead)"
            ) from None
    elif inspect.isfunction(target) or inspect.isbuiltin(target):
        name = f"{namespace}.{target.__name__}" if namespace else target.__name__
        server.register_function(target, name)
        return [name]
    elif not inspect.ismodule(target) and type(target).__module__ == "builtins":
        # A str or a dict has public methods too, but serving them is never what was meant.
        raise CommandError(f"{spec} is a {type(target).__name__}, not a class, object, function or module")
    try:
        return server.register(target, namespace)
    except ValueError:
        raise CommandError(
            f"{spec} has no public methods to serve (names starting with '_' are never served)"
        ) from None
    except TypeError as exc:
        raise CommandError(f"cannot serve {spec}: {exc}") from None


def _listen_hint(exc: OSError, unix: bool) -> str:
    if isinstance(exc, socket.gaierror):
        return " (check --host)"
    if exc.errno == errno.EADDRINUSE:
        if unix:
            return " (remove the file if nothing uses it, or choose another path)"
        return " (is another server running there? choose another --port, or --port 0 for a free one)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return " (--host must be an address of this machine, e.g. 127.0.0.1 or 0.0.0.0)"
    if exc.errno == errno.EACCES:
        return " (check the directory's permissions)" if unix else " (ports below 1024 need privileges)"
    if exc.errno == errno.ENOENT and unix:
        return " (the socket's directory must exist)"
    return ""


def _refuse_live_socket(path: str) -> None:
    """Fail if a server already listens on the Unix socket ``path``.

    Binding there would first remove the file (asyncio and uvloop clear stale
    sockets that way), silently cutting off the server that uses it.
    """
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return  # nothing there, or a plain file: bind() itself says what is wrong
    except OSError:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)  # connecting to a local socket answers at once
        try:
            probe.connect(path)
        except OSError:
            return  # a stale socket left by a server that is gone: binding replaces it
    raise CommandError(f"cannot listen on {path}: a server is already listening there (choose another path)")


async def _listen(server: Server, args: argparse.Namespace) -> str:
    """Start listening as the options say; returns where, for the banner."""
    unix: str | None = args.unix
    host: str = args.host or "127.0.0.1"
    where = unix if unix is not None else f"{_bracket(host)}:{args.port}"
    try:
        if unix is not None:
            _refuse_live_socket(unix)
            await server.start(path=unix)
        else:
            await server.start(host, args.port)
    except OSError as exc:
        raise CommandError(
            f"cannot listen on {where}: {_reason(exc)}{_listen_hint(exc, unix is not None)}"
        ) from None
    except ValueError as exc:  # e.g. a NUL byte in a path or a host
        raise CommandError(f"cannot listen on {where!r}: {exc}") from None
    return unix if unix is not None else f"{_bracket(host)}:{server.port}"


async def _serve(args: argparse.Namespace) -> int:
    server = Server()
    # The object is made on the running loop: its __init__ may make tasks or futures.
    names = _register_target(server, _load_target(args.target), args.namespace, args.target)
    where = await _listen(server, args)
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
    return ExitStatus.OK


# -- call ---------------------------------------------------------------------------------


def _to_json(value: Any) -> Any:
    """msgpack values JSON cannot hold, in a readable form."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            # A msgpack str whose bytes are not UTF-8 (Neovim sends a Latin-1
            # buffer's text so) is decoded with lone surrogates: show its
            # bytes, as for any bin that is not UTF-8, rather than fail to print.
            value = value.encode("utf-8", "surrogateescape")
        else:
            return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, tuple) and hasattr(value, "code") and hasattr(value, "data"):  # msgpack.ExtType
        return {"ext": value.code, "data": base64.b64encode(value.data).decode("ascii")}
    if isinstance(value, dict):
        return {_json_key(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    return value


def _json_key(key: Any) -> str | int | float | bool | None:
    if key is None or isinstance(key, str | int | float | bool):
        return key  # json.dumps writes these as keys itself
    converted = _to_json(key)
    return converted if isinstance(converted, str) else json.dumps(converted, default=repr)


def _parse_address(address: str) -> dict[str, Any]:
    """``HOST:PORT``, ``[IPv6]:PORT`` or a socket path, as keyword arguments for ``connect()``."""
    if "/" in address or address.endswith(".sock"):
        return {"path": address}
    host, colon, port = address.rpartition(":")
    if not colon:
        raise CommandError(
            f"{address!r} has no port: give HOST:PORT (e.g. 127.0.0.1:6000), "
            "or the path of a Unix socket (./NAME for one in this directory)"
        )
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise CommandError(f"write an IPv6 address in brackets, e.g. [::1]:6000, not {address!r}")
    if not (port.isascii() and port.isdigit()):
        raise CommandError(f"bad port {port!r} in {address!r}: give HOST:PORT with a port from 1 to 65535")
    return {"host": host or "127.0.0.1", "port": int(port)}


def _connector(address: str, connect_timeout: float) -> Connector:
    """The validated connection options for ``address``; nothing is opened yet."""
    try:
        # The hello is part of connecting: a peer that answers nothing within
        # connect_timeout is not one we can talk to. The probe starts after the
        # socket connects, so with the same timeout it never gives up first and
        # hands a silent peer our call to wait --timeout more for.
        return connect(
            **_parse_address(address), connect_timeout=connect_timeout, hello_timeout=connect_timeout
        )
    except ValueError as exc:
        raise CommandError(f"bad address {address!r}: {exc}") from None


def _parse_args(texts: Sequence[str], *, raw: bool) -> list[Any]:
    if raw:
        return list(texts)
    params: list[Any] = []
    for number, text in enumerate(texts, 1):
        try:
            params.append(json.loads(text))
        except json.JSONDecodeError as exc:
            raise CommandError(
                f"argument {number} is not valid JSON: {exc.msg} at character {exc.pos} in "
                f"{_shorten(text)!r} (write a string as '\"text\"', "
                "or use --raw to send arguments as plain strings)"
            ) from None
    return params


def _lost(address: str, exc: ConnectionLost, *, connecting: bool) -> CommandError:
    """What a dropped connection tells the user, by when and why it dropped."""
    cause = exc.__cause__
    if isinstance(cause, ProtocolError):
        return CommandError(
            f"{address} does not speak msgpack-rpc: what it sent is not a msgpack-rpc message ({cause})"
        )
    if connecting:
        return CommandError(f"{address} closed the connection without answering: is it a msgpack-rpc server?")
    return CommandError(
        f"the connection to {address} was lost before the reply came ({exc})", ExitStatus.NO_REPLY
    )


async def _call(connector: Connector, method: str, params: list[Any], *, timeout: float, notify: bool) -> int:
    address = connector.options.address
    try:
        client = await connector
    # TimeoutError and (perhaps) ConnectionLost are OSErrors too: the specific ones first.
    except TimeoutError:
        raise CommandError(
            f"no reply from {address} within {connector.options.connect_timeout:g}s: "
            "is it a msgpack-rpc server? (--connect-timeout S waits longer)"
        ) from None
    except ConnectionLost as exc:
        raise _lost(address, exc, connecting=True) from None
    except OSError as exc:
        raise CommandError(f"cannot connect to {address}: {_reason(exc)} (is the server running?)") from None
    async with client:
        try:
            if notify:
                client.notify(method, *params)
                return ExitStatus.OK
            call = client.call(method, *params, timeout=timeout)
        except EncodeError as exc:
            raise CommandError(f"the arguments cannot be sent as MessagePack: {exc}") from None
        try:
            result = await call
        except RemoteError as exc:
            raise CommandError(str(exc), ExitStatus.REMOTE_ERROR) from None  # already "Type: message"
        except DeadlineExceeded:
            raise CommandError(
                f"no reply to {method!r} from {address} within {timeout:g}s (--timeout S waits longer)",
                ExitStatus.NO_REPLY,
            ) from None
        except ConnectionLost as exc:
            raise _lost(address, exc, connecting=False) from None
        except RPCError as exc:
            raise CommandError(f"{type(exc).__name__}: {exc}", ExitStatus.REMOTE_ERROR) from None
    print(json.dumps(_to_json(result), ensure_ascii=False, default=repr))
    return ExitStatus.OK


# -- bench ----------------------------------------------------------------------------


def _bench(argv: list[str]) -> int:
    """Run ``benchmarks/compare.py`` from the current directory with ``argv``; its exit status.

    A child process, exactly as ``python benchmarks/compare.py ARGS`` would run:
    the runner's own directory is first on its path and its exit status and
    signals are its own, whatever it imports.
    """
    if not BENCH_RUNNER.is_file():
        raise CommandError(
            "the benchmarks run from a checkout of the source repository: run asyncrpc bench "
            f"in its top directory, or python {BENCH_RUNNER.as_posix()} --help there"
        )
    process = subprocess.Popen([sys.executable, str(BENCH_RUNNER), *argv])
    try:
        status = process.wait()
    except KeyboardInterrupt:
        # Ctrl-C in a terminal reaches the runner too; let it stop its servers.
        try:
            process.wait(timeout=_BENCH_STOP_TIMEOUT)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            process.kill()
            process.wait()
        return ExitStatus.INTERRUPTED
    return 128 - status if status < 0 else status  # killed by a signal: as a shell reports it


# -- the command line -----------------------------------------------------------------


def _number(text: str, *, allow_zero: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        kind = "a number of seconds, 0 or more" if allow_zero else "a positive number of seconds"
        raise argparse.ArgumentTypeError(f"must be {kind}, not {text!r}")
    return value


def _seconds(text: str) -> float:
    return _number(text, allow_zero=False)


def _seconds_or_zero(text: str) -> float:
    return _number(text, allow_zero=True)


def _port(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 0 to 65535, not {text!r}")
    return int(text)


def _exit_table() -> str:
    lines = ["exit status:"]
    for status, meaning in EXIT_STATUSES:
        first, *rest = meaning.split("\n")
        lines.append(f"  {status.value:<4} {first}")
        lines.extend(f"       {line}" for line in rest)
    lines.append("serve exits 0 once SIGINT or SIGTERM has stopped it; bench exits as its")
    lines.append("runner does.")
    return "\n".join(lines)


_SERVE_EXIT: Final = """\
exit status:
  0    stopped by SIGINT or SIGTERM, after calls in flight finished (or --grace)
  2    a usage mistake: an option, a MODULE:OBJECT that cannot be imported or
       served, an address or port that cannot be listened on
  130  interrupted before it was serving (Ctrl-C)
"""

_CALL_EXAMPLES: Final = """\
examples:
  asyncrpc call 127.0.0.1:6000 demo.AsyncFunc 0.5
  asyncrpc call 127.0.0.1:6000 demo.NonAsyncFunc '"hello"'
  asyncrpc call --raw 127.0.0.1:6000 demo.NonAsyncFunc hello
  asyncrpc call /tmp/rpc.sock add 1 2
  asyncrpc call --raw 127.0.0.1:6000 demo.NonAsyncFunc -- -text-with-a-dash
"""


def _parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The command line, and each command's own parser (for errors with that command's usage)."""
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="asyncrpc",
        description="asyncio-native MessagePack-RPC: serve an object's methods, call a method\n"
        "on any msgpack-rpc server (Neovim included), or watch asynchronous calls at work.",
        epilog=_exit_table(),
        formatter_class=raw,
    )
    parser.add_argument("--version", action="version", version=f"asyncrpc {__version__}")
    parser.add_argument("--no-uvloop", action="store_true", help="use asyncio's default loop")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="serve an object's methods over msgpack-rpc",
        description="Serve the public methods of OBJECT from MODULE until SIGINT or SIGTERM.",
        epilog=_SERVE_EXIT,
        formatter_class=raw,
    )
    serve.add_argument(
        "target",
        metavar="MODULE:OBJECT",
        help="a class (made with no arguments), object or function in MODULE; or MODULE alone",
    )
    serve.add_argument("--namespace", "-n", help="prefix method names: NAMESPACE.method")
    serve.add_argument("--host", help="TCP address to listen on (default 127.0.0.1)")
    where = serve.add_mutually_exclusive_group()
    where.add_argument(
        "--port", "-p", type=_port, default=DEFAULT_PORT, help="TCP port (default 6000; 0 picks a free one)"
    )
    where.add_argument("--unix", metavar="PATH", help="listen on a Unix socket instead of TCP")
    serve.add_argument(
        "--grace",
        type=_seconds_or_zero,
        default=DEFAULT_GRACE,
        metavar="S",
        help="seconds calls in flight get to finish on shutdown (default 5)",
    )

    call = commands.add_parser(
        "call",
        help="call a method and print its result as JSON",
        description="Connect, make one call, print its result as JSON.",
        epilog=f"{_CALL_EXAMPLES}\n{_exit_table()}",
        formatter_class=raw,
    )
    call.add_argument("address", metavar="HOST:PORT", help="HOST:PORT, [IPv6]:PORT, or a Unix socket path")
    call.add_argument("method", metavar="METHOD", help="the remote method, e.g. demo.AsyncFunc or nvim_eval")
    call.add_argument(
        "args",
        nargs="*",
        metavar="JSON_ARG",
        help="arguments, each as JSON: 1, 2.5, true, '\"text\"', '[1, 2]'",
    )
    call.add_argument("--raw", action="store_true", help="send every argument as a plain string, not JSON")
    call.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_CALL_TIMEOUT,
        metavar="S",
        help="seconds to wait for the reply (default 30)",
    )
    call.add_argument(
        "--connect-timeout",
        type=_seconds,
        default=DEFAULT_CONNECT_TIMEOUT,
        metavar="S",
        help="seconds to connect and get the peer's first answer (default 5)",
    )
    call.add_argument("--notify", action="store_true", help="send a notification; expect no reply")

    demo = commands.add_parser(
        "demo",
        help="watch an asynchronous call stay pending while an ordinary call completes",
        description="A server and a client on 127.0.0.1, in one process: an asynchronous call "
        "stays pending while an ordinary call completes on the same connection; every step is "
        "printed with its time.",
    )
    demo.add_argument(
        "--delay",
        type=_seconds_or_zero,
        default=0.5,
        metavar="S",
        help="how long the asynchronous call takes (default 0.5)",
    )

    bench = commands.add_parser(
        "bench",
        help="run the benchmarks (in a checkout of the source repository; asyncrpc bench --help)",
        add_help=False,
    )
    return parser, {"serve": serve, "call": call, "demo": demo, "bench": bench}


def _bench_arguments(argv: list[str]) -> list[str] | None:
    """What follows ``bench`` when it is the command, untouched (the runner has its own options)."""
    for index, token in enumerate(argv):
        if not token.startswith("-"):
            return argv[index + 1 :] if token == "bench" else None
    return None


def _configure_logging(args: argparse.Namespace) -> None:
    if args.verbose:
        level = logging.DEBUG
    elif args.command == "call":
        # The one error line says what went wrong; the library's warning about
        # the same dropped connection would only repeat it.
        level = logging.ERROR
    else:
        level = logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _status(code: object) -> int:
    """A ``SystemExit`` code as an exit status."""
    if code is None:
        return ExitStatus.OK
    return code if isinstance(code, int) else ExitStatus.USAGE


def _parse(argv: list[str], bench_argv: list[str] | None) -> argparse.Namespace:
    """The parsed command line; argparse exits (2, with the usage line) on a mistake."""
    parser, commands = _parsers()
    # For bench, only what comes before the runner's arguments is ours.
    args = parser.parse_args(argv if bench_argv is None else argv[: len(argv) - len(bench_argv)])
    if args.command == "bench" and (args.no_uvloop or args.verbose):
        parser.error("--no-uvloop and -v do not apply to bench; give the runner's options after 'bench'")
    if args.command == "serve" and args.unix is not None and args.host is not None:
        commands["serve"].error("--host is for TCP; with --unix the server listens on a socket path only")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``asyncrpc`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    bench_argv = _bench_arguments(argv)
    try:
        args = _parse(argv, bench_argv)
    except SystemExit as exc:  # --help and --version (0), or a usage mistake argparse printed (2)
        return _status(exc.code)
    try:
        if bench_argv is not None:
            return _bench(bench_argv)
        _configure_logging(args)
        return _run(args, use_uvloop=not args.no_uvloop and has_uvloop())
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(exc.status)
    except KeyboardInterrupt:
        return int(ExitStatus.INTERRUPTED)


def _run(args: argparse.Namespace, *, use_uvloop: bool) -> int:
    if args.command == "serve":
        return run(_serve(args), use_uvloop=use_uvloop)
    if args.command == "call":
        # Everything that can be wrong with the command line is found before any I/O.
        params = _parse_args(args.args, raw=args.raw)
        connector = _connector(args.address, args.connect_timeout)
        return run(
            _call(connector, args.method, params, timeout=args.timeout, notify=args.notify),
            use_uvloop=use_uvloop,
        )
    from asyncrpc.demo import run_demo

    run(run_demo(delay=args.delay), use_uvloop=use_uvloop)
    return ExitStatus.OK
