"""What the package's structure promises: a sans-IO codec, and no module writing another's private state."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_importing_the_wire_codec_loads_neither_asyncio_nor_the_rest_of_the_library() -> None:
    probe = (
        "import sys, asyncrpc.wire; "
        "print(int('asyncio' in sys.modules), sorted(m for m in sys.modules if m.startswith('asyncrpc')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT, timeout=30
    ).stdout.split(maxsplit=1)
    assert out[0] == "0", "import asyncrpc.wire loaded asyncio"
    loaded = eval(out[1])  # a printed list of module names
    assert set(loaded) <= {
        "asyncrpc",
        "asyncrpc.errors",
        "asyncrpc.wire",
        "asyncrpc.wire.codec",
        "asyncrpc.wire.describe",
        "asyncrpc.wire.encoder",
        "asyncrpc.wire.events",
        "asyncrpc.wire.extensions",
        "asyncrpc.wire.limits",
        "asyncrpc.wire.scanner",
        "asyncrpc.wire.shapes",
        "asyncrpc.wire.unpackers",
    }, loaded


def test_public_names_load_on_first_use() -> None:
    probe = "import asyncrpc; print(asyncrpc.AsyncCall.__module__, asyncrpc.notify.__name__)"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT, timeout=30
    ).stdout.split()
    assert out == ["asyncrpc.handle", "asyncrpc.notify"]


def test_no_module_touches_another_modules_private_members() -> None:
    out = subprocess.run(
        [sys.executable, "tools/structure.py", "asyncrpc"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=30,
    ).stdout
    total = next(line for line in out.splitlines() if line.startswith("total")).split()
    reads, writes = int(total[2]), int(total[3])
    assert (reads, writes) == (0, 0), out
    assert "import cycles (runtime imports): 0" in out, out
