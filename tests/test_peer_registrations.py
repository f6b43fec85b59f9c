"""What a handler registers on ``current_call().peer`` is answered on that connection only (behaviour 11)."""

from __future__ import annotations

import pytest

import asyncrpc


class Sessions:
    """A handler that gives the calling client a method of its own."""

    def open(self, name: str) -> str:
        def whoami() -> str:
            return name

        asyncrpc.current_call().peer.register_function(whoami, name="session.whoami")
        return "opened"

    def shared(self) -> str:
        return "everyone"


async def test_a_registration_on_the_peer_stays_on_its_connection() -> None:
    server = asyncrpc.Server()
    server.register(Sessions(), namespace="s")
    await server.start("127.0.0.1", 0)
    try:
        async with (
            asyncrpc.connect("127.0.0.1", server.port) as alice,
            asyncrpc.connect("127.0.0.1", server.port) as bob,
        ):
            assert await alice.call("s.open", "alice") == "opened"
            assert await alice.call("session.whoami") == "alice"
            with pytest.raises(asyncrpc.MethodNotFound):
                await bob.call("session.whoami")  # not published to every client
            assert await bob.call("s.open", "bob") == "opened"
            assert await bob.call("session.whoami") == "bob"
            assert await alice.call("session.whoami") == "alice"  # neither overwrote the other
            # The server's own methods stay visible on every connection.
            assert await alice.call("s.shared") == await bob.call("s.shared") == "everyone"
        async with asyncrpc.connect("127.0.0.1", server.port) as carol:
            with pytest.raises(asyncrpc.MethodNotFound):
                await carol.call("session.whoami")
        assert "session.whoami" not in server.methods
    finally:
        await server.close(grace=1.0)


async def test_a_connection_registration_may_shadow_a_server_method() -> None:
    server = asyncrpc.Server()
    sessions = Sessions()
    server.register(sessions, namespace="s")

    def override() -> str:
        asyncrpc.current_call().peer.register_function(lambda: "mine", name="s.shared")
        return "done"

    server.register_function(override, name="override")
    await server.start("127.0.0.1", 0)
    try:
        async with (
            asyncrpc.connect("127.0.0.1", server.port) as alice,
            asyncrpc.connect("127.0.0.1", server.port) as bob,
        ):
            assert await alice.call("override") == "done"
            assert await alice.call("s.shared") == "mine"
            assert await bob.call("s.shared") == "everyone"
    finally:
        await server.close(grace=1.0)
