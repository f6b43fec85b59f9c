"""The ``asyncrpc`` command line: its options, their checks, and the help texts."""

from __future__ import annotations

import argparse
import math
from typing import Final

from asyncrpc import __version__
from asyncrpc.cli.errors import EXIT_STATUSES
from asyncrpc.remote_errors import PLAIN_ERROR_SHAPES

__all__ = ["parsers"]

DEFAULT_CALL_TIMEOUT: Final = 30.0
DEFAULT_CONNECT_TIMEOUT: Final = 5.0
DEFAULT_GRACE: Final = 5.0
DEFAULT_PORT: Final = 6000


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


def _name(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _add_server_security(serve: argparse.ArgumentParser) -> None:
    group = serve.add_argument_group(
        "TLS and authentication",
        "Off a loopback host, serve with a token file or client certificates: without\n"
        "either, anyone who can reach the port can call every served method.",
    )
    group.add_argument(
        "--tls-cert",
        metavar="FILE",
        help="serve over TLS with this certificate chain (PEM; it may hold the key)",
    )
    group.add_argument(
        "--tls-key", metavar="FILE", help="its private key (PEM), when not in the --tls-cert file"
    )
    group.add_argument(
        "--tls-client-ca",
        metavar="FILE",
        help="require a client certificate signed by a CA in FILE (PEM): mutual TLS",
    )
    group.add_argument(
        "--token-file",
        metavar="FILE",
        help="let in only clients that send a token listed in FILE: one 'PRINCIPAL TOKEN' pair "
        "a line; blank lines and lines starting with # are skipped",
    )


def _add_client_security(command: argparse.ArgumentParser) -> None:
    group = command.add_argument_group("TLS and authentication")
    group.add_argument("--tls", action="store_true", help="connect over TLS, trusting the system's CAs")
    group.add_argument(
        "--tls-ca", metavar="FILE", help="connect over TLS, trusting the CAs in FILE (PEM) instead"
    )
    group.add_argument(
        "--tls-cert",
        metavar="FILE",
        help="present this client certificate (PEM; it may hold the key), for mutual TLS; implies TLS",
    )
    group.add_argument(
        "--tls-key", metavar="FILE", help="its private key (PEM), when not in the --tls-cert file"
    )
    group.add_argument(
        "--server-hostname",
        type=_name,
        metavar="NAME",
        help="the name the server's certificate must carry (default: HOST; needed over a Unix socket)",
    )
    group.add_argument(
        "--token-env",
        type=_name,
        metavar="VAR",
        help="authenticate with the token in the environment variable VAR (a token is never "
        "given on the command line, where ps shows it)",
    )


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
       served, an address or port that cannot be listened on, a TLS or token
       file that cannot be read or used
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


def parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
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
        help="a class (made with no arguments), object or function in MODULE; or MODULE alone, "
        "to serve the functions its __all__ lists",
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
    serve.add_argument(
        "--plain-errors",
        choices=PLAIN_ERROR_SHAPES,
        default="neovim",
        help="errors to plain msgpack-rpc clients (default neovim): neovim sends "
        '[0, "Type: message"] (Neovim and its clients), string sends "Type: message" '
        "(Go, most other libraries)",
    )
    serve.add_argument(
        "--raw-strings",
        action="store_true",
        help="for clients that pack bytes as msgpack str (the old spec: msgpack-rpc-python): "
        "their strs reach the handlers as bytes",
    )
    serve.add_argument(
        "--keepalive",
        type=_seconds,
        default=None,
        metavar="S",
        help="ping a client silent for S seconds; one that does not answer within S more "
        "is disconnected and its calls cancelled (default: no pings)",
    )
    _add_server_security(serve)

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
    call.add_argument(
        "--raw-strings",
        action="store_true",
        help="for servers that pack bytes as msgpack str (the old spec): send no hello, "
        "and read every str in the reply as bytes",
    )
    _add_client_security(call)

    # list and describe: what an asyncrpc server says of its methods (its describe request).
    listing = commands.add_parser(
        "list",
        help="list an asyncrpc server's methods",
        description="Ask an asyncrpc server for its methods and print their names, with the "
        "interface each belongs to.",
        epilog=_exit_table(),
        formatter_class=raw,
    )
    describe = commands.add_parser(
        "describe",
        help="print the signature, types and docs of a server's methods",
        description="Ask an asyncrpc server to describe METHOD (every method without one): its "
        "signature, docstring, and the types it uses.",
        epilog=_exit_table(),
        formatter_class=raw,
    )
    for reflecting in (listing, describe):
        reflecting.add_argument(
            "address", metavar="HOST:PORT", help="HOST:PORT, [IPv6]:PORT, or a Unix socket path"
        )
    describe.add_argument("method", metavar="METHOD", nargs="?", help="one method (default: every method)")
    for reflecting in (listing, describe):
        reflecting.add_argument(
            "--timeout",
            type=_seconds,
            default=DEFAULT_CALL_TIMEOUT,
            metavar="S",
            help="seconds to wait for the answer (default 30)",
        )
        reflecting.add_argument(
            "--connect-timeout",
            type=_seconds,
            default=DEFAULT_CONNECT_TIMEOUT,
            metavar="S",
            help="seconds to connect and get the peer's first answer (default 5)",
        )
        _add_client_security(reflecting)

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

    stubgen = commands.add_parser(
        "stubgen",
        help="write a peer's API as a Python module of typed interfaces",
        description="Ask a running peer to describe its API (an asyncrpc server, or Neovim) and write "
        "it as a Python module of typed interfaces, ready for client.stub(...), that mypy --strict "
        "and ruff check accept.",
        epilog="examples:\n  asyncrpc stubgen 127.0.0.1:6666 -o nvim_api.py\n"
        "  asyncrpc stubgen 127.0.0.1:6000 --class-name Demo > demo_api.py\n",
        formatter_class=raw,
    )
    stubgen.add_argument("address", metavar="HOST:PORT", help="HOST:PORT, [IPv6]:PORT, or a Unix socket path")
    stubgen.add_argument("-o", "--output", metavar="FILE", help="write the module to FILE (default stdout)")
    stubgen.add_argument(
        "--class-name",
        metavar="NAME",
        help="the class of Neovim's functions (default Nvim), or of a server's methods that "
        "belong to no interface (default Service)",
    )
    stubgen.add_argument(
        "--neovim", action="store_true", help="ask nvim_get_api_info only (the default asks asyncrpc first)"
    )
    stubgen.add_argument(
        "--deprecated", action="store_true", help="include the functions Neovim marks deprecated"
    )
    stubgen.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_CALL_TIMEOUT,
        metavar="S",
        help="seconds to wait for each answer (default 30)",
    )
    stubgen.add_argument(
        "--connect-timeout",
        type=_seconds,
        default=DEFAULT_CONNECT_TIMEOUT,
        metavar="S",
        help="seconds to connect and get the peer's first answer (default 5)",
    )
    _add_client_security(stubgen)

    bench = commands.add_parser(
        "bench",
        help="run the benchmarks (in a checkout of the source repository; asyncrpc bench --help)",
        add_help=False,
    )
    return parser, {
        "serve": serve,
        "call": call,
        "list": listing,
        "describe": describe,
        "demo": demo,
        "stubgen": stubgen,
        "bench": bench,
    }
