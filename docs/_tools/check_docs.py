"""Check the documentation against the code: ``python docs/_tools/check_docs.py [PAGE.md ...]``.

1. Every ``python`` block in ``docs/`` must compile (top-level ``await`` allowed).
2. Every complete script (a block with a ``title="..."``, or one that calls
   ``asyncrpc.run(`` / ``asyncio.run(``) is run in a fresh interpreter; if the
   next fenced block is ``text`` and the prose between says "prints", the
   script's output must be exactly that block. Blocks titled ``server.py`` or
   ``client.py`` are halves of a pair and only compiled. ``neovim.md`` needs a
   Neovim listening on 127.0.0.1:6666: the script starts one when ``nvim`` is
   installed and the port is free, else skips that page's scripts.
3. Every dotted ``asyncrpc.*`` name and ``notify.<Class>`` in the prose and code
   must exist.
4. Every hex dump in ``protocol.md`` must be byte for byte what
   ``asyncrpc.wire.Encoder`` produces for the message it describes.
5. Every table row giving a default (``| `max_str_len` | 16 MiB | ...``) must
   match the code's default (the ``Limits`` fields, ``max_inflight``,
   ``max_pending``, the ``ConnectOptions`` timeouts, and the ``Server``'s
   connection limits and timeouts).
6. Every public member of what the API reference renders (the names in
   ``__all__`` of ``asyncrpc``, ``asyncrpc.notify``, ``asyncrpc.sync`` and
   ``asyncrpc.wire``, and every other ``::: object`` in ``docs/reference/``)
   must have a docstring, or be named in its class's ``Attributes:`` or
   ``Args:`` section: mkdocstrings leaves out what has neither. Needs griffe
   (installed with mkdocstrings, in the ``dev`` extra); skipped without it.

Exit status 1 on any failure. Snippets are real loopback programs; the whole
run takes a few seconds.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import inspect
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
FENCE = re.compile(
    r"^(?P<indent> *)```(?P<lang>[\w-]*)(?P<info>[^\n]*)\n(?P<body>.*?)^(?P=indent)```", re.M | re.S
)
NAME = re.compile(r"\b(asyncrpc(?:\.\w+)+|notify\.[A-Z]\w*)")
# Method names on the wire, not Python names.
WIRE_STRINGS = {"asyncrpc.hello", "asyncrpc.cancel", "asyncrpc.describe", "asyncrpc.ping"}
NVIM_ADDRESS = ("127.0.0.1", 6666)


def _dedent(body: str, indent: str) -> str:
    return "\n".join(line[len(indent) :] if line.startswith(indent) else line for line in body.split("\n"))


def _listening(address: tuple[str, int]) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(address, timeout=0.5):
        return True
    return False


@contextlib.contextmanager
def _neovim() -> Iterator[bool]:
    """Make sure Neovim listens on NVIM_ADDRESS for the duration, if at all possible."""
    if _listening(NVIM_ADDRESS):
        yield True
        return
    nvim = shutil.which("nvim")
    if nvim is None:
        yield False
        return
    listen = f"{NVIM_ADDRESS[0]}:{NVIM_ADDRESS[1]}"
    process = subprocess.Popen(
        [nvim, "--headless", "--clean", "-n", "--listen", listen],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not _listening(NVIM_ADDRESS) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)  # a starting process cannot be awaited; poll its port
        yield _listening(NVIM_ADDRESS)
    finally:
        process.terminate()
        process.wait(10)


def check_snippets(pages: list[Path], have_nvim: bool) -> int:
    failures = compiled = ran = 0
    for md in pages:
        rel = md.relative_to(DOCS)
        text = md.read_text()
        blocks = list(FENCE.finditer(text))
        for i, m in enumerate(blocks):
            if m["lang"] != "python":
                continue
            code = _dedent(m["body"], m["indent"])
            where = f"{rel}:{text[: m.start()].count(chr(10)) + 1}"
            try:
                compile(code, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
                compiled += 1
            except SyntaxError as exc:
                print(f"SYNTAX {where}: {exc}")
                failures += 1
                continue
            info = m["info"]
            runnable = "title=" in info or "asyncrpc.run(" in code or "asyncio.run(" in code
            if not runnable or 'title="server.py"' in info or 'title="client.py"' in info:
                continue
            if str(rel) == "neovim.md" and not have_nvim:
                print(f"SKIP {where}: no Neovim on {NVIM_ADDRESS}")
                continue
            expected = None
            following = blocks[i + 1] if i + 1 < len(blocks) else None
            announced = following is not None and "prints" in text[m.end() : following.start()]
            if following is not None and following["lang"] == "text" and announced:
                expected = _dedent(following["body"], following["indent"]).strip()
            with tempfile.TemporaryDirectory() as tmp:
                script = Path(tmp) / "snippet.py"
                script.write_text(code)
                env = dict(os.environ, PYTHONPATH=str(ROOT))
                try:
                    proc = subprocess.run(
                        [sys.executable, "-W", "error", str(script)],
                        check=False,
                        cwd=tmp,
                        env=env,
                        capture_output=True,
                        text=True,
                        timeout=60,
                    )
                except subprocess.TimeoutExpired:
                    print(f"TIMEOUT {where}")
                    failures += 1
                    continue
            ran += 1
            if proc.returncode != 0:
                print(f"FAIL {where} (exit {proc.returncode})\n{proc.stderr[-3000:]}")
                failures += 1
            elif expected is not None and proc.stdout.strip() != expected:
                got = proc.stdout.strip()
                print(f"OUTPUT {where}\n--- the page says\n{expected}\n--- the script printed\n{got}")
                failures += 1
            elif proc.stderr.strip():
                print(f"STDERR {where} (not a failure)\n{proc.stderr[-1500:]}")
    print(f"snippets: {compiled} compiled, {ran} run, {failures} failed")
    return failures


def _exists(name: str) -> bool:
    parts = name.split(".")
    if parts[0] == "notify":
        parts = ["asyncrpc", *parts]
    for k in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        for attr in parts[k:]:
            if hasattr(obj, attr):
                obj = getattr(obj, attr)
                continue
            # instance attributes declared in __slots__ or as dataclass fields
            fields = getattr(obj, "__dataclass_fields__", {})
            slots = {s for klass in getattr(obj, "__mro__", ()) for s in getattr(klass, "__slots__", ())}
            return attr in fields or attr in slots
        return True
    return False


def check_names(pages: list[Path]) -> int:
    sys.path.insert(0, str(ROOT))
    bad = 0
    for md in pages:
        prose = re.sub(r"```text\n.*?```", "", md.read_text(), flags=re.S)  # hex dumps' ASCII column
        for name in sorted(set(NAME.findall(prose)) - WIRE_STRINGS):
            if not _exists(name):
                print(f"NAME {md.relative_to(DOCS)}: {name} does not exist")
                bad += 1
    print(f"names: {bad} missing")
    return bad


def _hexdump(data: bytes) -> str:
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        hexes = " ".join(f"{byte:02x}" for byte in chunk)
        text = "".join(chr(byte) if 32 <= byte < 127 else "." for byte in chunk)
        lines.append(f"{offset:04x}  {hexes:<47}  {text}".rstrip())
    return "\n".join(lines)


def check_hex_dumps() -> int:
    sys.path.insert(0, str(ROOT))
    import asyncrpc
    from asyncrpc.remote_errors import error_to_wire
    from asyncrpc.wire import Encoder
    from asyncrpc.wire import extensions as ext

    e = Encoder()
    limit = asyncrpc.Limits().max_message_size  # what a default side announces
    cancelled = asyncrpc.CallCancelled("'demo.AsyncFunc' cancelled on the server")
    messages = {
        "request": e.request(7, "add", [1, 2]),
        "response": e.response(7, None, 3),
        "notification": e.notification("demo.log", ["x"]),
        "error (map)": e.response(8, error_to_wire(ValueError("bad value"), structured=True), None),
        "error (plain)": e.response(8, error_to_wire(ValueError("bad value"), structured=False), None),
        "hello": e.request(0, ext.HELLO_METHOD, [ext.hello_payload(max_message_size=limit)]),
        "hello answer (Neovim)": e.response(0, [0, "Invalid method: asyncrpc.hello"], None),
        "hello answer (asyncrpc)": e.response(0, None, ext.hello_payload(max_message_size=limit)),
        "cancel": e.notification(ext.CANCEL_METHOD, [9]),
        "deadline request": e.request(9, "demo.AsyncFunc", [2.0], {ext.EXT_TIMEOUT: 0.5}),
        "cancelled answer": e.response(9, error_to_wire(cancelled, structured=True), None),
    }
    dumps = {_hexdump(data): label for label, data in messages.items()}
    text = (DOCS / "protocol.md").read_text()
    bad = 0
    seen = set()
    for m in re.finditer(r"```text\n(0000 .*?)```", text, re.S):
        block = "\n".join(line.rstrip() for line in m.group(1).strip("\n").split("\n"))
        if block in dumps:
            seen.add(dumps[block])
        else:
            line = text[: m.start()].count("\n") + 1
            print(f"HEX protocol.md:{line}: not what the encoder produces:\n{block}")
            bad += 1
    for label in sorted(set(messages) - seen):
        print(f"HEX protocol.md: no dump of the {label} (or it changed)")
        bad += 1
    print(f"hex dumps: {len(seen)} match, {bad} wrong or missing")
    return bad


def _number(text: str) -> float | None:
    text = text.split("(", maxsplit=1)[0].strip().strip("`").replace(",", "").replace("_", "")
    if text.endswith("MiB"):
        return int(text[:-3]) * 1024 * 1024
    if text.endswith(" s"):
        text = text[:-2]
    try:
        return float(text)
    except ValueError:
        return None


def check_defaults(pages: list[Path]) -> int:
    sys.path.insert(0, str(ROOT))
    from asyncrpc.options import DEFAULT_MAX_INFLIGHT, DEFAULT_MAX_PENDING, ConnectOptions
    from asyncrpc.server import Server
    from asyncrpc.wire import Limits

    defaults: dict[str, float | None] = {
        name: getattr(Limits(), name) for name in Limits.__dataclass_fields__
    }
    defaults |= {"max_inflight": DEFAULT_MAX_INFLIGHT, "max_pending": DEFAULT_MAX_PENDING}
    timeouts = ("connect_timeout", "hello_timeout", "close_timeout")
    options = ConnectOptions(host="localhost", port=1)
    defaults |= {name: getattr(options, name) for name in timeouts}
    # The Server keeps its settings private: its signature's defaults are what the code uses.
    server_options = ("max_connections", "max_buffered", "handshake_timeout", "idle_timeout")
    server = inspect.signature(Server).parameters
    defaults |= {name: server[name].default for name in server_options}
    checked = (*timeouts, "handshake_timeout", "idle_timeout")
    row = re.compile(
        rf"^\| `(?P<name>max_\w+|{'|'.join(checked)})` \| (?P<value>[^|]+) \|",
        re.M,
    )
    bad = 0
    for md in pages:
        for m in row.finditer(md.read_text()):
            value = _number(m["value"])
            actual = defaults.get(m["name"])
            if value is not None and value != actual:
                print(f"DEFAULT {md.relative_to(DOCS)}: {m['name']} is {actual}, not {value}")
                bad += 1
    print(f"defaults: {bad} wrong")
    return bad


PUBLIC_MODULES = ("asyncrpc", "asyncrpc.notify", "asyncrpc.sync", "asyncrpc.wire")
DIRECTIVE = re.compile(r"^::: (?P<name>[\w.]+)\s*$", re.M)


def _named_in_sections(cls: Any) -> set[str]:
    """Names a class (or a base it has in the package) documents in Attributes/Args sections."""
    names: set[str] = set()
    classes = [cls]
    with contextlib.suppress(Exception):  # a base outside the package cannot be resolved
        classes += list(cls.mro())
    for klass in classes:
        docstrings = [klass.docstring]
        init = klass.members.get("__init__")
        if init is not None:
            docstrings.append(init.docstring)
        for docstring in docstrings:
            if docstring is None:
                continue
            for section in docstring.parse("google"):
                if section.kind.value in ("attributes", "parameters"):
                    names |= {item.name for item in section.value}
    return names


def check_docstrings() -> int:
    try:
        import griffe
    except ImportError:
        print("docstrings: skipped (griffe is not installed: pip install -e '.[dev]')")
        return 0
    sys.path.insert(0, str(ROOT))
    package = griffe.load("asyncrpc", search_paths=[str(ROOT)], resolve_aliases=True, resolve_external=False)
    targets: dict[str, Any] = {}
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        node: Any = package
        for part in module_name.split(".")[1:]:
            node = node[part]
        for name in module.__all__:
            if not name.startswith("__"):
                targets[f"{module_name}.{name}"] = node[name]
    for md in sorted((DOCS / "reference").glob("*.md")):
        for m in DIRECTIVE.finditer(md.read_text()):
            path = m["name"]
            if path not in targets:
                targets[path] = package[path.removeprefix("asyncrpc.")] if path != "asyncrpc" else package
    missing: list[str] = []

    def walk(obj: Any, path: str, owner: Any = None) -> None:
        if obj.is_alias:
            obj = obj.final_target
        if obj.is_module:
            return
        if not obj.docstring and not (owner is not None and obj.name in _named_in_sections(owner)):
            missing.append(path)
        if obj.is_class:
            for name, member in obj.members.items():
                if not name.startswith("_"):
                    walk(member, f"{path}.{name}", obj)

    for path, obj in targets.items():
        walk(obj, path)
    for path in missing:
        print(f"DOCSTRING {path} has none: the API reference leaves it out")
    print(f"docstrings: {len(missing)} missing")
    return len(missing)


def main(argv: list[str]) -> int:
    pages = [DOCS / a for a in argv] if argv else sorted(DOCS.rglob("*.md"))
    with _neovim() as have_nvim:
        failures = check_snippets(pages, have_nvim)
    failures += check_names(pages)
    failures += check_defaults(pages)
    if not argv or "protocol.md" in argv:
        failures += check_hex_dumps()
    if not argv:
        failures += check_docstrings()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
