"""`python -m bench`: run the benchmark suite (or some of its parts) and write the results.

    python -m bench                                  # everything, 10 measured runs per series
    python -m bench --only warm --runs 20            # one part
    python -m bench --only runtime,startup           # no Docker needed
    python -m bench --report-only bench/results/latest.json   # re-render a results file

Writes `bench/results/<UTC timestamp>.json` and `.md`, copies them to `latest.json`/`latest.md`, prints the
Markdown report on stdout (progress goes to stderr), and, after a run of every part (or with `--docs`),
rewrites the generated block of docs/benchmarks.md and the chart docs/benchmarks-warm-start.png. The exit
code is 0 when every part ran and no target was missed, 1 when a target was not met, 2 when a part failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .harness import REPO, BenchError, log
from .machine import describe_machine
from .parts import PART_NAMES, Context, PartResult
from .report import machine_line, render_results, update_doc, warm_chart
from .stats import NOT_MET, Verdict

__all__ = ["main", "parse_only", "results_exit_code"]

RESULTS_DIR = REPO / "bench" / "results"
DOC = REPO / "docs" / "benchmarks.md"
CHART = REPO / "docs" / "benchmarks-warm-start.png"


def _runner(name: str) -> Callable[[Context], PartResult]:
    if name == "runtime":
        from .parts.runtime import run_runtime

        return run_runtime
    if name == "startup":
        from .parts.runtime import run_startup

        return run_startup
    if name == "warm":
        from .parts.warm import run_warm

        return run_warm
    if name == "cold":
        from .parts.cold import run_cold

        return run_cold
    if name == "proxy":
        from .parts.proxy import run_proxy

        return run_proxy
    if name == "concurrency":
        from .parts.concurrency import run_concurrency

        return run_concurrency
    raise ValueError(name)


def parse_only(text: str | None) -> list[str]:
    """`warm,cold` -> ["warm", "cold"] in the suite's order; unknown names are an error."""
    if not text:
        return list(PART_NAMES)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in PART_NAMES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown part(s) {', '.join(unknown)}; known: {', '.join(PART_NAMES)}"
        )
    return [n for n in PART_NAMES if n in names]


def _levels(text: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 1,4,8, got {text!r}") from None
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("concurrency levels must be >= 1")
    return levels


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument(
        "--only",
        type=parse_only,
        default=list(PART_NAMES),
        help=f"comma-separated parts to run: {','.join(PART_NAMES)} (default: all)",
    )
    p.add_argument("--runs", type=int, default=10, help="measured runs per series (>= 10 for the targets)")
    p.add_argument("--warmup", type=int, default=2, help="unmeasured warm-up rounds before each series")
    p.add_argument("--concurrency", type=_levels, default=(1, 4, 8), help="sandboxes at once (default 1,4,8)")
    p.add_argument("--concurrency-repeats", type=int, default=3, help="batches per concurrency level")
    p.add_argument("--proxy-mb", type=int, default=200, help="size of the large download (MB)")
    p.add_argument("--proxy-download-reps", type=int, default=10, help="large downloads each way")
    p.add_argument("--proxy-requests", type=int, default=500, help="small requests each way and mode")
    p.add_argument("--runtime-steps", type=int, default=50, help="steps of the runtime-overhead run")
    p.add_argument(
        "--keep-cold-image",
        action="store_true",
        help="keep the cold-build Expert's image (the next run's cold build is then not cold)",
    )
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="results directory")
    docs = p.add_mutually_exclusive_group()
    docs.add_argument(
        "--docs",
        dest="docs",
        action="store_true",
        default=None,
        help="update docs/benchmarks.md even when only some parts ran",
    )
    docs.add_argument("--no-docs", dest="docs", action="store_false", help="never touch docs/")
    p.add_argument(
        "--report-only",
        type=Path,
        metavar="RESULTS_JSON",
        help="print the Markdown report of a results file (and update docs with --docs); run nothing",
    )
    return p


def results_exit_code(results: dict[str, Any]) -> int:
    """2 if a part did not complete, 1 if a target was not met, else 0."""
    if any(p.get("status") != "ok" for p in results.get("parts", {}).values()):
        return 2
    if any(t.get("status") == NOT_MET for t in results.get("targets", [])):
        return 1
    return 0


def _loadavg() -> float | None:
    """The 1-minute load average: other work on a shared machine shows up here."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _run_part(name: str, ctx: Context) -> PartResult:
    log(f"=== {name} ===")
    load_start = _loadavg()
    t0 = time.perf_counter()
    try:
        result = _runner(name)(ctx)
    except KeyboardInterrupt:
        raise
    except BenchError as exc:
        result = PartResult(name, status="failed", error=str(exc))
    except BaseException as exc:
        if isinstance(exc, SystemExit):
            raise
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        log(f"{name}: {detail}\n{traceback.format_exc()}")
        result = PartResult(name, status="failed", error=detail)
    result.seconds = time.perf_counter() - t0
    result.load_average = {"start": load_start, "end": _loadavg()}
    log(f"{name}: {result.status} in {result.seconds:.0f} s" + (f": {result.error}" if result.error else ""))
    return result


def run(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    started = dt.datetime.now(dt.UTC)
    ctx = Context(
        runs=args.runs,
        warmup=args.warmup,
        concurrency=args.concurrency,
        concurrency_repeats=args.concurrency_repeats,
        proxy_download_mb=args.proxy_mb,
        proxy_download_reps=args.proxy_download_reps,
        proxy_requests=args.proxy_requests,
        runtime_steps=args.runtime_steps,
        keep_cold_image=args.keep_cold_image,
    )
    machine = describe_machine(REPO)
    log(f"machine: {machine_line(machine)}")
    parts: dict[str, PartResult] = {}
    try:
        for name in args.only:
            parts[name] = _run_part(name, ctx)
    finally:
        ctx.close()
    finished = dt.datetime.now(dt.UTC)
    verdicts: list[Verdict] = [v for p in parts.values() for v in p.verdicts]
    return {
        "schema": 1,
        "startedAt": started.isoformat(timespec="seconds"),
        "finishedAt": finished.isoformat(timespec="seconds"),
        "durationSeconds": round((finished - started).total_seconds(), 1),
        "command": "python -m bench" + ("" if not argv else " " + shlex.join(argv)),
        "settings": {
            "only": args.only,
            "runs": args.runs,
            "warmup": args.warmup,
            "concurrency": list(args.concurrency),
            "concurrencyRepeats": args.concurrency_repeats,
            "proxyMB": args.proxy_mb,
            "proxyDownloadReps": args.proxy_download_reps,
            "proxyRequests": args.proxy_requests,
            "runtimeSteps": args.runtime_steps,
        },
        "machine": machine,
        "parts": {
            name: {**p.to_json(), "targets": [v.to_json() for v in p.verdicts]} for name, p in parts.items()
        },
        "targets": [v.to_json() for v in verdicts],
    }


def write_results(results: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stamp = results["startedAt"].replace(":", "").replace("+0000", "Z").replace("+00:00", "Z")
    path = out / f"{stamp}.json"
    text = json.dumps(results, indent=2) + "\n"
    path.write_text(text)
    (out / "latest.json").write_text(text)
    md = render_results(results)
    path.with_suffix(".md").write_text(md)
    (out / "latest.md").write_text(md)
    return path


def generated_block(results: dict[str, Any], chart: Path | None) -> str:
    """The generated part of docs/benchmarks.md for `results`."""
    machine = results.get("machine", {})
    lines = [f"### Latest results ({results.get('startedAt', '?')})", ""]
    if machine.get("commit"):
        dirty = " with uncommitted changes" if machine.get("dirty") else ""
        lines += [f"Code: commit `{machine['commit']}`{dirty} (frozen for the run).", ""]
    not_run = [n for n in PART_NAMES if n not in results.get("parts", {})]
    body = render_results(results)
    lines.append(body.rstrip())
    if not_run:
        lines += ["", f"Parts not run in this run: {', '.join(not_run)}."]
    if chart is not None:
        lines += ["", f"![Warm start: ours, bare docker run and the reference flow]({chart.name})"]
    return "\n".join(lines) + "\n"


def update_docs(results: dict[str, Any], results_path: Path | None) -> None:
    chart: Path | None = None
    warm = results.get("parts", {}).get("warm", {})
    series = warm.get("data", {}).get("chart")
    if warm.get("status") == "ok" and series:
        cpus = results.get("machine", {}).get("cpus")
        title = (
            f"Warm start, one-step Expert, image cached ({warm['data'].get('runs', '?')} runs each, "
            f"{results.get('startedAt', '')[:10]}{f', {cpus} cores' if cpus else ''})"
        )
        bare = series.get("bare docker run --rm IMAGE true")
        target = ("target: 3x bare", 3 * float(bare["median"])) if bare else None
        if warm_chart(series, CHART, title=title, target=target):
            chart = CHART
            if results_path is not None:
                shutil.copyfile(CHART, results_path.with_suffix(".png"))
        else:
            log("matplotlib is not installed: the chart was not drawn (pip install matplotlib)")
    elif CHART.exists():
        chart = CHART
    text = DOC.read_text() if DOC.exists() else ""
    DOC.write_text(update_doc(text, generated_block(results, chart)))
    log(f"updated {DOC.relative_to(REPO)}" + (f" and {CHART.relative_to(REPO)}" if chart else ""))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.report_only is not None:
        results = json.loads(args.report_only.read_text())
        print(render_results(results), end="")
        if args.docs:
            update_docs(results, None)
        return results_exit_code(results)
    if args.runs < 1:
        raise SystemExit("--runs must be >= 1")
    results = run(args, argv)
    path = write_results(results, args.out)
    log(f"results: {path} (and {args.out / 'latest.json'})")
    full = set(args.only) == set(PART_NAMES)
    if args.docs or (args.docs is None and full):
        update_docs(results, path)
    print(render_results(results), end="")
    return results_exit_code(results)
