"""The third-party msgpack-rpc peers of the interop suite, and how to run them.

Each peer is a subprocess: a short program per peer (``go/peer.go``, ``node/peer.js``,
``python/<peer>_peer.py``) run from the cache directory ``install_peers.sh`` fills:

- ``serve``: listens on 127.0.0.1 port 0, prints ``LISTENING <port>``, serves until its stdin
  closes (or it is killed);
- ``client HOST PORT [CHECK...]``: calls an asyncrpc server and prints one JSON line per check,
  ``{"check": ..., "ok": ..., "detail": ...}``.

A :class:`Peer` says how to start one, which asyncrpc options it needs on each side, what its
errors look like, and what it cannot do (with the reason: never skipped silently).
"""

from __future__ import annotations

import hashlib
import json
import os
import selectors
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from tests.interop.battery import old_spec

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent  # the peers run here: the Python ones import tests.interop.*
CACHE = Path(os.environ.get("ASYNCRPC_INTEROP_CACHE", Path.home() / ".cache" / "asyncrpc-interop"))
INSTALL = "bash tests/interop/install_peers.sh"

Direction = Literal["to_peer", "from_peer"]
"""``to_peer``: an asyncrpc client calls the peer's server; ``from_peer``: the peer's client calls ours."""

CHECKS = (
    "one_call",
    "concurrent",
    "handler_error",
    "unknown_method",
    "notification",
    "bin_and_str",
    "large",
    "unicode",
    "int64",
)

START_TIMEOUT = 10.0  # a peer prints LISTENING within this (Python peers import for ~0.2 s)
CLIENT_TIMEOUT = 20.0  # one client run (one check); the tests' own timeout is 30 s
STOP_TIMEOUT = 5.0


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Peer:
    """One third-party implementation and what the suite knows about it."""

    name: str
    version: str
    program: Callable[[], list[str]]
    """The command that runs its peer program, before ``serve`` / ``client HOST PORT``."""
    missing: Callable[[], str | None]
    """Why the peer cannot run (not installed, or stale), or None when it can."""
    env: Callable[[], dict[str, str]] = dict
    connect_options: Mapping[str, Any] = field(default_factory=dict)
    """``asyncrpc.connect()`` options for its server."""
    server_options: Mapping[str, Any] = field(default_factory=dict)
    """``asyncrpc.Server()`` options for its client."""
    method: Callable[[str], str] = _same
    """Its server's name for a battery method (``echo``)."""
    one_argument: bool = False
    """Its server's methods take one argument: the battery's params go as one array."""
    cannot: Mapping[tuple[Direction, str], str] = field(default_factory=dict)
    """The checks it cannot do, with why: their tests skip with that reason (never silently)."""
    arrives: Callable[[Any], Any] = _same
    """What a value the battery sends becomes, on the way to the other side."""
    handler_error: Callable[[Any, str], bool] = lambda raw, message: bool(raw == message)
    """Whether ``raw`` is the error object its server sends when a handler fails with ``message``."""
    unknown_method_raw: Any = None
    """The error object its server sends for a method it does not have (``no_such_method``)."""
    client_error: Callable[[str], str] = lambda message: f"ValueError: {message}"
    """What its client reports for our ``ValueError(message)``: the ``detail`` of the check."""
    client_unknown_method: str = "MethodNotFound: no method 'no_such_method'"
    """What its client reports for our unknown-method error."""
    answers_unknown_method: bool = True
    """Whether its server answers a request for a method it does not have at all."""
    calls_back: bool = False
    """It has no server: for ``to_peer`` our server calls back into its client's connection (its
    program's ``callee HOST PORT`` calls our ``ready``, which gives us that connection's peer)."""
    notification_closes: bool = False
    """Its server closes the connection when it gets a notification (it reads requests only)."""

    def require(self) -> None:
        """Skips the test when the peer is not installed; fails in CI, where it must be."""
        problem = self.missing()
        if problem is None:
            return
        reason = f"interop peer {self.name}: {problem}; run {INSTALL}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (.ci/run does)")
        pytest.skip(reason)

    def args(self, method: str, *params: Any) -> list[Any]:
        """A battery call's params as this peer's server takes them."""
        return [list(params)] if self.one_argument and len(params) != 1 else list(params)


@dataclass
class PeerServer:
    """A peer's server process, listening on 127.0.0.1:``port``."""

    peer: Peer
    process: subprocess.Popen[str]
    port: int

    def stop(self) -> None:
        """Close its stdin (it exits), kill it if it does not in time. Idempotent."""
        stop_process(self.process)


def stop_process(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def environment(peer: Peer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "NODE_PATH", "VIRTUAL_ENV"}}
    env.update(peer.env())
    return env


def start_server(peer: Peer, stderr_path: Path) -> PeerServer:
    """Start ``peer serve`` and wait (a bounded readline) for its ``LISTENING <port>``."""
    peer.require()
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [*peer.program(), "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=environment(peer),
            cwd=ROOT,
        )
    assert process.stdout is not None
    try:
        line = _readline(process, START_TIMEOUT)
    except BaseException:
        stop_process(process)
        raise
    if not line.startswith("LISTENING "):
        stop_process(process)
        raise RuntimeError(f"{peer.name} did not start: {line!r}\n{stderr_path.read_text()}")
    return PeerServer(peer, process, int(line.split()[1]))


def _readline(process: subprocess.Popen[str], timeout: float) -> str:
    """One line of a process's stdout, or TimeoutError: a blocking readline, bounded."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimeoutError(f"no line from {process.args!r} within {timeout}s")
    return process.stdout.readline()


@dataclass(frozen=True)
class Report:
    """One line of a peer client's battery."""

    check: str
    ok: bool
    detail: str


def parse_reports(stdout: str) -> dict[str, Report]:
    reports: dict[str, Report] = {}
    for line in stdout.splitlines():
        if line.strip():
            item = json.loads(line)
            reports[item["check"]] = Report(item["check"], bool(item["ok"]), str(item["detail"]))
    return reports


# -- the registry ------------------------------------------------------------------------------

GO_CANNOT: dict[tuple[Direction, str], str] = {
    ("from_peer", "notification"): "Go's net/rpc client has no way to send a notification",
}
# ("to_peer", "notification") and ("to_peer", "unknown_notification") run, and assert what Go's
# net/rpc server does with any notification: it reads requests only, a notification is not the
# 4-element array its codec expects, and it closes the connection (notification_closes).


def _go_method(name: str) -> str:
    # net/rpc names are Service.Method, with an exported (capitalised) method.
    return "Peer." + "".join(part.capitalize() for part in name.split("_"))


def _not_installed(path: Path) -> str | None:
    return None if path.exists() else f"{path} not installed"


def _go_missing() -> str | None:
    # The binary is built from go/peer.go: one built from another version of it is stale.
    binary = CACHE / "go" / "peer"
    if not binary.exists():
        return f"{binary} not installed"
    source_sum = hashlib.sha256((HERE / "go" / "peer.go").read_bytes()).hexdigest()
    built_from = CACHE / "go" / "peer.sha256"
    if not built_from.exists() or built_from.read_text().strip() != source_sum:
        return f"{binary} was built from another version of go/peer.go"
    return None


GO = Peer(
    name="go-net-rpc",
    version="Go net/rpc (go1.19, Debian golang-go) + github.com/ugorji/go/codec 1.2.8 (Debian)",
    program=lambda: [str(CACHE / "go" / "peer")],
    missing=_go_missing,
    # Go's clients read an error only as a string, and close the connection over anything else.
    server_options={"plain_errors": "string"},
    method=_go_method,
    one_argument=True,
    cannot=GO_CANNOT,
    notification_closes=True,
    unknown_method_raw="rpc: can't find method Peer.NoSuchMethod",
)

NODE_MODULES = CACHE / "node" / "node_modules"
NODE_INSTALLED = CACHE / "node" / "installed.json"  # install_peers.sh writes it once npm ci succeeded

MSGPACK_RPC_LITE = Peer(
    name="msgpack-rpc-lite",
    version="msgpack-rpc-lite 1.0.2 (npm; msgpack-lite 0.1.26), Node from Debian",
    program=lambda: ["node", str(HERE / "node" / "peer.js"), "msgpack-rpc-lite"],
    missing=lambda: _not_installed(NODE_INSTALLED),
    env=lambda: {"NODE_PATH": str(NODE_MODULES)},
    # Its types say an error is a string; its client hands over whatever came, as the rejection.
    server_options={"plain_errors": "string"},
    # Its server answers an unknown notification with a stray [1, -1, "Not Implemented", nil]:
    # to_peer-unknown_notification checks that the connection carries on.
    unknown_method_raw="Not Implemented",
)


def js_number(value: Any) -> Any:
    """What comes back from a peer with JS numbers only: an integer beyond 2**53 as the nearest
    double (msgpack5 sends it as float64); a smaller integer is still an integer."""
    if isinstance(value, int) and abs(value) > 2**53:
        return float(value)
    return value


MSGPACK5RPC = Peer(
    name="msgpack5rpc",
    version="msgpack5rpc 1.1.0 (npm; msgpack5 3.6.1), Node from Debian",
    program=lambda: ["node", str(HERE / "node" / "peer.js"), "msgpack5rpc"],
    missing=lambda: _not_installed(NODE_INSTALLED),
    env=lambda: {"NODE_PATH": str(NODE_MODULES)},
    server_options={"plain_errors": "string"},
    arrives=js_number,
    cannot={
        ("from_peer", "int64"): (
            "msgpack5 3.6 has no 64-bit integers: a JS number beyond 2**53 is a double, sent as "
            "float64 (to_peer-int64 asserts what comes back: floats)"
        ),
    },
    # msgpack5rpc leaves unknown methods to the application: peer.js answers with this string.
    unknown_method_raw="no such method: no_such_method",
)


def _python_peer(venv: str, module: str) -> tuple[Callable[[], list[str]], Callable[[], str | None]]:
    """``program`` and ``missing`` for a Python peer: its program run by its own venv's python."""
    python = CACHE / "venv" / venv / "bin" / "python"
    # install_peers.sh copies the requirements into the venv last: a venv without them is unfinished.
    marker = CACHE / "venv" / venv / "requirements.txt"
    return (lambda: [str(python), "-m", f"tests.interop.python.{module}"]), (lambda: _not_installed(marker))


_program, _missing = _python_peer("aio-msgpack-rpc", "aio_msgpack_rpc_peer")
AIO_MSGPACK_RPC = Peer(
    name="aio-msgpack-rpc",
    version="aio-msgpack-rpc 0.2.0 (PyPI; msgpack 1.2.4)",
    program=_program,
    missing=_missing,
    # Its client sees an error as whatever came; its own server sends str(exception).
    server_options={"plain_errors": "string"},
    unknown_method_raw="'H' object has no attribute 'no_such_method'",
)

_program, _missing = _python_peer("msgpack-rpc-python", "msgpackrpc_peer")
MSGPACK_RPC_PYTHON = Peer(
    name="msgpack-rpc-python",
    version="msgpack-rpc-python 0.4.1 (PyPI; msgpack-python 0.5.6, tornado 4.5.3)",
    program=_program,
    missing=_missing,
    # The old msgpack spec: str and bytes both go as msgpack str, and come in as bytes. With
    # raw_strings=True asyncrpc does the same; every str of the battery then arrives as bytes.
    connect_options={"raw_strings": True},
    server_options={"plain_errors": "string", "raw_strings": True},
    arrives=old_spec,
    # Its errors are str(exception); raw_strings reads the text of an error object as str.
    unknown_method_raw="'no_such_method' method not found",
)


def _pynvim_handler_error(raw: Any, message: str) -> bool:
    # pynvim's Session answers a handler's exception with repr(exception), then the traceback.
    return isinstance(raw, str) and raw.startswith(f"ValueError({message!r})\nTraceback ")


_program, _missing = _python_peer("pynvim", "pynvim_peer")
PYNVIM = Peer(
    name="pynvim",
    version="pynvim 0.6.0 (PyPI; msgpack 1.2.4, greenlet 3.5.6): its low-level msgpack_rpc session",
    program=_program,
    missing=_missing,
    # pynvim reads an error as [code, message] (error[1]): asyncrpc's default for plain peers.
    server_options={"plain_errors": "neovim"},
    calls_back=True,
    cannot={("to_peer", "hello"): "pynvim has no server: asyncrpc's client never connects to it"},
    handler_error=_pynvim_handler_error,
    # What pynvim's plugin host answers for a request it has no handler for.
    unknown_method_raw='no request handler registered for "no_such_method"',
)


def bytes_as_str(value: Any) -> Any:
    """What comes back from a peer that reads bin as bytes but sends bytes as msgpack str: a str
    (asyncrpc decodes the bytes that are not UTF-8 with surrogateescape)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, list | tuple):
        return [bytes_as_str(item) for item in value]
    return value


_AIORPC_STALLS = (
    "aiorpc's server takes one message per socket read: requests that arrive together wait "
    "for the next bytes (unanswered until the connection's IO timeout), so calls in flight at "
    "once cannot be answered; it would answer them in order, one at a time"
)
_program, _missing = _python_peer("aiorpc", "aiorpc_peer")
AIORPC = Peer(
    name="aiorpc",
    version="aiorpc 0.1.7 (PyPI; msgpack 1.2.4, uvloop 0.23.0): its server only",
    program=_program,
    missing=_missing,
    # It never answers the hello probe (an unknown method): connecting waits hello_timeout
    # (0.5 s) for it, then speaks plain msgpack-rpc; to_peer-hello bounds that.
    answers_unknown_method=False,
    # Half old spec: it reads str as str and bin as bytes, but sends bytes as msgpack str. So no
    # raw_strings (bytes sent as str that are not UTF-8 crash its unpacker, which closes the
    # connection), and bytes come back as str.
    arrives=bytes_as_str,
    handler_error=lambda raw, message: bool(raw == ["ValueError", message]),
    cannot={
        **{
            (
                "from_peer",
                check,
            ): "aiorpc's client passes loop= to asyncio.open_connection: broken on Python 3.10+"
            for check in CHECKS
        },
        ("to_peer", "concurrent"): _AIORPC_STALLS,
        ("to_peer", "notification"): (
            "aiorpc's server parses 4-element requests only: a notification is dropped (logged); "
            "and the request that follows it (notes) stalls when it arrives in the same read"
        ),
        ("to_peer", "unknown_notification"): "as for notification: dropped, and the next request stalls",
    },
)

PEERS: tuple[Peer, ...] = (
    GO,
    MSGPACK_RPC_LITE,
    AIO_MSGPACK_RPC,
    MSGPACK_RPC_PYTHON,
    PYNVIM,
    AIORPC,
    MSGPACK5RPC,
)
