"""Talk to Neovim with asyncrpc: calls, interleaved calls, and Neovim calling us back.

Usage::

    python examples/neovim.py [ADDRESS]

ADDRESS is where Neovim listens: ``host:port`` (``nvim --listen 127.0.0.1:6666``)
or a socket path (``:echo v:servername`` inside Neovim). Without it, the
example uses ``$NVIM`` (set by Neovim for jobs in its ``:terminal``; Neovim 0.7
sets ``$NVIM_LISTEN_ADDRESS``), and failing that starts its own
``nvim --headless`` and stops it at the end.

Neovim speaks plain MessagePack-RPC, so asyncrpc finds no extensions there
and talks to it exactly as a plain msgpack-rpc client would. Run inside a
Neovim ``:terminal`` it only touches a scratch buffer of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgpack

import asyncrpc

T0 = time.perf_counter()


def say(text: str) -> None:
    print(f"[{time.perf_counter() - T0:6.3f}s] {text}", flush=True)


def parse_address(address: str) -> dict[str, Any]:
    """``host:port`` -> ``{"host", "port"}``; anything else is a socket path."""
    host, colon, port = address.rpartition(":")
    if colon and port.isdigit() and "/" not in address and "\\" not in address:
        return {"host": host.strip("[]") or "127.0.0.1", "port": int(port)}
    return {"path": address}


@contextlib.asynccontextmanager
async def own_nvim() -> AsyncIterator[str]:
    """Start ``nvim --headless`` on a Unix socket of its own; stop it afterwards."""
    nvim = shutil.which("nvim")
    if nvim is None:
        sys.exit("nvim not found: pass an ADDRESS, or install Neovim (apt install neovim)")
    with tempfile.TemporaryDirectory(prefix="asyncrpc-nvim-") as tmp:
        path = str(Path(tmp) / "nvim.sock")
        process = await asyncio.create_subprocess_exec(
            nvim,
            "--headless",
            "--clean",
            "-n",
            "--listen",
            path,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            # Poll until it listens: a process starting up cannot be awaited.
            for _ in range(500):
                try:
                    _, writer = await asyncio.open_unix_connection(path)
                except OSError:
                    if process.returncode is not None:
                        sys.exit(f"nvim exited with {process.returncode}")
                    await asyncio.sleep(0.01)
                    continue
                writer.close()
                await writer.wait_closed()
                break
            else:
                sys.exit("nvim did not start listening within 5 seconds")
            say(f"started nvim --headless (pid {process.pid}) on {path}")
            yield path
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    async with asyncio.timeout(5):
                        await process.wait()
                except TimeoutError:
                    process.kill()
                    await process.wait()
            say("stopped our nvim")


async def tour(client: asyncrpc.Client) -> None:
    say(f"connected; extensions Neovim speaks: {sorted(client.features) or 'none (plain msgpack-rpc)'}")

    # 1. A call.
    channel, metadata = await client.call("nvim_get_api_info")
    version = metadata["version"]
    say(f"Neovim {version['major']}.{version['minor']}.{version['patch']}, our channel id is {channel}")
    say(f'nvim_eval("1+2") = {await client.call("nvim_eval", "1+2")}')

    # 2. Interleaved calls: all on their way before the first reply comes.
    expressions = ["6*7", "toupper('asyncrpc')", "range(5)", "strftime('%Y')", "has('nvim')"]
    calls = [client.call("nvim_eval", expression) for expression in expressions]
    say(f"{len(calls)} calls in flight: {[call.status().name for call in calls]}")
    for expression, result in zip(expressions, await asyncio.gather(*calls), strict=True):
        say(f"  {expression} = {result!r}")

    # A scratch buffer of our own (never the user's buffers): Buffer is an ext type.
    buffer = await client.call("nvim_create_buf", False, True)
    await client.call("nvim_buf_set_lines", buffer, 0, -1, True, ["written", "by", "asyncrpc"])
    lines = await client.call("nvim_buf_get_lines", buffer, 0, -1, True)
    number = msgpack.unpackb(buffer.data)  # an ext type whose payload is the buffer number
    say(f"scratch buffer {number} (msgpack ext type {buffer.code}) holds {lines}")

    # 3. Neovim calls us back while our own call is pending on the same connection.
    pending: list[asyncrpc.AsyncCall[Any]] = []

    def py_add(a: int, b: int) -> int:
        say(f"  Neovim called py_add({a}, {b}); our nvim_eval is {pending[0].status().name}")
        return a + b

    async def py_shout(text: str) -> Any:
        # An async callback may call Neovim again, also while it waits on us.
        return await client.call("nvim_call_function", "toupper", [text])

    client.register_function(py_add, name="py_add")
    client.register_function(py_shout, name="py_shout")
    call = client.call("nvim_eval", f"rpcrequest({channel}, 'py_add', 1, 2) * 100")
    pending.append(call)
    say(f"rpcrequest(..., 'py_add', 1, 2) * 100 = {await call}")
    shout = await client.call("nvim_eval", f"rpcrequest({channel}, 'py_shout', 'hello')")
    say(f"rpcrequest(..., 'py_shout', 'hello') = {shout!r}")

    # rpcnotify: a notification from Neovim, no reply.
    arrived = asyncio.Event()

    def py_note(*args: Any) -> None:
        say(f"  notification from Neovim: py_note{args}")
        arrived.set()

    client.register_function(py_note, name="py_note")
    await client.call("nvim_eval", f"rpcnotify({channel}, 'py_note', 'done', {len(expressions)})")
    async with asyncio.timeout(5):
        await arrived.wait()

    # Errors keep Neovim's own [code, message] shape in .raw.
    try:
        await client.call("nvim_eval", "no_such_variable")
    except asyncrpc.RemoteError as error:
        say(f"error as expected: {error.type} {error.raw!r}")

    await client.call("nvim_buf_delete", buffer, {"force": True})


async def main(argv: list[str]) -> None:
    address = argv[1] if len(argv) > 1 else os.environ.get("NVIM") or os.environ.get("NVIM_LISTEN_ADDRESS")
    async with contextlib.AsyncExitStack() as stack:
        if not address:
            address = await stack.enter_async_context(own_nvim())
        say(f"connecting to {address}")
        async with asyncrpc.connect(**parse_address(address)) as client:
            await tour(client)


if __name__ == "__main__":
    asyncrpc.run(main(sys.argv))
