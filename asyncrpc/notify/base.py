"""The one interface a call handle knows about its notification mode."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asyncrpc.handle import AsyncCall
    from asyncrpc.status import AsyncEvent

__all__ = ["Notifier"]


class Notifier:
    """Base class of every notification mode.

    A call handle calls :meth:`deliver` exactly once per finished call, on the
    thread of the event loop that owns the connection, right after the call's
    outcome is fixed (so ``call.complete()`` already answers). An adapter must
    not block there: it hands the completion to wherever the caller chose
    (another loop, another thread, a queue) and returns. It should not raise
    either; if it does, the error is logged and the connection carries on.

    One notifier may serve any number of calls, at the same time or one
    after another.
    """

    __slots__ = ()

    def deliver(self, call: AsyncCall[Any], event: AsyncEvent) -> None:
        """Tell the caller that ``call`` finished."""
        raise NotImplementedError
