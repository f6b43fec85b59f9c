"""Every example runs, as a user would run it, and exits cleanly."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import asyncrpc

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(
    path
    for path in (ROOT / "examples").glob("*.py")
    # nvim_api.py only declares; nvim_client.py runs as a module (tests/test_stubgen.py runs it).
    if path.name not in {"__init__.py", "demo_service.py", "nvim_api.py", "nvim_client.py"}
)
NEEDS_NVIM = {"neovim.py"}


def test_examples_exist() -> None:
    names = {path.name for path in EXAMPLES}
    assert {"async_call.py", "neovim.py"} <= names
    assert len([n for n in names if n.startswith("notify_")]) >= 6


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(example: Path) -> None:
    if example.name in NEEDS_NVIM and shutil.which("nvim") is None:
        if os.environ.get("CI"):
            pytest.fail("nvim must be installed in CI")
        pytest.skip("nvim not installed; CI installs it via apt")
    env = {k: v for k, v in os.environ.items() if k != "NVIM"}  # examples start their own peers
    result = subprocess.run(
        [sys.executable, str(example)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, f"{example.name} failed:\n{result.stdout}\n{result.stderr}"
    assert result.stdout.strip(), f"{example.name} printed nothing"
    assert "Traceback" not in result.stderr


async def test_demo_service_example_serves_the_seed_functions() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "examples/demo_service.py",
        "0",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(20):
            banner = (await process.stdout.readline()).decode()
        match = re.search(r"127\.0\.0\.1:(\d+)", banner)
        assert match, banner
        async with asyncrpc.connect("127.0.0.1", int(match[1])) as client:
            pending = client.call("demo.AsyncFunc", 0.1)
            assert await client.call("demo.NonAsyncFunc", "meanwhile") is None
            assert await pending == "AsyncFunc finished after 0.1s"
    finally:
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(20):
            await process.communicate()
    assert process.returncode == 0
