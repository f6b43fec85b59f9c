"""Coverage-guided fuzzing of the sans-IO decoder with atheris (libFuzzer).

    pip install atheris
    python tests/fuzz/fuzz_decoder.py -atheris_runs=50000          # seeds made in code
    python tests/fuzz/fuzz_decoder.py -atheris_runs=50000 CORPUS   # or a corpus folder of your own

The property, for any input: the bytes fed whole, in reads of a size the input
chooses, and one byte at a time raise nothing but ``ProtocolError`` (one
short line), and all three deliver the same events and agree on whether the
stream is bad. The first byte of an input picks the limits and whether the
extension is accepted, the second the read size; the rest is the stream.

Not a pytest module (no ``test_`` prefix); ``tests/wire/test_fuzz.py`` checks
the same property with hypothesis in the normal test run.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import tempfile
from pathlib import Path
from typing import Any

import msgpack

# atheris ships no type hints: its few calls here are typed at the call sites.
atheris: Any = importlib.import_module("atheris")

with atheris.instrument_imports(include=["asyncrpc.wire"]):
    from asyncrpc.errors import ProtocolError
    from asyncrpc.wire import DEFAULT_LIMITS, Decoder, Encoder, Event, Limits, Notification, Request, Response

# Small limits, so that short inputs reach each of them.
SMALL = Limits(
    max_message_size=300,
    max_str_len=40,
    max_bin_len=40,
    max_ext_len=16,
    max_array_len=12,
    max_map_len=6,
    max_depth=5,
)


def outcome(decoder: Decoder, chunks: list[bytes]) -> tuple[list[Event], bool]:
    """Every event, and whether a ProtocolError ended the stream; anything else propagates."""
    events: list[Event] = []
    for chunk in chunks:
        decoder.receive_data(chunk)
        try:
            events.extend(decoder)
        except ProtocolError as exc:
            message = str(exc)
            if "\n" in message or len(message) >= 200:
                raise AssertionError(f"error message not one short line: {message[:300]!r}") from exc
            return events, True
    return events, False


def test_one_input(data: bytes) -> None:
    """The property for one input (libFuzzer's entry point)."""
    if len(data) < 2:
        return
    options, read, stream = data[0], data[1] % 64 + 1, data[2:]
    limits = SMALL if options & 1 else DEFAULT_LIMITS
    accept_extension = bool(options & 2)
    whole = outcome(Decoder(limits, accept_extension=accept_extension), [stream])
    reads = outcome(
        Decoder(limits, accept_extension=accept_extension),
        [stream[i : i + read] for i in range(0, len(stream), read)],
    )
    bytewise = outcome(
        Decoder(limits, accept_extension=accept_extension), [stream[i : i + 1] for i in range(len(stream))]
    )
    # Compared as bytes: a NaN in a message is not equal to itself.
    if not encoded(whole) == encoded(reads) == encoded(bytewise):
        raise AssertionError(f"splits disagree: whole {whole}, reads of {read} {reads}, bytewise {bytewise}")


def encoded(result: tuple[list[Event], bool]) -> tuple[list[bytes], bool]:
    events, failed = result
    return [as_bytes(event) for event in events], failed


def as_bytes(event: Event) -> bytes:
    """An event, comparable as bytes (a NaN in a message is not equal to itself)."""
    fields = [getattr(event, field.name) for field in dataclasses.fields(event)]
    packed = msgpack.packb(
        [type(event).__name__, *fields], use_bin_type=True, unicode_errors="surrogateescape", datetime=True
    )
    return bytes(packed)


def seeds() -> list[bytes]:
    """A small seed corpus: valid streams, and the shapes of known attacks."""
    encoder = Encoder()
    valid = b"".join(
        encoder.send(event)
        for event in (
            Request(7, "add", [1, 2]),
            Request(8, "slow", [0.5], {"timeout": 1.5}),
            Response(7, None, {"rows": [[1, "a", [1, 1]], [2, "b", [2, 2]]]}),
            Response(9, [0, "ValueError: bad"], None),
            Notification("redraw", [["grid_line", [1, 2, 3, [["a", 1]]]]]),
        )
    )
    attacks = [
        b"\xdd\x00\x10\x00\x00" * 40,
        b"\x94\x00\x01\xa1m" + b"\x91" * 80 + b"\x00",
        b"\x94\x00" + b"\x91" * 100 + b"\x00\xa1m\x90",
        b"\x94\x00" + b"\x91" * 1000 + b"\x00\xa1m\x90",  # deeper than repr() goes
        b"\x81\xa1k" * 1000 + b"\x00",
        b"\x94\x00\x01\xa1m\x91\xdb\x7f\xff\xff\xff",
        b"\x81\x91\x01\x02",
        b"\x94\x01\x01\xc0\xd7\xff" + b"\xff" * 8,
        msgpack.packb([0, 1, "m", [msgpack.ExtType(5, b"xyz")]]),
        # Responses over the small limits: skipped, with the messages around them kept.
        msgpack.packb([1, 2, None, 0])
        + msgpack.packb([1, 3, None, "x" * 400])
        + msgpack.packb([1, 4, None, 1]),
        b"\x94\x01\xcd\x01\x00\xc0\xdb\x00\x00\x10\x00" + b"y" * 40 + msgpack.packb([2, "n", []]),
        msgpack.packb([1, -1, "Not Implemented", None]),
    ]
    return [bytes([options, read]) + body for body in (valid, *attacks) for options, read in ((0, 0), (3, 6))]


def main(argv: list[str]) -> None:
    """Run libFuzzer; without a corpus folder among the arguments, seed one made in code."""
    args = list(argv)
    if not any(Path(arg).is_dir() for arg in args[1:] if not arg.startswith("-")):
        corpus = Path(tempfile.mkdtemp(prefix="asyncrpc-fuzz-"))
        for index, seed in enumerate(seeds()):
            (corpus / f"seed-{index:02}").write_bytes(seed)
        args.append(str(corpus))
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
