"""The decoder: bytes to events, with no I/O (the h11 shape).

    decoder = Decoder()
    decoder.receive_data(chunk)          # any split of the stream
    for event in decoder:                # every complete message, in order
        ...
    data = Encoder().request(7, "add", [1, 2])   # encoder.py, re-exported here

The decoder validates every message's shape and raises :class:`ProtocolError`
naming what was wrong; after that error the stream is out of sync and the
decoder must not be fed again (the connection closes).

This module keeps what finds message boundaries, and the state that does it.
Its parts live beside it: ``unpackers.py`` (msgpack's Unpacker, set up for
each use), ``scanner.py`` (the headers of an unfinished message),
``shapes.py`` (a decoded value to an event), ``describe.py`` (error texts).

Theory of operation
-------------------
msgpack's ``Unpacker`` allocates a container for every header the moment it
reads it and keeps a half-built message across reads. So the unpacker that
builds objects (the *builder*) is only ever asked for messages already known
to be complete, and an unfinished message is checked on its headers alone:

1. A second unpacker (the *skipper*) is fed the same bytes and only skips:
   msgpack's C parser, building nothing, counts the messages that end in a
   read (one C call each). ``next_event`` and iteration take exactly that
   many from the builder, so a read of whole messages (the common case)
   costs no Python work per object. Where the last of them ends is read
   from the builder once they have been taken (``_settle``), not with a
   ``tell()`` per message; a read of exactly one message (a quiet
   connection) is seen to end at a boundary by one ``tell()``.
2. When a read ends mid-message, :class:`HeaderScanner` reads the headers of
   that unfinished tail in Python: nesting depth, declared counts, and
   whether what they declare can still fit in ``max_message_size``. It is
   resumable, so a message arriving over many reads is scanned once in
   total; the read in which the message ends is left to the skipper, and
   the builder then checks the whole message.
3. The skipper keeps the bytes of a token it is in the middle of (a long str
   waits whole in its buffer). Past ``_SKIPPER_RETAIN`` bytes it is dropped
   and the scanner alone finds where the message ends, so an unfinished
   message is held once (by the builder). A few more bytes of an unfinished
   message are read by the scanner first, and the skipper is asked to skip
   only once the scanner has seen the message end: no OutOfData per small
   read.
4. msgpack's buffers grow to the largest message and never shrink: once
   nothing is buffered, both unpackers are replaced now and then.

5. A *response* over a size or count limit is skipped, not fatal, where its
   first bytes name its msgid: the scanner reads on to its end building
   nothing (see ``scanner.py``), the complete messages before it are taken
   out of the builder (which holds the refused message's start) and the
   builder is replaced; a :class:`ResponseTooLarge` takes its place in the
   stream, so only the call it answers fails.

Errors found while reading (a bad byte, a message over a limit) are kept and
raised after the complete messages before them have been delivered, and
raised again on every later call.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from itertools import count
from typing import Any, Final

import msgpack

from asyncrpc.errors import ProtocolError
from asyncrpc.wire.describe import malformed, too_large
from asyncrpc.wire.encoder import Encoder
from asyncrpc.wire.events import NEED_DATA, Event, NeedData, ResponseTooLarge
from asyncrpc.wire.limits import DEFAULT_LIMITS, Limits
from asyncrpc.wire.scanner import HeaderScanner
from asyncrpc.wire.shapes import ShapeChecker
from asyncrpc.wire.unpackers import UNPACK_FAILURES, new_builder, new_skipper, skipped_to

__all__ = ["Decoder", "Encoder"]

#: The most bytes of one unfinished token (a long str or bin) the skipper may hold
#: besides the builder; past it the skipper is dropped (step 3 above).
_SKIPPER_RETAIN: Final = 64 * 1024

#: A read shorter than this that goes on with an unfinished message is read by
#: the scanner first (see Decoder._scan_first).
_SCAN_FIRST: Final = 512

#: After this many bytes, once nothing is buffered, both unpackers are replaced:
#: msgpack's buffers grow to the largest message seen and never shrink.
_RENEW_AFTER: Final = 4 * 1024 * 1024


class Decoder:
    """Incremental MessagePack-RPC decoder.

    Args:
        limits: what a peer may make us allocate; see :class:`Limits`.
        accept_extension: accept the five-element request (an extension map
            in the fifth place). Off until the peers negotiated it, so that
            a plain peer's wrong arity is reported as the error it is.
        raw_strings: build every msgpack str as ``bytes``, for peers from
            before msgpack's str/bin split that pack bytes as str (method
            names, and the strs of error objects, are still read as text).
    """

    __slots__ = (
        "_boundary",
        "_builder",
        "_built_from",
        "_error",
        "_limits",
        "_pending",
        "_queued",
        "_raw_strings",
        "_ready",
        "_received",
        "_renewed_at",
        "_scanner",
        "_shapes",
        "_skipped_from",
        "_skipper",
        "_to_event",
    )

    def __init__(
        self, limits: Limits = DEFAULT_LIMITS, *, accept_extension: bool = False, raw_strings: bool = False
    ) -> None:
        self._limits = limits
        self._raw_strings = raw_strings
        self._shapes = ShapeChecker(limits.max_depth, accept_extension=accept_extension)
        # Bound once: iteration starts on every read, and each message is one call of it.
        self._to_event = self._shapes.to_event_raw if raw_strings else self._shapes.to_event
        self._received = 0  # bytes fed so far
        self._boundary = 0  # where the last complete message ends (once _pending is settled)
        self._ready = 0  # complete messages in the builder, not yet returned
        # Events due before those: taken out of a builder that was dropped (step 5).
        self._queued: deque[Event] = deque()
        self._error: ProtocolError | None = None  # raised once the ready messages are out
        # The last read, while where its last complete message ends is not known
        # yet: (data, offset the count started at, stream offset of data, messages).
        self._pending: tuple[bytes, int, int, int] | None = None
        self._scanner: HeaderScanner | None = None  # while a message is unfinished
        self._skipper: Any = None  # a msgpack.Unpacker that only skips, made when needed
        self._skipped_from = 0  # the stream offset the skipper started at
        self._built_from = 0  # the stream offset the builder started at
        self._renewed_at = 0
        self._builder = new_builder(self._limits, raw_strings=self._raw_strings)

    @property
    def limits(self) -> Limits:
        """The limits this decoder enforces."""
        return self._limits

    @property
    def accept_extension(self) -> bool:
        """Whether a five-element request (with an extension map) is accepted; settable at any time."""
        return self._shapes.accept_extension

    @accept_extension.setter
    def accept_extension(self, value: bool) -> None:
        self._shapes.accept_extension = value

    @property
    def buffered(self) -> int:
        """Bytes received after the last complete message (non-zero mid-message).

        A peer that closes while this is non-zero cut a message short.
        """
        if self._pending is not None:
            self._settle()
        return self._received - self._boundary

    def receive_data(self, data: bytes) -> None:
        """Buffer ``data``; drain it with :meth:`next_event` before feeding much more."""
        if self._error is not None:
            return  # the stream is out of sync: nothing after the fault can be read
        if self._pending is not None and not self._settle():  # fed again before draining
            return
        scanner = self._scanner
        if scanner is not None and scanner.skipping:
            self._skip_more(data)
            return
        try:
            self._builder.feed(data)
        except msgpack.BufferFull:  # only past msgpack's own 2 GiB
            self._error = ProtocolError("too much unread data buffered")
            return
        start = self._received
        self._received = start + len(data)
        skipper = self._skipper
        if scanner is None:
            if skipper is None:
                skipper = self._skipper = new_skipper()
                self._skipped_from = start
            skipper.feed(data)
            self._count(data, 0, start)
        elif skipper is None:
            self._scan_alone(data, 0, start)
        else:
            skipper.feed(data)
            if len(data) < _SCAN_FIRST:
                self._scan_first(data, start)
            else:
                self._count_checked(data, 0, start)

    def _count(self, data: bytes, pos: int, start: int) -> None:
        """Count the messages that end in ``data[pos:]``, which starts at a message boundary.

        The skipper has been fed ``data[pos:]``; ``data`` starts at stream offset ``start``.
        """
        if len(data) - pos > self._limits.max_message_size:
            self._count_checked(data, pos, start)
            return
        # No message in data[pos:] can be over the size limit: only count
        # them, one C call each.
        skipper = self._skipper
        try:
            skipper.skip()
        except msgpack.OutOfData:
            self._tail(data, pos, start)  # one unfinished message from data[pos] on
            return
        except UNPACK_FAILURES as exc:  # FormatError, StackError
            self._error = self._first_fault(data, pos, exc)
            self._scanner = self._skipper = None
            return
        if self._skipped_from + skipper.tell() == self._received:
            # One whole message: the common case on a quiet connection.
            self._ready += 1
            self._boundary = self._received
            return
        self._count_more(data, pos, start)

    def _count_more(self, data: bytes, pos: int, start: int) -> None:
        """:meth:`_count` once one message was found and more follow it in ``data``."""
        skip = self._skipper.skip
        found = 1
        try:
            for found in count(2):  # noqa: B007 - found is read after the loop
                skip()
        except msgpack.OutOfData:
            found -= 1
        except UNPACK_FAILURES as exc:
            found -= 1
            self._ready += found
            self._boundary = start + skipped_to(data, pos, found)
            self._error = self._first_fault(data, self._boundary - start, exc)
            self._scanner = self._skipper = None
            return
        # Where the last of them ends is read from the builder once they
        # have been taken (_settle): no tell() per message.
        self._ready += found
        self._pending = (data, pos, start, found)

    def _count_checked(self, data: bytes, pos: int, start: int) -> None:
        """:meth:`_count`, checking each size (a message began in an earlier read, or the read is huge)."""
        skipper = self._skipper
        limit = self._limits.max_message_size
        origin = self._skipped_from
        skip = skipper.skip
        tell = skipper.tell
        found = 0
        last = self._boundary - origin  # in the skipper's own offsets
        oversized = False
        try:
            while True:
                skip()
                end = tell()
                if end - last > limit:
                    oversized = True
                    break
                last = end
                found += 1
        except msgpack.OutOfData:
            pass
        except UNPACK_FAILURES as exc:
            self._error = self._first_fault(data, origin + last - start, exc)
        boundary = self._boundary = origin + last
        self._ready += found
        if self._error is not None:
            self._scanner = self._skipper = None
            return
        if found:
            self._scanner = None  # the unfinished message has ended
        if oversized:
            # Complete, and too large: the scanner refuses it, or skips it if it is a response.
            self._skipper = None
            scanner = self._scanner
            if scanner is None:
                scanner = self._scanner = HeaderScanner(self._limits, may_skip=True)
            self._tail(data, max(boundary - start, pos), start)
            if self._error is None and not scanner.skipping:  # never seen: they measure the same bytes
                self._error = too_large(limit)
                self._scanner = None
        elif boundary < self._received:
            self._tail(data, max(boundary - start, pos), start)

    def _scan_first(self, data: bytes, start: int) -> None:
        """A few more bytes of an unfinished message: the scanner says whether it ends in them.

        Cheaper than a skip that raises OutOfData for every small read (a
        peer writing byte by byte); the skipper, fed the same bytes, is
        asked to skip only once the message is known to be complete.
        """
        scanner = self._scanner
        assert scanner is not None
        try:
            end = scanner.feed(data, 0)
        except ProtocolError as exc:
            self._error = exc
            self._scanner = self._skipper = None
            return
        if scanner.skipping:
            self._begin_skip(data, end, start)
            return
        skipper = self._skipper
        if end < 0:
            if self._received - self._skipped_from - skipper.tell() > _SKIPPER_RETAIN:
                self._skipper = None  # it holds the whole tail: leave the end to the scanner
            return
        try:
            skipper.skip()  # the same message ends, for the skipper too
        except (msgpack.OutOfData, *UNPACK_FAILURES) as exc:  # they disagree: never seen
            self._error = malformed(exc)
            self._scanner = self._skipper = None
            return
        self._scanner = None
        self._ready += 1
        self._boundary = start + end
        if end < len(data):
            self._count(data, end, start)

    def _tail(self, data: bytes, pos: int, start: int) -> None:
        """The read ends mid-message: check what the headers in ``data[pos:]`` declare."""
        scanner = self._scanner
        if scanner is None:
            scanner = self._scanner = HeaderScanner(self._limits, may_skip=True)
        try:
            end = scanner.feed(data, pos)
        except ProtocolError as exc:
            self._error = exc
            self._scanner = self._skipper = None
            return
        if scanner.skipping:
            self._begin_skip(data, end, start)
            return
        skipper = self._skipper
        if skipper is not None and self._received - self._skipped_from - skipper.tell() > _SKIPPER_RETAIN:
            self._skipper = None  # it holds a long unfinished token: leave the end to the scanner

    def _scan_alone(self, data: bytes, pos: int, start: int) -> None:
        """Read ``data[pos:]`` with the scanner alone (no skipper): it finds where the message ends."""
        scanner = self._scanner
        assert scanner is not None
        try:
            end = scanner.feed(data, pos)
        except ProtocolError as exc:
            self._error = exc
            self._scanner = None
            return
        if scanner.skipping:
            self._begin_skip(data, end, start)
            return
        if end < 0:
            return
        self._scanner = None
        self._ready += 1
        self._boundary = start + end
        self._count_rest(data, end, start)

    def _count_rest(self, data: bytes, end: int, start: int) -> None:
        """A message ended at ``data[end]`` (the builder fed past it): count what follows."""
        if end < len(data):
            skipper = self._skipper = new_skipper()
            self._skipped_from = start + end
            skipper.feed(memoryview(data)[end:])
            self._count(data, end, start)

    # -- a response too large to read: skipped (step 5) ------------------------------

    def _begin_skip(self, data: bytes, end: int, start: int) -> None:
        """The scanner has turned to skipping the message it reads: ``end`` is where it
        ends in ``data`` (read from ``start`` on), or -1 while it goes on."""
        # The builder holds the start of the skipped message: the complete
        # messages before it are taken out now, and the builder dropped.
        builder = self._builder
        queued = self._queued
        to_event = self._to_event
        while self._ready:
            self._ready -= 1
            try:
                queued.append(to_event(builder.unpack()))
            except ProtocolError as exc:
                self._fail(exc)
                return
            except UNPACK_FAILURES as exc:
                self._fail(malformed(exc))
                return
        self._skipper = None
        if end >= 0:
            self._end_skip(data, end, start)

    def _skip_more(self, data: bytes) -> None:
        """More of a message being skipped: read by the scanner, held by nobody."""
        scanner = self._scanner
        assert scanner is not None
        start = self._received
        self._received = start + len(data)
        try:
            end = scanner.feed(data, 0)
        except ProtocolError as exc:  # too deep, or not msgpack: fatal even here
            self._error = exc
            self._scanner = None
            return
        if end >= 0:
            self._end_skip(data, end, start)

    def _end_skip(self, data: bytes, end: int, start: int) -> None:
        """The skipped message ends at ``data[end]``: its event, then a new builder for what follows."""
        scanner = self._scanner
        assert scanner is not None
        self._queued.append(ResponseTooLarge(scanner.msgid, scanner.size))
        self._scanner = None
        self._boundary = self._built_from = self._renewed_at = start + end
        builder = self._builder = new_builder(self._limits, raw_strings=self._raw_strings)
        if end < len(data):
            builder.feed(memoryview(data)[end:])
        self._count_rest(data, end, start)

    def _settle(self) -> bool:
        """Find where the last read's last complete message ends, and check what follows it.

        False if what follows breaks a limit (the error is then set).
        """
        pending = self._pending
        assert pending is not None
        self._pending = None
        data, pos, start, found = pending
        if self._ready:  # not all taken yet: count again, on a copy of the read
            boundary = start + skipped_to(data, pos, found)
        else:
            boundary = self._built_from + self._builder.tell()
        self._boundary = boundary
        if boundary < start + len(data):
            self._tail(data, boundary - start, start)
        return self._error is None

    def _first_fault(self, data: bytes, pos: int, exc: Exception) -> ProtocolError:
        """The error for the message the skipper failed on, named as a split read would name it.

        The scanner reads the message's headers in order and reports the
        first fault (a depth or size limit may come before msgpack's own).
        """
        scanner = self._scanner
        try:
            if scanner is not None and pos < 0:  # the message began in an earlier read
                scanner.feed(data, 0)
            else:
                HeaderScanner(self._limits).feed(data, max(pos, 0))
        except ProtocolError as fault:
            fault.__cause__ = exc
            return fault
        error = malformed(exc)
        error.__cause__ = exc
        return error

    def next_event(self) -> Event | NeedData:
        """The next complete message, or :data:`NEED_DATA`.

        Raises :class:`ProtocolError` for a malformed message, or one (complete
        or not yet) over a limit, once the messages before it have been returned.
        """
        if self._queued:
            return self._queued.popleft()
        if self._ready:
            self._ready -= 1
            try:
                return self._to_event(self._builder.unpack())
            except ProtocolError as exc:
                raise self._fail(exc) from None
            except UNPACK_FAILURES as exc:
                raise self._fail(malformed(exc)) from exc
        self._drained()
        return NEED_DATA

    def _fail(self, error: ProtocolError) -> ProtocolError:
        """Make ``error`` the decoder's last word: the messages after it are never read."""
        self._error = error
        self._ready = 0
        self._pending = self._scanner = self._skipper = None
        return error

    def __iter__(self) -> Iterator[Event]:
        """Every complete message buffered so far; stops at the first incomplete one.

        The caller may stop after any event and iterate again later (or call
        :meth:`next_event`): nothing is lost, repeated or reordered.
        """
        # The read path of every connection: per message, one C unpack of a
        # message known to be complete and the shape checks, nothing more.
        queued = self._queued
        while queued:  # taken out of a dropped builder: they come first
            yield queued.popleft()
        to_event = self._to_event
        while self._ready:
            self._ready -= 1
            try:
                # next() is a little faster than unpack(); the message is
                # complete, so it cannot run out of data (StopIteration).
                event = to_event(next(self._builder))
            except ProtocolError as exc:
                raise self._fail(exc) from None
            except (*UNPACK_FAILURES, StopIteration) as exc:
                raise self._fail(malformed(exc)) from exc
            yield event
        self._drained()

    def _drained(self) -> None:
        """Every complete message has been returned: check what follows the last one
        (raising the error that stopped the stream, if any) and renew spent buffers."""
        if self._pending is not None:
            self._settle()
        if self._error is not None:
            raise self._error.with_traceback(None)
        if self._received - self._renewed_at > _RENEW_AFTER:
            self._renew()

    def _renew(self) -> None:
        """Replace both unpackers once nothing is buffered, to give back their grown buffers."""
        if self._boundary == self._received and not self._ready and self._error is None:
            self._renewed_at = self._built_from = self._received
            self._builder = new_builder(self._limits, raw_strings=self._raw_strings)
            self._skipper = None
