"""Message pump: completions become window messages, dispatched in order.

A Windows client can have a message posted to a window when a call completes;
the window's thread finds it in its message loop among every other message.
Here pump.target(msg, hwnd) posts Message(hwnd, msg, wparam=CALL_COMPLETE,
lparam=call), pump.register(msg, proc) sets the window procedure, and
await pump.run() is the GetMessage/DispatchMessage loop.

    python examples/notify_message_pump.py [--connect HOST:PORT]
"""

from __future__ import annotations

import asyncrpc
from asyncrpc import notify
from asyncrpc.notify.message_pump import WM_APP

try:
    from examples.demo_service import demo_server, parse_args
except ImportError:  # run as a script: this directory is on sys.path
    from demo_service import (  # type: ignore[no-redef,import-not-found,unused-ignore]
        demo_server,
        parse_args,
    )

WM_RPC_DONE = WM_APP + 1  # the message a completed call posts
WM_NOTE = WM_APP + 2  # a message of our own


async def main(host: str | None = None, port: int | None = None) -> None:
    async with demo_server(host, port) as address, asyncrpc.connect(*address) as client:
        pump = notify.MessagePump()
        pending = 2

        def on_rpc_done(message: notify.Message) -> None:
            nonlocal pending
            call = message.lparam
            print(f"{message.hwnd}: {message.wparam.name} for {call.method}: {call.complete()!r}")
            pending -= 1
            if pending == 0:
                pump.post_quit()  # PostQuitMessage: run() returns

        async def on_note(message: notify.Message) -> None:  # procedures may be coroutines
            print(f"{message.hwnd}: note {message.lparam!r}")

        pump.register(WM_RPC_DONE, on_rpc_done)
        pump.register(WM_NOTE, on_note)

        window = "main-window"
        client.call("demo.AsyncFunc", 0.2, notify=pump.target(WM_RPC_DONE, hwnd=window))
        client.call("demo.AsyncFunc", 0.1, notify=pump.target(WM_RPC_DONE, hwnd=window))
        pump.post(window, WM_NOTE, None, "posted before any call completed")
        await client.stub("demo").NonAsyncFunc("called while both AsyncFunc calls are pending")

        await pump.run()  # messages in the order they were posted


if __name__ == "__main__":
    asyncrpc.run(main(*parse_args(__doc__)))
