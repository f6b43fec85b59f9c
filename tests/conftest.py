"""Shared fixtures: a real server on a loopback port and a client connected to it.

Every test runs once on the default asyncio loop and once on uvloop (where
installed), since users run both.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

import asyncrpc
from tests.certs import Certs, make_certs
from tests.services import GATES, make_server

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
    uvloop = None  # type: ignore[assignment]


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
    if uvloop is not None:
        factories["uvloop"] = uvloop.new_event_loop
    return factories


@pytest.fixture(autouse=True)
def _clear_gates() -> Iterator[None]:
    GATES.clear()
    yield
    GATES.clear()


@pytest.fixture
async def server() -> AsyncIterator[asyncrpc.Server]:
    srv = make_server()
    await srv.start("127.0.0.1", 0)
    yield srv
    await srv.close(grace=1.0)


@pytest.fixture
async def client(server: asyncrpc.Server) -> AsyncIterator[asyncrpc.Client]:
    async with asyncrpc.connect("127.0.0.1", server.port) as c:
        yield c


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A throwaway CA and its certificates, as PEM files (see tests/certs.py)."""
    return make_certs(tmp_path_factory.mktemp("certs"))
