"""The benchmarks run (CI checks only that; their timings never go in the suite).

The harness lives in the checkout (``benchmarks/``), not in the installed package.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import compare

ROOT = Path(__file__).resolve().parent.parent


def test_quick_comparison_runs_every_implementation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert compare.main(["--quick", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out

    results = json.loads((tmp_path / "results.json").read_text())
    expected = {i.name for i in compare.IMPLEMENTATIONS}
    if importlib.util.find_spec("grpc") is None:
        expected.discard("grpc.aio")
        assert "grpc.aio" in results["skipped"]
    assert set(results["medians"]) == expected
    assert results["failures"] == []
    for name, workloads in results["medians"].items():
        assert set(workloads) == {"add", "echo"}, name
        for metrics in workloads.values():
            assert metrics["rate_1"] > 0
            assert metrics["rate_n"] > 0
            assert 0 < metrics["p50_us"] <= metrics["p99_us"]
            assert metrics["client_maxrss"] > 0
            assert metrics["server_maxrss"] > 0
    for runs in results["rounds"].values():
        for run in runs:
            for phases in run["workloads"].values():
                assert phases["sequential"]["calls"] > 0
                assert phases["concurrent"]["calls"] > 0

    memory = results["memory"]
    assert memory["pending"] >= memory["calls"] > 0
    assert memory["client_maxrss"] > 0

    table = (tmp_path / "results.md").read_text()
    for name in expected:
        assert f"| {name} | add |" in table
    assert "bytes per pending call" in table
    assert table in printed
    assert "Targets, against baseline-uvloop (over TLS: baseline-uvloop-tls) in the same run:" in table
    for workload in ("add", "echo"):
        assert f"- asyncrpc-plain-uvloop / {workload}: " in table
    assert ">= 1.5)" in table
    assert "<= 1.15)" in table
    assert "issue" not in printed.lower()
    plot = tmp_path / "benchmarks.png"
    if importlib.util.find_spec("matplotlib") is not None:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert not plot.exists()


def test_only_selects_implementations(tmp_path: Path) -> None:
    assert compare.main(["--quick", "--only", "baseline-uvloop", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert list(results["medians"]) == ["baseline-uvloop"]
    assert results["memory"] is None


def test_only_with_no_match_is_an_error(tmp_path: Path) -> None:
    assert compare.main(["--quick", "--only", "no-such-implementation", "--out", str(tmp_path)]) == 2
    assert not (tmp_path / "results.json").exists()


def test_micro_benchmarks_run() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks", "-q", "--benchmark-disable", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout
    assert "failed" not in result.stdout


def test_runner_runs_as_a_script_from_another_directory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    options = ["--quick", "--only", "baseline-uvloop", "--workloads", "add", "--out", str(out)]
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "compare.py"), *options],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads((out / "results.json").read_text())
    assert list(results["medians"]) == ["baseline-uvloop"]
    assert results["command"].startswith("python benchmarks/compare.py --quick")


def test_harness_is_not_part_of_the_package() -> None:
    assert importlib.util.find_spec("asyncrpc.benchmark") is None
    assert (ROOT / "benchmarks" / "harness" / "baseline.py").is_file()
