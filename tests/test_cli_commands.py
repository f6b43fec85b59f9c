"""The ``asyncrpc`` command as a whole: --version, --help, the exit statuses, demo and bench."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import asyncrpc
from asyncrpc.cli import EXIT_STATUSES, ExitStatus
from tests.cli_helpers import cli

Capture = pytest.CaptureFixture[str]
ROOT = Path(__file__).resolve().parent.parent
CLI_DOC = ROOT / "docs" / "cli.md"
JARGON = re.compile(r"\bseed\b|\bscenario\b|\bissue\b", re.IGNORECASE)


async def test_version(capsys: Capture) -> None:
    ran = await cli(capsys, "--version")
    assert (ran.status, ran.out, ran.err) == (0, f"asyncrpc {asyncrpc.__version__}\n", "")


async def test_no_command_is_a_usage_error(capsys: Capture) -> None:
    ran = await cli(capsys)
    assert ran.status == ExitStatus.USAGE
    assert ran.err.startswith("usage: asyncrpc ")
    assert ran.err.endswith("asyncrpc: error: the following arguments are required: COMMAND\n")


@pytest.mark.parametrize("command", [[], ["call"]], ids=["asyncrpc", "call"])
async def test_help_lists_every_exit_status(capsys: Capture, command: list[str]) -> None:
    ran = await cli(capsys, *command, "--help")
    assert ran.status == 0
    table = ran.out.split("exit status:\n", 1)[1]
    codes = [int(m[1]) for m in re.finditer(r"^  (\d+) +\S", table, re.M)]
    assert codes == [status.value for status, _ in EXIT_STATUSES]
    assert set(codes) == {status.value for status in ExitStatus}


async def test_help_and_demo_speak_to_a_new_user(capsys: Capture) -> None:
    texts = []
    for command in ([], ["serve"], ["call"], ["list"], ["describe"], ["stubgen"], ["demo"]):
        ran = await cli(capsys, *command, "--help")
        assert ran.status == 0
        texts.append(ran.out)
    ran = await cli(capsys, "demo", "--delay", "0")
    texts.append(ran.out)
    for text in texts:
        assert not JARGON.search(text), text


def _docs_section(title: str) -> str:
    text = CLI_DOC.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_docs_list_the_same_exit_statuses() -> None:
    rows = re.findall(r"^\| `(\d+)` \| (.+?) \|$", _docs_section("Exit status"), re.M)
    assert [int(code) for code, _ in rows] == [status.value for status, _ in EXIT_STATUSES]


@pytest.mark.parametrize("command", ["serve", "call", "list", "describe", "demo"])
async def test_docs_give_the_defaults_the_help_gives(capsys: Capture, command: str) -> None:
    ran = await cli(capsys, command, "--help")
    help_text = " ".join(ran.out.split())
    title = (
        "`asyncrpc list` and `asyncrpc describe`"
        if command in ("list", "describe")
        else f"`asyncrpc {command}`"
    )
    rows = re.findall(r"^\| `(--[\w-]+)[^|]*` \| ([^|]*) \|", _docs_section(title), re.M)
    assert rows, f"no option table for {command}"
    for option, default in rows:
        assert option in help_text, option
        value = default.strip().strip("`")
        if value and value != "none":
            assert f"(default {value}" in help_text, (option, value)


# -- demo -------------------------------------------------------------------------------------


async def test_demo_is_quick_and_points_to_the_tour_of_every_mode(capsys: Capture) -> None:
    ran = await cli(capsys, "demo")
    assert (ran.status, ran.err) == (0, "")
    assert ran.seconds < 2.0  # the default delay is 0.5s
    lines = ran.out.splitlines()
    steps = [
        "AsyncFunc(0.5) called: handle PENDING",
        "NonAsyncFunc returned; AsyncFunc is still PENDING",
        "complete() too early -> CallPending (997)",
        "event set: AsyncFunc is COMPLETE",
        "complete() -> 'AsyncFunc finished after 0.5s'",
    ]
    positions = [next(i for i, line in enumerate(lines) if step in line) for step in steps]
    assert positions == sorted(positions), ran.out
    assert "python examples/modes_tour.py" in lines[-1]
    assert (ROOT / "examples" / "modes_tour.py").is_file()


# -- bench ------------------------------------------------------------------------------------

FAKE_RUNNER = """\
import json, os, sys
with open("ran.json", "w") as f:
    json.dump({"argv": sys.argv[1:], "cwd": os.getcwd(), "path0": sys.path[0]}, f)
sys.exit(int(os.environ.get("FAKE_RUNNER_STATUS", "7")))
"""


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A current directory that looks like a source checkout with a benchmark runner."""
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "compare.py").write_text(FAKE_RUNNER)
    monkeypatch.chdir(tmp_path)
    return tmp_path


async def test_bench_outside_a_checkout_says_where_it_runs(
    capsys: Capture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ran = await cli(capsys, "bench", "--quick", loop_flags=False)
    assert ran.status == ExitStatus.USAGE
    assert ran.error_line == (
        "error: the benchmarks run from a checkout of the source repository: run asyncrpc bench "
        "in its top directory, or python benchmarks/compare.py --help there"
    )


async def test_bench_runs_the_checkouts_runner_with_its_arguments(capsys: Capture, checkout: Path) -> None:
    ran = await cli(capsys, "bench", "--quick", "--only", "baseline", "-h", loop_flags=False)
    assert ran.status == 7  # the runner's own exit status
    report = json.loads((checkout / "ran.json").read_text())
    assert report["argv"] == ["--quick", "--only", "baseline", "-h"]  # untouched, --help included
    assert Path(report["cwd"]) == checkout
    assert Path(report["path0"]) == checkout / "benchmarks"  # as `python benchmarks/compare.py` runs it


async def test_bench_reports_a_runner_killed_by_a_signal_as_a_shell_does(
    capsys: Capture, checkout: Path
) -> None:
    (checkout / "benchmarks" / "compare.py").write_text(
        "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n"
    )
    ran = await cli(capsys, "bench", loop_flags=False)
    assert ran.status == 128 + signal.SIGTERM


async def test_options_before_bench_are_refused(capsys: Capture, checkout: Path) -> None:
    ran = await cli(capsys, "--no-uvloop", "bench", "--quick", loop_flags=False)
    assert ran.status == ExitStatus.USAGE
    assert ran.err.endswith("do not apply to bench; give the runner's options after 'bench'\n")
    assert not (checkout / "ran.json").exists()


def test_bench_never_imports_a_benchmark_package(checkout: Path) -> None:
    code = (
        "import sys\nfrom asyncrpc.cli import main\nstatus = main(['bench'])\n"
        "assert not [m for m in sys.modules if 'benchmark' in m], sorted(sys.modules)\nsys.exit(status)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=checkout, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 7, result.stderr
