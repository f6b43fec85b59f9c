"""``asyncrpc bench [ARGS ...]``: run the benchmark runner of a source checkout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Final

from asyncrpc.cli.errors import CommandError, ExitStatus

__all__ = ["BENCH_RUNNER", "bench", "bench_arguments"]

BENCH_RUNNER: Final = Path("benchmarks") / "compare.py"
"""Where ``asyncrpc bench`` finds the benchmark runner, relative to the current directory."""

_BENCH_STOP_TIMEOUT: Final = 10.0  # seconds an interrupted benchmark gets to stop its servers


def bench(argv: list[str]) -> int:
    """Run ``benchmarks/compare.py`` from the current directory with ``argv``; its exit status.

    A child process, exactly as ``python benchmarks/compare.py ARGS`` would run:
    the runner's own directory is first on its path and its exit status and
    signals are its own, whatever it imports.
    """
    if not BENCH_RUNNER.is_file():
        raise CommandError(
            "the benchmarks run from a checkout of the source repository: run asyncrpc bench "
            f"in its top directory, or python {BENCH_RUNNER.as_posix()} --help there"
        )
    process = subprocess.Popen([sys.executable, str(BENCH_RUNNER), *argv])
    try:
        status = process.wait()
    except KeyboardInterrupt:
        # Ctrl-C in a terminal reaches the runner too; let it stop its servers.
        try:
            process.wait(timeout=_BENCH_STOP_TIMEOUT)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            process.kill()
            process.wait()
        return ExitStatus.INTERRUPTED
    return 128 - status if status < 0 else status  # killed by a signal: as a shell reports it


def bench_arguments(argv: list[str]) -> list[str] | None:
    """What follows ``bench`` when it is the command, untouched (the runner has its own options)."""
    for index, token in enumerate(argv):
        if not token.startswith("-"):
            return argv[index + 1 :] if token == "bench" else None
    return None
