"""What a type checker sees of typed interfaces: ``mypy --strict`` run on a sample (issue 10, part 2).

The sample is checked as a program string (``mypy -c``), so that its
deliberate mistakes never reach the project's own ``mypy`` run. Each line
that should draw a note or an error says so in a trailing comment
(``# N: ...`` a note, ``# E: ...`` an error, as mypy prints them); the test
asserts that mypy prints exactly those, line for line.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

ROOT = Path(__file__).resolve().parent.parent

SAMPLE = '''
import abc
import dataclasses

import asyncrpc
from asyncrpc import notify


@dataclasses.dataclass
class Stats:
    count: int
    mean: float


class Calc(asyncrpc.Interface, namespace="calc"):
    @abc.abstractmethod
    async def add(self, a: int, b: int) -> int:
        """Add two integers."""

    @abc.abstractmethod
    async def stats(self, xs: list[float]) -> Stats: ...


class CalcService(Calc):
    async def add(self, a: int, b: int) -> int:
        return a + b

    async def stats(self, xs: list[float]) -> Stats:
        return Stats(len(xs), sum(xs) / len(xs))


class Partial(Calc):
    async def add(self, a: int, b: int) -> int:
        return a


async def use(client: asyncrpc.Client) -> None:
    calc = client.stub(Calc)
    reveal_type(calc)  # N: Revealed type is "__main__.Calc"
    reveal_type(await calc.add(1, 2))  # N: Revealed type is "int"
    reveal_type(await calc.stats([1.0]))  # N: Revealed type is "__main__.Stats"
    await calc.add("x", 2)  # E: Argument 1 to "add" of "Calc" has incompatible type "str"; expected "int"  [arg-type]
    await calc.add(1)  # E: Missing positional argument "b" in call to "add" of "Calc"  [call-arg]
    await calc.nosuch()  # E: "Calc" has no attribute "nosuch"  [attr-defined]
    call = asyncrpc.start(calc.add, timeout=1.0, notify=notify.Polling())(1, 2)
    reveal_type(call)  # N: Revealed type is "asyncrpc.handle.AsyncCall[int]"
    reveal_type(await call)  # N: Revealed type is "int"
    reveal_type(call.complete())  # N: Revealed type is "int"
    asyncrpc.start(calc.add)("x", 2)  # E: Argument 1 has incompatible type "str"; expected "int"  [arg-type]
    untyped = client.stub("calc")
    reveal_type(untyped)  # N: Revealed type is "asyncrpc.client.Stub"
    server = asyncrpc.Server()
    server.register(CalcService())
    Partial()  # E: Cannot instantiate abstract class "Partial" with abstract attribute "stats"  [abstract]


def blocking(host: str, port: int) -> None:
    with asyncrpc.sync.connect(host, port) as c:
        calc = c.stub(Calc)
        reveal_type(c.run(calc.add, 1, 2))  # N: Revealed type is "int"
        reveal_type(c.run(calc.stats, xs=[1.0]))  # N: Revealed type is "__main__.Stats"
        c.run(calc.add, "x", 2)  # E: Argument 2 to "run" of "SyncClient" has incompatible type "str"; expected "int"  [arg-type]
'''

EXPECTED = re.compile(r"#\s*([NE]): (.*)$")


def expected_lines() -> list[str]:
    lines = []
    for number, line in enumerate(SAMPLE.splitlines(), start=1):
        found = EXPECTED.search(line)
        if found is not None:
            kind = "note" if found[1] == "N" else "error"
            lines.append(f"<string>:{number}: {kind}: {found[2].strip()}")
    return lines


@pytest.mark.timeout(180)
def test_mypy_strict_sees_the_interfaces_types(tmp_path: Path) -> None:
    stdout, stderr, status = mypy_api.run(
        [
            "--strict",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            "--no-error-summary",
            "--hide-error-context",
            "--show-error-codes",
            "-c",
            SAMPLE,
        ]
    )
    assert stderr == ""
    printed = [line for line in stdout.splitlines() if line.startswith("<string>:")]
    # mypy adds "Are you missing an await?"-style notes to some errors: only ours count.
    printed = [line for line in printed if "note: " not in line or "Revealed type" in line]
    assert printed == expected_lines(), stdout
    assert status == 1  # the sample's deliberate errors
