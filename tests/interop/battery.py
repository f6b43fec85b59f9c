"""The battery's values, shared by the pytest side and the Python peer programs (no pytest here:
those run in the peers' own venvs). ``go/peer.go`` and ``node/peer.js`` hold the same values."""

from __future__ import annotations

from typing import Any

STR = "text"
BIN = b"\x00\x01\xfe\xff"
LARGE_STR = "0123456789abcdef" * (1 << 16)  # 1 MiB
LARGE_BIN = b"\x00\x80\xff\x07" * (1 << 18)  # 1 MiB
UNICODE = "emoji \U0001f600 combining e\u0301 CJK \u6f22 nul \x00"
INT64 = {"min": -(2**63), "max": 2**63 - 1, "uint64_max": 2**64 - 1}
NOTE = "noted"
CONCURRENT = 100
STEP_MS = 3  # call i of CONCURRENT is delayed_echo(STEP_MS * (CONCURRENT - i), i): the first waits longest,
# 300 ms, and the replies come back reversed unless the calls arrive more than STEP_MS apart


def delay_ms(i: int) -> int:
    return STEP_MS * (CONCURRENT - i)


FAIL_MESSAGE = "boom"


def old_spec(value: Any) -> Any:
    """What survives a peer that packs str and bytes alike as msgpack str (the old spec).

    Read with ``raw_strings=True`` every str arrives as ``bytes``: the type is lost, the bytes kept.
    """
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, list | tuple):
        return [old_spec(item) for item in value]
    return value


def same(actual: Any, expected: Any) -> bool:
    """Equal and of the same types, all the way down (``b"x" == "x"`` must not pass unnoticed)."""
    if type(actual) is not type(expected):
        return False
    if isinstance(expected, list | tuple):
        return len(actual) == len(expected) and all(map(same, actual, expected))
    return bool(actual == expected)
