"""Completion port: completions on a queue that many consumers share (I/O completion port)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from asyncrpc.notify._loop_queue import LoopQueue
from asyncrpc.notify.base import Notifier
from asyncrpc.status import AsyncEvent

if TYPE_CHECKING:
    from asyncrpc.handle import AsyncCall

__all__ = ["Completion", "CompletionPort", "PortBinding"]


class Completion:
    """One completion packet: the key and overlapped value the caller bound, and the call.

    ``completion.call`` is the :class:`~asyncrpc.AsyncCall` that completed, so
    ``completion.call.complete()`` gives its result. A packet queued with
    :meth:`CompletionPort.post` and no call (``PostQueuedCompletionStatus``,
    say a "stop" packet for each consumer) has ``has_call`` false, and asking
    for its ``call`` raises :class:`LookupError`.

    Attributes:
        key: the completion key (``bind(key=...)``, or what ``post()`` was given).
        overlapped: the overlapped value, likewise.
        event: why it was posted: ``AsyncEvent.CALL_COMPLETE`` for a finished call.
    """

    __slots__ = ("_call", "event", "key", "overlapped")

    def __init__(
        self,
        key: Any,
        call: AsyncCall[Any] | None = None,
        overlapped: Any = None,
        event: AsyncEvent = AsyncEvent.CALL_COMPLETE,
    ) -> None:
        self.key = key
        self._call = call
        self.overlapped = overlapped
        self.event = event

    @property
    def has_call(self) -> bool:
        """True for a call's completion; false for a packet posted with no call."""
        return self._call is not None

    @property
    def call(self) -> AsyncCall[Any]:
        """The call that completed.

        Raises:
            LookupError: the packet was posted with no call (see :attr:`has_call`).
        """
        if self._call is None:
            raise LookupError(f"completion {self.key!r} was posted with no call")
        return self._call

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Completion):
            return NotImplemented
        return (self.key, self._call, self.overlapped, self.event) == (
            other.key,
            other._call,
            other.overlapped,
            other.event,
        )

    def __hash__(self) -> int:
        return hash((id(self._call), self.event))

    def __repr__(self) -> str:
        return (
            f"Completion(key={self.key!r}, call={self._call!r}, "
            f"overlapped={self.overlapped!r}, event={self.event.name})"
        )


class CompletionPort(Notifier):
    """An ``asyncio.Queue`` of :class:`Completion`, fed by every call bound to it.

    ``notify=port`` delivers with ``key=None``; ``notify=port.bind(key=...,
    overlapped=...)`` chooses both per call. Any number of tasks may consume
    with ``await port.get()``, ``port.get_nowait()`` or ``async for``; each
    completion is taken exactly once. ``port.post(...)`` queues a completion of
    the caller's own (``PostQueuedCompletionStatus``).

    Args:
        loop: the loop the queue lives on; default the running loop where the
            port is built, else the loop of the first call delivered to it.
            Deliveries from other threads hop onto it safely.
    """

    __slots__ = ("_queue",)

    def __init__(self, *, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._queue: LoopQueue[Completion] = LoopQueue("CompletionPort", loop)

    def bind(self, key: Any = None, overlapped: Any = None) -> PortBinding:
        """A notification mode that posts ``Completion(key, call, overlapped)`` to this port."""
        return PortBinding(self, key, overlapped)

    def deliver(self, call: AsyncCall[Any], event: AsyncEvent) -> None:
        """Queue ``Completion(None, call, None, event)``: the mode used as ``notify=port``."""
        self._queue.put(Completion(None, call, None, event))

    def post(self, key: Any = None, call: AsyncCall[Any] | None = None, overlapped: Any = None) -> None:
        """Queue a completion of your own (``PostQueuedCompletionStatus``); safe from any thread.

        Its ``event`` is ``AsyncEvent.CALL_COMPLETE``. Without ``call``, the
        packet's :attr:`Completion.has_call` is false (a wake-up, a "stop"
        packet for each consumer).
        """
        self._queue.put(Completion(key, call, overlapped))

    def deliver_bound(self, key: Any, call: AsyncCall[Any], overlapped: Any, event: AsyncEvent) -> None:
        """Queue a call's completion with the key and overlapped value it was bound with."""
        self._queue.put(Completion(key, call, overlapped, event))

    async def get(self, timeout: float | None = None) -> Completion:
        """The next completion (``GetQueuedCompletionStatus``).

        A getter that is cancelled or times out loses nothing: a completion
        handed to it meanwhile stays queued for the next one.

        Raises:
            TimeoutError: none came within ``timeout`` seconds.
        """
        return await self._queue.get(timeout)

    def get_nowait(self) -> Completion:
        """The next completion if one is queued; raises ``asyncio.QueueEmpty`` otherwise."""
        return self._queue.get_nowait()

    def get_blocking(self, timeout: float | None = None) -> Completion:
        """For a plain thread: wait for the next completion (``GetQueuedCompletionStatus``
        from a thread pool). Many threads may wait on one port; each completion goes to one.

        Interrupted while it waits (Ctrl-C), it loses nothing: a completion
        already handed to it goes back to the front of the queue, for the
        next waiter.

        Raises:
            TimeoutError: none came within ``timeout`` seconds.
            RuntimeError: called on the port's own loop, which it would block.
        """
        return self._queue.get_blocking(timeout, "get_blocking()")

    def qsize(self) -> int:
        """How many completions are queued."""
        return self._queue.qsize()

    def __aiter__(self) -> AsyncIterator[Completion]:
        return self

    async def __anext__(self) -> Completion:
        """``async for completion in port``: endless, like a thread looping on the port; break out."""
        return await self._queue.get()

    def __repr__(self) -> str:
        return f"<CompletionPort queued={self._queue.qsize()}>"


class PortBinding(Notifier):
    """A call's link to a :class:`CompletionPort`, with its key and overlapped value.

    Made by :meth:`CompletionPort.bind`; pass it as ``notify=``.

    Attributes:
        port: the port completions go to.
        key: the completion key they carry.
        overlapped: the overlapped value they carry.
    """

    __slots__ = ("key", "overlapped", "port")

    def __init__(self, port: CompletionPort, key: Any, overlapped: Any) -> None:
        self.port = port
        self.key = key
        self.overlapped = overlapped

    def deliver(self, call: AsyncCall[Any], event: AsyncEvent) -> None:
        """Queue ``Completion(key, call, overlapped, event)`` on the port."""
        self.port.deliver_bound(self.key, call, self.overlapped, event)

    def __repr__(self) -> str:
        return f"<PortBinding key={self.key!r} overlapped={self.overlapped!r}>"
