"""TLS on both ends, with real certificates (tests/certs.py): calls over TCP and Unix
sockets, mutual TLS and the caller's certificate in the handler, and every way a
handshake fails, each a clear error for that connection and one log line, never a
hang and never harm to the other connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import asyncrpc
from tests.certs import Certs
from tests.services import BOUND, make_server, open_gate

pytestmark = pytest.mark.timeout(60)


class WhoAmI:
    """What the server knows of its caller."""

    def certificate(self) -> Any:
        certificate = asyncrpc.current_call().peer_certificate
        return None if certificate is None else dict(x[0] for x in certificate["subject"])["commonName"]


@contextlib.asynccontextmanager
async def tls_server(certs: Certs, *, mutual: bool = False, **options: Any) -> AsyncIterator[asyncrpc.Server]:
    server = make_server(**options)
    server.register(WhoAmI(), "who")
    await server.start("127.0.0.1", 0, ssl=certs.server_context(mutual=mutual))
    try:
        yield server
    finally:
        await server.close(grace=1.0)


def tls_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "TLS handshake" in r.getMessage()]


@contextlib.contextmanager
def socket_path() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as directory:
        yield os.path.join(directory, "rpc.sock")


async def test_calls_over_tls(certs: Certs) -> None:
    async with (
        tls_server(certs) as server,
        asyncrpc.connect("127.0.0.1", server.port, ssl=certs.client_context()) as client,
    ):
        assert await client.call("add", 2, 3) == 5
        assert await client.call("demo.echo", b"\x00" * 100_000) == b"\x00" * 100_000
        assert await client.call("who.certificate") is None  # no client certificate was asked for
        assert client.connection.get_extra_info("ssl_object") is not None  # really encrypted


async def test_the_host_name_is_checked_against_localhost_too(certs: Certs) -> None:
    async with (
        tls_server(certs) as server,
        asyncrpc.connect("localhost", server.port, ssl=certs.client_context()) as client,
    ):
        assert await client.call("add", 1, 1) == 2


async def test_calls_over_tls_on_a_unix_socket(certs: Certs) -> None:
    with socket_path() as path:
        server = make_server()
        await server.start(path=path, ssl=certs.server_context())
        try:
            async with asyncrpc.connect(
                path=path, ssl=certs.client_context(), server_hostname="localhost"
            ) as client:
                assert await client.call("add", 2, 3) == 5
        finally:
            await server.close(grace=1.0)


async def test_mutual_tls_gives_the_handler_the_callers_certificate(certs: Certs) -> None:
    async with (
        tls_server(certs, mutual=True) as server,
        asyncrpc.connect("127.0.0.1", server.port, ssl=certs.client_context(with_certificate=True)) as client,
    ):
        assert await client.call("who.certificate") == "alice"


async def test_mutual_tls_turns_away_a_client_without_a_certificate(
    certs: Certs, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        tls_server(certs, mutual=True) as server,
        asyncrpc.connect("127.0.0.1", server.port, ssl=certs.client_context(with_certificate=True)) as good,
    ):
        with caplog.at_level(logging.WARNING, logger="asyncrpc"):
            # TLS 1.3 tells the client after its side of the handshake: the
            # refusal reaches it as the connection closing over the hello.
            with pytest.raises(asyncrpc.ConnectionLost, match="client certificate"):
                async with asyncio.timeout(BOUND):
                    await asyncrpc.connect("127.0.0.1", server.port, ssl=certs.client_context())
            async with asyncio.timeout(BOUND):
                while not tls_lines(caplog):  # noqa: ASYNC110 - the server logs as the socket ends
                    await asyncio.sleep(0.01)
        [line] = tls_lines(caplog)
        assert "certificate" in line.lower()
        assert await good.call("who.certificate") == "alice"  # unharmed


async def test_a_server_certificate_from_another_ca_is_refused(
    certs: Certs, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server()
    await server.start(
        "127.0.0.1", 0, ssl=asyncrpc.tls.server_context(str(certs.stranger), str(certs.stranger_key))
    )
    try:
        with caplog.at_level(logging.WARNING, logger="asyncrpc"):
            with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
                async with asyncio.timeout(BOUND):
                    await asyncrpc.connect("127.0.0.1", server.port, ssl=certs.client_context())
            async with asyncio.timeout(BOUND):
                while not tls_lines(caplog):  # noqa: ASYNC110 - the server logs as the socket ends
                    await asyncio.sleep(0.01)
        assert len(tls_lines(caplog)) == 1
    finally:
        await server.close(grace=1.0)


async def test_a_certificate_for_another_host_name_is_refused(certs: Certs) -> None:
    async with tls_server(certs) as server:
        with pytest.raises(ssl.SSLCertVerificationError, match=r"evil\.example"):
            async with asyncio.timeout(BOUND):
                await asyncrpc.connect(
                    "127.0.0.1", server.port, ssl=certs.client_context(), server_hostname="evil.example"
                )


async def test_an_expired_certificate_is_refused(certs: Certs) -> None:
    server = make_server()
    await server.start(
        "127.0.0.1", 0, ssl=asyncrpc.tls.server_context(str(certs.expired), str(certs.expired_key))
    )
    try:
        with pytest.raises(ssl.SSLCertVerificationError, match="expired"):
            async with asyncio.timeout(BOUND):
                await asyncrpc.connect("127.0.0.1", server.port, ssl=certs.client_context())
    finally:
        await server.close(grace=1.0)


async def test_ssl_true_verifies_against_the_system_cas(certs: Certs) -> None:
    """Our throwaway CA is not among the system's: ssl=True must refuse its server."""
    async with tls_server(certs) as server:
        with pytest.raises(ssl.SSLCertVerificationError):
            async with asyncio.timeout(BOUND):
                await asyncrpc.connect("127.0.0.1", server.port, ssl=True)


async def test_a_plaintext_client_on_a_tls_port_gets_a_clear_error(
    certs: Certs, caplog: pytest.LogCaptureFixture
) -> None:
    async with tls_server(certs) as server:
        with caplog.at_level(logging.WARNING, logger="asyncrpc"):
            # With a token the hello must be answered: connect() says what happened.
            with pytest.raises(asyncrpc.ConnectionLost, match="TLS server"):
                async with asyncio.timeout(BOUND):
                    await asyncrpc.connect("127.0.0.1", server.port, token="t")
            # Without one, connect() goes on as with a plain peer; the first call fails at once.
            async with asyncio.timeout(BOUND):
                client = await asyncrpc.connect("127.0.0.1", server.port)
            with pytest.raises(asyncrpc.ConnectionLost):
                await client.call("add", 1, 2, timeout=BOUND)
            await client.close()
        lines = tls_lines(caplog)
        assert lines
        assert all("not a TLS client" in line for line in lines)


async def test_a_tls_client_on_a_plaintext_port_gets_a_clear_error(
    server: asyncrpc.Server, certs: Certs, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="asyncrpc"),
        pytest.raises(asyncrpc.ConnectionLost, match="during the TLS handshake"),
    ):
        async with asyncio.timeout(BOUND):
            await asyncrpc.connect("127.0.0.1", server.port, ssl=certs.client_context())
    # The plaintext server read a TLS ClientHello as msgpack: one line for that connection.
    [line] = [r.getMessage() for r in caplog.records if "closing connection" in r.getMessage()]
    assert "a TLS client on a plaintext port?" in line
    async with asyncrpc.connect("127.0.0.1", server.port) as client:
        assert await client.call("add", 1, 2) == 3


async def test_failed_handshakes_never_harm_the_other_connections(
    certs: Certs, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        tls_server(certs) as server,
        asyncrpc.connect("127.0.0.1", server.port, ssl=certs.client_context()) as client,
    ):
        held = client.call("demo.wait_for", "tls-held")  # in flight through it all
        with caplog.at_level(logging.WARNING, logger="asyncrpc"):
            for _ in range(10):
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                writer.write(b"GET / HTTP/1.1\r\n\r\n")  # garbage where a ClientHello belongs
                async with asyncio.timeout(BOUND):
                    await reader.read()  # the server closes it (perhaps after a TLS alert)
                writer.close()
                with pytest.raises(ssl.SSLCertVerificationError):
                    await asyncrpc.connect("127.0.0.1", server.port, ssl=True)
            assert await client.call("add", 1, 2) == 3
        assert len(tls_lines(caplog)) == 20  # one line for each failed handshake
        assert not held.done()
        open_gate("tls-held")
        assert await held == "tls-held"


async def test_a_client_that_never_starts_the_handshake_is_closed_in_time(
    certs: Certs, caplog: pytest.LogCaptureFixture
) -> None:
    async with tls_server(certs, handshake_timeout=0.3) as server:
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        started = loop.time()
        with caplog.at_level(logging.WARNING, logger="asyncrpc"):
            async with asyncio.timeout(BOUND):
                assert await reader.read() == b""  # closed by the server
        assert loop.time() - started < 0.3 + 1.0
        writer.close()
        assert server.connections == 0
        assert len(tls_lines(caplog)) == 1


def test_nonsense_tls_options_are_refused_at_once(certs: Certs) -> None:
    with pytest.raises(TypeError, match="ssl"):
        asyncrpc.connect("127.0.0.1", 1, ssl="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="server_hostname"):
        asyncrpc.connect("127.0.0.1", 1, server_hostname="example.org")
    with pytest.raises(ValueError, match="server_hostname"):
        asyncrpc.connect(path="/tmp/x.sock", ssl=True)
    with pytest.raises(ValueError, match="server_hostname"):
        asyncrpc.connect("127.0.0.1", 1, ssl=True, server_hostname="")
    with pytest.raises(ValueError, match="cert"):
        asyncrpc.tls.client_context(key=str(certs.client_key))


async def test_start_refuses_what_is_not_an_ssl_context() -> None:
    server = make_server()
    with pytest.raises(TypeError, match="SSLContext"):
        await server.start("127.0.0.1", 0, ssl=True)  # type: ignore[arg-type]
    assert not server.is_serving


def test_the_sync_client_speaks_tls(certs: Certs) -> None:
    ready = threading.Event()
    port: list[int] = []
    stop: list[asyncio.Event] = []

    async def serve() -> None:
        async with tls_server(certs) as server:
            stop.append(asyncio.Event())
            port.append(server.port)
            ready.set()
            await stop[0].wait()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),))
    thread.start()
    try:
        assert ready.wait(BOUND)
        with asyncrpc.sync.connect("127.0.0.1", port[0], ssl=certs.client_context()) as client:
            assert client.call("add", 2, 3) == 5
    finally:
        if stop:
            loop.call_soon_threadsafe(stop[0].set)
        thread.join(BOUND)
        loop.close()


async def test_closing_the_server_closes_a_handshake_in_progress_at_once(certs: Certs) -> None:
    server = make_server(handshake_timeout=30.0)
    await server.start("127.0.0.1", 0, ssl=certs.server_context())
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)  # never says a word
    try:
        async with asyncio.timeout(BOUND):
            while server.connections == 0:  # noqa: ASYNC110 - accepted on the server's next turn
                await asyncio.sleep(0.01)
        async with asyncio.timeout(BOUND):
            await server.close(grace=0.1)
            assert await reader.read() == b""  # closed with the server, not 30 s later
    finally:
        writer.close()
