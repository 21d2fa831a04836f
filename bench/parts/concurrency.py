"""Concurrency: 1, 4 and 8 sandboxes at once on this machine: wall time, peak memory, failures.

Each batch starts N `sandbox run bench go --runtime docker` processes at the same moment (one-step Expert,
scripted server, image cached), each with its own workspace and job id, and waits for all of them. The
baseline of the same run is N bare `docker run --rm --entrypoint true IMAGE` at once.

Peak memory per sandbox: a sampler reads each container's cgroup high-water mark while the batch runs
(cgroup v1: memory/docker/<id>/memory.max_usage_in_bytes; v2: memory.peak) every 50 ms, and maps
containers to runs by the executor's labels (`sandbox.job`, `sandbox.role`). Containers are removed at the
end of a run, so the last sample before removal is the figure: a lower bound that misses at most the final
50 ms. Per sandbox = Expert + proxy. Failures (exit code, no `completeRun`) must be 0.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..harness import Proc, check_run, log, timed
from ..machine import cgroup_version
from ..report import Row, fmt_bytes, fmt_summary
from ..stats import Target, evaluate, ratio, summarize
from . import Context, PartResult

__all__ = ["TARGET_FAILURES", "CgroupMemorySampler", "run_concurrency"]

TARGET_FAILURES = Target(
    "concurrency.failures", "failed runs with 1, 4 and 8 sandboxes at once", "==", 0, "runs"
)


class CgroupMemorySampler:
    """Polls the memory high-water mark of every running container with the given label key."""

    def __init__(
        self,
        client: Any,
        label: str = "sandbox.job",
        interval: float = 0.05,
        root: Path = Path("/sys/fs/cgroup"),
    ) -> None:
        self.client = client
        self.label = label
        self.interval = interval
        self.root = root
        self.v2 = cgroup_version() == "v2"
        self.peaks: dict[str, int] = {}
        self.labels: dict[str, dict[str, str] | None] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-memory", daemon=True)

    def _files(self) -> dict[str, Path]:
        if self.v2:
            found = {
                p.parent.name.removeprefix("docker-").removesuffix(".scope"): p
                for p in self.root.glob("system.slice/docker-*.scope/memory.peak")
            }
        else:
            found = {p.parent.name: p for p in self.root.glob("memory/docker/*/memory.max_usage_in_bytes")}
        return found

    def _labels_of(self, cid: str) -> dict[str, str] | None:
        if cid not in self.labels:
            try:
                labels = self.client.api.inspect_container(cid)["Config"]["Labels"] or {}
            except Exception:
                labels = {}
            self.labels[cid] = labels if self.label in labels else None
        return self.labels[cid]

    def _loop(self) -> None:
        while not self._stop.is_set():
            for cid, path in self._files().items():
                if self._labels_of(cid) is None:
                    continue
                with contextlib.suppress(OSError, ValueError):
                    value = int(path.read_text().strip())
                    self.peaks[cid] = max(self.peaks.get(cid, 0), value)
            self._stop.wait(self.interval)

    def __enter__(self) -> CgroupMemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def by(self, key_label: str, role_label: str = "sandbox.role") -> dict[str, dict[str, int]]:
        """{label value (e.g. job id): {role: peak bytes}} for the containers seen."""
        out: dict[str, dict[str, int]] = {}
        for cid, peak in self.peaks.items():
            labels = self.labels.get(cid) or {}
            key, role = labels.get(key_label), labels.get(role_label, "?")
            if key:
                out.setdefault(key, {})[role] = max(out.get(key, {}).get(role, 0), peak)
        return out


def _batch(ctx: Context, n: int, tag: str) -> tuple[float, list[Proc], dict[str, dict[str, int]]]:
    site = ctx.docker()
    site.script(n)
    jobs = [f"bench-{tag}-{n}-{i}-{uuid.uuid4().hex[:6]}" for i in range(n)]
    workspaces = [ctx.work / "concurrency" / job for job in jobs]
    for ws in workspaces:
        ws.mkdir(parents=True, exist_ok=True)
    start = threading.Barrier(n + 1)

    def one(i: int) -> Proc:
        start.wait()
        return site.run_expert(workspaces[i], job_id=jobs[i], timeout=600)

    with CgroupMemorySampler(site.client) as sampler, ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(one, i) for i in range(n)]
        start.wait()
        t0 = time.perf_counter()
        procs = [f.result() for f in futures]
        wall = time.perf_counter() - t0
    memory = sampler.by("sandbox.job")
    return wall, procs, {job: memory.get(job, {}) for job in jobs}


def _bare_batch(image: str, n: int) -> tuple[float, int]:
    start = threading.Barrier(n + 1)

    def one() -> Proc:
        start.wait()
        return timed(["docker", "run", "--rm", "--entrypoint", "true", image], timeout=300)

    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(one) for _ in range(n)]
        start.wait()
        t0 = time.perf_counter()
        procs = [f.result() for f in futures]
        wall = time.perf_counter() - t0
    return wall, sum(1 for p in procs if p.code != 0)


def run_concurrency(ctx: Context) -> PartResult:
    site = ctx.docker()
    result = PartResult("concurrency")
    tag = uuid.uuid4().hex[:6]
    log("concurrency: warm-up (one sandbox run)")
    site.script(1)
    site.run_expert(ctx.work / "concurrency" / "warmup")
    failures_total = 0
    levels: dict[str, Any] = {}
    wall1: float | None = None
    for n in ctx.concurrency:
        walls, bare_walls, per_run, expert_mem, proxy_mem, sandbox_mem = [], [], [], [], [], []
        failures: list[str] = []
        bare_failures = 0
        for rep in range(ctx.concurrency_repeats):
            log(f"concurrency: {n} sandbox(es) at once, batch {rep + 1}/{ctx.concurrency_repeats}")
            wall, procs, memory = _batch(ctx, n, tag)
            walls.append(wall)
            for proc in procs:
                problem = check_run(proc)
                if problem:
                    failures.append(problem.splitlines()[0])
                else:
                    per_run.append(proc.total_s)
            for roles in memory.values():
                if "expert" in roles:
                    expert_mem.append(roles["expert"])
                if "proxy" in roles:
                    proxy_mem.append(roles["proxy"])
                if "expert" in roles and "proxy" in roles:
                    sandbox_mem.append(roles["expert"] + roles["proxy"])
            bare_wall, bare_failed = _bare_batch(site.expert_image, n)
            bare_walls.append(bare_wall)
            bare_failures += bare_failed
        failures_total += len(failures)
        sw, sb = summarize(walls), summarize(bare_walls)
        if n == 1:
            wall1 = sw.median
        entry: dict[str, Any] = {
            "wallSeconds": sw.to_json(),
            "bareWallSeconds": sb.to_json(),
            "perRunSeconds": summarize(per_run).to_json() if per_run else None,
            "failures": failures,
            "bareFailures": bare_failures,
            "peakMemoryBytes": {
                "expert": summarize(expert_mem).to_json() if expert_mem else None,
                "proxy": summarize(proxy_mem).to_json() if proxy_mem else None,
                "sandbox": summarize(sandbox_mem).to_json() if sandbox_mem else None,
            },
            "samples": len(sandbox_mem),
        }
        levels[str(n)] = entry
        result.rows.append(
            Row(
                "concurrency",
                f"{n} at once: wall time until all exited, median (min–max) of "
                f"{ctx.concurrency_repeats} batches",
                fmt_summary(sw),
                f"{n} bare `docker run` at once: {fmt_summary(sb)}",
                ratio(sw.median, sb.median),
                "",
                "",
            )
        )
        if n != 1 and wall1 is not None:
            result.rows.append(
                Row(
                    "concurrency",
                    f"{n} at once vs 1 sandbox (wall time)",
                    fmt_summary(sw),
                    f"1 sandbox: {wall1:.2f} s",
                    ratio(sw.median, wall1),
                )
            )
        if sandbox_mem:
            ms = summarize(sandbox_mem)
            e = summarize(expert_mem)
            p = summarize(proxy_mem)
            result.rows.append(
                Row(
                    "concurrency",
                    f"{n} at once: peak memory per sandbox (Expert + proxy), median (max)",
                    f"{fmt_bytes(ms.median)} ({fmt_bytes(ms.max)}): "
                    f"Expert {fmt_bytes(e.median)}, proxy {fmt_bytes(p.median)}",
                    "",
                    None,
                )
            )
        result.rows.append(
            Row(
                "concurrency",
                f"{n} at once: failed runs",
                str(len(failures)),
                "",
                None,
                "0",
                "met" if not failures else "not met",
            )
        )
    result.data = {"levels": levels, "repeats": ctx.concurrency_repeats, "cgroup": cgroup_version()}
    result.verdicts.append(
        evaluate(
            TARGET_FAILURES,
            float(failures_total),
            note=f"levels {', '.join(map(str, ctx.concurrency))}, {ctx.concurrency_repeats} batches each",
        )
    )
    return result
