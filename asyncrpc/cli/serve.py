"""``asyncrpc serve MODULE:OBJECT``: load the object, listen, serve until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import errno
import importlib
import inspect
import os
import signal
import socket
import ssl
import stat
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from asyncrpc.auth import TokenAuth
from asyncrpc.cli.errors import CommandError, ExitStatus, bracket, reason
from asyncrpc.cli.security import ServerSecurity, is_loopback, server_security, warning
from asyncrpc.server import Server

__all__ = ["load_target", "register_target", "serve", "warn_if_open"]


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


def load_target(spec: str) -> Any:
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


def _module_exports(module: ModuleType, spec: str) -> list[tuple[str, Callable[..., Any]]]:
    """The functions ``module`` lists in ``__all__``, by name: what serving a module serves.

    ``__all__`` is the module's API for Python too, so it may list the classes
    and values its functions use: those are left out. A name it lists that is
    private or missing is a mistake in the module, said before anything is served.
    """
    # vars(), not getattr(): a module __getattr__ must not invent an __all__.
    exported = vars(module).get("__all__")
    if exported is None:
        raise CommandError(
            f"module {spec!r} has no __all__: list the functions to serve in its __all__ "
            f"(serving a module serves those only), or name one object as {spec}:OBJECT"
        )
    if not isinstance(exported, list | tuple):
        raise CommandError(f"{spec}.__all__ must be a list of names, not a {type(exported).__name__}")
    for name in exported:
        if not isinstance(name, str):
            raise CommandError(
                f"{spec}.__all__ must be a list of names, not one holding a {type(name).__name__}"
            )
    functions: list[tuple[str, Callable[..., Any]]] = []
    for name in dict.fromkeys(exported):  # once each, in the module's order
        if name.startswith("_"):
            raise CommandError(f"{spec}.__all__ lists {name!r}, but names starting with '_' are never served")
        try:
            value = getattr(module, name)
        except AttributeError:
            raise CommandError(f"{spec}.__all__ lists {name!r}, which the module does not define") from None
        except Exception as exc:  # a module __getattr__ that fails
            raise CommandError(
                f"cannot get {name!r} from module {spec!r}: {type(exc).__name__}: {exc}"
            ) from None
        if callable(value) and not inspect.isclass(value):
            functions.append((name, value))
    if not functions:
        raise CommandError(
            f"{spec} has nothing to serve: its __all__ lists no functions (classes and other values "
            f"are not served from a module; to serve a class's methods, name it: {spec}:CLASS)"
        )
    return functions


def register_target(server: Server, target: Any, namespace: str | None, spec: str) -> list[str]:
    """Serve ``target``'s public methods (a module's: the functions in its ``__all__``); their names."""
    if inspect.ismodule(target):
        names = []
        for attr, function in _module_exports(target, spec):
            name = f"{namespace}.{attr}" if namespace else attr
            server.register_function(function, name)
            names.append(name)
        return names
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
    elif type(target).__module__ == "builtins":
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


async def _listen(server: Server, args: argparse.Namespace, context: ssl.SSLContext | None) -> str:
    """Start listening as the options say; returns where, for the banner."""
    unix: str | None = args.unix
    host: str = args.host or "127.0.0.1"
    where = unix if unix is not None else f"{bracket(host)}:{args.port}"
    try:
        if unix is not None:
            _refuse_live_socket(unix)
            await server.start(path=unix, ssl=context)
        else:
            await server.start(host, args.port, ssl=context)
    except OSError as exc:
        raise CommandError(
            f"cannot listen on {where}: {reason(exc)}{_listen_hint(exc, unix is not None)}"
        ) from None
    except ValueError as exc:  # e.g. a NUL byte in a path or a host
        raise CommandError(f"cannot listen on {where!r}: {exc}") from None
    return unix if unix is not None else f"{bracket(host)}:{server.port}"


def warn_if_open(args: argparse.Namespace, security: ServerSecurity, where: str) -> None:
    """Say so when anyone who can reach the port can call: off loopback, nobody is authenticated."""
    if args.unix is not None or is_loopback(args.host or "127.0.0.1"):
        return
    if security.tokens is not None or security.client_ca:
        return
    if security.ssl is None:
        how = "without TLS or a token"
        fix = "--token-file FILE, and --tls-cert FILE --tls-key FILE"
    else:
        how = "over TLS but with no token or client certificate"
        fix = "--token-file FILE, or --tls-client-ca FILE"
    warning(f"serving on {where} {how}: anyone who can reach the port can call every served method ({fix})")


async def serve(args: argparse.Namespace) -> int:
    security = server_security(args)  # files read and checked before the target is even imported
    auth = TokenAuth(security.tokens) if security.tokens is not None else None
    server = Server(
        plain_errors=args.plain_errors, raw_strings=args.raw_strings, keepalive=args.keepalive, auth=auth
    )
    # The object is made on the running loop: its __init__ may make tasks or futures.
    names = register_target(server, load_target(args.target), args.namespace, args.target)
    where = await _listen(server, args, security.ssl)
    warn_if_open(args, security, where)
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
