"""Warm start of the docker runtime: a one-step Expert (image cached) vs a bare `docker run --rm IMAGE true`.

    python bench/warm_start.py                  # 10 measured rounds after 2 warm-up rounds
    python bench/warm_start.py --runs 20 --warmup 3

Both are measured in the same benchmark run, interleaved round by round (the order alternates, so a slow
moment of a shared machine hits both alike):

* ours: `sandbox run bench go --runtime docker` as a user types it, in a fresh process: CLI start-up,
  plan and render, the image check (no build: a run that builds does not count), networks, the proxy and
  Expert containers, the one model call through the proxy to the scripted LLM server (a container on the
  egress side, over HTTPS), and teardown. Measured to process exit, to the first event, and to `completeRun`.
* bare: `docker run --rm --entrypoint true IMAGE` on the same expert image (its ENTRYPOINT is the runtime,
  so `--entrypoint true` is what "IMAGE true" means for it).

The executor's own phase marks (`SANDBOX_DEBUG_TIMINGS=1`) are collected too, so the report says where the
time goes: host start-up and render, image check, networks, container start, the runtime's start-up inside
the container (first event), and teardown.

Prints one JSON object on stdout: medians with spread (min/max/quartiles) per series, the ratio of the
medians, the per-round ratios' spread, and whether the target (ours <= 3 x bare) was met. Progress goes to
stderr. Exit code 0 when measured (met or not), 2 when the benchmark could not produce a valid number.
The code under test is a frozen copy (bench.harness.Snapshot), so edits during the benchmark cannot make a
warm run rebuild.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/warm_start.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import BenchError, DockerSite, Snapshot, check_run, event_time, log, temp_dir, timed
from bench.stats import Summary, ratio, summarize

TARGET = 3.0
_MARK = re.compile(r"sandbox: timings \(s since start\): (.*)$")


def _phases(stderr: str) -> dict[str, float]:
    for line in stderr.splitlines():
        found = _MARK.search(line)
        if found:
            out = {}
            for part in found.group(1).split():
                name, sep, value = part.partition("=")
                if sep and not name.startswith(("rm-", "rmnet", "up-")):
                    with contextlib.suppress(ValueError):
                        out[name] = float(value)
            age = re.search(r"process started ([0-9.]+) s before start", found.group(1))
            if age:  # the host CLI's own start-up (interpreter, imports, config, plan) before the first mark
                out["cli-start-up"] = float(age.group(1))
            return out
    return {}


def _add_phases(into: dict[str, list[float]], stderr: str) -> None:
    for name, value in _phases(stderr).items():
        into.setdefault(name, []).append(value)


def _rejected(problem: str | None, what: str, failures: list[str]) -> bool:
    """Record a run that does not count (and say so); False when there is no problem."""
    if problem:
        failures.append(problem)
        log(f"warm: {what} does not count: {problem.splitlines()[0]}")
    return bool(problem)


def _summary(values: list[float]) -> dict[str, Any] | None:
    return summarize(values).to_json() if values else None


def measure(runs: int, warmup: int) -> dict[str, Any]:
    work = temp_dir("sandbox-bench-warm-")
    site = DockerSite(Snapshot.create(work), work)
    try:
        site.prepare()
        image = site.expert_image
        workspace = work / "workspace"
        series: dict[str, list[float]] = {
            "oursTotal": [],
            "oursFirstEvent": [],
            "oursComplete": [],
            "standbyTotal": [],
            "bareTotal": [],
        }
        cold_pool, warm_pool = work / "pool-cold", work / "pool-standby"  # cold: a pool never filled
        phases: dict[str, list[float]] = {}
        standby_phases: dict[str, list[float]] = {}
        pairs: list[tuple[float, float]] = []
        failures: list[str] = []
        for round_no in range(warmup + runs):
            record = round_no >= warmup
            results: dict[str, float] = {}

            def ours(record: bool = record, results: dict[str, float] = results) -> None:
                site.script(1)
                proc = timed(
                    site.snapshot.argv(*site.run_args(workspace)),
                    env=site.env(SANDBOX_DEBUG_TIMINGS="1", SANDBOX_STANDBY_DIR=str(cold_pool)),
                    cwd=workspace,
                    timeout=300,
                )
                if _rejected(check_run(proc), "a sandbox run", failures):
                    return
                results["ours"] = proc.total_s
                if record:
                    series["oursTotal"].append(proc.total_s)
                    series["oursFirstEvent"].append(proc.first_line_s or proc.total_s)
                    complete = event_time(proc, "completeRun")
                    if complete is not None:
                        series["oursComplete"].append(complete)
                    _add_phases(phases, proc.stderr)

            def standby(record: bool = record, results: dict[str, float] = results) -> None:
                env = site.env(SANDBOX_DEBUG_TIMINGS="1", SANDBOX_STANDBY_DIR=str(warm_pool))
                _ready_standby(site, workspace, env, warm_pool)  # not measured: the pool's steady state
                site.script(1)
                argv = site.snapshot.argv(*site.run_args(workspace))
                proc = timed(argv, env=env, cwd=workspace, timeout=300)
                problem = check_run(proc) or (
                    "the run did not use the standby" if "networks" in _phases(proc.stderr) else None
                )
                if _rejected(problem, "a standby run", failures):
                    return
                results["standby"] = proc.total_s
                if record:
                    series["standbyTotal"].append(proc.total_s)
                    _add_phases(standby_phases, proc.stderr)
                # The run started a refill in the background: let it finish before anything else is timed,
                # so it slows neither the bare run nor the cold one.
                _ready_standby(site, workspace, env, warm_pool)

            def bare(record: bool = record, results: dict[str, float] = results) -> None:
                proc = timed(["docker", "run", "--rm", "--entrypoint", "true", image], timeout=120)
                if proc.code != 0:
                    raise BenchError(f"bare docker run failed: {proc.describe()}")
                results["bare"] = proc.total_s
                if record:
                    series["bareTotal"].append(proc.total_s)

            workspace.mkdir(parents=True, exist_ok=True)
            for step in (ours, standby, bare) if round_no % 2 == 0 else (bare, standby, ours):
                step()
            if record and "ours" in results:
                pairs.append((results["ours"], results["bare"]))
            log(
                f"round {round_no + 1}/{warmup + runs}{'' if record else ' (warm-up)'}: "
                f"ours {results.get('ours', float('nan')):.2f}s, "
                f"standby {results.get('standby', float('nan')):.2f}s, bare {results['bare']:.2f}s"
            )
        valid = len(series["oursTotal"]) >= max(1, runs // 2)
        ours_summary: Summary | None = summarize(series["oursTotal"]) if series["oursTotal"] else None
        bare_summary = summarize(series["bareTotal"])
        median_ratio = ratio(ours_summary.median if ours_summary else None, bare_summary.median)
        round_ratios = [o / b for o, b in pairs if b > 0]
        standby_summary = summarize(series["standbyTotal"]) if series["standbyTotal"] else None
        standby_ratio = ratio(standby_summary.median if standby_summary else None, bare_summary.median)
        standby_valid = len(series["standbyTotal"]) >= max(1, runs // 2)
        return {
            "benchmark": "warm_start",
            "runs": runs,
            "warmup": warmup,
            "image": image,
            "series": {k: _summary(v) for k, v in series.items()},
            "phases": {k: _summary(v) for k, v in sorted(phases.items(), key=lambda kv: sorted(kv[1])[0])},
            "standbyPhases": {
                k: _summary(v) for k, v in sorted(standby_phases.items(), key=lambda kv: sorted(kv[1])[0])
            },
            "ratio": round(median_ratio, 2) if median_ratio is not None else None,
            "standbyRatio": round(standby_ratio, 2) if standby_ratio is not None else None,
            "roundRatios": _summary(round_ratios),
            "target": {
                "limit": TARGET,
                "op": "<=",
                "met": bool(valid and median_ratio is not None and median_ratio <= TARGET),
                "measured": valid,
                # With `sandbox warm` keeping one standby ready (the run claims it; its teardown stays in).
                "metWithStandby": bool(
                    standby_valid and standby_ratio is not None and standby_ratio <= TARGET
                ),
            },
            "failures": failures[:5],
        }
    finally:
        with contextlib.suppress(Exception):
            timed(
                site.snapshot.argv("warm", "--stop", "--all-experts"),
                env=site.env(SANDBOX_STANDBY_DIR=str(work / "pool-standby")),
                cwd=work,
                timeout=120,
            )
        site.close()
        shutil.rmtree(work, ignore_errors=True)


def _ready_standby(site: DockerSite, workspace: Path, env: dict[str, str], pool: Path) -> None:
    """Make sure one standby is ready (the previous run's refill may still be making it)."""
    args = ["warm", *site.run_args(workspace)[1:]]
    args.remove("--runtime")
    args.remove("docker")
    args.remove("go")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        proc = timed(site.snapshot.argv(*args), env=env, cwd=workspace, timeout=300)
        if proc.code != 0:
            raise BenchError(f"sandbox warm failed: {proc.describe()}")
        if any(p.suffix == ".json" for p in pool.rglob("*.json")):
            return
        time.sleep(0.2)  # another `sandbox warm` (the refill) holds the pool's lock: wait for its standby
    raise BenchError("no standby became ready in 300 s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="measured rounds (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured rounds first (default 2)")
    args = parser.parse_args(argv)
    try:
        result = measure(max(1, args.runs), max(0, args.warmup))
    except BenchError as exc:
        log(f"warm_start: {exc}")
        print(json.dumps({"benchmark": "warm_start", "error": str(exc)}))
        return 2
    print(json.dumps(result, indent=2))
    return 0 if result["target"]["measured"] else 2


if __name__ == "__main__":
    sys.exit(main())
