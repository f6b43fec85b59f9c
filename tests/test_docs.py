"""The documentation agrees with the code: snippets run, names exist, hex dumps match the encoder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_docs_snippets_names_and_bytes_match_the_code() -> None:
    if shutil.which("nvim") is None and os.environ.get("CI"):
        pytest.fail("nvim must be installed in CI (the Neovim page's snippets need it)")
    result = subprocess.run(
        [sys.executable, "docs/_tools/check_docs.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
