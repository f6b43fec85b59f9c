"""The cancel and deadline extension, byte by byte, as it travels on a real socket.

The client side is checked against a scripted raw peer (a plain asyncio server
that records every byte); the server side with a raw client that writes bytes.
The expected bytes are written out by hand from the MessagePack spec: they are
the protocol (``docs/protocol.md`` shows the same examples).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import Any

import msgpack
import pytest

import asyncrpc
from asyncrpc import CallCancelled, CallStatus, DeadlineExceeded
from tests.services import BOUND

# [0, 0, "asyncrpc.hello", [{"protocol": "asyncrpc", "version": 1,
#                            "features": ["cancel", "deadline", "errors"]}]]
HELLO_REQUEST = bytes.fromhex(
    "94 00 00"  # array of 4: request, msgid 0
    " ae 6173796e637270632e68656c6c6f"  # str 14 "asyncrpc.hello"
    " 91 84"  # params: array of 1, a map of 4
    " a8 70726f746f636f6c a8 6173796e63727063"  # "protocol": "asyncrpc"
    " a7 76657273696f6e 01"  # "version": 1
    " a8 6665617475726573 93"  # "features": array of 3
    " a6 63616e63656c a8 646561646c696e65 a6 6572726f7273"  # "cancel", "deadline", "errors"
    " b0 6d61785f6d6573736167655f73697a65 ce 01000000"  # "max_message_size": 16 MiB
)
# [1, 0, nil, {"protocol": "asyncrpc", "version": 1, "features": [...]}]
HELLO_RESPONSE = bytes.fromhex(
    "94 01 00 c0 84"
    " a8 70726f746f636f6c a8 6173796e63727063"
    " a7 76657273696f6e 01"
    " a8 6665617475726573 93 a6 63616e63656c a8 646561646c696e65 a6 6572726f7273"
    " b0 6d61785f6d6573736167655f73697a65 ce 01000000"
)
# [0, 1, "add", [1, 2], {"timeout": 1.5}]
ADD_WITH_TIMEOUT = bytes.fromhex(
    "95 00 01 a3 616464 92 01 02"  # array of 5: request, msgid 1, "add", [1, 2]
    " 81 a7 74696d656f7574 cb 3ff8000000000000"  # {"timeout": float64 1.5}
)
# [0, 1, "add", [1, 2]]: the same call as a plain peer gets it
ADD_PLAIN = bytes.fromhex("94 00 01 a3 616464 92 01 02")
# [2, "asyncrpc.cancel", [1]]
CANCEL_1 = bytes.fromhex("93 02 af 6173796e637270632e63616e63656c 91 01")


class RawPeer:
    """A scripted msgpack-rpc server on a loopback port that records the exact bytes of each message."""

    def __init__(self, *, speaks_asyncrpc: bool) -> None:
        self.speaks_asyncrpc = speaks_asyncrpc
        self.messages: asyncio.Queue[tuple[list[Any], bytes]] = asyncio.Queue()
        self.writer: asyncio.StreamWriter | None = None
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        unpacker = msgpack.Unpacker(raw=False)
        stream = bytearray()
        start = 0
        while data := await reader.read(65536):
            stream += data
            unpacker.feed(data)
            for message in unpacker:
                end = unpacker.tell()
                raw = bytes(stream[start:end])
                start = end
                if message[0] == 0 and message[2] == "asyncrpc.hello":
                    if self.speaks_asyncrpc:
                        self.send([1, message[1], None, message[3][0]])
                    else:  # what Neovim answers
                        self.send([1, message[1], [0, "Invalid method: asyncrpc.hello"], None])
                await self.messages.put((message, raw))

    def send(self, message: list[Any]) -> None:
        assert self.writer is not None
        self.writer.write(msgpack.packb(message, use_bin_type=True))

    async def next(self) -> tuple[list[Any], bytes]:
        async with asyncio.timeout(BOUND):
            return await self.messages.get()


@pytest.fixture
async def peer() -> AsyncIterator[RawPeer]:
    p = RawPeer(speaks_asyncrpc=True)
    await p.start()
    yield p
    await p.close()


@pytest.fixture
async def plain_peer() -> AsyncIterator[RawPeer]:
    p = RawPeer(speaks_asyncrpc=False)
    await p.start()
    yield p
    await p.close()


async def connected(peer: RawPeer, **options: Any) -> asyncrpc.Client:
    client = await asyncrpc.connect("127.0.0.1", peer.port, **options)
    if options.get("extensions", True):
        _, raw = await peer.next()
        assert raw == HELLO_REQUEST
    return client


async def assert_nothing_else_sent(client: asyncrpc.Client, peer: RawPeer) -> None:
    """The next message the peer reads is a fresh sentinel request: nothing was sent before it."""
    sentinel = client.call("sentinel")
    message, _ = await peer.next()
    assert message == [0, sentinel.msgid, "sentinel", []]
    peer.send([1, sentinel.msgid, None, "ok"])
    async with asyncio.timeout(BOUND):
        assert await sentinel == "ok"


# -- what the client writes ------------------------------------------------------------------


async def test_client_hello_probe_bytes(peer: RawPeer) -> None:
    async with await connected(peer) as client:
        assert client.features == frozenset({"cancel", "deadline", "errors"})


async def test_request_with_timeout_bytes(peer: RawPeer) -> None:
    async with await connected(peer) as client:
        call = client.call("add", 1, 2, timeout=1.5)
        message, raw = await peer.next()
        assert raw == ADD_WITH_TIMEOUT
        assert message == [0, 1, "add", [1, 2], {"timeout": 1.5}]
        peer.send([1, 1, None, 3])
        async with asyncio.timeout(BOUND):
            assert await call == 3


async def test_integer_timeout_travels_as_float(peer: RawPeer) -> None:
    async with await connected(peer) as client:
        client.call("add", 1, 2, timeout=2)
        _, raw = await peer.next()
        assert raw.endswith(bytes.fromhex("81 a7 74696d656f7574 cb 4000000000000000"))  # 2.0


async def test_abortive_cancel_notification_bytes(peer: RawPeer) -> None:
    async with await connected(peer) as client:
        call = client.call("add", 1, 2)
        assert call.msgid == 1
        call.cancel()
        assert call.status() is CallStatus.CANCELLED
        _, request = await peer.next()
        _, cancel = await peer.next()
        assert request == ADD_PLAIN
        assert cancel == CANCEL_1
        # The peer's answer to the cancelled call is absorbed; the id is freed.
        assert client.connection.pending_count == 1
        peer.send([1, 1, {"type": "CallCancelled", "message": "'add' cancelled on the server"}, None])
        await assert_nothing_else_sent(client, peer)
        assert client.connection.pending_count == 0
        assert call.status() is CallStatus.CANCELLED


async def test_non_abortive_cancel_and_its_escalation_send_one_cancel(peer: RawPeer) -> None:
    async with await connected(peer) as client:
        call = client.call("add", 1, 2)
        call.cancel(abort=False, timeout=0.05)
        call.cancel(abort=False)  # asking again sends nothing more
        _, request = await peer.next()
        _, cancel = await peer.next()
        assert (request, cancel) == (ADD_PLAIN, CANCEL_1)
        with pytest.raises(CallCancelled):
            async with asyncio.timeout(BOUND):
                await call  # escalated: the peer never answered
        await assert_nothing_else_sent(client, peer)


async def test_deadline_sends_no_cancel_to_a_peer_that_enforces_it(peer: RawPeer) -> None:
    async with await connected(peer) as client:
        call = client.call("add", 1, 2, timeout=0.05)
        message, _ = await peer.next()
        assert message[4] == {"timeout": 0.05}
        with pytest.raises(DeadlineExceeded):
            async with asyncio.timeout(BOUND):
                await call
        await assert_nothing_else_sent(client, peer)


async def test_plain_peer_never_sees_extension_bytes(plain_peer: RawPeer) -> None:
    async with await connected(plain_peer) as client:
        assert client.features == frozenset()
        call = client.call("add", 1, 2, timeout=0.05)
        _, raw = await plain_peer.next()
        assert raw == ADD_PLAIN  # four elements, no timeout map
        with pytest.raises(DeadlineExceeded):
            async with asyncio.timeout(BOUND):
                await call  # ended locally
        aborted = client.call("add", 3, 4)
        aborted.cancel()
        polite = client.call("add", 5, 6)
        polite.cancel(abort=False)
        assert aborted.status() is CallStatus.CANCELLED
        assert (await plain_peer.next())[0] == [0, 2, "add", [3, 4]]
        assert (await plain_peer.next())[0] == [0, 3, "add", [5, 6]]
        await assert_nothing_else_sent(client, plain_peer)  # no cancel notifications
        plain_peer.send([1, 3, None, 11])  # the non-abortive cancel waits for the real answer
        async with asyncio.timeout(BOUND):
            assert await polite == 11


async def test_extensions_off_sends_no_hello(peer: RawPeer) -> None:
    async with await connected(peer, extensions=False) as client:
        call = client.call("add", 1, 2, timeout=1.0)
        message, raw = await peer.next()
        assert message == [0, 0, "add", [1, 2]]  # the first message on the wire
        assert raw == bytes.fromhex("94 00 00 a3 616464 92 01 02")
        call.cancel()
        await assert_nothing_else_sent(client, peer)


# -- what the server does with those bytes ----------------------------------------------------


class Probe:
    def __init__(self) -> None:
        self.cancelled = asyncio.Event()
        self.deadlines: list[float | None] = []

    async def hang(self) -> None:
        self.deadlines.append(asyncrpc.current_call().deadline)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise

    async def ping(self) -> str:
        self.deadlines.append(asyncrpc.current_call().deadline)
        return "pong"


class RawClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.unpacker = msgpack.Unpacker(raw=False)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def receive(self) -> Any:
        async with asyncio.timeout(BOUND):
            while True:
                for message in self.unpacker:
                    return message
                data = await self.reader.read(65536)
                assert data, "server closed the connection"
                self.unpacker.feed(data)


@pytest.fixture
async def raw_client() -> AsyncIterator[tuple[RawClient, Probe]]:
    probe = Probe()
    server = asyncrpc.Server()
    server.register(probe, namespace="p")
    await server.start("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    client = RawClient(reader, writer)
    client.send(HELLO_REQUEST)
    raw_answer = await client.receive()
    assert msgpack.packb(raw_answer, use_bin_type=True) == HELLO_RESPONSE
    yield client, probe
    writer.close()
    await server.close(grace=1.0)


def request(msgid: int, method: str, extension: dict[str, Any] | None = None) -> bytes:
    message: list[Any] = [0, msgid, method, []]
    if extension is not None:
        message.append(extension)
    return bytes(msgpack.packb(message, use_bin_type=True))


async def test_server_cancels_handler_on_cancel_notification(raw_client: tuple[RawClient, Probe]) -> None:
    client, probe = raw_client
    client.send(request(7, "p.hang"))
    client.send(request(6, "p.ping"))
    assert await client.receive() == [1, 6, None, "pong"]  # so p.hang is running by now
    client.send(bytes.fromhex("93 02 af 6173796e637270632e63616e63656c 91 07"))  # cancel msgid 7
    kind, msgid, error, result = await client.receive()
    assert (kind, msgid, result) == (1, 7, None)
    assert error == {"type": "CallCancelled", "message": "'p.hang' cancelled on the server"}
    assert probe.cancelled.is_set()


async def test_server_enforces_deadline_from_request(raw_client: tuple[RawClient, Probe]) -> None:
    client, probe = raw_client
    loop = asyncio.get_running_loop()
    sent = loop.time()
    client.send(request(8, "p.hang", {"timeout": 0.05}))
    kind, msgid, error, _ = await client.receive()
    assert (kind, msgid) == (1, 8)
    assert error["type"] == "DeadlineExceeded"
    assert probe.cancelled.is_set()
    deadline = probe.deadlines[0]
    assert deadline is not None
    assert sent < deadline <= sent + 0.05 + 0.05


@pytest.mark.parametrize("timeout", [math.nan, math.inf, "soon", None, [1]])
async def test_server_ignores_unusable_timeout(raw_client: tuple[RawClient, Probe], timeout: Any) -> None:
    client, probe = raw_client
    client.send(request(9, "p.ping", {"timeout": timeout}))
    assert await client.receive() == [1, 9, None, "pong"]
    assert probe.deadlines == [None]
    client.send(request(10, "p.ping"))  # the connection is still in sync
    assert await client.receive() == [1, 10, None, "pong"]


async def test_server_ignores_cancel_for_unknown_or_answered_call(
    raw_client: tuple[RawClient, Probe],
) -> None:
    client, _ = raw_client
    client.send(bytes.fromhex("93 02 af 6173796e637270632e63616e63656c 91 cd 03e7"))  # cancel msgid 999
    client.send(msgpack.packb([2, "asyncrpc.cancel", ["not an id"]]))
    client.send(request(11, "p.ping"))
    assert await client.receive() == [1, 11, None, "pong"]


@pytest.mark.parametrize("error_type", ["CallCancelled", "MessageTooLarge", "DeadlineExceeded"])
async def test_an_error_answer_to_the_hello_of_any_type_means_a_plain_peer(error_type: str) -> None:
    """Whatever error type a peer names in its answer to the probe, it is a plain peer, not a failure."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        unpacker = msgpack.Unpacker(raw=False)
        while data := await reader.read(65536):
            unpacker.feed(data)
            for _, msgid, method, _ in unpacker:
                if method == "asyncrpc.hello":
                    error = {"type": error_type, "message": "no"}
                    writer.write(msgpack.packb([1, msgid, error, None]))
                else:
                    writer.write(msgpack.packb([1, msgid, None, "plain"]))
        writer.close()

    peer = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        port = int(peer.sockets[0].getsockname()[1])
        async with asyncrpc.connect("127.0.0.1", port) as client:
            assert client.features == frozenset()
            assert await client.call("anything") == "plain"
    finally:
        peer.close()
        await peer.wait_closed()
