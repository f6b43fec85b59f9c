"""``asyncrpc stubgen ADDRESS [-o FILE]``: a peer's API as a module of typed interfaces.

It asks the peer to describe itself: an asyncrpc server answers the describe
request; a peer that does not know it (``MethodNotFound``, or any error a
plain msgpack-rpc peer answers an unknown method with) is asked Neovim's
``nvim_get_api_info`` instead. ``--neovim`` asks only the latter. An asyncrpc
server that cannot describe one of its methods (``DescribeFailed``) is one
error line, not asked again. The module is written by :mod:`asyncrpc.stubgen`;
this is the I/O around it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Final

from asyncrpc.cli.call import open_or_explain
from asyncrpc.cli.errors import CommandError, ExitStatus, reason
from asyncrpc.client import Client
from asyncrpc.connector import Connector
from asyncrpc.errors import ConnectionLost, DeadlineExceeded, DescribeFailed, RemoteError, RPCError
from asyncrpc.runner import run
from asyncrpc.stubgen import StubgenError, from_description, from_neovim
from asyncrpc.wire import extensions

__all__ = ["DESCRIBE_METHOD", "NEOVIM_METHOD", "stubgen"]

#: The describe request an asyncrpc server answers with its API.
DESCRIBE_METHOD: Final[str] = extensions.DESCRIBE_METHOD
#: What Neovim answers with its API.
NEOVIM_METHOD: Final = "nvim_get_api_info"


def stubgen(args: argparse.Namespace, connector: Connector, *, use_uvloop: bool) -> int:
    """Run ``asyncrpc stubgen`` with parsed arguments; returns the exit status."""
    source = run(_generate(args, connector), use_uvloop=use_uvloop)
    _write(source, args.output)
    return ExitStatus.OK


async def _generate(args: argparse.Namespace, connector: Connector) -> str:
    address = connector.options.address
    client = await open_or_explain(connector)
    async with client:
        try:
            if args.neovim:
                return from_neovim(
                    await _ask(client, NEOVIM_METHOD, args.timeout, address),
                    class_name=args.class_name or "Nvim",
                    deprecated=args.deprecated,
                    address=address,
                )
            try:
                description = await _ask(client, DESCRIBE_METHOD, args.timeout, address)
            except DescribeFailed as exc:  # an asyncrpc server, that cannot describe itself
                raise CommandError(
                    f"{address} cannot describe its API: {exc.message}", ExitStatus.REMOTE_ERROR
                ) from None
            except RemoteError as first:
                try:
                    api_info = await _ask(client, NEOVIM_METHOD, args.timeout, address)
                except RemoteError as second:
                    raise CommandError(
                        f"{address} does not describe its API: it answered {DESCRIBE_METHOD} with "
                        f"{first.type}: {first.message}, and {NEOVIM_METHOD} with "
                        f"{second.type}: {second.message}",
                        ExitStatus.REMOTE_ERROR,
                    ) from None
                return from_neovim(
                    api_info,
                    class_name=args.class_name or "Nvim",
                    deprecated=args.deprecated,
                    address=address,
                )
            return from_description(description, class_name=args.class_name or "Service", address=address)
        except StubgenError as exc:
            raise CommandError(f"{address} answered with {exc}", ExitStatus.REMOTE_ERROR) from None


async def _ask(client: Client, method: str, timeout: float, address: str) -> Any:
    try:
        return await client.call(method, timeout=timeout)
    except RemoteError:
        raise
    except DeadlineExceeded:
        raise CommandError(
            f"no reply to {method!r} within {timeout:g}s (--timeout S waits longer)", ExitStatus.NO_REPLY
        ) from None
    except ConnectionLost as exc:
        raise CommandError(f"the connection to {address} was lost ({exc})", ExitStatus.NO_REPLY) from None
    except RPCError as exc:
        raise CommandError(f"{type(exc).__name__}: {exc}", ExitStatus.REMOTE_ERROR) from None


def _write(source: str, output: str | None) -> None:
    if output is None or output == "-":
        try:
            sys.stdout.write(source)
            sys.stdout.flush()
        except OSError as exc:
            raise CommandError(f"cannot write the module: {reason(exc)}") from None
        return
    try:
        Path(output).write_text(source, encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot write {output}: {reason(exc)}") from None
