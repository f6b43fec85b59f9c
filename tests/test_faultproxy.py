"""The fault proxy (tests/faultproxy.py) does what each fault says, seen from raw sockets.

Both ends are plain non-blocking sockets on 127.0.0.1 (no asyncrpc at all): a
"client" connected to the proxy and the "server" connection the proxy opened
to a listening socket. Each fault is checked in both directions for what the
receiving end gets (bytes, nothing, a FIN, a RST), what the sending end gets,
and that the other direction is unharmed where it should be. Waits for
something that must happen are awaited (bounded by ``BOUND``); waits for
something that must *not* happen last ``QUIET`` seconds, the only way to show
an absence.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from tests.faultproxy import Direction, Fault, FaultKind, FaultProxy, Flow

BOUND = 5.0  # seconds any wait for something that must happen may take before it is a hang
QUIET = 0.1  # seconds of watching for something that must not happen
SLACK = 0.01  # uvloop's timers have millisecond resolution and may fire that much early

pytestmark = pytest.mark.timeout(30)


@dataclass
class Pair:
    """A raw client socket, the server's raw socket for it, and the proxy between them."""

    proxy: FaultProxy
    client: socket.socket
    server: socket.socket

    def ends(self, direction: Direction) -> tuple[socket.socket, socket.socket]:
        """(sender, receiver) of ``direction``."""
        if direction is Direction.TO_SERVER:
            return self.client, self.server
        return self.server, self.client

    def flow(self, direction: Direction) -> Flow:
        return self.proxy.flow(direction)


async def connect(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return sock


async def accept(listener: socket.socket) -> socket.socket:
    async with asyncio.timeout(BOUND):
        sock, _ = await asyncio.get_running_loop().sock_accept(listener)
    sock.setblocking(False)
    return sock


@pytest.fixture
async def listener() -> AsyncIterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.setblocking(False)
    yield sock
    sock.close()


@pytest.fixture
async def pair(listener: socket.socket) -> AsyncIterator[Pair]:
    async with FaultProxy("127.0.0.1", listener.getsockname()[1]) as proxy:
        client = await connect(proxy.port)
        server = await accept(listener)
        try:
            yield Pair(proxy, client, server)
        finally:
            client.close()
            server.close()


async def send(sock: socket.socket, data: bytes) -> None:
    async with asyncio.timeout(BOUND):
        await asyncio.get_running_loop().sock_sendall(sock, data)


async def recv_exactly(sock: socket.socket, size: int) -> list[bytes]:
    """Read ``size`` bytes; return them in the pieces the reads gave."""
    loop = asyncio.get_running_loop()
    pieces: list[bytes] = []
    async with asyncio.timeout(BOUND):
        while sum(map(len, pieces)) < size:
            piece = await loop.sock_recv(sock, size - sum(map(len, pieces)))
            assert piece, f"EOF after {pieces!r}"
            pieces.append(piece)
    return pieces


async def recv_until_eof(sock: socket.socket) -> bytes:
    """Read until the peer's FIN; a reset raises ``ConnectionResetError``."""
    loop = asyncio.get_running_loop()
    data = b""
    async with asyncio.timeout(BOUND):
        while piece := await loop.sock_recv(sock, 65536):
            data += piece
    return data


async def assert_nothing_arrives(sock: socket.socket) -> None:
    """Nothing (no byte, no FIN, no RST) reaches ``sock`` for ``QUIET`` seconds."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(QUIET):
            got = await loop.sock_recv(sock, 65536)
    except TimeoutError:
        return
    pytest.fail(f"expected nothing, got {got!r}")


async def assert_reset(sock: socket.socket) -> None:
    with pytest.raises(ConnectionResetError):
        await recv_until_eof(sock)


BOTH = pytest.mark.parametrize("direction", list(Direction), ids=lambda d: d.value)


# -- passing through -------------------------------------------------------------------------------


async def test_bytes_pass_both_ways_and_are_counted(pair: Pair) -> None:
    await send(pair.client, b"hello")
    assert b"".join(await recv_exactly(pair.server, 5)) == b"hello"
    await send(pair.server, b"world!")
    assert b"".join(await recv_exactly(pair.client, 6)) == b"world!"
    assert (pair.proxy.upstream.seen, pair.proxy.upstream.forwarded) == (5, 5)
    assert (pair.proxy.downstream.seen, pair.proxy.downstream.forwarded) == (6, 6)
    assert pair.proxy.links == 1
    assert pair.proxy.accepted == 1


@BOTH
async def test_chunked_writes_reach_the_receiver_in_pieces(pair: Pair, direction: Direction) -> None:
    sender, receiver = pair.ends(direction)
    pair.proxy.set(direction, Fault.none(chunk=1))
    data = bytes(range(32))
    await send(sender, data)
    pieces = await recv_exactly(receiver, len(data))
    assert b"".join(pieces) == data
    # One write per byte, and the receiver read them in more than one go.
    assert len(pieces) > 1
    assert all(len(piece) < len(data) for piece in pieces)


# -- delay -----------------------------------------------------------------------------------------


@BOTH
async def test_delay_holds_each_chunk_in_order_and_only_this_way(pair: Pair, direction: Direction) -> None:
    loop = asyncio.get_running_loop()
    sender, receiver = pair.ends(direction)
    pair.proxy.set(direction, Fault.delay(0.2))
    started = loop.time()
    await send(sender, b"first ")
    await send(sender, b"second")
    assert b"".join(await recv_exactly(receiver, 12)) == b"first second"
    assert loop.time() - started >= 0.2 - SLACK
    # The other way is not delayed.
    started = loop.time()
    await send(receiver, b"back")
    await recv_exactly(sender, 4)
    assert loop.time() - started < 0.2


async def test_switching_a_delay_off_releases_what_it_holds(pair: Pair) -> None:
    pair.proxy.set(Direction.TO_SERVER, Fault.delay(30))
    await send(pair.client, b"held")
    await pair.proxy.upstream.wait_seen(4)
    pair.proxy.set(Direction.TO_SERVER, Fault.none())
    assert b"".join(await recv_exactly(pair.server, 4)) == b"held"  # well within BOUND, not 30 s


# -- drop ------------------------------------------------------------------------------------------


@BOTH
async def test_drop_swallows_bytes_and_keeps_both_connections_open(pair: Pair, direction: Direction) -> None:
    sender, receiver = pair.ends(direction)
    flow = pair.flow(direction)
    pair.proxy.set(direction, Fault.drop())
    await send(sender, b"0123456789")
    await flow.wait_seen(10)
    assert flow.dropped == 10
    await assert_nothing_arrives(receiver)
    # Both sockets are still up: the other way works, and so does this way once switched back.
    await send(receiver, b"ack")
    assert b"".join(await recv_exactly(sender, 3)) == b"ack"
    pair.proxy.set(direction, Fault.none())
    await send(sender, b"again")
    assert b"".join(await recv_exactly(receiver, 5)) == b"again"


# -- cut -------------------------------------------------------------------------------------------


@BOTH
async def test_cut_forwards_exactly_k_bytes_then_closes_both(pair: Pair, direction: Direction) -> None:
    sender, receiver = pair.ends(direction)
    pair.proxy.set(direction, Fault.cut(4))
    await send(sender, b"0123456789")
    assert await recv_until_eof(receiver) == b"0123"  # a message cut short, then FIN
    assert await recv_until_eof(sender) == b""  # the sender's side is closed too
    await pair.proxy.wait_links(0)
    assert pair.flow(direction).forwarded == 4


async def test_cut_counts_across_writes_and_chunks(pair: Pair) -> None:
    pair.proxy.set(Direction.TO_CLIENT, Fault.cut(5, chunk=2))
    await send(pair.server, b"abc")
    await pair.proxy.downstream.wait_forwarded(3)
    await send(pair.server, b"defgh")
    assert await recv_until_eof(pair.client) == b"abcde"


async def test_cut_after_zero_bytes_closes_at_once(pair: Pair) -> None:
    pair.proxy.set(Direction.TO_SERVER, Fault.cut(0))
    assert await recv_until_eof(pair.server) == b""
    assert await recv_until_eof(pair.client) == b""


# -- reset -----------------------------------------------------------------------------------------


@BOTH
async def test_reset_sends_rst_to_the_receiver_fin_to_the_sender(pair: Pair, direction: Direction) -> None:
    sender, receiver = pair.ends(direction)
    pair.proxy.set(direction, Fault.reset())
    await assert_reset(receiver)
    assert await recv_until_eof(sender) == b""
    await pair.proxy.wait_links(0)


async def test_a_connection_made_during_a_reset_is_reset_at_once(pair: Pair, listener: socket.socket) -> None:
    pair.proxy.set(Direction.TO_CLIENT, Fault.reset())
    await assert_reset(pair.client)
    late = await connect(pair.proxy.port)
    try:
        await assert_reset(late)
    finally:
        late.close()


# -- silent ----------------------------------------------------------------------------------------


@BOTH
async def test_silent_moves_nothing_and_keeps_sockets_open(pair: Pair, direction: Direction) -> None:
    sender, receiver = pair.ends(direction)
    flow = pair.flow(direction)
    pair.proxy.set(direction, Fault.silent())
    await send(sender, b"0123456789")
    sender.shutdown(socket.SHUT_WR)  # not even the sender's FIN gets through
    await assert_nothing_arrives(receiver)
    assert flow.seen == 0  # the proxy does not read: the bytes wait in the kernel
    # The other way still flows.
    await send(receiver, b"still here")
    assert b"".join(await recv_exactly(sender, 10)) == b"still here"
    # Back to normal: what was held arrives, then the FIN, in order.
    pair.proxy.set(direction, Fault.none())
    assert await recv_until_eof(receiver) == b"0123456789"


async def test_silence_pushes_back_on_the_sender(pair: Pair) -> None:
    """The proxy stops reading, so the sender's kernel buffers fill and its writes block."""
    pair.proxy.set(Direction.TO_SERVER, Fault.silent())
    block = b"x" * 65536
    sent = 0
    with pytest.raises(BlockingIOError):  # noqa: PT012 - the loop is what fills the buffers
        while sent < 256 * 1024 * 1024:  # far beyond any loopback buffer: a bound, not a goal
            sent += pair.client.send(block)
    assert pair.proxy.upstream.seen == 0
    await assert_nothing_arrives(pair.server)


async def test_silence_hides_the_senders_reset(pair: Pair) -> None:
    """Half-open: the client vanishes with a RST; the server hears nothing of it."""
    pair.proxy.set(Direction.TO_SERVER, Fault.silent())
    pair.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    pair.client.close()
    await assert_nothing_arrives(pair.server)
    assert pair.proxy.links == 1


# -- close -----------------------------------------------------------------------------------------


@BOTH
async def test_close_is_a_half_close_towards_the_receiver(pair: Pair, direction: Direction) -> None:
    sender, receiver = pair.ends(direction)
    flow = pair.flow(direction)
    await send(sender, b"before")
    await flow.wait_forwarded(6)
    pair.proxy.set(direction, Fault.close())
    assert await recv_until_eof(receiver) == b"before"  # what was read goes first, then FIN
    # Half-closed: the receiver can still talk back...
    await send(receiver, b"reply")
    assert b"".join(await recv_exactly(sender, 5)) == b"reply"
    # ...and what the sender sends now is dropped.
    await send(sender, b"after")
    await flow.wait_seen(11)
    assert flow.dropped == 5
    # The receiver closing too ends the connection for both.
    receiver.shutdown(socket.SHUT_WR)
    assert await recv_until_eof(sender) == b""
    await pair.proxy.wait_links(0)


# -- what the ends do themselves -----------------------------------------------------------------------


@BOTH
async def test_an_ends_fin_travels_as_a_fin(pair: Pair, direction: Direction) -> None:
    sender, receiver = pair.ends(direction)
    await send(sender, b"last words")
    sender.shutdown(socket.SHUT_WR)
    assert await recv_until_eof(receiver) == b"last words"
    await send(receiver, b"answer")
    assert b"".join(await recv_exactly(sender, 6)) == b"answer"
    receiver.shutdown(socket.SHUT_WR)
    assert await recv_until_eof(sender) == b""
    await pair.proxy.wait_links(0)


async def test_an_ends_reset_reaches_the_other_end_as_a_clean_close(pair: Pair) -> None:
    pair.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    pair.client.close()
    assert await recv_until_eof(pair.server) == b""
    await pair.proxy.wait_links(0)


async def test_delay_holds_a_close_behind_the_bytes(pair: Pair) -> None:
    loop = asyncio.get_running_loop()
    pair.proxy.set(Direction.TO_CLIENT, Fault.delay(0.2))
    started = loop.time()
    await send(pair.server, b"bye")
    pair.server.shutdown(socket.SHUT_WR)
    assert await recv_until_eof(pair.client) == b"bye"
    assert loop.time() - started >= 0.2 - SLACK


# -- the proxy itself --------------------------------------------------------------------------------


async def test_leaving_closes_every_socket_and_task(listener: socket.socket) -> None:
    tasks_before = asyncio.all_tasks()
    clients: list[socket.socket] = []
    servers: list[socket.socket] = []
    try:
        async with FaultProxy("127.0.0.1", listener.getsockname()[1]) as proxy:
            port = proxy.port
            for _ in range(3):
                clients.append(await connect(port))
                servers.append(await accept(listener))
            proxy.set(Direction.TO_SERVER, Fault.silent())
            proxy.set(Direction.TO_CLIENT, Fault.delay(30))
            await send(servers[0], b"held for 30 s")
            await proxy.downstream.wait_seen(13)
            await proxy.wait_links(3)
        for sock in clients + servers:
            # Aborted: a FIN or a RST, never silence.
            with contextlib.suppress(ConnectionResetError):
                await recv_until_eof(sock)
        assert asyncio.all_tasks() == tasks_before
        with pytest.raises(ConnectionRefusedError):
            await connect(port)
    finally:
        for sock in clients + servers:
            sock.close()


async def test_leaving_while_a_connection_is_being_set_up_returns(listener: socket.socket) -> None:
    """Left a loop turn later each time, so some land inside the proxy's connect to the server.

    On uvloop such a connect, cancelled just after its socket came up, closes
    the socket without telling the protocol: leaving must not wait for a
    notice that never comes.
    """
    for turns in range(12):
        async with asyncio.timeout(BOUND):
            proxy = FaultProxy("127.0.0.1", listener.getsockname()[1])
            await proxy.start()
            client = await connect(proxy.port)
            try:
                for _ in range(turns):
                    await asyncio.sleep(0)  # one loop turn, to move the close later each time
                await proxy.close()
            finally:
                client.close()
        with contextlib.suppress(BlockingIOError):
            while True:
                listener.accept()[0].close()  # what reached the server


async def test_a_server_that_is_not_there_gets_the_client_aborted() -> None:
    spare = socket.socket()
    spare.bind(("127.0.0.1", 0))
    dead_port = spare.getsockname()[1]
    spare.close()  # nothing listens there now
    async with FaultProxy("127.0.0.1", dead_port) as proxy:
        client = await connect(proxy.port)
        try:
            with contextlib.suppress(ConnectionResetError):
                assert await recv_until_eof(client) == b""
            await proxy.wait_links(0)
        finally:
            client.close()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Fault.delay(-1), "delay"),
        (lambda: Fault.delay(float("nan")), "delay"),
        (lambda: Fault.cut(-1), "cut"),
        (lambda: Fault.none(chunk=0), "chunk"),
    ],
)
def test_nonsense_faults_are_refused(make: object, message: str) -> None:
    assert callable(make)
    with pytest.raises(ValueError, match=message):
        make()


async def test_the_shorthands_set_faults(pair: Pair) -> None:
    up = pair.proxy.upstream
    up.drop = True
    assert up.fault == Fault.drop()
    assert up.drop
    up.drop = False
    assert up.fault.kind is FaultKind.NONE
    up.delay = 0.5
    assert up.fault == Fault.delay(0.5)
    assert up.delay == 0.5
    up.delay = 0
    assert up.fault.kind is FaultKind.NONE
    pair.proxy.set(Direction.TO_CLIENT, Fault.silent())
    pair.proxy.clear()
    assert pair.proxy.downstream.fault == Fault.none()
    assert "to-server" in repr(up)
