"""examples/modes_tour.py: every notification mode in turn, one line each."""

from __future__ import annotations

import asyncrpc
from examples.modes_tour import run_modes_tour


async def test_modes_tour_shows_every_mode_one_line_each(client: asyncrpc.Client) -> None:
    lines: list[str] = []
    await run_modes_tour(client, lines.append, delay=0.05)
    header, *modes = lines
    assert "NonAsyncFunc while it is pending" in header
    evidence = {
        "none (await)": "await call -> 'AsyncFunc slept 0.05s'",
        "Polling": "until COMPLETE",
        "Event": "event set",
        "Callback": "fn(call, CALL_COMPLETE) ran on the calling loop",
        "Apc": "a plain wait ran 0 of 1, sleep_ex(alertable=True) ran 1",
        "CompletionPort": "Completion(key='AsyncFunc', call, overlapped={'buf': 1})",
        "MessagePump": "user message, then CALL_COMPLETE for the call",
    }
    assert [line.split()[0] for line in modes] == [name.split()[0] for name in evidence]
    for line, (name, shown) in zip(modes, evidence.items(), strict=True):
        assert line.strip().startswith(name)
        assert shown in line, line
    assert client.connection.pending_count == 0
