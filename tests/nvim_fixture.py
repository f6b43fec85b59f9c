"""A real headless Neovim for the interop tests: start it, wait until it listens, stop it.

Neovim is started as ``nvim --headless --clean -n --listen ADDRESS``: no user
config, no swap file, with its log and XDG directories inside the test's
temporary directory, so nothing outside it is read or written.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

NVIM = shutil.which("nvim")
MISSING_REASON = "nvim not installed; CI installs it via apt"

# Waiting for a process to start listening cannot be awaited: poll, boundedly.
_POLL_INTERVAL = 0.01
_POLL_TRIES = 500  # 5 seconds
_STOP_TIMEOUT = 5.0
_MAX_UNIX_PATH = 100  # sun_path holds 108 bytes on Linux, fewer elsewhere


def require_nvim() -> str:
    """The nvim binary; skips the test when it is missing (fails in CI, where it must exist)."""
    if NVIM is None:
        if os.environ.get("CI"):
            pytest.fail("nvim must be installed in CI (.ci/run installs it via apt)")
        pytest.skip(MISSING_REASON)
    return NVIM


@dataclass(frozen=True)
class NvimProcess:
    """A running Neovim and where it listens: ``host``/``port`` or ``path``."""

    process: subprocess.Popen[bytes]
    workdir: Path
    host: str | None = None
    port: int | None = None
    path: str | None = None

    @property
    def address(self) -> str:
        """The address as Neovim writes it (``v:servername``, ``$NVIM``)."""
        return self.path if self.path is not None else f"{self.host}:{self.port}"

    def log(self) -> str:
        """Neovim's stderr and log file, for failure messages."""
        parts = []
        for name in ("stderr.txt", "nvim.log"):
            file = self.workdir / name
            if file.exists():
                parts.append(f"--- {name}\n{file.read_text(errors='replace')}")
        return "\n".join(parts)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _accepts(nvim: NvimProcess) -> bool:
    try:
        if nvim.path is not None:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(1.0)
                sock.connect(nvim.path)
        else:
            assert nvim.host is not None
            assert nvim.port is not None
            with socket.create_connection((nvim.host, nvim.port), timeout=1.0):
                pass
    except OSError:
        return False
    return True


def _environment(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"NVIM", "NVIM_LISTEN_ADDRESS", "VIMINIT"}}
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[name] = str(workdir / "xdg" / name.lower())
    env["NVIM_LOG_FILE"] = str(workdir / "nvim.log")
    return env


def _launch(binary: str, workdir: Path, *, unix: bool) -> NvimProcess:
    if unix:
        socket_dir = workdir
        if len(str(workdir / "nvim.sock")) > _MAX_UNIX_PATH:
            socket_dir = Path(tempfile.mkdtemp(prefix="nvim-"))
        nvim_path = str(socket_dir / "nvim.sock")
        address = nvim_path
    else:
        port = _free_port()
        address = f"127.0.0.1:{port}"
    with (workdir / "stderr.txt").open("ab") as stderr:
        process = subprocess.Popen(
            [binary, "--headless", "--clean", "-n", "--listen", address],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            cwd=workdir,
            env=_environment(workdir),
        )
    if unix:
        return NvimProcess(process, workdir, path=nvim_path)
    return NvimProcess(process, workdir, host="127.0.0.1", port=port)


def start_nvim(workdir: Path, *, unix: bool = False) -> NvimProcess:
    """Start Neovim listening on a free loopback port (or a Unix socket) and wait until it accepts."""
    binary = require_nvim()
    # A port found free may be taken by someone else before nvim binds it;
    # nvim then exits at once, and another port is tried.
    for _attempt in range(3):
        nvim = _launch(binary, workdir, unix=unix)
        for _ in range(_POLL_TRIES):
            if _accepts(nvim):
                return nvim
            if nvim.process.poll() is not None:
                break
            time.sleep(_POLL_INTERVAL)
        else:
            stop_nvim(nvim)
            raise RuntimeError(f"nvim did not listen on {nvim.address} within 5s\n{nvim.log()}")
    raise RuntimeError(f"nvim exited with {nvim.process.returncode} before listening\n{nvim.log()}")


def stop_nvim(nvim: NvimProcess) -> None:
    """Terminate Neovim, killing it if it does not exit in time. Idempotent."""
    process = nvim.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if nvim.path is not None:
        socket_dir = Path(nvim.path).parent
        if socket_dir != nvim.workdir:  # the short directory made for a long tmp path
            shutil.rmtree(socket_dir, ignore_errors=True)
