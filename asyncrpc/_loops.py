"""Which event loop is running here: the one question every thread-safe path asks."""

from __future__ import annotations

import asyncio

__all__ = ["running_loop"]


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The loop running in this thread, or ``None`` (never raises, unlike ``get_running_loop``)."""
    # asyncio's own non-raising accessor (in asyncio.events.__all__); a
    # try/except around get_running_loop() costs an exception per miss.
    return asyncio._get_running_loop()
