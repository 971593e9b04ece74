"""Benchmarks: each figure a ratio to a floor measured in the same run.

Run from the project root: ``python -m bench.scale`` (the 10,000-voice benchmark) and
``python -m bench.bench_apply`` (apply throughput). ``floors.py`` and ``profile_child.py``
run as scripts of their own, in child processes, so their imports are only theirs.
"""
