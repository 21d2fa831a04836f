"""`sandbox jobs`: the jobs in ./perstack/jobs, with their runs and checkpoints (what --continue can use)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from ._common import abort

__all__ = ["jobs_command"]


def _when(ms: int | None) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def jobs_command(
    job_id: Annotated[str | None, typer.Argument(help="Show one job's runs and checkpoints.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
    jobs_dir: Annotated[Path | None, typer.Option("--jobs-dir", help="Default: ./perstack/jobs.")] = None,
) -> None:
    """List jobs (newest first), or one job's runs and checkpoints."""
    from rich.console import Console
    from rich.table import Table

    from sandbox.jobs import JobStore

    store = JobStore(jobs_dir or Path.cwd() / "perstack" / "jobs")
    if job_id is None:
        jobs = store.list_jobs()
        if as_json:
            print(json.dumps([j.model_dump(mode="json") for j in jobs], indent=2))
            return
        table = Table(title=f"Jobs in {store.jobs_dir}", title_justify="left")
        for col in ("job", "expert", "status", "steps", "tokens in/out", "started", "finished"):
            table.add_column(col)
        for j in jobs:
            table.add_row(
                j.id,
                j.coordinator_expert_key,
                j.status,
                str(j.total_steps),
                f"{j.usage.input_tokens}/{j.usage.output_tokens}",
                _when(j.started_at),
                _when(j.finished_at),
            )
        Console().print(table)
        return
    details = store.job_details(job_id)
    if details is None:
        abort(f"no job {job_id!r} in {store.jobs_dir}")
    if as_json:
        print(json.dumps(details.to_json(), indent=2))
        return
    console = Console()
    j = details.job
    console.print(f"job {j.id}: {j.coordinator_expert_key}, {j.status}, {j.total_steps} steps")
    runs = Table(title="runs", title_justify="left")
    for col in ("run", "expert", "model", "updated"):
        runs.add_column(col)
    for r in details.runs:
        runs.add_row(r.run_id, r.expert_key, r.model, _when(r.updated_at))
    console.print(runs)
    cps = Table(title="checkpoints (resume with --continue-job JOB --resume-from ID)", title_justify="left")
    for col in ("checkpoint", "run", "expert", "step", "status"):
        cps.add_column(col)
    for c in details.checkpoints:
        cps.add_row(c.id, c.run_id, c.expert.key, str(c.step_number), c.status)
    console.print(cps)
