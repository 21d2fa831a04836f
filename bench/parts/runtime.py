"""Native runtime per-step overhead (bench/runtime_overhead.py) and `sandbox --help` start-up time.

* Overhead: `runtime_overhead.run()` drives the native runtime against the in-process scripted server;
  a step's overhead is the step time minus the model call, so model time is excluded by construction.
  Reported for the CLI's configuration (job store on, durable writes) and for the bare loop (no store);
  the baseline beside it is the scripted model call of the same run.
* Start-up: `sandbox --help` (the installed console script, a fresh process each time) against
  `python -c pass` with the same interpreter, interleaved, after a warm-up, so the ratio is what this
  project's imports cost. The heaviest imports (from `-X importtime`) are recorded for whoever wants to
  cut them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..harness import BenchError, log, timed
from ..report import Row, fmt_ms, fmt_summary
from ..stats import ratio, summarize
from . import Context, PartResult

__all__ = ["run_runtime", "run_startup"]


def run_runtime(ctx: Context) -> PartResult:
    from .. import runtime_overhead

    result = PartResult("runtime")
    configs = [
        ("with the job store, durable writes: the CLI default", True, True),
        ("no job store", False, False),
    ]
    for label, store, durable in configs:
        log(f"runtime overhead: {ctx.runtime_steps} steps, {label}")
        data: dict[str, Any] = runtime_overhead.run(ctx.runtime_steps, store=store, durable=durable)
        if data["exitCode"] != 0:
            raise BenchError(f"runtime overhead run ({label}) exited {data['exitCode']}")
        result.data[label] = data
        over, gen = data["overheadMs"], data["generationMs"]
        result.rows.append(
            Row(
                part="runtime",
                metric=f"per-step overhead, model time excluded, {label}; p50 (p95)",
                value=f"{fmt_ms(over['p50'])} ({fmt_ms(over['p95'])})",
                baseline=f"scripted model call: {fmt_ms(gen['p50'])}",
                ratio=ratio(over["p50"], gen["p50"]),
            )
        )
    return result


def _console_script() -> Path:
    script = Path(sys.executable).parent / "sandbox"
    if not script.exists():
        raise BenchError(f"no `sandbox` console script next to {sys.executable}; install the project first")
    return script


def _top_imports(script: Path, n: int = 8) -> list[dict[str, Any]]:
    """The `n` imports with the largest cumulative time in one `sandbox --help` (-X importtime)."""
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, env=env, check=False)
    return parse_importtime(out.stderr, n)


def parse_importtime(stderr: str, n: int = 8, max_depth: int = 2) -> list[dict[str, Any]]:
    """Imports nested at most `max_depth` deep in a `-X importtime` log, largest cumulative time first."""
    rows: list[tuple[str, float]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        fields = line[len("import time:") :].split("|")
        if len(fields) != 3 or not fields[1].strip().isdigit():
            continue  # the header line
        name = fields[2].rstrip()
        depth = (len(name) - len(name.lstrip()) - 1) // 2  # one space after the bar, then two per level
        if depth <= max_depth:
            rows.append((name.strip(), int(fields[1].strip()) / 1000))
    rows.sort(key=lambda r: r[1], reverse=True)
    return [{"module": m, "cumulativeMs": round(ms, 1)} for m, ms in rows[:n]]


def run_startup(ctx: Context) -> PartResult:
    result = PartResult("startup")
    script = _console_script()
    help_argv = [str(script), "--help"]
    base_argv = [sys.executable, "-c", "pass"]
    for _ in range(max(1, ctx.warmup)):
        timed(help_argv)
        timed(base_argv)
    helps: list[float] = []
    bases: list[float] = []
    runs = max(ctx.runs, 10)
    log(f"start-up: {runs} x `sandbox --help` and `python -c pass`, interleaved")
    for _ in range(runs):
        h = timed(help_argv)
        if h.code != 0:
            raise BenchError(f"sandbox --help failed: {h.describe()}")
        helps.append(h.total_s)
        b = timed(base_argv)
        bases.append(b.total_s)
    sh, sb = summarize(helps), summarize(bases)
    result.data = {
        "sandboxHelpSeconds": sh.to_json(),
        "pythonPassSeconds": sb.to_json(),
        "raw": {"sandboxHelp": [round(x, 4) for x in helps], "pythonPass": [round(x, 4) for x in bases]},
        "topImports": _top_imports(script),
        "addedSecondsMedian": round(sh.median - sb.median, 4),
    }
    result.rows.append(
        Row(
            part="startup",
            metric="`sandbox --help` start-up, median (min–max)",
            value=fmt_summary(sh.scaled(1000), "ms"),
            baseline=f"`python -c pass`: {fmt_summary(sb.scaled(1000), 'ms')}",
            ratio=ratio(sh.median, sb.median),
        )
    )
    return result
