"""What the Python peer programs share: the client battery, run over a small adapter per library.

Each ``<peer>_peer.py`` runs in its peer's own venv (``python -m tests.interop.python.<peer>_peer``
from the repository root) and imports nothing of asyncrpc or pytest: only this module and
``tests/interop/battery.py``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, Protocol

from tests.interop.battery import (
    BIN,
    CONCURRENT,
    FAIL_MESSAGE,
    INT64,
    LARGE_BIN,
    LARGE_STR,
    NOTE,
    STR,
    UNICODE,
    delay_ms,
    same,
)


class Session(Protocol):
    """A library's client, made synchronous for the battery."""

    def call(self, method: str, *params: Any) -> Any: ...

    def notify(self, method: str, *params: Any) -> None: ...

    def call_many(self, calls: list[tuple[str, list[Any]]]) -> tuple[list[Any], list[int]]:
        """All the calls at once: their results by index, and the indexes in the order they finished."""
        ...

    def error_text(self, error: BaseException) -> str | None:
        """The library's error for a failed call, as text; None if ``error`` is not one."""
        ...


def emit(check: str, ok: bool, detail: Any) -> None:
    print(json.dumps({"check": check, "ok": bool(ok), "detail": str(detail)}), flush=True)


def kind(value: Any) -> str:
    return type(value).__name__


def _echo(session: Session, arrives: Callable[[Any], Any], check: str, value: Any) -> None:
    reply = session.call("echo", value)
    emit(check, same(reply, arrives(value)), kind(reply))


def _echoes(session: Session, arrives: Callable[[Any], Any], check: str, values: dict[str, Any]) -> None:
    for name, value in values.items():
        _echo(session, arrives, f"{check}:{name}", value)


def _error(session: Session, check: str, method: str, *params: Any) -> None:
    try:
        reply = session.call(method, *params)
    except Exception as error:
        text = session.error_text(error)
        emit(check, text is not None, text if text is not None else repr(error))
    else:
        emit(check, False, f"no error: {reply!r}")


def _concurrent(session: Session, arrives: Callable[[Any], Any]) -> None:
    calls = [("delayed_echo", [delay_ms(i), i]) for i in range(CONCURRENT)]
    results, order = session.call_many(calls)
    emit("concurrent", results == list(range(CONCURRENT)), json.dumps(order))


def _notification(session: Session, arrives: Callable[[Any], Any]) -> None:
    session.notify("note", NOTE)
    notes = session.call("notes")  # answered after the notification, sent first on the same connection
    emit("notification", same(notes, [arrives(NOTE)]), repr(notes))


CHECKS: dict[str, Callable[[Session, Callable[[Any], Any]], None]] = {
    "one_call": lambda s, a: emit("one_call", s.call("add", 40, 2) == 42, "add(40, 2)"),
    "concurrent": _concurrent,
    "handler_error": lambda s, a: _error(s, "handler_error", "fail", FAIL_MESSAGE),
    "unknown_method": lambda s, a: _error(s, "unknown_method", "no_such_method"),
    "notification": _notification,
    "bin_and_str": lambda s, a: _echoes(s, a, "bin_and_str", {"bin": BIN, "str": STR}),
    "large": lambda s, a: _echoes(s, a, "large", {"str": LARGE_STR, "bin": LARGE_BIN}),
    "unicode": lambda s, a: _echo(s, a, "unicode", UNICODE),
    "int64": lambda s, a: _echoes(s, a, "int64", INT64),
}


def run_checks(
    session: Session, names: list[str], arrives: Callable[[Any], Any] = lambda value: value
) -> None:
    """Run the named checks (all of them for none), one JSON line each; ``arrives`` is what a
    value sent becomes on its way back (the old spec turns str into bytes)."""
    for name in names or list(CHECKS):
        check = CHECKS.get(name)
        if check is None:
            emit(name, False, "no such check")
            continue
        try:
            check(session, arrives)
        except Exception as error:
            emit(name, False, repr(error))


def usage() -> None:
    print("usage: serve | client HOST PORT [CHECK...]", file=sys.stderr)
    sys.exit(2)
