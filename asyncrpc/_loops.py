"""Which event loop is running here, and tasks that must outlive their owner."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final

__all__ = ["keep_alive", "running_loop"]

running_loop: Final[Callable[[], asyncio.AbstractEventLoop | None]] = asyncio.events._get_running_loop
"""The loop running in this thread, or ``None``; never raises, unlike ``get_running_loop``.

asyncio's own non-raising accessor (listed in ``asyncio.events.__all__``),
bound directly: it runs on every call, and a wrapper function or a
try/except around ``get_running_loop()`` would cost a Python frame or an
exception per miss.
"""


_KEPT: set[asyncio.Task[Any]] = set()


def keep_alive(task: asyncio.Task[Any]) -> None:
    """Hold a strong reference to ``task`` until it ends.

    The loop keeps only weak references to tasks: a handler still running
    when its connection is gone (and with it every table that held the task)
    would otherwise be destroyed mid-flight.
    """
    _KEPT.add(task)
    task.add_done_callback(_KEPT.discard)
