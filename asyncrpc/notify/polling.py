"""Polling: nothing is delivered; ``call.status()`` is the poll (``RpcAsyncGetCallStatus``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asyncrpc.notify.base import Notifier

if TYPE_CHECKING:
    from asyncrpc.handle import AsyncCall
    from asyncrpc.status import AsyncEvent

__all__ = ["Polling"]


class Polling(Notifier):
    """Announce nothing: the caller polls ``call.status()`` until it is not ``PENDING``.

    The cheapest mode for the library and the costliest for the caller, who
    spends CPU asking. Counts the completions it saw, which tests and
    dashboards can read.

    Attributes:
        completed: how many calls using this mode have finished.
    """

    __slots__ = ("completed",)

    def __init__(self) -> None:
        self.completed = 0

    def deliver(self, call: AsyncCall[Any], event: AsyncEvent) -> None:
        """Count the completion; nothing else (the caller polls ``call.status()``)."""
        self.completed += 1

    def __repr__(self) -> str:
        return f"<Polling completed={self.completed}>"
