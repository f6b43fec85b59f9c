"""Which event loop is running here: the one question every thread-safe path asks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

__all__ = ["running_loop"]

running_loop: Final[Callable[[], asyncio.AbstractEventLoop | None]] = asyncio.events._get_running_loop
"""The loop running in this thread, or ``None``; never raises, unlike ``get_running_loop``.

asyncio's own non-raising accessor (listed in ``asyncio.events.__all__``),
bound directly: it runs on every call, and a wrapper function or a
try/except around ``get_running_loop()`` would cost a Python frame or an
exception per miss.
"""
