"""Benchmarks, kept in the repository and out of the installed package.

``python benchmarks/compare.py`` runs the end-to-end comparison (its servers and
load client are in ``benchmarks.harness``); ``pytest benchmarks/ --benchmark-only``
runs the micro-benchmarks (pytest-benchmark). See ``docs/benchmarks.md``.
"""
