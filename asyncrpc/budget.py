"""A server-wide bound on the memory its connections hold in unfinished messages.

Each connection's decoder may hold up to ``Limits.max_message_size`` bytes of
a message that has not fully arrived; with many connections that adds up
(30 connections trickling 16 MiB messages would hold half a gigabyte). A
:class:`BufferBudget` is shared by every connection of a server: each reports
what its decoder holds after each read, and when the total passes the
budget, the connection holding the most is closed (one log line). A client
sending ordinary messages holds nothing between reads and never notices.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asyncrpc.connection import Connection

__all__ = ["BufferBudget"]

logger = logging.getLogger("asyncrpc")


class BufferBudget:
    """Bytes of unfinished messages that a server's connections may hold in all.

    Args:
        limit: the budget, in bytes.
    """

    __slots__ = ("_held", "_total", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held: dict[Connection, int] = {}
        self._total = 0

    @property
    def total(self) -> int:
        """Bytes held now, across every connection."""
        return self._total

    def hold(self, connection: Connection, size: int) -> None:
        """``connection`` now holds ``size`` bytes; over the budget, the largest holder goes."""
        self._total += size - self._held.get(connection, 0)
        if size:
            self._held[connection] = size
        else:
            self._held.pop(connection, None)
        while self._total > self.limit and self._held:
            largest = max(self._held, key=self._held.__getitem__)
            held = self._held[largest]
            self.release(largest)
            largest.abort(
                f"holding {held} bytes of unfinished messages, the most of any connection, "
                f"when the server's max_buffered of {self.limit} bytes was passed"
            )

    def release(self, connection: Connection) -> None:
        """``connection`` holds nothing any more (it is gone)."""
        self._total -= self._held.pop(connection, 0)
