"""End-to-end comparison runner; the same as ``asyncrpc bench``.

    python benchmarks/compare.py [--quick] [--rounds N] [--duration S] [--out DIR] [--only NAME]

See ``asyncrpc/benchmark/compare.py`` and ``docs/benchmarks.md``.
"""

from __future__ import annotations

from asyncrpc.benchmark.compare import main

if __name__ == "__main__":
    raise SystemExit(main())
