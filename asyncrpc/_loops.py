"""Which event loop is running here, and tasks that must outlive their owner."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, Final

__all__ = ["keep_alive", "running_loop", "thread_ident"]

running_loop: Final[Callable[[], asyncio.AbstractEventLoop | None]] = asyncio.events._get_running_loop
"""The loop running in this thread, or ``None``; never raises, unlike ``get_running_loop``.

Each call makes a ``getpid()`` system call (asyncio checks that the process
has not forked), so the per-call paths ask :data:`thread_ident` and the
loop's ``is_running()`` instead: a loop runs in one thread, and a thread runs
one loop at a time.

asyncio's own non-raising accessor (listed in ``asyncio.events.__all__``),
bound directly: it runs on every call, and a wrapper function or a
try/except around ``get_running_loop()`` would cost a Python frame or an
exception per miss.
"""


thread_ident: Final[Callable[[], int]] = threading.get_ident
"""This thread's identifier: a C call, no system call."""

_KEPT: set[asyncio.Task[Any]] = set()


def keep_alive(task: asyncio.Task[Any]) -> None:
    """Hold a strong reference to ``task`` until it ends.

    The loop keeps only weak references to tasks: a handler still running
    when its connection is gone (and with it every table that held the task)
    would otherwise be destroyed mid-flight.
    """
    _KEPT.add(task)
    task.add_done_callback(_KEPT.discard)
