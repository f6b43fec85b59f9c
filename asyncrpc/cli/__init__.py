"""The ``asyncrpc`` command: serve, call, demo, bench.

    asyncrpc serve MODULE[:OBJECT] [--namespace N] [--host H] [--port P | --unix PATH] [--grace S]
                   [--tls-cert FILE [--tls-key FILE] [--tls-client-ca FILE]] [--token-file FILE]
    asyncrpc call HOST:PORT|PATH METHOD [JSON_ARG ...] [--raw] [--timeout S] [--connect-timeout S]
                  [--tls | --tls-ca FILE] [--tls-cert FILE [--tls-key FILE]] [--token-env VAR]
    asyncrpc list | describe | stubgen HOST:PORT|PATH ... (the same TLS and token options)
    asyncrpc demo [--delay S]
    asyncrpc bench [ARGS ...]

A user's mistake never ends in a traceback: it is one ``error: ...`` line on
stderr that says what was wrong and what to do, and an exit status from
:class:`ExitStatus` (the table is in ``--help`` and ``docs/cli.md``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from asyncrpc.cli.bench import bench, bench_arguments
from asyncrpc.cli.call import call, make_connector, parse_args
from asyncrpc.cli.errors import EXIT_STATUSES, CommandError, ExitStatus
from asyncrpc.cli.parser import parsers
from asyncrpc.cli.security import client_security
from asyncrpc.cli.serve import serve
from asyncrpc.runner import has_uvloop, run

__all__ = ["EXIT_STATUSES", "CommandError", "ExitStatus", "main"]


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
    parser, commands = parsers()
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
    bench_argv = bench_arguments(argv)
    try:
        args = _parse(argv, bench_argv)
    except SystemExit as exc:  # --help and --version (0), or a usage mistake argparse printed (2)
        return _status(exc.code)
    try:
        if bench_argv is not None:
            return bench(bench_argv)
        _configure_logging(args)
        return _run(args, use_uvloop=not args.no_uvloop and has_uvloop())
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(exc.status)
    except KeyboardInterrupt:
        return int(ExitStatus.INTERRUPTED)


def _run(args: argparse.Namespace, *, use_uvloop: bool) -> int:
    if args.command == "serve":
        return run(serve(args), use_uvloop=use_uvloop)
    if args.command == "call":
        # Everything that can be wrong with the command line is found before any I/O.
        params = parse_args(args.args, raw=args.raw)
        connector = make_connector(
            args.address, args.connect_timeout, raw_strings=args.raw_strings, security=client_security(args)
        )
        return run(
            call(connector, args.method, params, timeout=args.timeout, notify=args.notify),
            use_uvloop=use_uvloop,
        )
    if args.command in ("list", "describe"):
        from asyncrpc.cli.describe import describe_methods, list_methods

        connector = make_connector(args.address, args.connect_timeout, security=client_security(args))
        if args.command == "list":
            return run(list_methods(connector, timeout=args.timeout), use_uvloop=use_uvloop)
        return run(describe_methods(connector, args.method, timeout=args.timeout), use_uvloop=use_uvloop)
    if args.command == "stubgen":
        from asyncrpc.cli.stubgen import stubgen

        connector = make_connector(args.address, args.connect_timeout, security=client_security(args))
        return stubgen(args, connector, use_uvloop=use_uvloop)
    from asyncrpc.demo import run_demo

    run(run_demo(delay=args.delay), use_uvloop=use_uvloop)
    return ExitStatus.OK
