"""The client side of one benchmark run, in a process of its own.

``python -m benchmarks.harness.client --impl asyncrpc --port P`` connects to a
server the runner started, measures every workload and prints one JSON object
on stdout. A process per run keeps each implementation's CPU time and peak
memory its own.

For each workload (``add(1, 2)`` and a 1 KiB ``echo``): a warm-up; a
sequential phase (one call at a time: latency percentiles and the one-caller
rate); a concurrent phase (``--callers`` tasks sharing one connection). Each
phase ends at ``--duration`` seconds or ``--max-calls`` calls, whichever comes
first, and is given a hard time limit on top. CPU time is measured on both
sides around each phase: ``time.process_time()`` here, a ``stats()`` call there.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import msgpack

from benchmarks.harness.common import ECHO_PAYLOAD, HOST, LOOPS, peak_rss_bytes, run_on, tls_client_context

__all__ = ["WORKLOADS", "main", "percentile"]

Caller = Callable[..., Awaitable[Any]]

WORKLOADS: Final[dict[str, tuple[str, tuple[Any, ...]]]] = {
    "add": ("add", (1, 2)),
    "echo": ("echo", (ECHO_PAYLOAD,)),
}

IMPLS: Final = ("asyncrpc", "baseline", "grpc")

# How far past its nominal duration a phase may run before it is abandoned.
PHASE_GRACE: Final = 30.0


def percentile(sorted_values: list[int], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return float(sorted_values[index])


class Target:
    """One implementation's client: how to connect, call, ask stats and close."""

    async def open(self, port: int) -> None:
        raise NotImplementedError

    def caller(self, method: str) -> Caller:
        raise NotImplementedError

    async def stats(self) -> dict[str, float]:
        return dict(await self.caller("stats")())

    async def close(self) -> None:
        raise NotImplementedError


class AsyncrpcTarget(Target):
    def __init__(self, tls_dir: str | None = None) -> None:
        self.client: Any = None
        self.tls_dir = tls_dir

    async def open(self, port: int) -> None:
        import asyncrpc

        self.client = await asyncrpc.connect(HOST, port, ssl=tls_client_context(self.tls_dir))

    def caller(self, method: str) -> Caller:
        return functools.partial(self.client.call, method)

    async def close(self) -> None:
        await self.client.close()


class BaselineTarget(Target):
    def __init__(self, tls_dir: str | None = None) -> None:
        self.client: Any = None
        self.tls_dir = tls_dir

    async def open(self, port: int) -> None:
        from benchmarks.harness.baseline import connect

        self.client = await connect(port, self.tls_dir)

    def caller(self, method: str) -> Caller:
        return functools.partial(self.client.call, method)

    async def close(self) -> None:
        self.client.close()


class GrpcTarget(Target):
    def __init__(self) -> None:
        self.channel: Any = None

    async def open(self, port: int) -> None:
        import grpc

        self.channel = grpc.aio.insecure_channel(f"{HOST}:{port}")
        await asyncio.wait_for(self.channel.channel_ready(), 10.0)

    def caller(self, method: str) -> Caller:
        from benchmarks.harness.grpc_server import SERVICE

        multicallable = self.channel.unary_unary(f"/{SERVICE}/{method}")
        packb = functools.partial(msgpack.packb, use_bin_type=True)
        unpackb = msgpack.unpackb

        async def call(*args: Any) -> Any:
            return unpackb(await multicallable(packb(args)))

        return call

    async def close(self) -> None:
        await self.channel.close()


def make_target(impl: str, tls_dir: str | None = None) -> Target:
    if impl == "asyncrpc":
        return AsyncrpcTarget(tls_dir)
    if impl == "baseline":
        return BaselineTarget(tls_dir)
    if impl == "grpc":
        return GrpcTarget()
    raise ValueError(f"unknown implementation {impl!r}")


class _Stop:
    """Set by a timer when a phase's duration is over."""

    __slots__ = ("now",)

    def __init__(self, duration: float) -> None:
        self.now = False
        asyncio.get_running_loop().call_later(duration, self.set)

    def set(self) -> None:
        self.now = True


async def sequential(call: Caller, args: tuple[Any, ...], duration: float, max_calls: int) -> dict[str, Any]:
    """One call at a time: latency of each, and the rate."""
    latencies: list[int] = []
    record = latencies.append
    clock = time.perf_counter_ns
    stop = _Stop(duration)
    started = time.perf_counter()
    async with asyncio.timeout(duration + PHASE_GRACE):
        while not stop.now and len(latencies) < max_calls:
            t0 = clock()
            await call(*args)
            record(clock() - t0)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "calls": len(latencies),
        "elapsed": elapsed,
        "rate": len(latencies) / elapsed,
        "p50_us": percentile(latencies, 0.50) / 1000,
        "p99_us": percentile(latencies, 0.99) / 1000,
        "mean_us": sum(latencies) / len(latencies) / 1000 if latencies else float("nan"),
    }


async def concurrent(
    call: Caller, args: tuple[Any, ...], callers: int, duration: float, max_calls: int
) -> dict[str, Any]:
    """``callers`` tasks calling in a loop on one connection."""
    done = [0]
    stop = _Stop(duration)

    async def caller() -> None:
        while not stop.now and done[0] < max_calls:
            await call(*args)
            done[0] += 1

    started = time.perf_counter()
    async with asyncio.timeout(duration + PHASE_GRACE):
        await asyncio.gather(*(caller() for _ in range(callers)))
    elapsed = time.perf_counter() - started
    return {"calls": done[0], "elapsed": elapsed, "rate": done[0] / elapsed}


async def measured(target: Target, phase: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """Run ``phase``, adding the CPU time per call of both processes."""
    server_before = await target.stats()
    gc.collect()
    cpu_before = time.process_time()
    result = await phase()
    cpu_after = time.process_time()
    server_after = await target.stats()
    calls = max(result["calls"], 1)
    result["client_cpu_us"] = (cpu_after - cpu_before) / calls * 1e6
    result["server_cpu_us"] = (server_after["cpu"] - server_before["cpu"]) / calls * 1e6
    return result


async def run_workloads(
    impl: str,
    port: int,
    workloads: list[str],
    *,
    duration: float,
    warmup: float,
    max_calls: int,
    callers: int,
    tls_dir: str | None = None,
) -> dict[str, Any]:
    target = make_target(impl, tls_dir)
    await target.open(port)
    results: dict[str, Any] = {}
    try:
        for name in workloads:
            method, args = WORKLOADS[name]
            call = target.caller(method)
            await concurrent(call, args, callers, warmup, max_calls)
            seq = await measured(target, functools.partial(sequential, call, args, duration, max_calls))
            conc = await measured(
                target, functools.partial(concurrent, call, args, callers, duration, max_calls)
            )
            results[name] = {"sequential": seq, "concurrent": conc}
        server = await target.stats()
    finally:
        await target.close()
    return {
        "workloads": results,
        "callers": callers,
        "client_maxrss": peak_rss_bytes(),
        "server_maxrss": server["maxrss"],
    }


def _current_rss() -> int:
    """Resident memory now, in bytes (Linux); the peak elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except OSError:
        return peak_rss_bytes()
    import os

    return pages * os.sysconf("SC_PAGE_SIZE")


async def _hold_calls(client: Any, count: int, batch: int) -> tuple[list[Any], dict[str, float]]:
    calls: list[Any] = []
    async with asyncio.timeout(120):
        for start in range(0, count, batch):
            calls.extend(client.call("add", i, i) for i in range(start, min(start + batch, count)))
            await asyncio.sleep(0)  # let the writes go out in batches
        # The reply to stats() comes after every request before it on the
        # connection was read (and deferred) by the server.
        server = await client.call("stats")
    return calls, server


async def pending_memory(port: int, count: int, batch: int = 1000) -> dict[str, Any]:
    """Start ``count`` calls that the server holds unanswered; memory per pending call.

    The server (``asyncrpc_server --handlers hold``) defers every call and
    never answers. Resident memory is measured in a first pass; a second pass,
    on a new connection, counts the Python objects alone with tracemalloc
    (whose own bookkeeping would inflate the first figure).
    """
    import tracemalloc

    import asyncrpc

    async with asyncrpc.connect(HOST, port) as client:
        await client.call("stats")
        gc.collect()
        rss_before = _current_rss()
        calls, server = await _hold_calls(client, count, batch)
        server_maxrss = server["maxrss"]
        gc.collect()
        rss_after = _current_rss()
        peak = peak_rss_bytes()
        pending = client.connection.pending_count
        if server["held"] < count or pending < count:
            raise RuntimeError(f"only {pending} calls pending (server holds {server['held']})")
    # Closing failed every pending call with ConnectionLost; none hangs.
    if not all(call.done() for call in calls):
        raise RuntimeError("calls still pending after the connection closed")
    del calls

    async with asyncrpc.connect(HOST, port) as client:
        await client.call("stats")
        gc.collect()
        tracemalloc.start()
        traced_before = tracemalloc.get_traced_memory()[0]
        calls, _ = await _hold_calls(client, count, batch)
        gc.collect()
        traced_after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        if len(calls) != count:
            raise RuntimeError(f"{len(calls)} calls made, {count} expected")
    return {
        "calls": count,
        "pending": pending,
        "rss_before": rss_before,
        "rss_after": rss_after,
        "rss_per_call": (rss_after - rss_before) / count,
        "traced_per_call": (traced_after - traced_before) / count,
        "client_maxrss": peak,
        "server_maxrss": server_maxrss,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="benchmark client (run by benchmarks/compare.py)")
    parser.add_argument("--impl", choices=IMPLS, required=True)
    parser.add_argument("--loop", choices=LOOPS, default="uvloop")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--duration", type=float, default=1.0)
    parser.add_argument("--warmup", type=float, default=0.2)
    parser.add_argument("--max-calls", type=int, default=2_000_000)
    parser.add_argument("--callers", type=int, default=64)
    parser.add_argument("--pending", type=int, default=0, help="measure memory of this many pending calls")
    parser.add_argument("--tls-dir", default=None, help="connect with TLS, trusting the CA written there")
    args = parser.parse_args(argv)
    if args.pending:
        result = run_on(args.loop, pending_memory(args.port, args.pending))
    else:
        workloads = [w for w in args.workloads.split(",") if w]
        for name in workloads:
            if name not in WORKLOADS:
                parser.error(f"unknown workload {name!r}")
        result = run_on(
            args.loop,
            run_workloads(
                args.impl,
                args.port,
                workloads,
                duration=args.duration,
                warmup=args.warmup,
                max_calls=args.max_calls,
                callers=args.callers,
                tls_dir=args.tls_dir,
            ),
        )
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
