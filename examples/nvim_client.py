"""A typed Neovim client: the interface ``asyncrpc stubgen`` wrote from a running Neovim.

Usage, from the top directory of the checkout::

    python -m examples.nvim_client [ADDRESS]

``examples/nvim_api.py`` was generated, not written: ``asyncrpc stubgen
127.0.0.1:6666 -o examples/nvim_api.py`` against ``nvim --headless --listen
127.0.0.1:6666`` (Neovim 0.7.2). Every function of Neovim's API is a method
of ``Nvim`` with its parameter and result types, so a type checker knows that
``nvim_buf_get_lines`` returns ``list[str]`` and takes a ``Buffer``.

ADDRESS is where Neovim listens, as for ``examples/neovim.py``; without it,
the example starts its own ``nvim --headless`` and stops it at the end.
"""

from __future__ import annotations

import contextlib
import os
import sys

import asyncrpc
from examples.neovim import own_nvim, parse_address, say
from examples.nvim_api import Buffer, Nvim


async def tour(nvim: Nvim) -> None:
    # What Neovim says of itself; nvim_get_api_info() returns [channel, metadata] (list[Any]).
    channel, metadata = await nvim.nvim_get_api_info()
    version = metadata["version"]
    say(f"Neovim {version['major']}.{version['minor']}.{version['patch']}, channel {channel}")

    # A scratch buffer of our own: a Buffer (a msgpack ext type) to the type checker and at run time.
    buffer: Buffer = await nvim.nvim_create_buf(False, True)
    await nvim.nvim_buf_set_lines(buffer, 0, -1, True, ["typed", "by", "asyncrpc stubgen"])
    lines: list[str] = await nvim.nvim_buf_get_lines(buffer, 0, -1, True)
    count: int = await nvim.nvim_buf_line_count(buffer)
    say(f"buffer (ext type {buffer.code}) holds {count} lines: {lines}")

    # Expressions: nvim_eval returns Any, as Neovim's Object is anything.
    say(f'nvim_eval("6 * 7") = {await nvim.nvim_eval("6 * 7")}')
    joined = await nvim.nvim_call_function("join", [lines, "-"])
    say(f"join(lines, '-') = {joined!r}")

    # The call handle, with a deadline: asyncrpc.start() keeps the types (AsyncCall[Any]).
    call = asyncrpc.start(nvim.nvim_eval, timeout=5.0)("toupper('done')")
    say(f"{call.status().name} -> {await call!r}")

    await nvim.nvim_buf_delete(buffer, {"force": True})


async def main(argv: list[str]) -> None:
    address = argv[1] if len(argv) > 1 else os.environ.get("NVIM") or os.environ.get("NVIM_LISTEN_ADDRESS")
    async with contextlib.AsyncExitStack() as stack:
        if not address:
            address = await stack.enter_async_context(own_nvim())
        async with asyncrpc.connect(**parse_address(address)) as client:
            await tour(client.stub(Nvim))


if __name__ == "__main__":
    asyncrpc.run(main(sys.argv))
