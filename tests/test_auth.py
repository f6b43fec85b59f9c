"""Token authentication: ``Server(auth=)``, ``connect(token=)``, ``current_call().principal``.

The server's claims, each tested through real sockets: nothing but the hello
is answered before a connection is let in (requests get ``Unauthenticated``
and the connection closes; notifications close it; pipelined calls never run);
a missing or wrong token is ``AuthenticationFailed`` at ``connect()``; a plain
peer, Neovim included, cannot get in; tokens never show in logs, reprs or
error messages; authenticators may be plain or ``async``, and one that raises
refuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import asyncrpc
from asyncrpc.auth import PeerInfo
from asyncrpc.wire import extensions as ext
from tests.certs import Certs
from tests.rawpeer import RawPeer, pack
from tests.services import BOUND

pytestmark = pytest.mark.timeout(60)

TOKEN = "tok-3f9a1c2e8b7d"  # distinctive, so a leak is easy to find
TOKENS = asyncrpc.TokenAuth({TOKEN: "alice", "tok-other": "bob"})


class Who:
    """Tells who is calling; counts every run, to prove that none happens before auth."""

    def __init__(self) -> None:
        self.runs = 0

    def principal(self) -> Any:
        self.runs += 1
        return asyncrpc.current_call().principal

    def note(self, text: str) -> None:
        self.runs += 1


@contextlib.asynccontextmanager
async def auth_server(auth: Any = TOKENS, **options: Any) -> AsyncIterator[tuple[asyncrpc.Server, Who]]:
    who = Who()
    server = asyncrpc.Server(auth=auth, **options)
    server.register(who, "who")
    await server.start("127.0.0.1", 0)
    try:
        yield server, who
    finally:
        await server.close(grace=1.0)


def hello(msgid: int = 0, **payload: Any) -> bytes:
    return pack([0, msgid, ext.HELLO_METHOD, [ext.hello_payload() | payload]])


async def test_the_right_token_lets_the_client_in_as_its_principal() -> None:
    async with (
        auth_server() as (server, _),
        asyncrpc.connect("127.0.0.1", server.port, token=TOKEN) as alice,
        asyncrpc.connect("127.0.0.1", server.port, token="tok-other") as bob,
    ):
        assert await alice.call("who.principal") == "alice"
        assert await bob.call("who.principal") == "bob"
        assert alice.features == ext.FEATURES


@pytest.mark.parametrize(("token", "message"), [("wrong", "did not accept"), (None, "requires a token")])
async def test_a_wrong_or_missing_token_fails_connect(
    token: str | None, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with auth_server() as (server, who):
        with (
            caplog.at_level(logging.WARNING, logger="asyncrpc"),
            pytest.raises(asyncrpc.AuthenticationFailed, match=message),
        ):
            async with asyncio.timeout(BOUND):
                # Without a token, connect() waits for the hello's answer as long as it is given.
                await asyncrpc.connect("127.0.0.1", server.port, token=token, hello_timeout=BOUND)
        [line] = [r.getMessage() for r in caplog.records]
        assert "authentication failed" in line
        assert who.runs == 0
        async with asyncio.timeout(BOUND):
            while server.connections:  # noqa: ASYNC110 - the server closes it after its answer
                await asyncio.sleep(0.01)


async def test_the_sync_client_takes_a_token() -> None:
    async with auth_server() as (server, _):

        def call() -> Any:
            with asyncrpc.sync.connect("127.0.0.1", server.port, token=TOKEN) as client:
                return client.call("who.principal")

        assert await asyncio.to_thread(call) == "alice"
        with pytest.raises(asyncrpc.AuthenticationFailed):
            await asyncio.to_thread(asyncrpc.sync.connect("127.0.0.1", server.port, token="no").__enter__)


@pytest.mark.parametrize(
    "first",
    [
        pack([0, 1, "who.principal", []]),
        pack([0, 1, ext.DESCRIBE_METHOD, []]),  # the method list is not for strangers either
        pack([0, 1, ext.PING_METHOD, []]),
        pack([0, 1, "no.such.method", []]),
    ],
    ids=["request", "describe", "ping", "unknown"],
)
async def test_a_request_before_the_hello_gets_unauthenticated_and_the_connection_closes(
    first: bytes,
) -> None:
    async with auth_server() as (server, who):
        peer = await RawPeer.connect(server.port)
        try:
            await peer.send(first)
            [reply] = await peer.messages(1)
            assert reply[:2] == [1, 1]
            assert "Unauthenticated" in str(reply[2])
            assert await peer.closed_by_server() == b""
        finally:
            peer.close()
        assert who.runs == 0


async def test_a_notification_before_the_hello_closes_the_connection() -> None:
    async with auth_server() as (server, who):
        peer = await RawPeer.connect(server.port)
        try:
            await peer.send(pack([2, "who.note", ["x"]]))
            assert await peer.closed_by_server() == b""
        finally:
            peer.close()
        assert who.runs == 0


async def test_calls_sent_right_behind_a_refused_hello_never_run() -> None:
    async with auth_server() as (server, who):
        peer = await RawPeer.connect(server.port)
        try:
            behind = b"".join(pack([0, n, "who.principal", []]) for n in range(1, 50))
            await peer.send(hello(token="wrong") + behind + pack([2, "who.note", ["x"]]))
            replies = await peer.messages(1)
            assert replies[0][1] == 0
            assert "AuthenticationFailed" in str(replies[0][2])
            await peer.closed_by_server()
        finally:
            peer.close()
        assert who.runs == 0


async def test_calls_sent_right_behind_an_accepted_hello_run_as_the_principal() -> None:
    async def slow(token: str | None, peer: PeerInfo) -> Any:
        await asyncio.sleep(0.05)  # reading is paused while it decides
        return "carol" if token == TOKEN else None

    async with auth_server(slow) as (server, who):
        peer = await RawPeer.connect(server.port)
        try:
            await peer.send(hello(token=TOKEN) + pack([0, 1, "who.principal", []]))
            answer, reply = await peer.messages(2)
            assert answer[1:3] == [0, None]
            assert reply == [1, 1, None, "carol"]
        finally:
            peer.close()
        assert who.runs == 1


async def test_a_second_hello_does_not_change_who_the_peer_is() -> None:
    async with auth_server() as (server, _):
        peer = await RawPeer.connect(server.port)
        try:
            await peer.send(
                hello(0, token=TOKEN) + hello(1, token="tok-other") + pack([0, 2, "who.principal", []])
            )
            *_, reply = await peer.messages(3)
            assert reply == [1, 2, None, "alice"]
        finally:
            peer.close()


@pytest.mark.parametrize("token", [12345, None, b"tok-3f9a1c2e8b7d", ["x"], {"t": 1}, "x" * 100_000, ""])
async def test_odd_tokens_are_refused_without_harm(token: Any) -> None:
    async with auth_server() as (server, who):
        peer = await RawPeer.connect(server.port)
        try:
            payload = ext.hello_payload() | {"token": token}
            await peer.send(pack([0, 0, ext.HELLO_METHOD, [payload]]))
            [answer] = await peer.messages(1)
            assert "AuthenticationFailed" in str(answer[2])
        finally:
            peer.close()
        async with asyncrpc.connect("127.0.0.1", server.port, token=TOKEN) as client:
            assert await client.call("who.principal") == "alice"
        assert who.runs == 1


async def test_a_hello_whose_payload_is_not_a_map_is_refused_once(caplog: pytest.LogCaptureFixture) -> None:
    async with auth_server() as (server, _):
        peer = await RawPeer.connect(server.port)
        try:
            with caplog.at_level(logging.WARNING, logger="asyncrpc"):
                again = pack([0, 1, ext.HELLO_METHOD, []]) + pack([0, 2, "who.principal", []])
                await peer.send(pack([0, 0, ext.HELLO_METHOD, ["not a map"]]) + again * 20)
                [answer] = await peer.messages(1)
                assert "AuthenticationFailed" in str(answer[2])
                await peer.closed_by_server()  # and nothing more was answered
        finally:
            peer.close()
        assert len(caplog.records) == 1  # one line, however much the peer sent


async def test_sync_and_async_authenticators_and_what_they_are_told(certs: Certs) -> None:
    seen: list[tuple[str | None, PeerInfo]] = []

    def plain(token: str | None, peer: PeerInfo) -> Any:
        seen.append((token, peer))
        return {"name": "dave"} if token == "d" else None

    async with auth_server(plain) as (server, _):
        async with asyncrpc.connect("127.0.0.1", server.port, token="d") as client:
            assert await client.call("who.principal") == {"name": "dave"}
            local = client.connection.get_extra_info("sockname")
        [(token, peer)] = seen
        assert token == "d"
        assert peer.address == f"{local[0]}:{local[1]}"
        assert peer.certificate is None

    # Over mutual TLS the authenticator sees the verified certificate: no token needed.
    def by_certificate(token: str | None, peer: PeerInfo) -> Any:
        if peer.certificate is None:
            return None
        return dict(x[0] for x in peer.certificate["subject"])["commonName"]

    server = asyncrpc.Server(auth=by_certificate)
    server.register(Who(), "who")
    await server.start("127.0.0.1", 0, ssl=certs.server_context(mutual=True))
    try:
        async with asyncrpc.connect(
            "127.0.0.1", server.port, ssl=certs.client_context(with_certificate=True)
        ) as client:
            assert await client.call("who.principal") == "alice"
    finally:
        await server.close(grace=1.0)


async def test_an_authenticator_that_raises_refuses_and_the_log_has_no_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(token: str | None, peer: PeerInfo) -> Any:
        raise RuntimeError(f"database down while checking {token}")

    async def broken_later(token: str | None, peer: PeerInfo) -> Any:
        await asyncio.sleep(0)
        raise RuntimeError(f"database down while checking {token}")

    for auth in (broken, broken_later):
        async with auth_server(auth) as (server, _):
            with (
                caplog.at_level(logging.DEBUG, logger="asyncrpc"),
                pytest.raises(asyncrpc.AuthenticationFailed) as raised,
            ):
                await asyncrpc.connect("127.0.0.1", server.port, token=TOKEN)
            assert TOKEN not in str(raised.value)
            assert any("the authenticator raised RuntimeError" in r.getMessage() for r in caplog.records)
    assert TOKEN not in caplog.text


async def test_tokens_never_show_in_reprs_logs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    connector = asyncrpc.connect("127.0.0.1", 1, token=TOKEN)
    assert TOKEN not in repr(connector.options)
    assert TOKEN not in repr(TOKENS)
    with caplog.at_level(logging.DEBUG):
        async with auth_server() as (server, _):
            async with asyncrpc.connect("127.0.0.1", server.port, token=TOKEN) as client:
                assert TOKEN not in repr(client)
                assert TOKEN not in repr(client.connection)
            for token in ("tok-3f9a1c2e8b7X", TOKEN[:-1]):  # near misses
                with pytest.raises(asyncrpc.AuthenticationFailed) as raised:
                    await asyncrpc.connect("127.0.0.1", server.port, token=token)
                assert token not in str(raised.value)
                assert token not in repr(raised.value)
    assert "tok-3f9a1c2e8b7" not in caplog.text


async def test_reconnecting_sends_the_token_again_and_gives_up_when_it_is_refused() -> None:
    async with auth_server() as (first, _):
        port = first.port
        client = await asyncrpc.connect(
            "127.0.0.1", port, token=TOKEN, reconnect=asyncrpc.Reconnect(initial=0.05, maximum=0.05)
        )
        try:
            assert await client.call("who.principal") == "alice"
            await first.close(grace=0.1)
            # Back on the same port, still knowing the token: the client is let in again.
            again = asyncrpc.Server(auth=TOKENS)
            again.register(Who(), "who")
            await again.start("127.0.0.1", port)
            try:
                async with asyncio.timeout(BOUND):
                    await client.wait_connected()
                assert await client.call("who.principal", timeout=BOUND) == "alice"
            finally:
                await again.close(grace=0.1)
            # Back again, but the token has been withdrawn: calls waiting fail, none hangs.
            withdrawn = asyncrpc.Server(auth=asyncrpc.TokenAuth({"tok-new": "alice"}))
            await withdrawn.start("127.0.0.1", port)
            try:
                with pytest.raises(asyncrpc.ConnectionLost, match="did not accept the token"):
                    await client.call("who.principal", timeout=BOUND)
                assert client.state is asyncrpc.ClientState.CLOSED
            finally:
                await withdrawn.close(grace=0.1)
        finally:
            await client.close()


def test_token_auth_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="at least one"):
        asyncrpc.TokenAuth({})
    with pytest.raises(ValueError, match="empty"):
        asyncrpc.TokenAuth({"": "x"})
    with pytest.raises(TypeError, match="str"):
        asyncrpc.TokenAuth({b"t": "x"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="None"):
        asyncrpc.TokenAuth({"t": None})
    with pytest.raises(TypeError, match="auth"):
        asyncrpc.Server(auth="s3cret")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hello"):
        asyncrpc.Server(auth=TOKENS, extensions=False)
    with pytest.raises(ValueError, match="hello"):
        asyncrpc.Server(auth=TOKENS, raw_strings=True)
    with pytest.raises(ValueError, match="token"):
        asyncrpc.connect("127.0.0.1", 1, token="")
    with pytest.raises(TypeError, match="token"):
        asyncrpc.connect("127.0.0.1", 1, token=123)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hello"):
        asyncrpc.connect("127.0.0.1", 1, token="t", extensions=False)


def test_token_auth_checks_every_token_the_same_way() -> None:
    peer = PeerInfo("127.0.0.1:1")
    assert TOKENS(TOKEN, peer) == "alice"
    assert TOKENS("tok-other", peer) == "bob"
    for near in (TOKEN[:-1], TOKEN + "x", TOKEN.upper(), "", None):
        assert TOKENS(near, peer) is None


@pytest.mark.skipif(shutil.which("nvim") is None, reason="needs nvim")
async def test_neovim_as_a_plain_client_cannot_get_in(tmp_path: Path) -> None:
    """Neovim speaks plain msgpack-rpc: it never says hello, so its calls are refused."""
    async with auth_server() as (server, who):
        script = (
            f"let ch = sockconnect('tcp', '127.0.0.1:{server.port}', {{'rpc': v:true}})\n"
            "try\n"
            "  call rpcrequest(ch, 'who.principal')\n"
            "  call writefile(['answered'], '/dev/stdout')\n"
            "catch\n"
            "  call writefile([v:exception], '/dev/stdout')\n"
            "endtry\n"
            "qall!\n"
        )
        # In a thread: the test's loop serves while Neovim runs.
        nvim = ["nvim", "--headless", "--clean", "-n", "-c", f"source {_vim_file(tmp_path, script)}"]
        done = await asyncio.to_thread(subprocess.run, nvim, capture_output=True, timeout=BOUND * 2)
        out = done.stdout
        assert "Unauthenticated" in out.decode(errors="replace")
        assert who.runs == 0


def _vim_file(directory: Path, text: str) -> Path:
    script = directory / "call.vim"
    script.write_text(text)
    return script


async def test_a_token_sent_to_a_server_that_does_not_check_it_is_reported(
    server: asyncrpc.Server, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="asyncrpc"):
        async with asyncrpc.connect("127.0.0.1", server.port, token=TOKEN) as client:
            assert await client.call("add", 1, 2) == 3  # let in: the server asks for nothing
        [line] = [r.getMessage() for r in caplog.records]
        assert "does not check tokens" in line
        assert TOKEN not in line
        caplog.clear()
        async with auth_server() as (checking, _), asyncrpc.connect("127.0.0.1", checking.port, token=TOKEN):
            pass
        assert caplog.records == []  # checked: nothing to say
