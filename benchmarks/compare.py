"""The end-to-end comparison: asyncrpc beside a minimal baseline and grpc.aio.

    python benchmarks/compare.py            # from a checkout; also: asyncrpc bench
    python benchmarks/compare.py --quick    # a smoke run: tiny counts, one round

For each implementation and each round, the runner starts the server in a
process of its own on 127.0.0.1 (``python -m benchmarks.harness.<module>
--port 0``, which prints its port), then a client process
(:mod:`benchmarks.harness.client`) that measures and prints JSON, then stops
the server. Both run with the repository root as their working directory, so
the runner may be started from anywhere and nothing but asyncrpc and its
dependencies needs to be installed. Rounds are interleaved across
implementations (the order rotates each round) and every figure reported is
the median over rounds. On Linux with two or more CPUs the server and the
client are pinned to different CPUs.

Results go to ``--out`` (default ``benchmarks/results/`` in the checkout):
``results.json`` (every round, the medians, the machine), ``results.md`` (the
table, also printed) and ``benchmarks.png`` (when matplotlib is installed).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import importlib.util
import json
import os
import platform
import selectors
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

__all__ = ["IMPLEMENTATIONS", "Implementation", "main"]

#: The repository root: the benchmark processes run there, whatever our cwd.
ROOT: Final = Path(__file__).resolve().parent.parent
#: The package the server and client modules live in, under ROOT.
HARNESS: Final = "benchmarks.harness"
#: The distribution asyncrpc is installed as (recorded with the results).
DISTRIBUTION: Final = "asyncrpc-msgpack"
PROG: Final = "python benchmarks/compare.py"

BASELINE: Final = "baseline-uvloop"
MiB: Final = 1024 * 1024

# The speed targets, each (implementation, the least multiple of the baseline's
# 64-caller rate it must reach, the most multiple of the baseline's sequential
# p50 it may take), both against the baseline in the same run.
TARGETS: Final[tuple[tuple[str, float, float | None], ...]] = (
    ("asyncrpc-plain-uvloop", 1.5, 1.15),
    # Over TLS the cipher's cost is the same for both and narrows the gap: reported, no target.
    ("asyncrpc-plain-uvloop-tls", 0.0, None),
)


def baseline_for(name: str) -> str:
    """What ``name`` is compared with: the uvloop baseline, over TLS when ``name`` is."""
    return f"{BASELINE}-tls" if name.endswith("-tls") else BASELINE


@dataclasses.dataclass(frozen=True)
class Implementation:
    """One column of the comparison: which server and which client, on which loop."""

    name: str
    server: tuple[str, ...]  # module under benchmarks.harness, then its arguments
    client: str  # --impl of the client worker
    loop: str
    description: str
    tls: bool = False  # server and client speak TLS (a throwaway certificate)


IMPLEMENTATIONS: Final = (
    Implementation(
        "asyncrpc-plain-uvloop",
        ("asyncrpc_server", "--handlers", "plain", "--loop", "uvloop"),
        "asyncrpc",
        "uvloop",
        "asyncrpc, plain def handlers, uvloop",
    ),
    Implementation(
        "asyncrpc-async-uvloop",
        ("asyncrpc_server", "--handlers", "async", "--loop", "uvloop"),
        "asyncrpc",
        "uvloop",
        "asyncrpc, async def handlers, uvloop",
    ),
    Implementation(
        "asyncrpc-typed-uvloop",
        ("asyncrpc_server", "--handlers", "typed", "--loop", "uvloop"),
        "asyncrpc",
        "uvloop",
        "asyncrpc, a typed interface's plain def methods (arguments checked), uvloop",
    ),
    Implementation(
        "asyncrpc-typed-async-uvloop",
        ("asyncrpc_server", "--handlers", "typed-async", "--loop", "uvloop"),
        "asyncrpc",
        "uvloop",
        "asyncrpc, a typed interface's async def methods (arguments checked), uvloop",
    ),
    Implementation(
        "asyncrpc-plain-asyncio",
        ("asyncrpc_server", "--handlers", "plain", "--loop", "asyncio"),
        "asyncrpc",
        "asyncio",
        "asyncrpc, plain def handlers, default loop",
    ),
    Implementation(
        "asyncrpc-async-asyncio",
        ("asyncrpc_server", "--handlers", "async", "--loop", "asyncio"),
        "asyncrpc",
        "asyncio",
        "asyncrpc, async def handlers, default loop",
    ),
    Implementation(
        "baseline-uvloop",
        ("baseline", "--loop", "uvloop"),
        "baseline",
        "uvloop",
        "minimal msgpack-rpc asyncio.Protocol, uvloop",
    ),
    Implementation(
        "baseline-asyncio",
        ("baseline", "--loop", "asyncio"),
        "baseline",
        "asyncio",
        "minimal msgpack-rpc asyncio.Protocol, default loop",
    ),
    Implementation(
        "asyncrpc-plain-uvloop-tls",
        ("asyncrpc_server", "--handlers", "plain", "--loop", "uvloop"),
        "asyncrpc",
        "uvloop",
        "asyncrpc, plain def handlers, uvloop, over TLS",
        tls=True,
    ),
    Implementation(
        "baseline-uvloop-tls",
        ("baseline", "--loop", "uvloop"),
        "baseline",
        "uvloop",
        "minimal msgpack-rpc asyncio.Protocol, uvloop, over TLS",
        tls=True,
    ),
    Implementation(
        "grpc.aio",
        ("grpc_server", "--loop", "asyncio"),
        "grpc",
        "asyncio",
        "grpc.aio, generic handlers, msgpack bytes, default loop",
    ),
)

MEMORY_LOOP: Final = "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
MEMORY_SERVER: Final = ("asyncrpc_server", "--handlers", "hold", "--loop", MEMORY_LOOP)
MEMORY_LIMIT: Final = 100 * MiB


@dataclasses.dataclass(frozen=True)
class Settings:
    rounds: int
    duration: float
    warmup: float
    max_calls: int
    callers: int
    pending: int
    pin: bool
    timeout: float  # for one client process, on top of its nominal time
    workloads: str = "add,echo"


def _available(impl: Implementation) -> str | None:
    """Why ``impl`` cannot run here, or None."""
    if impl.client == "grpc" and importlib.util.find_spec("grpc") is None:
        return "grpcio is not installed (pip install -e '.[bench]' in the checkout)"
    if impl.loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        return "uvloop is not installed"
    return None


def _cpus() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return []


def _pin(pid: int, cpu: int | None) -> None:
    if cpu is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, {cpu})


def _read_port(process: subprocess.Popen[bytes], timeout: float) -> int:
    """The first line the server prints, within ``timeout`` seconds."""
    assert process.stdout is not None
    line = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise RuntimeError(f"server did not print its port within {timeout:.0f}s")
            chunk = os.read(process.stdout.fileno(), 64)
            if not chunk:
                raise RuntimeError(f"server exited before printing its port (status {process.wait()})")
            line += chunk
    return int(line)


@contextlib.contextmanager
def _server(module_and_args: tuple[str, ...], cpu: int | None) -> Iterator[int]:
    """Run a benchmark server in its own process; yields its port; terminates it after."""
    module, *args = module_and_args
    command = [sys.executable, "-m", f"{HARNESS}.{module}", "--port", "0", *args]
    # stdin stays open while we live: the server exits when it closes.
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
    try:
        _pin(process.pid, cpu)
        yield _read_port(process, timeout=30.0)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()


def _run_client(arguments: list[str], cpu: int | None, timeout: float) -> dict[str, Any]:
    command = [sys.executable, "-m", f"{HARNESS}.client", *arguments]
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT
    )
    _pin(process.pid, cpu)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise RuntimeError(f"client did not finish within {timeout:.0f}s") from None
    if process.returncode != 0:
        raise RuntimeError(f"client failed (status {process.returncode}):\n{err.decode(errors='replace')}")
    return json.loads(out)  # type: ignore[no-any-return]


_TLS_DIR: list[Path] = []


def _tls_dir() -> Path:
    """A directory with a throwaway CA and server certificate, made once per run."""
    if not _TLS_DIR:
        import trustme  # needed only here: pip install -e '.[bench]'

        directory = Path(tempfile.mkdtemp(prefix="asyncrpc-bench-tls-"))
        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1")  # where the benchmark servers listen
        ca.cert_pem.write_to_path(str(directory / "ca.pem"))
        leaf.private_key_pem.write_to_path(str(directory / "server.key"))
        leaf.cert_chain_pems[0].write_to_path(str(directory / "server.pem"))
        _TLS_DIR.append(directory)
    return _TLS_DIR[0]


def run_once(impl: Implementation, settings: Settings, cpus: tuple[int | None, int | None]) -> dict[str, Any]:
    """One round of one implementation: a fresh server, a fresh client."""
    server_cpu, client_cpu = cpus
    workloads = len(settings.workloads.split(","))
    phases = workloads * (settings.warmup + 2 * settings.duration)
    tls = ("--tls-dir", str(_tls_dir())) if impl.tls else ()
    with _server((*impl.server, *tls), server_cpu) as port:
        return _run_client(
            [
                *tls,
                "--impl", impl.client,
                "--loop", impl.loop,
                "--port", str(port),
                "--duration", str(settings.duration),
                "--warmup", str(settings.warmup),
                "--max-calls", str(settings.max_calls),
                "--callers", str(settings.callers),
                "--workloads", settings.workloads,
            ],
            client_cpu,
            timeout=phases + settings.timeout,
        )  # fmt: skip


def run_memory(settings: Settings, cpus: tuple[int | None, int | None]) -> dict[str, Any]:
    server_cpu, client_cpu = cpus
    with _server(MEMORY_SERVER, server_cpu) as port:
        arguments = ["--impl", "asyncrpc", "--loop", MEMORY_LOOP, "--port", str(port)]
        arguments += ["--pending", str(settings.pending)]
        return _run_client(arguments, client_cpu, timeout=120.0 + settings.timeout)


# -- summarising ---------------------------------------------------------------

METRICS: Final = (
    # (key in the table, phase, field)
    ("p50_us", "sequential", "p50_us"),
    ("p99_us", "sequential", "p99_us"),
    ("rate_1", "sequential", "rate"),
    ("rate_n", "concurrent", "rate"),
    ("client_cpu_us", "concurrent", "client_cpu_us"),
    ("server_cpu_us", "concurrent", "server_cpu_us"),
    ("seq_client_cpu_us", "sequential", "client_cpu_us"),
    ("seq_server_cpu_us", "sequential", "server_cpu_us"),
)


def summarise(rounds: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, dict[str, float]]]:
    """Medians over rounds: {implementation: {workload: {metric: value}}}."""
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for name, runs in rounds.items():
        if not runs:
            continue
        per_workload: dict[str, dict[str, float]] = {}
        for workload in runs[0]["workloads"]:
            values: dict[str, float] = {}
            for key, phase, field in METRICS:
                values[key] = statistics.median(r["workloads"][workload][phase][field] for r in runs)
            values["client_maxrss"] = statistics.median(r["client_maxrss"] for r in runs)
            values["server_maxrss"] = statistics.median(r["server_maxrss"] for r in runs)
            values["rounds"] = len(runs)
            per_workload[workload] = values
        summary[name] = per_workload
    return summary


def _fmt_rate(value: float) -> str:
    return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.0f}"


def table(summary: dict[str, dict[str, dict[str, float]]], callers: int) -> str:
    """The markdown table of the medians, with ratios to the uvloop baseline."""
    header = (
        f"| implementation | workload | p50 µs | p99 µs | calls/s, 1 caller | calls/s, {callers} callers "
        f"| x baseline ({callers}) | x baseline (p50) | client CPU µs/call | server CPU µs/call "
        "| client peak MiB | server peak MiB |"
    )
    # Ratios: to baseline-uvloop, or to baseline-uvloop-tls for the rows over TLS.
    lines = [header, "|" + " --- |" * 12]
    for name, workloads in summary.items():
        base = summary.get(baseline_for(name), {})
        for workload, v in workloads.items():
            ref = base.get(workload)
            ratio_n = f"{v['rate_n'] / ref['rate_n']:.2f}" if ref else "-"
            ratio_p50 = f"{v['p50_us'] / ref['p50_us']:.2f}" if ref else "-"
            lines.append(
                f"| {name} | {workload} | {v['p50_us']:.0f} | {v['p99_us']:.0f} | {_fmt_rate(v['rate_1'])} "
                f"| {_fmt_rate(v['rate_n'])} | {ratio_n} | {ratio_p50} | {v['client_cpu_us']:.1f} "
                f"| {v['server_cpu_us']:.1f} | {v['client_maxrss'] / MiB:.0f} "
                f"| {v['server_maxrss'] / MiB:.0f} |"
            )
    return "\n".join(lines)


def target_lines(summary: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    """The speed targets, each marked met or missed, for every workload."""
    lines = []
    for name, min_rate, max_p50 in TARGETS:
        base = summary.get(baseline_for(name))
        if name not in summary or base is None:
            continue
        for workload, v in summary[name].items():
            ref = base.get(workload)
            if ref is None:
                continue
            rate = v["rate_n"] / ref["rate_n"]
            verdict = f"{'met' if rate >= min_rate else 'MISSED'}: >= {min_rate}" if min_rate else "no target"
            parts = [f"{rate:.2f}x the baseline's rate ({verdict})"]
            if not max_p50:
                parts.append(f"p50 {v['p50_us'] / ref['p50_us']:.2f}x")
            if max_p50 is not None:
                p50 = v["p50_us"] / ref["p50_us"]
                parts.append(f"p50 {p50:.2f}x ({'met' if p50 <= max_p50 else 'MISSED'}: <= {max_p50})")
            lines.append(f"- {name} / {workload}: " + "; ".join(parts))
    return lines


def memory_lines(memory: dict[str, Any]) -> list[str]:
    verdict = "under" if memory["client_maxrss"] < MEMORY_LIMIT else "OVER"
    return [
        f"- {memory['calls']:,} calls pending at once on one connection (asyncrpc client, {MEMORY_LOOP}):",
        f"  {memory['rss_per_call']:.0f} bytes per pending call (resident memory), "
        f"{memory['traced_per_call']:.0f} bytes per call of Python objects (tracemalloc);",
        f"  client peak {memory['client_maxrss'] / MiB:.1f} MiB in all, {verdict} the 100 MB limit "
        f"(server holding them: {memory['server_maxrss'] / MiB:.1f} MiB).",
    ]


def plot(summary: dict[str, dict[str, dict[str, float]]], path: Path, callers: int) -> str:
    """Save the bar charts; returns what happened (matplotlib is optional)."""
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError:
        return "plot skipped: matplotlib is not installed (pip install -e '.[bench]' in the checkout)"
    matplotlib.use("Agg")
    plt = importlib.import_module("matplotlib.pyplot")
    names = list(summary)
    workloads = list(next(iter(summary.values())))
    panels = (
        ("rate_n", f"calls/s, {callers} concurrent callers, one connection (higher is better)"),
        ("rate_1", "calls/s, 1 caller (higher is better)"),
        ("p50_us", "sequential p50 latency, µs (lower is better)"),
    )
    figure, axes = plt.subplots(len(panels), 1, figsize=(10, 3.4 * len(panels)))
    width = 0.8 / len(workloads)
    for ax, (metric, title) in zip(axes, panels, strict=True):
        for i, workload in enumerate(workloads):
            values = [summary[n].get(workload, {}).get(metric, 0.0) for n in names]
            xs = [x + i * width for x in range(len(names))]
            bars = ax.bar(xs, values, width, label=workload)
            ax.bar_label(bars, labels=[_fmt_rate(v) for v in values], fontsize=7)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([x + width * (len(workloads) - 1) / 2 for x in range(len(names))])
        ax.set_xticklabels(names, fontsize=8, rotation=15, ha="right")
        ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return f"plot written to {path}"


def _environment() -> dict[str, Any]:
    versions = {}
    for dist in ("msgpack", "uvloop", "grpcio", DISTRIBUTION):
        with contextlib.suppress(Exception):
            versions[dist] = importlib.import_module("importlib.metadata").version(dist)
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "versions": versions,
    }


def _select(only: list[str] | None) -> tuple[list[Implementation], bool]:
    if not only:
        return list(IMPLEMENTATIONS), True
    names = {i.name for i in IMPLEMENTATIONS}

    def wanted(name: str, word: str) -> bool:
        # A whole name picks that one (baseline-uvloop, not baseline-uvloop-tls too).
        return name == word if word in names else word in name

    chosen = [i for i in IMPLEMENTATIONS if any(wanted(i.name, word) for word in only)]
    return chosen, "memory" in only


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    names = ", ".join(i.name for i in IMPLEMENTATIONS)
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Compare asyncrpc with a minimal msgpack-rpc baseline and grpc.aio, end to end.",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny counts, one round")
    parser.add_argument("--duration", type=float, default=None, help="seconds per phase (default 1.0)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per implementation (default 5)")
    parser.add_argument("--callers", type=int, default=64, help="concurrent callers on one connection")
    parser.add_argument("--pending", type=int, default=None, help="calls pending at once (default 100000)")
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "benchmarks" / "results",
        help="results directory (default: benchmarks/results/ in the checkout)",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run only the implementation named NAME, or those whose name contains it, and 'memory' "
        f"for the pending-calls measurement (repeatable). Names: {names}",
    )
    parser.add_argument(
        "--workloads", default="add,echo", help="comma-separated: add (add(1, 2)), echo (1 KiB echo)"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and client to CPUs")
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.duration is not None and not 0 < args.duration <= 600:
        parser.error("--duration must be in (0, 600] seconds")
    return args


def _settings(args: argparse.Namespace) -> Settings:
    if args.quick:
        return Settings(
            rounds=args.rounds or 1,
            duration=args.duration or 0.05,
            warmup=0.01,
            max_calls=200,
            callers=min(args.callers, 8),
            pending=args.pending or 2_000,
            pin=not args.no_pin,
            timeout=60.0,
            workloads=args.workloads,
        )
    return Settings(
        rounds=args.rounds or 5,
        duration=args.duration or 1.0,
        warmup=0.2,
        max_calls=5_000_000,
        callers=args.callers,
        pending=args.pending or 100_000,
        pin=not args.no_pin,
        timeout=120.0,
        workloads=args.workloads,
    )


def _run_rounds(
    runnable: list[Implementation], settings: Settings, pinned: tuple[int | None, int | None]
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Every round of every implementation, interleaved; the order rotates each round."""
    rounds: dict[str, list[dict[str, Any]]] = {impl.name: [] for impl in runnable}
    failures: list[str] = []
    for index in range(settings.rounds):
        shift = index % max(len(runnable), 1)
        for impl in runnable[shift:] + runnable[:shift]:
            print(f"round {index + 1}/{settings.rounds}: {impl.name} ...", end=" ", flush=True)
            try:
                result = run_once(impl, settings, pinned)
            except Exception as exc:
                failures.append(f"{impl.name}: {exc}")
                print(f"FAILED: {exc}")
                continue
            rounds[impl.name].append(result)
            print(
                ", ".join(
                    f"{w} {_fmt_rate(r['concurrent']['rate'])}/s" for w, r in result["workloads"].items()
                )
            )
    return rounds, failures


def _report(
    command: str,
    *,
    settings: Settings,
    summary: dict[str, dict[str, dict[str, float]]],
    memory: dict[str, Any] | None,
    skipped: dict[str, str],
    failures: list[str],
) -> str:
    lines = [
        f"Command: `{command}`; {settings.rounds} round(s), {settings.duration}s per phase, "
        f"medians over rounds; {settings.callers} concurrent callers on one connection.",
        "",
    ]
    if summary:
        lines += [table(summary, settings.callers), ""]
        targets = target_lines(summary)
        if targets:
            lines += [
                f"Targets, against {BASELINE} (over TLS: {BASELINE}-tls) in the same run:",
                *targets,
                "",
            ]
    if memory is not None:
        lines += ["Memory:", *memory_lines(memory), ""]
    lines += [f"- {name} skipped: {reason}" for name, reason in skipped.items()]
    lines += [f"- FAILED {failure}" for failure in failures]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; 0 when every run succeeded (speed targets are reported, not enforced)."""
    args = parse_arguments(argv)
    settings = _settings(args)
    chosen, with_memory = _select(args.only)
    if not chosen and not with_memory:
        print(f"no implementation matches {args.only}", file=sys.stderr)
        return 2
    cpus = _cpus()
    pinned: tuple[int | None, int | None] = (None, None)
    if settings.pin and len(cpus) >= 2:
        pinned = (cpus[-1], cpus[-2])

    runnable: list[Implementation] = []
    skipped: dict[str, str] = {}
    for impl in chosen:
        reason = _available(impl)
        if reason is None:
            runnable.append(impl)
        else:
            skipped[impl.name] = reason
            print(f"skipping {impl.name}: {reason}")

    rounds, failures = _run_rounds(runnable, settings, pinned)
    memory: dict[str, Any] | None = None
    if with_memory:
        print(f"memory: {settings.pending:,} calls pending at once ...", flush=True)
        try:
            memory = run_memory(settings, pinned)
        except Exception as exc:
            failures.append(f"memory: {exc}")
            print(f"FAILED: {exc}")

    summary = summarise(rounds)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    command = " ".join([PROG, *(argv if argv is not None else sys.argv[1:])])
    text = _report(
        command, settings=settings, summary=summary, memory=memory, skipped=skipped, failures=failures
    )
    print()
    print(text)
    (out / "results.md").write_text(text, encoding="utf-8")
    results = {
        "command": command,
        "settings": dataclasses.asdict(settings),
        "pinned_cpus": {"server": pinned[0], "client": pinned[1]},
        "environment": _environment(),
        "implementations": {i.name: i.description for i in runnable},
        "skipped": skipped,
        "failures": failures,
        "rounds": rounds,
        "medians": summary,
        "memory": memory,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    if summary:
        print(plot(summary, out / "benchmarks.png", settings.callers))
    print(f"results written to {out}/results.json and {out}/results.md")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
