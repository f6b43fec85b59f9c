"""The end-to-end benchmark's processes: servers and the load client.

``benchmarks/compare.py`` (the runner) starts each of these as
``python -m benchmarks.harness.<module>`` with the repository root as its
working directory, so they run from a checkout with nothing installed but
asyncrpc's own dependencies (and ``grpcio`` for the gRPC server). Every
server runs in a process of its own on 127.0.0.1, started by the runner and
stopped after its round. See ``docs/benchmarks.md``.
"""
