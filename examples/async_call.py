"""The Windows RPC sample "Making the asynchronous call", ported to asyncrpc.

The Windows RPC client initialises an async handle with an event notification,
starts the asynchronous AsyncFunc, makes the ordinary (synchronous) NonAsyncFunc
call while AsyncFunc is still pending, waits on the event and completes the
call. Each step below carries the C it stands for.

    python examples/async_call.py                      # starts its own server
    python examples/async_call.py --connect HOST:PORT  # or uses a running one
"""

from __future__ import annotations

import asyncrpc
from asyncrpc import notify

try:
    from examples.demo_service import demo_server, parse_args
except ImportError:  # run as a script: this directory is on sys.path
    from demo_service import (  # type: ignore[no-redef,import-not-found,unused-ignore]
        demo_server,
        parse_args,
    )

ASYNC_DELAY = 0.5  # nAsychDelay
MESSAGE = "hello from the client"  # pszMessage


async def main(host: str | None = None, port: int | None = None) -> None:
    async with demo_server(host, port) as address, asyncrpc.connect(*address) as client:
        # RPC_ASYNC_STATE Async;
        # RpcAsyncInitializeHandle(&Async, sizeof(RPC_ASYNC_STATE));
        # Async.UserInfo = NULL;
        # Async.NotificationType = RpcNotificationTypeEvent;
        # Async.u.hEvent = CreateEvent(NULL, FALSE, FALSE, NULL);
        done = notify.Event()
        handle: asyncrpc.AsyncCall[str] = asyncrpc.AsyncCall(notify=done, user_info=None)

        # RpcTryExcept { AsyncFunc(&Async, AsyncRPC_ClientIfHandle, nAsychDelay); }
        try:
            print("\nCalling the remote procedure 'AsyncFunc'")
            client.call("demo.AsyncFunc", ASYNC_DELAY, handle=handle)
        except asyncrpc.RPCError as exc:
            # An error while making the call: no completion notification will come.
            print(f"AsyncFunc: Run time reported exception {exc.code or 0:#x} = {exc.code}")
            return

        # Call a synchronous routine while the asynchronous procedure is still running.
        # RpcTryExcept { NonAsyncFunc(AsyncRPC_ClientIfHandle, pszMessage); }
        try:
            print("\nCalling the remote procedure 'NonAsyncFunc'")
            await client.stub("demo").NonAsyncFunc(MESSAGE)
            print(
                "While 'AsyncFunc' is running asynchronously,\n"
                "we still can send message to the server in the mean time.\n"
            )
        except asyncrpc.RPCError as exc:
            print(f"NonAsyncFunc: Run time reported exception {exc.code or 0:#x} = {exc.code}")

        print(f"AsyncFunc is still {handle.status().name}")

        # WaitForSingleObject(Async.u.hEvent, INFINITE);
        await done.wait()

        # RpcAsyncCompleteCall(&Async, &reply);
        try:
            reply = handle.complete()
        except asyncrpc.RPCError as exc:
            print(f"AsyncFunc failed: {exc!r} (code {exc.code})")
        else:
            print(f"AsyncFunc completed ({handle.status().name}): {reply!r}")


if __name__ == "__main__":
    asyncrpc.run(main(*parse_args(__doc__)))
