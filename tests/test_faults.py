"""Issue 11, part 5: every pending call ends exactly once, whatever the network does.

A real server and a real client talk through the fault proxy (tests/faultproxy.py).
For every fault (delay, drop, cut mid-message, reset, silence, clean close) x
every direction x every notification mode (tests/notify's receivers, plus a
plain ``await``), three calls are in flight when the fault starts:

* ``held``: pending on the server (its handler waits on a gate), no deadline;
* ``timed``: pending on the server, with a deadline (``timeout=DEADLINE``);
* ``late``: a quick call made the moment the fault starts, with a deadline;
* ``polite``: pending on the server, cancelled non-abortively as the fault starts
  (it completes when the server answers the cancel, if the answer can come);
* ``abort``: pending on the server, cancelled abortively as the fault starts
  (``CallCancelled`` at once, whatever the network does).

Each must end exactly once, with what the fault allows (``EXPECTED``): its
result, ``DeadlineExceeded`` within its deadline plus ``MARGIN``, or
``ConnectionLost`` (at once for a cut, a reset or a close; within the
keepalive's bound for drop and silence). Its notification is delivered exactly
once in its mode, its done-callbacks run once, and the server frees the handlers
of a client whose connection died (each handler is cancelled, the server's
connection closes, ``server.connections`` drops to 0).

Both ends run with a short keepalive: without it a call with no deadline through
a silent network has nothing to end it (``test_without_keepalive_...`` pins that
down as today's documented behaviour: keepalive is off unless set).

The mode matrix runs on the default loop; the plain-``await`` matrix on every
loop (asyncio and uvloop), since transports differ there and modes do not.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest

import asyncrpc
from asyncrpc import AsyncCall, CallCancelled, CallStatus, ConnectionLost, DeadlineExceeded
from asyncrpc.notify import Notifier
from tests.faultproxy import Direction, Fault, FaultProxy
from tests.notify import MODES, Receiver, receiver

KEEPALIVE = 0.2
"""Keepalive interval on both ends: a silent connection is dead 2 to 2.25 intervals after its last byte."""
DEADLINE = 0.15
"""Deadline of ``timed`` and ``late``: well before the keepalive could end them first."""
DELAY = 0.05
BOUND = 5.0
"""Any wait for something that must happen; reaching it means a hang."""
MARGIN = 0.25
"""How late after its deadline a call may end (a loaded 2-core machine schedules timers late)."""
AT_ONCE = 1.0
"""How soon after a cut, a reset or a close every call must have ended."""
KEEPALIVE_WITHIN = 2.25 * KEEPALIVE + 0.3
"""How soon after silence starts a call without deadline must have ended (as in test_keepalive)."""
SLACK = 0.01  # uvloop's timers have millisecond resolution and may fire that much early

pytestmark = pytest.mark.timeout(30)

FAULTS: dict[str, Fault] = {
    "delay": Fault.delay(DELAY),
    "drop": Fault.drop(),
    "cut": Fault.cut(3),  # 3 bytes of the next message (a request or a reply), then both closed
    "reset": Fault.reset(),
    "silent": Fault.silent(),
    "close": Fault.close(),
}

#: fault -> how (held, timed, late, polite, abort) end: a value is the call's result, a class its error.
EXPECTED: dict[str, tuple[Any, Any, Any, Any, Any]] = {
    "delay": ("held", DeadlineExceeded, 3, CallCancelled, CallCancelled),
    # The cancel (or the server's answer to it) is lost: only the dead connection ends ``polite``.
    "drop": (ConnectionLost, DeadlineExceeded, DeadlineExceeded, ConnectionLost, CallCancelled),
    "silent": (ConnectionLost, DeadlineExceeded, DeadlineExceeded, ConnectionLost, CallCancelled),
    "cut": (ConnectionLost, ConnectionLost, ConnectionLost, ConnectionLost, CallCancelled),
    "reset": (ConnectionLost, ConnectionLost, ConnectionLost, ConnectionLost, CallCancelled),
    "close": (ConnectionLost, ConnectionLost, ConnectionLost, ConnectionLost, CallCancelled),
}
assert set(EXPECTED) == set(FAULTS)


class Gated:
    """Handlers that stay pending on the server until a test opens their gate (``svc.*``).

    It records which connection each call came on and how each handler ended
    ("returned" or "cancelled"), so a test can prove the server let go of them.
    """

    def __init__(self) -> None:
        self._started: dict[str, asyncio.Event] = {}
        self._ended: dict[str, asyncio.Future[str]] = {}
        self._gates: dict[str, asyncio.Event] = {}
        self.connections: list[asyncrpc.Connection] = []

    def _future(self, name: str) -> asyncio.Future[str]:
        if name not in self._ended:
            self._ended[name] = asyncio.get_running_loop().create_future()
        return self._ended[name]

    async def hold(self, name: str) -> str:
        self.connections.append(asyncrpc.current_call().peer.connection)
        self._started.setdefault(name, asyncio.Event()).set()
        ended = self._future(name)
        outcome = "returned"
        try:
            await self._gates.setdefault(name, asyncio.Event()).wait()
            return name
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            ended.set_result(outcome)

    def add(self, a: int, b: int) -> int:
        return a + b

    # test side

    def open(self, name: str) -> None:
        self._gates.setdefault(name, asyncio.Event()).set()

    def open_all(self) -> None:
        for gate in self._gates.values():
            gate.set()

    async def started(self, name: str) -> None:
        async with asyncio.timeout(BOUND):
            await self._started.setdefault(name, asyncio.Event()).wait()

    async def ended(self, name: str) -> str:
        async with asyncio.timeout(BOUND):
            return await self._future(name)

    @property
    def running(self) -> int:
        return sum(1 for name in self._started if not self._future(name).done())


@dataclass
class Rig:
    service: Gated
    server: asyncrpc.Server
    proxy: FaultProxy
    client: asyncrpc.Client


@contextlib.asynccontextmanager
async def rig(keepalive: float | None = KEEPALIVE) -> AsyncIterator[Rig]:
    """A server with :class:`Gated`, the proxy in front of it, and a client through the proxy."""
    service = Gated()
    server = asyncrpc.Server(keepalive=keepalive)
    server.register(service, namespace="svc")
    await server.start("127.0.0.1", 0)
    try:
        async with (
            FaultProxy("127.0.0.1", server.port) as proxy,
            asyncrpc.connect("127.0.0.1", proxy.port, keepalive=keepalive) as client,
        ):
            assert "deadline" in client.features  # the server cancels a handler at its deadline too
            yield Rig(service, server, proxy, client)
    finally:
        service.open_all()
        await server.close(grace=1.0)


@dataclass
class Tracked:
    """A call, when it started, and each time it ended (its done-callbacks)."""

    name: str
    call: AsyncCall[Any]
    started: float
    ends: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.call.add_done_callback(lambda _call: self.ends.append(loop.time()))


def check_outcome(tracked: Tracked, expected: Any, fault_started: float, limit: float) -> None:
    """``tracked`` ended once, as ``expected``, in time; ``status()`` and ``complete()`` agree."""
    call, name = tracked.call, tracked.name
    assert len(tracked.ends) == 1, f"{name}: done-callbacks ran {len(tracked.ends)} times"
    ended = tracked.ends[0]
    if isinstance(expected, type) and expected is not CallCancelled:
        assert isinstance(call.exception(), expected), f"{name}: {call.exception()!r}, expected {expected}"
        with pytest.raises(expected):
            call.complete()
        assert call.status() is CallStatus.FAILED
    elif expected is CallCancelled:
        assert isinstance(call.exception(), CallCancelled), f"{name}: {call.exception()!r}"
        with pytest.raises(CallCancelled):
            call.complete()
        assert call.status() is CallStatus.CANCELLED
    else:
        assert call.exception() is None, f"{name}: {call.exception()!r}, expected {expected!r}"
        assert call.complete() == expected
        assert call.status() is CallStatus.COMPLETE
    if expected is DeadlineExceeded:
        elapsed = ended - tracked.started
        assert DEADLINE - SLACK <= elapsed <= DEADLINE + MARGIN, f"{name}: deadline hit after {elapsed:.3f}s"
    elif expected is ConnectionLost:
        assert ended - fault_started <= limit, f"{name}: lost after {ended - fault_started:.3f}s"
    elif expected is CallCancelled:
        assert ended - fault_started <= AT_ONCE, f"{name}: cancelled after {ended - fault_started:.3f}s"


async def run_fault(fault: str, direction: Direction, rx: Receiver | None) -> None:
    """The scenario of the module docstring, for one fault, direction and mode (``None``: await)."""
    loop = asyncio.get_running_loop()

    def mode() -> Notifier | None:
        return rx.notifier() if rx is not None else None

    async with rig() as r:
        held = Tracked("held", r.client.call("svc.hold", "held", notify=mode()), loop.time())
        timed = Tracked(
            "timed", r.client.call("svc.hold", "timed", notify=mode(), timeout=DEADLINE), loop.time()
        )
        polite = Tracked("polite", r.client.call("svc.hold", "polite", notify=mode()), loop.time())
        abort = Tracked("abort", r.client.call("svc.hold", "abort", notify=mode()), loop.time())
        for name in ("held", "timed", "polite", "abort"):
            await r.service.started(name)
        (connection,) = set(r.service.connections)  # the server's end of our connection

        fault_started = loop.time()
        r.proxy.set(direction, FAULTS[fault])
        # Made in the same step as the fault: the client cannot have noticed anything yet.
        late = Tracked("late", r.client.call("svc.add", 1, 2, notify=mode(), timeout=DEADLINE), loop.time())
        assert polite.call.cancel(abort=False)
        assert abort.call.cancel(abort=True)
        assert abort.call.status() is CallStatus.CANCELLED  # at once
        tracked = [held, timed, late, polite, abort]
        if fault == "delay":
            r.service.open("held")  # its reply goes through the delay

        # Every call ends: awaited, never polled, and bounded.
        async with asyncio.timeout(BOUND):
            await asyncio.gather(*(t.call for t in tracked), return_exceptions=True)
            if rx is not None:
                await rx.wait_count(len(tracked))

        # Give a second ending every chance: any deadline timer has passed...
        last_deadline = max(timed.started, late.started) + DEADLINE
        # (A sleep to show an absence: nothing may happen, so there is nothing to await.)
        await asyncio.sleep(max(0.0, last_deadline + 2 * SLACK - loop.time()))
        # ...and the server let go of every handler (its late replies, if any, are sent).
        dead = fault != "delay"
        for name in ("timed", "polite", "abort"):  # a deadline, a cancel, or the disconnect
            assert await r.service.ended(name) == "cancelled", name
        assert await r.service.ended("held") == ("cancelled" if dead else "returned")
        assert r.service.running == 0
        if dead:
            async with asyncio.timeout(BOUND):
                await connection.wait_closed()
            assert r.server.connections == 0
            assert not r.client.is_open
        else:
            # A live connection: a round trip after any late reply, which must change nothing.
            assert await r.client.call("svc.add", 0, 1) == 1
            assert r.server.connections == 1

        limit = KEEPALIVE_WITHIN if fault in ("drop", "silent") else AT_ONCE
        for one, expected in zip(tracked, EXPECTED[fault], strict=True):
            check_outcome(one, expected, fault_started, limit)
        if rx is not None:
            assert await rx.deliveries() == len(tracked), "one notification per call, in its mode"
            named = [seen for seen in rx.seen if seen is not None]
            if named:  # modes that say which call (not an event, not polling)
                assert sorted(map(id, named)) == sorted(id(t.call) for t in tracked)


FAULT_IDS = list(FAULTS)
DIRECTIONS = pytest.mark.parametrize("direction", list(Direction), ids=lambda d: d.value)


@pytest.mark.asyncio(loop_factories=["asyncio"])
@pytest.mark.parametrize("mode", MODES)
@DIRECTIONS
@pytest.mark.parametrize("fault", FAULT_IDS)
async def test_every_pending_call_ends_once_in_every_mode(
    fault: str, direction: Direction, mode: str
) -> None:
    async with receiver(mode) as rx:
        await run_fault(fault, direction, rx)


@DIRECTIONS
@pytest.mark.parametrize("fault", FAULT_IDS)
async def test_every_pending_call_ends_once_when_awaited(fault: str, direction: Direction) -> None:
    await run_fault(fault, direction, None)


# -- beyond the matrix --------------------------------------------------------------------------


@pytest.mark.parametrize("after", [0, 1, 2, 5, 10, 20])
@DIRECTIONS
async def test_a_message_cut_at_any_byte_ends_every_call(direction: Direction, after: int) -> None:
    """Wherever a request or a reply is cut, every call ends (ConnectionLost unless its
    message got through whole), the connection closes and the handler is freed."""
    async with rig() as r:
        held = r.client.call("svc.hold", "held")
        await r.service.started("held")
        r.proxy.set(direction, Fault.cut(after))
        # Traffic both ways for the cut to fall in: a request, then (opening the gate) a reply.
        late = r.client.call("svc.add", 1, 2, timeout=BOUND)
        r.service.open("held")
        async with asyncio.timeout(BOUND):
            outcomes = await asyncio.gather(held, late, return_exceptions=True)
        # A cut after the whole of a short message may let it through: the rest must still end.
        # A cut falling just after whole messages lets them through; either way the connection goes.
        assert all(isinstance(o, ConnectionLost) or o in ("held", 3) for o in outcomes), outcomes
        if after < 5:  # shorter than any message: the first one through is cut short
            assert all(isinstance(o, ConnectionLost) for o in outcomes), outcomes
        async with asyncio.timeout(BOUND):
            await r.service.connections[0].wait_closed()
        assert r.service.running == 0
        assert r.server.connections == 0


@pytest.mark.parametrize(
    "fault", [Fault.none(chunk=1), Fault.delay(0.01, chunk=1)], ids=["split", "split+delay"]
)
@DIRECTIONS
async def test_calls_survive_messages_split_into_single_bytes(direction: Direction, fault: Fault) -> None:
    """One byte per write (the receiver reassembles every message): every kind of ending still works."""
    async with rig() as r:
        r.proxy.set(direction, fault)
        held = r.client.call("svc.hold", "held")
        timed = r.client.call("svc.hold", "timed", timeout=0.3)
        sums = [r.client.call("svc.add", i, i) for i in range(5)]
        await r.service.started("held")
        r.service.open("held")
        async with asyncio.timeout(BOUND):
            assert await asyncio.gather(*sums) == [2 * i for i in range(5)]
            assert await held == "held"
            with pytest.raises(DeadlineExceeded):
                await timed
        assert await r.service.ended("timed") == "cancelled"
        assert r.client.is_open


@DIRECTIONS
async def test_a_fault_that_heals_loses_nothing(direction: Direction) -> None:
    """Silence shorter than the keepalive, then back to normal: the held bytes arrive, calls complete."""
    async with rig() as r:
        r.proxy.set(direction, Fault.silent())
        call = r.client.call("svc.hold", "healed")
        if direction is Direction.TO_SERVER:
            # The request is held: the handler does not start (a bounded wait for an absence).
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(r.service.started("healed"), 0.1)
        else:
            await r.service.started("healed")
        r.service.open("healed")  # for TO_CLIENT, the reply is now held
        r.proxy.set(direction, Fault.none())
        async with asyncio.timeout(BOUND):
            assert await call == "healed"
        assert r.client.is_open


@DIRECTIONS
async def test_without_keepalive_silence_ends_only_calls_with_deadlines(direction: Direction) -> None:
    """Today's documented behaviour: keepalive is off unless set (docs/keepalive.md), so through a
    silent network a call with a deadline still ends at it, and one without stays pending until
    the client closes; and the server, hearing nothing, keeps that client's handler.

    If keepalive ever becomes the default, this test fails: update it (and the docs) then.
    """
    loop = asyncio.get_running_loop()
    async with rig(keepalive=None) as r:
        held = r.client.call("svc.hold", "held")
        await r.service.started("held")
        r.proxy.set(direction, Fault.silent())
        started = loop.time()
        timed = r.client.call("svc.add", 1, 1, timeout=DEADLINE)
        async with asyncio.timeout(BOUND):
            with pytest.raises(DeadlineExceeded):
                await timed
        assert loop.time() - started <= DEADLINE + MARGIN
        # Longer than keepalive would have needed: the call without deadline is still pending.
        # (A bounded wait for something that must not happen.)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(held), KEEPALIVE_WITHIN)
        assert held.status() is CallStatus.PENDING
        assert r.service.running == 1
        ends: list[AsyncCall[Any]] = []
        held.add_done_callback(ends.append)
        async with asyncio.timeout(BOUND):
            await r.client.close()  # the only thing that ends it
            with pytest.raises(ConnectionLost):
                await held
        await asyncio.sleep(0)  # done-callbacks run one loop step after the future completes
        assert ends == [held]
        if direction is Direction.TO_SERVER:
            # The client's goodbye is held by the silence: the server still serves a dead client.
            assert r.service.running == 1
            assert r.server.connections == 1


def _sync_session(
    port: int, loop: asyncio.AbstractEventLoop, start_fault: Callable[[], Coroutine[Any, Any, None]]
) -> list[Any]:
    """Plain threaded code: a blocking client through the proxy; returns how held, timed, late ended."""
    with asyncrpc.sync.connect("127.0.0.1", port, keepalive=KEEPALIVE) as client:
        held = client.start("svc.hold", "held")
        timed = client.start("svc.hold", "timed", timeout=DEADLINE)
        # The fault is switched on the test's loop, where the proxy runs, once both handlers run.
        asyncio.run_coroutine_threadsafe(start_fault(), loop).result(BOUND)
        calls = [held, timed]
        try:
            calls.append(client.start("svc.add", 1, 2, timeout=DEADLINE))
        except ConnectionLost:
            # From another thread the fault may have been noticed already: then the call is
            # refused at the call site (behaviour 2), which is the same ending for this check.
            late_refused = True
        else:
            late_refused = False
        outcomes: list[Any] = []
        for call in calls:
            try:
                outcomes.append(call.result(BOUND))
            except (ConnectionLost, DeadlineExceeded) as exc:
                outcomes.append(type(exc))
        if late_refused:
            outcomes.append(ConnectionLost)
        return outcomes


@pytest.mark.asyncio(loop_factories=["asyncio"])
@DIRECTIONS
@pytest.mark.parametrize("fault", FAULT_IDS)
async def test_the_blocking_client_sees_the_same_endings(fault: str, direction: Direction) -> None:
    """``asyncrpc.sync`` (its own loop in a thread): each blocking wait ends as the async one does."""
    loop = asyncio.get_running_loop()
    async with rig() as r:

        async def start_fault() -> None:
            await r.service.started("held")
            await r.service.started("timed")
            r.proxy.set(direction, FAULTS[fault])
            if fault == "delay":
                r.service.open("held")

        outcomes = await asyncio.to_thread(_sync_session, r.proxy.port, loop, start_fault)
        assert outcomes == list(EXPECTED[fault][:3])
        assert await r.service.ended("timed") == "cancelled"
        assert await r.service.ended("held") == ("returned" if fault == "delay" else "cancelled")
