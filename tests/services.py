"""Handlers the tests serve: the seed's two functions plus a few probes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncrpc


class Demo:
    """The seed's service: one slow asynchronous function, one quick synchronous one."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    async def AsyncFunc(self, delay: float) -> str:
        await asyncio.sleep(delay)
        return f"AsyncFunc slept {delay}s"

    def NonAsyncFunc(self, message: str) -> None:
        self.messages.append(message)

    def add(self, a: Any, b: Any) -> Any:
        return a + b

    def echo(self, value: Any) -> Any:
        return value

    def fail(self, message: str) -> None:
        raise ValueError(message)

    async def wait_for(self, event_name: str) -> str:
        await GATES.setdefault(event_name, asyncio.Event()).wait()
        return event_name

    def _private(self) -> str:  # must never be reachable
        return "secret"


BOUND = 5.0  # seconds any single wait in a test may take before it counts as a hang
SLACK = 0.01  # uvloop's timers have millisecond resolution and may fire that much early


async def wait(event: asyncio.Event) -> None:
    """Wait for ``event``; a hang fails the test after :data:`BOUND` seconds."""
    async with asyncio.timeout(BOUND):
        await event.wait()


GATES: dict[str, asyncio.Event] = {}


def open_gate(name: str) -> None:
    """Let every ``demo.wait_for(name)`` return, whether it started yet or not."""
    GATES.setdefault(name, asyncio.Event()).set()


def add(a: Any, b: Any) -> Any:
    return a + b


async def serve(service: Any, namespace: str, **options: Any) -> asyncrpc.Server:
    """Serve ``service`` on a free loopback port, and tell it the port (``service.port``)."""
    server = asyncrpc.Server(**options)
    server.register(service, namespace=namespace)
    await server.start("127.0.0.1", 0)
    service.port = server.port
    return server


@contextlib.asynccontextmanager
async def serving(server: asyncrpc.Server, **start: Any) -> AsyncIterator[asyncrpc.Server]:
    """``server`` listening on a free loopback port (``start`` as for ``Server.start``), closed after."""
    await server.start("127.0.0.1", 0, **start)
    try:
        yield server
    finally:
        await server.close(grace=0.5)


def make_server(**options: Any) -> asyncrpc.Server:
    server = asyncrpc.Server(**options)
    server.register(Demo(), namespace="demo")
    server.register_function(add, name="add")
    return server
