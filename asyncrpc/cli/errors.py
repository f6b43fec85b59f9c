"""How the ``asyncrpc`` command ends: exit statuses, the one-line error, OS errors as phrases."""

from __future__ import annotations

import enum
import os
import socket
from typing import Final

__all__ = ["EXIT_STATUSES", "CommandError", "ExitStatus", "bracket", "reason", "shorten"]


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
        "a port in use, a TLS or token file), or the peer cannot be reached, is not\n"
        "msgpack-rpc, or refuses the connection (its TLS certificate, the token)",
    ),
    (ExitStatus.NO_REPLY, "no reply: the call's --timeout passed, or the connection dropped first"),
    (ExitStatus.INTERRUPTED, "interrupted (Ctrl-C)"),
)
"""Every exit status with its meaning, for ``--help`` (``docs/cli.md`` has the same table)."""


class CommandError(Exception):
    """A mistake or a failure the user can act on: one ``error:`` line, no traceback."""

    def __init__(self, message: str, status: ExitStatus = ExitStatus.USAGE) -> None:
        super().__init__(message)
        self.status = status


def reason(exc: OSError) -> str:
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


def shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host
