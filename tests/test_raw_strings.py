"""Old-spec peers: ``raw_strings=True`` (issue 9, item 5).

Peers from before msgpack's str/bin split (msgpack-rpc-python, aiorpc) pack
``bytes`` and ``str`` alike as msgpack str. By default asyncrpc reads a str as
``str`` (with lone surrogates where it is not UTF-8), so such a peer's bytes
come out as text. With ``raw_strings=True`` every str arrives as ``bytes``,
and both bytes and str go out as msgpack str, which is all the old spec has.
Method names and error messages are still read as text.

The old-spec peers here are real sockets on 127.0.0.1 speaking through
msgpack's own old-spec packer (``use_bin_type=False``) and reader
(``raw=True``), as those libraries do.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgpack
import pytest

import asyncrpc
from asyncrpc.wire import Decoder, Encoder, Event, Notification, Request, Response
from tests.cli_helpers import cli
from tests.services import BOUND

Capture = pytest.CaptureFixture[str]


def old_pack(message: Any) -> bytes:
    """What an old-spec peer writes: no bin type, every bytes and str a msgpack str."""
    return bytes(msgpack.packb(message, use_bin_type=False))


def old_reader() -> msgpack.Unpacker:
    return msgpack.Unpacker(raw=True)


# -- the codec ----------------------------------------------------------------------------------


def test_the_decoder_builds_strs_as_bytes_but_method_names_as_text() -> None:
    stream = old_pack([0, 1, "echo", ["text", b"\xff\x00"]])
    stream += old_pack([2, "note", ["x"]])
    stream += old_pack([1, 1, None, {"key": "value"}])
    for chunks in ([stream], [stream[i : i + 1] for i in range(len(stream))]):
        decoder = Decoder(raw_strings=True)
        events: list[Event] = []
        for chunk in chunks:
            decoder.receive_data(chunk)
            events.extend(decoder)
        assert events == [
            Request(1, "echo", [b"text", b"\xff\x00"]),
            Notification("note", [b"x"]),
            Response(1, None, {b"key": b"value"}),
        ]


@pytest.mark.parametrize(
    ("error", "read"),
    [
        (b"'nosuch' method not found", "'nosuch' method not found"),
        ([0, b"ValueError: boom"], [0, "ValueError: boom"]),
        ({b"message": b"boom", b"type": b"ValueError"}, {"message": "boom", "type": "ValueError"}),
        (b"\xff not utf-8", "\udcff not utf-8"),
        (7, 7),
    ],
)
def test_an_error_objects_strs_are_read_as_text(error: Any, read: Any) -> None:
    decoder = Decoder(raw_strings=True)
    decoder.receive_data(old_pack([1, 3, error, None]))
    assert decoder.next_event() == Response(3, read, None)


def test_the_encoder_packs_bytes_and_str_as_msgpack_str() -> None:
    data = Encoder(raw_strings=True).request(1, "echo", [b"ab", "cd"])
    assert data == old_pack([0, 1, "echo", [b"ab", "cd"]])
    assert b"\xc4" not in data  # no bin 8 header
    assert msgpack.unpackb(data, raw=True) == [0, 1, b"echo", [b"ab", b"cd"]]


def test_by_default_an_old_spec_peers_bytes_read_as_text() -> None:
    """The defect raw_strings answers: b"\\xff\\x00" packed as str becomes a str with a surrogate."""
    decoder = Decoder()
    decoder.receive_data(old_pack([1, 1, None, b"\xff\x00"]))
    assert decoder.next_event() == Response(1, None, "\udcff\x00")


# -- a server for old-spec clients --------------------------------------------------------------


class Echo:
    def echo(self, *values: Any) -> list[Any]:
        return [[type(value).__name__, value] for value in values]

    def fail(self, message: bytes) -> None:
        raise ValueError(message.decode())


async def old_spec_call(port: int, message: list[Any]) -> Any:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(old_pack(message))
        unpacker = old_reader()
        async with asyncio.timeout(BOUND):
            while True:
                data = await reader.read(65536)
                assert data, "the server closed the connection"
                unpacker.feed(data)
                for reply in unpacker:
                    return reply
    finally:
        writer.close()


@pytest.fixture
async def raw_server() -> AsyncIterator[asyncrpc.Server]:
    server = asyncrpc.Server(raw_strings=True, plain_errors="string")
    server.register(Echo(), namespace="e")
    async with server:
        await server.start("127.0.0.1", 0)
        yield server


async def test_an_old_spec_clients_strs_reach_the_handler_as_bytes(raw_server: asyncrpc.Server) -> None:
    reply = await old_spec_call(raw_server.port, [0, 5, "e.echo", [b"\xff\x00", "text", 7]])
    assert reply == [1, 5, None, [[b"bytes", b"\xff\x00"], [b"bytes", b"text"], [b"int", 7]]]


async def test_an_old_spec_client_reads_the_servers_error(raw_server: asyncrpc.Server) -> None:
    assert await old_spec_call(raw_server.port, [0, 6, "e.fail", ["boom"]]) == [
        1,
        6,
        b"ValueError: boom",
        None,
    ]


async def test_a_raw_strings_server_answers_no_hello(raw_server: asyncrpc.Server) -> None:
    """An asyncrpc client is spoken to as a plain peer: the hello's answer would be all bytes."""
    async with asyncrpc.connect("127.0.0.1", raw_server.port) as client:
        assert client.features == frozenset()
        assert await client.call("e.echo", "x", timeout=BOUND) == [["bytes", "x"]]


# -- a client for old-spec servers --------------------------------------------------------------


@asynccontextmanager
async def old_spec_server() -> AsyncIterator[tuple[int, list[Any]]]:
    """Echoes params as an old-spec server would; records every message it got."""
    received: list[Any] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        unpacker = old_reader()
        while data := await reader.read(65536):
            unpacker.feed(data)
            for message in unpacker:
                received.append(message)
                if message[2] == b"echo":
                    writer.write(old_pack([1, message[1], None, message[3]]))
                elif message[0] == 0:
                    error = b"'" + message[2] + b"' method not found"
                    writer.write(old_pack([1, message[1], error, None]))
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1]), received
    finally:
        server.close()
        await server.wait_closed()


async def test_a_raw_strings_client_gets_bytes_and_sends_no_hello() -> None:
    async with (
        old_spec_server() as (port, received),
        asyncrpc.connect("127.0.0.1", port, raw_strings=True) as client,
    ):
        assert await client.call("echo", b"\xff\x00", "text", timeout=BOUND) == [b"\xff\x00", b"text"]
        with pytest.raises(asyncrpc.MethodNotFound) as raised:
            await client.call("nosuch", timeout=BOUND)
        assert raised.value.raw == "'nosuch' method not found"
    assert received[0] == [0, 0, b"echo", [b"\xff\x00", b"text"]]  # the first message: no hello


def test_the_sync_client_takes_raw_strings() -> None:
    async def run() -> Any:
        async with old_spec_server() as (port, _):

            def use() -> Any:
                with asyncrpc.sync.connect("127.0.0.1", port, raw_strings=True) as client:
                    return client.call("echo", "x")

            return await asyncio.to_thread(use)

    assert asyncio.run(run()) == [b"x"]


def test_raw_strings_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="raw_strings must be True or False"):
        asyncrpc.connect("127.0.0.1", 1, raw_strings="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="raw_strings must be True or False"):
        asyncrpc.Server(raw_strings=1)  # type: ignore[arg-type]


async def test_the_command_line_call_takes_raw_strings(capsys: Capture) -> None:
    async with old_spec_server() as (port, received):
        ran = await cli(capsys, "call", "--raw-strings", f"127.0.0.1:{port}", "echo", '"caf\\u00e9"')
    assert ran.status == 0, ran.err
    assert ran.out == '["café"]\n'  # bytes that are UTF-8 print as text
    assert received == [[0, 0, b"echo", ["café".encode()]]]
