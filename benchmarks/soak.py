"""The soak: many callers, every kind of outcome, faults on the wire, for a while.

    python benchmarks/soak.py --seconds 300            # from a checkout
    python benchmarks/soak.py --seconds 20 --callers 8 # a short one

A server and a reconnecting, keepalive client run on one uvloop loop, with
the test suite's fault proxy between them. ``--callers`` tasks each make
calls in a loop, mixing successes, remote errors, deadlines that pass,
cancels and (every few seconds, from the fault schedule) connections cut,
stalled or silent. Every ``--every`` seconds it prints a line: calls started
and ended so far, calls per second, how each ended, the process's resident
memory. At the end it stops the callers, waits for every call still pending,
and checks that every call started has ended exactly once; it exits 1 if
not, or if any call ended in a way none of the above explains.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

import asyncrpc  # noqa: E402
from tests.faultproxy import FaultProxy  # noqa: E402

__all__ = ["main"]

#: How a call may end, and what counts as which.
OUTCOMES = ("ok", "remote_error", "deadline", "cancelled", "connection_lost")


class Soak:
    """One run: the callers, the fault schedule, the counts."""

    def __init__(self, client: asyncrpc.Client, proxy: FaultProxy, callers: int, seed: int) -> None:
        self.client = client
        self.proxy = proxy
        self.callers = callers
        self.random = random.Random(seed)
        self.started = 0
        self.ended: collections.Counter[str] = collections.Counter()
        self.unexpected: list[str] = []
        self.faults: collections.Counter[str] = collections.Counter()
        self.running = True

    @property
    def ended_total(self) -> int:
        return sum(self.ended.values())

    def _end(self, call: asyncrpc.AsyncCall[Any], expected: Any = None) -> None:
        error = call.exception()
        if error is None:
            if expected is not None and call.result() != expected:
                self.unexpected.append(f"{call.method}: wrong result {call.result()!r}")
            self.ended["ok"] += 1
        elif isinstance(error, asyncrpc.CallCancelled):
            self.ended["cancelled"] += 1
        elif isinstance(error, asyncrpc.DeadlineExceeded):
            self.ended["deadline"] += 1
        elif isinstance(error, asyncrpc.ConnectionLost):
            self.ended["connection_lost"] += 1
        elif isinstance(error, asyncrpc.RemoteError) and error.type == "ValueError":
            self.ended["remote_error"] += 1
        else:
            self.unexpected.append(f"{call.method}: {type(error).__name__}: {error}")
            self.ended["other"] += 1

    async def caller(self) -> None:
        client = self.client
        pick = self.random.random
        while self.running:
            roll = pick()
            if roll < 0.6:
                call = client.call("add", 1, 2, timeout=5.0)
                expected: Any = 3
            elif roll < 0.7:
                call = client.call("demo.fail", "on purpose", timeout=5.0)
                expected = None
            elif roll < 0.8:
                call = client.call("demo.wait_for", "never", timeout=0.02)
                expected = None
            elif roll < 0.9:
                call = client.call("demo.wait_for", "never", timeout=5.0)
                await asyncio.sleep(0)
                call.cancel(abort=pick() < 0.5, timeout=0.5)
                expected = None
            else:
                payload = "x" * 1024
                call = client.call("demo.echo", payload, timeout=5.0)
                expected = payload
            self.started += 1
            with contextlib.suppress(asyncrpc.RPCError):  # counted from the handle, below
                await call
            self._end(call, expected)

    async def faults_schedule(self) -> None:
        """Every 1 to 3 seconds, one fault for a moment: cut, stall, or silence a direction."""
        proxy = self.proxy
        while self.running:
            await asyncio.sleep(self.random.uniform(1.0, 3.0))
            fault = self.random.choice(("cut", "stall", "silent_up", "silent_down"))
            self.faults[fault] += 1
            if fault == "cut":
                proxy.cut()
            elif fault == "stall":
                proxy.downstream.delay = 0.05
                await asyncio.sleep(0.3)
                proxy.downstream.delay = 0.0
            else:
                way = proxy.upstream if fault == "silent_up" else proxy.downstream
                way.drop = True  # the keepalive notices, the client reconnects
                await asyncio.sleep(1.5)
                way.drop = False


def rss_mib() -> float:
    """The process's resident memory now, in MiB (Linux), else its peak."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * resource.getpagesize() / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(seconds: float, callers: int, every: float, seed: int) -> int:
    server = asyncrpc.Server(keepalive=1.0)
    from tests.services import Demo, add

    server.register(Demo(), namespace="demo")
    server.register_function(add, name="add")
    await server.start("127.0.0.1", 0)
    async with FaultProxy("127.0.0.1", server.port) as proxy:
        client = await asyncrpc.connect(
            "127.0.0.1",
            proxy.port,
            keepalive=0.5,
            reconnect=asyncrpc.Reconnect(initial=0.05, maximum=0.5),
            connect_timeout=2.0,
        )
        soak = Soak(client, proxy, callers, seed)
        tasks = [asyncio.ensure_future(soak.caller()) for _ in range(callers)]
        schedule = asyncio.ensure_future(soak.faults_schedule())
        start = time.monotonic()
        last_time, last_ended = start, 0
        print(f"soak: {callers} callers for {seconds:g}s, seed {seed}", flush=True)
        while (now := time.monotonic()) - start < seconds:
            await asyncio.sleep(min(every, seconds - (now - start)))
            now = time.monotonic()
            ended = soak.ended_total
            rate = (ended - last_ended) / max(now - last_time, 1e-9)
            last_time, last_ended = now, ended
            counts = " ".join(f"{name}={soak.ended[name]}" for name in OUTCOMES)
            print(
                f"{now - start:7.1f}s started={soak.started} ended={ended} in_flight={soak.started - ended} "
                f"{rate:8.0f} calls/s rss={rss_mib():.1f}MiB state={client.state.value} {counts}",
                flush=True,
            )
        soak.running = False
        schedule.cancel()
        proxy.downstream.drop = proxy.upstream.drop = False
        proxy.downstream.delay = 0.0
        async with asyncio.timeout(30):
            for result in await asyncio.gather(*tasks, return_exceptions=True):
                if isinstance(result, BaseException):
                    soak.unexpected.append(f"a caller failed: {type(result).__name__}: {result}")
        await client.close()
    await server.close(grace=1.0)
    faults = " ".join(f"{name}={count}" for name, count in sorted(soak.faults.items()))
    print(f"faults: {faults}")
    print(f"started={soak.started} ended={soak.ended_total} unexpected={len(soak.unexpected)}")
    for line in soak.unexpected[:20]:
        print(f"  unexpected: {line}")
    ok = soak.started == soak.ended_total and not soak.unexpected
    print("every call ended exactly once" if ok else "FAILED: calls lost or ended wrongly")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/soak.py", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to run (default 60)")
    parser.add_argument("--callers", type=int, default=32, help="concurrent callers (default 32)")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between report lines (default 10)")
    parser.add_argument("--seed", type=int, default=1, help="random seed for the mix and the faults")
    args = parser.parse_args(argv)
    if not args.seconds > 0 or args.callers < 1 or not args.every > 0:
        parser.error("--seconds and --every must be positive, --callers at least 1")
    return asyncrpc.run(run(args.seconds, args.callers, args.every, args.seed))


if __name__ == "__main__":
    raise SystemExit(main())
