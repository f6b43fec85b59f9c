"""Run a coroutine on the fastest event loop this platform has."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["has_uvloop", "run"]

T = TypeVar("T")


def has_uvloop() -> bool:
    """True when uvloop is installed (it is a dependency wherever it builds)."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def run(main: Coroutine[Any, Any, T], *, use_uvloop: bool = True, debug: bool | None = None) -> T:
    """Like ``asyncio.run(main)``, on uvloop when it is installed and ``use_uvloop`` is true."""
    if use_uvloop and has_uvloop():
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop, debug=debug) as runner:
            return runner.run(main)
    return asyncio.run(main, debug=debug)
