"""Per-step overhead of the native runtime, model time excluded, reported as JSON on stdout.

A step is one generation plus its tool calls. The model is the scripted LLM server (real Anthropic wire
protocol, streaming, zero delay); each scripted turn calls the base skill's `think` tool, so a step
exercises the whole path: prompt/message conversion, the SDK request, streaming, tool dispatch, events,
checkpoint and event files. Time is measured with `perf_counter` at each event as it is emitted:

* `step_ms`       - from one `startGeneration` to the next;
* `generation_ms` - from `startGeneration` to the response's first event (`callTools`): the model call
                    including HTTP and SDK parsing, i.e. the part a real model would dominate;
* `overhead_ms`   - `step_ms - generation_ms`: what the runtime itself adds per step.

Run: `.venv/bin/python bench/runtime_overhead.py [--steps 50] [--no-store] [--durable]`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import itertools

from sandbox.agent import run_native
from sandbox.config import PerstackConfig
from sandbox.events import EventBase
from sandbox.jobs import JobStore
from sandbox.options import RunOptions
from sandbox.testing import ScriptedLLMServer, ToolCall, Turn

TOML = """
model = "claude-bench"
[provider]
providerName = "anthropic"
[experts."bench"]
instruction = "Think, then answer."
"""


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "mean": round(statistics.fmean(values), 3),
        "p50": round(_percentile(values, 0.5), 3),
        "p95": round(_percentile(values, 0.95), 3),
        "max": round(max(values), 3),
    }


def run(steps: int, *, store: bool, durable: bool) -> dict[str, Any]:
    turns = [Turn(tool_calls=[ToolCall("think", {"thought": f"step {i}"})]) for i in range(steps - 1)]
    turns.append(Turn("done"))
    marks: list[tuple[str, float]] = []

    def emit(event: EventBase) -> None:
        marks.append((event.type, time.perf_counter()))

    with ScriptedLLMServer(turns, chunk_size=64) as server, tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp)
        options = RunOptions(
            config=PerstackConfig.model_validate(tomllib.loads(TOML)),
            config_path=workspace / "perstack.toml",
            expert_key="bench",
            query="go",
            env={
                "PATH": os.environ.get("PATH", ""),
                "ANTHROPIC_API_KEY": "sk-bench",
                "ANTHROPIC_BASE_URL": server.base_url,
            },
            workspace=workspace,
            jobs_dir=workspace / "perstack" / "jobs",
            reasoning_budget="none",
            max_steps=steps + 5,
        )
        t0 = time.perf_counter()
        job_store = JobStore(options.jobs_dir, durable=durable) if store else None
        code = run_native(options, emit, store=job_store)
        total = time.perf_counter() - t0
    gen_starts = [t for kind, t in marks if kind == "startGeneration"]
    responses = [t for kind, t in marks if kind in ("callTools", "completeRun")]
    step_ms = [(b - a) * 1000 for a, b in itertools.pairwise(gen_starts)]
    gen_ms = [(r - s) * 1000 for s, r in zip(gen_starts, responses, strict=False)][: len(step_ms)]
    overhead = [s - g for s, g in zip(step_ms, gen_ms, strict=True)]
    first_generation = gen_starts[0] - marks[0][1] if gen_starts else 0.0
    return {
        "exitCode": code,
        "steps": len(gen_starts),
        "store": store,
        "durable": durable,
        "totalSeconds": round(total, 3),
        "startupToFirstGenerationMs": round(first_generation * 1000, 3),
        "stepMs": _summary(step_ms),
        "generationMs": _summary(gen_ms),
        "overheadMs": _summary(overhead),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--no-store", action="store_true", help="run with job storage disabled")
    parser.add_argument("--durable", action="store_true", help="fsync checkpoints (the CLI default)")
    args = parser.parse_args()
    results = [run(args.steps, store=not args.no_store, durable=args.durable)]
    if not args.no_store and not args.durable:
        results.append(run(args.steps, store=True, durable=True))
        results.append(run(args.steps, store=False, durable=False))
    print(json.dumps({"benchmark": "runtime_overhead", "results": results}, indent=2))
    return 0 if all(r["exitCode"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
