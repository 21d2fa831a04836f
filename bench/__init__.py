"""The benchmark suite: sandbox overhead, build cache, proxy throughput, concurrency, runtime overhead.

Run it with `python -m bench` from the repository root (see bench/run.py and docs/benchmarks.md). Parts live
in `bench.parts`; statistics and verdicts in `bench.stats`; the Markdown report and the chart in
`bench.report`. `bench/runtime_overhead.py` also runs on its own.
"""
