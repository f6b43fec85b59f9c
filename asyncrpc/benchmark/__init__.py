"""Benchmarks: asyncrpc beside a minimal msgpack-rpc baseline and grpc.aio.

``python -m asyncrpc.benchmark.compare`` (also ``asyncrpc bench`` and
``python benchmarks/compare.py``) runs the end-to-end comparison; see
``docs/benchmarks.md``. Every server runs in a process of its own on
127.0.0.1, started by the runner and stopped after its round.
"""
