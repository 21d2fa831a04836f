"""The job store: Perstack's `perstack/jobs/` layout on the filesystem, written atomically.

Layout (shared/reference/perstack.md §3.4)::

    <jobs_dir>/<jobId>/job.json                                      pretty JSON Job
    <jobs_dir>/<jobId>/checkpoints/<checkpointId>.json               compact Checkpoint
    <jobs_dir>/<jobId>/runs/<runId>/run-setting.json                 compact RunSetting, secrets redacted
    <jobs_dir>/<jobId>/runs/<runId>/event-<timestamp>-<step>-<type>.json   compact RunEvent

Why atomic writes: a run killed while writing (signal, OOM, container stop) must leave a job that still
resumes. Every file is written to a hidden temp file in the same directory, flushed, then renamed over the
target; a reader sees the old file or the new one, never half of one, and stray temp files are ignored.
Checkpoints, `job.json` and run settings are also fsync'ed (they are what `--continue` needs after a crash);
event files are not, because they are an audit trail and fsync per event would dominate per-step overhead.

Who calls what: the native runtime records its own events through `JobStore.record(event)`; the docker
executor and the CLI adapters call the same method with the events they read or synthesise, so all three
produce identical job directories. `resolve_checkpoint()` implements `--continue`, `--continue-job` and
`--resume-from` with Perstack's error messages.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from sandbox._errors import UserError
from sandbox.events import (
    Checkpoint,
    CompleteRun,
    EventBase,
    Job,
    RunEventBase,
    RunSetting,
    StartRun,
    Usage,
    now_ms,
    outcome_of,
    outcome_of_checkpoint,
    parse_event,
)

__all__ = [
    "REDACTED",
    "JobDetails",
    "JobStore",
    "atomic_write",
    "check_id",
    "redact_run_setting",
    "resolve_checkpoint",
]

REDACTED = "[redacted]"

# Ids become path components: anything else (`..`, `/`, NUL) is refused before touching the disk.
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_SECRET_KEY = re.compile(r"(api[-_]?key|secret|token|password|credential|authorization|cookie)", re.I)
# Per-delta streaming events are not stored: they are many, and `completeStreaming*` carries their sum.
_UNSTORED = frozenset({"streamReasoning", "streamRunResult"})
# Events that report one generation's usage exactly once (the runtime guarantees it), summed into job.json.
_USAGE_EVENTS = frozenset({"callTools", "callInteractiveTool", "callDelegate", "completeRun", "retry"})
_M = TypeVar("_M", bound=BaseModel)


def check_id(kind: str, value: str) -> str:
    """`value` if it is a safe id (it becomes a path component in the store); a UserError naming it if not."""
    if not _SAFE_ID.match(value):
        raise UserError(f"Invalid {kind} id: {value!r}")
    return value


# --------------------------------------------------------------------------------------------- atomic io


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_temp(directory: Path, name: str, data: bytes, *, durable: bool) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{name}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    return tmp


def atomic_write(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace `path` with `data` so that readers only ever see a complete file."""
    tmp = _write_temp(path.parent, path.name, data, durable=durable)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if durable:
        _fsync_dir(path.parent)


def _atomic_create(directory: Path, names: Iterable[str], data: bytes) -> Path:
    """Publish `data` under the first of `names` that does not exist yet, atomically and without clobbering.

    Why `link`: unlike `rename`, it fails when the target exists, so two events sharing a millisecond, step
    and type end up in two files instead of one silently replacing the other.
    """
    tmp = _write_temp(directory, "event", data, durable=False)
    try:
        for name in names:
            target = directory / name
            try:
                os.link(tmp, target)
                return target
            except FileExistsError:
                continue
            except OSError:  # no hard links here (some FUSE/overlay mounts): check, then rename
                if target.exists():
                    continue
                os.replace(tmp, target)
                return target
        raise OSError(f"no free event file name in {directory}")
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _read_model(path: Path, model: type[_M]) -> _M | None:
    try:
        return model.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except (ValidationError, ValueError, OSError) as exc:
        print(f"sandbox: skipping unreadable {path}: {exc}", file=sys.stderr)
        return None


def _json_files(directory: Path) -> list[Path]:
    try:
        return [p for p in directory.iterdir() if p.suffix == ".json" and not p.name.startswith(".")]
    except (FileNotFoundError, NotADirectoryError):
        return []


# --------------------------------------------------------------------------------------------- redaction


def _redact_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key == "headers" and isinstance(value, Mapping):
            out[key] = {k: REDACTED for k in value}
        elif isinstance(value, Mapping):
            out[key] = _redact_mapping(value)
        elif _SECRET_KEY.search(key) and value is not None:
            out[key] = REDACTED
        else:
            out[key] = value
    return out


def redact_run_setting(setting: RunSetting) -> RunSetting:
    """A copy safe to write to disk: API keys, header values and every env value replaced by a marker.

    Env *names* are kept (they say what the run had); values never are, secret or not, because the env map
    is built from `.env` files that routinely hold credentials under innocent names.
    """
    return setting.model_copy(
        update={
            "provider_config": _redact_mapping(setting.provider_config),
            "env": {k: REDACTED for k in setting.env},
            "perstack_api_key": REDACTED if setting.perstack_api_key else None,
        }
    )


# --------------------------------------------------------------------------------------------- store

# Events written in the same millisecond for the same step sort by where they happen in a step, not by
# name: `startRun` before `completeRun` although "c" < "s".
_LIFECYCLE_ORDER = (
    "startRun",
    "resumeToolCalls",
    "startGeneration",
    "retry",
    "startStreamingReasoning",
    "streamReasoning",
    "completeStreamingReasoning",
    "startStreamingRunResult",
    "streamRunResult",
    "completeStreamingRunResult",
    "callTools",
    "callInteractiveTool",
    "callDelegate",
    "resolveToolResults",
    "attemptCompletion",
    "finishToolCall",
    "finishAllToolCalls",
    "continueToNextStep",
    "stopRunByInteractiveTool",
    "stopRunByDelegate",
    "stopRunByExceededMaxSteps",
    "stopRunByError",
    "completeRun",
)
_LIFECYCLE_RANK = {name: i for i, name in enumerate(_LIFECYCLE_ORDER)}


@dataclass
class JobDetails:
    """One job with its runs and checkpoints, for `sandbox jobs` (newest first / by step)."""

    job: Job
    runs: list[RunSetting] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "job": self.job.model_dump(mode="json"),
            "runs": [r.model_dump(mode="json") for r in self.runs],
            "checkpoints": [
                {
                    "id": c.id,
                    "runId": c.run_id,
                    "expertKey": c.expert.key,
                    "stepNumber": c.step_number,
                    "status": c.status,
                    **({"delegatedBy": c.delegated_by.expert.key} if c.delegated_by else {}),
                }
                for c in self.checkpoints
            ],
        }


class JobStore:
    """Perstack-compatible job storage under `jobs_dir` (normally `./perstack/jobs`).

    Thread-safe within one process. `durable=False` skips fsync (tests, benchmarks, tmpfs).
    """

    def __init__(self, jobs_dir: Path | str, *, durable: bool = True) -> None:
        self.jobs_dir = Path(jobs_dir)
        self.durable = durable
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}

    # ----------------------------------------------------------------------------------- paths

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / check_id("job", job_id)

    def run_dir(self, job_id: str, run_id: str) -> Path:
        return self.job_dir(job_id) / "runs" / check_id("run", run_id)

    def checkpoint_path(self, job_id: str, checkpoint_id: str) -> Path:
        return self.job_dir(job_id) / "checkpoints" / f"{check_id('checkpoint', checkpoint_id)}.json"

    # ----------------------------------------------------------------------------------- jobs

    def store_job(self, job: Job) -> None:
        data = json.dumps(job.model_dump(mode="json"), indent=2, ensure_ascii=False).encode()
        with self._lock:
            atomic_write(self.job_dir(job.id) / "job.json", data, durable=self.durable)
            self._jobs[job.id] = job

    def retrieve_job(self, job_id: str) -> Job | None:
        with self._lock:
            if job_id in self._jobs:
                return self._jobs[job_id]
            job = _read_model(self.job_dir(job_id) / "job.json", Job)
            if job is not None:
                self._jobs[job_id] = job
            return job

    def update_job(self, job_id: str, **changes: Any) -> Job:
        """Apply field changes (snake_case names) to job.json and return the new Job.

        Raises `KeyError` if the job does not exist yet; create it with `store_job` or `ensure_job`.
        """
        with self._lock:
            job = self.retrieve_job(job_id)
            if job is None:
                raise KeyError(job_id)
            new = job.model_copy(update=changes)
            if new != job:
                self.store_job(new)
            return new

    def ensure_job(self, job_id: str, coordinator_expert_key: str, *, max_steps: int | None = None) -> Job:
        """Create job.json if missing; otherwise mark the job running again (a resume)."""
        with self._lock:
            job = self.retrieve_job(job_id)
            if job is None:
                job = Job(
                    id=job_id,
                    status="running",
                    coordinator_expert_key=coordinator_expert_key,
                    max_steps=max_steps,
                    started_at=now_ms(),
                )
                self.store_job(job)
                return job
            changes: dict[str, Any] = {"status": "running", "finished_at": None}
            if max_steps is not None:
                changes["max_steps"] = max_steps
            return self.update_job(job_id, **changes)

    def list_jobs(self) -> list[Job]:
        """Every job, newest first. A directory without job.json (Perstack itself does not write one)
        gets a Job synthesised from its checkpoints."""
        jobs: list[Job] = []
        try:
            entries = sorted(self.jobs_dir.iterdir())
        except FileNotFoundError:
            return []
        for entry in entries:
            if not entry.is_dir() or not _SAFE_ID.match(entry.name):
                continue
            job = self.retrieve_job(entry.name) or self._synthesise_job(entry)
            if job is not None:
                jobs.append(job)
        jobs.sort(key=lambda j: j.started_at, reverse=True)
        return jobs

    def _synthesise_job(self, directory: Path) -> Job | None:
        checkpoints = self.list_checkpoints(directory.name)
        if not checkpoints:
            return None
        coordinator = [c for c in checkpoints if c.delegated_by is None] or checkpoints
        last = coordinator[-1]
        outcome = outcome_of_checkpoint(last.status)
        return Job(
            id=directory.name,
            status="running" if outcome is None else outcome.job_status,
            coordinator_expert_key=last.expert.key,
            total_steps=max(c.step_number for c in checkpoints),
            usage=last.usage,
            started_at=int(directory.stat().st_mtime * 1000),
        )

    def job_details(self, job_id: str) -> JobDetails | None:
        job = self.retrieve_job(job_id) or self._synthesise_job(self.job_dir(job_id))
        if job is None:
            return None
        return JobDetails(job=job, runs=self.list_runs(job_id), checkpoints=self.list_checkpoints(job_id))

    # ----------------------------------------------------------------------------------- checkpoints

    def store_checkpoint(self, checkpoint: Checkpoint) -> None:
        path = self.checkpoint_path(checkpoint.job_id, checkpoint.id)
        atomic_write(path, checkpoint.model_dump_json().encode(), durable=self.durable)

    def retrieve_checkpoint(self, job_id: str, checkpoint_id: str) -> Checkpoint | None:
        return _read_model(self.checkpoint_path(job_id, checkpoint_id), Checkpoint)

    def list_checkpoints(self, job_id: str) -> list[Checkpoint]:
        """All readable checkpoints of a job, by step number (file time breaks ties)."""
        found: list[tuple[int, int, Checkpoint]] = []
        for path in _json_files(self.job_dir(job_id) / "checkpoints"):
            cp = _read_model(path, Checkpoint)
            if cp is not None:
                found.append((cp.step_number, path.stat().st_mtime_ns, cp))
        found.sort(key=lambda t: (t[0], t[1]))
        return [c for _, _, c in found]

    # ----------------------------------------------------------------------------------- runs

    def store_run_setting(self, setting: RunSetting) -> None:
        """Store the run's settings with secrets redacted (see `redact_run_setting`)."""
        safe = redact_run_setting(setting)
        path = self.run_dir(setting.job_id, setting.run_id) / "run-setting.json"
        atomic_write(path, safe.model_dump_json().encode(), durable=self.durable)

    def retrieve_run_setting(self, job_id: str, run_id: str) -> RunSetting | None:
        return _read_model(self.run_dir(job_id, run_id) / "run-setting.json", RunSetting)

    def touch_run(self, job_id: str, run_id: str, updated_at: int | None = None) -> None:
        """Bump a run's `updatedAt` (what `--continue` sorts by); a no-op if the run has no settings file."""
        setting = self.retrieve_run_setting(job_id, run_id)
        if setting is not None:
            new = setting.model_copy(update={"updated_at": updated_at or now_ms()})
            path = self.run_dir(job_id, run_id) / "run-setting.json"
            atomic_write(path, new.model_dump_json().encode(), durable=self.durable)

    def list_runs(self, job_id: str) -> list[RunSetting]:
        """Run settings of a job, oldest first."""
        runs: list[RunSetting] = []
        try:
            entries = list((self.job_dir(job_id) / "runs").iterdir())
        except FileNotFoundError:
            return []
        for entry in entries:
            setting = _read_model(entry / "run-setting.json", RunSetting)
            if setting is not None:
                runs.append(setting)
        runs.sort(key=lambda r: r.started_at)
        return runs

    def latest_run(self) -> RunSetting | None:
        """The most recently updated run of any job (what `--continue` resumes)."""
        best: RunSetting | None = None
        try:
            entries = list(self.jobs_dir.iterdir())
        except FileNotFoundError:
            return None
        for entry in entries:
            if not entry.is_dir() or not _SAFE_ID.match(entry.name):
                continue
            for run in self.list_runs(entry.name):
                if best is None or run.updated_at > best.updated_at:
                    best = run
        return best

    # ----------------------------------------------------------------------------------- events

    def store_event(self, event: RunEventBase) -> Path:
        directory = self.run_dir(event.job_id, event.run_id)
        data = event.model_dump_json().encode()
        names = (
            f"event-{event.timestamp + bump}-{event.step_number}-{event.type}.json" for bump in range(1000)
        )
        return _atomic_create(directory, names, data)

    def list_events(self, job_id: str, run_id: str) -> list[EventBase]:
        """Stored events of a run in order (timestamp, then step, as Perstack sorts them)."""
        keyed: list[tuple[int, int, int, str, Path]] = []
        for path in _json_files(self.run_dir(job_id, run_id)):
            parts = path.stem.split("-")
            if len(parts) != 4 or parts[0] != "event":
                continue
            try:
                rank = _LIFECYCLE_RANK.get(parts[3], len(_LIFECYCLE_ORDER))
                keyed.append((int(parts[1]), int(parts[2]), rank, path.name, path))
            except ValueError:
                continue
        keyed.sort()
        events: list[EventBase] = []
        for *_, path in keyed:
            try:
                events.append(parse_event(path.read_bytes()))
            except (ValidationError, ValueError, OSError) as exc:
                print(f"sandbox: skipping unreadable {path}: {exc}", file=sys.stderr)
        return events

    # ----------------------------------------------------------------------------------- recording

    def record(self, event: EventBase) -> None:
        """Persist what an event carries: the event file, its checkpoint, and the job summary.

        Runtime events (skills, docker, proxy) are not stored, as in Perstack; nor are per-delta streaming
        events. job.json is created on a coordinator's `startRun` if missing, its `totalSteps`/`usage` are
        kept current, and a coordinator's terminal event sets the job's status and `finishedAt`.
        """
        if not isinstance(event, RunEventBase):
            return
        with self._lock:
            if event.type not in _UNSTORED:
                self.store_event(event)
            checkpoint: Checkpoint | None = getattr(event, "checkpoint", None)
            if checkpoint is not None:
                self.store_checkpoint(checkpoint)
            self._update_job_from(event, checkpoint)

    def _update_job_from(self, event: RunEventBase, checkpoint: Checkpoint | None) -> None:
        if isinstance(event, StartRun):
            if event.initial_checkpoint.delegated_by is None:
                self.ensure_job(event.job_id, event.expert_key)
            return
        job = self.retrieve_job(event.job_id)
        if job is None:
            # Events of a job we never saw start (e.g. a container resumed elsewhere): start one now.
            job = self.ensure_job(event.job_id, event.expert_key)
        changes: dict[str, Any] = {}
        if event.type in _USAGE_EVENTS:
            usage: Usage | None = getattr(event, "usage", None)
            if usage is not None and usage != Usage():
                changes["usage"] = job.usage + usage
        if checkpoint is not None:
            if checkpoint.step_number > job.total_steps:
                changes["total_steps"] = checkpoint.step_number
            is_coordinator = checkpoint.delegated_by is None and checkpoint.expert.key == (
                job.coordinator_expert_key
            )
            outcome = outcome_of(event.type)
            status = None if outcome is None else outcome.job_status
            if is_coordinator and status is not None:
                changes["status"] = status
                changes["finished_at"] = now_ms()
            if is_coordinator and (status is not None or isinstance(event, CompleteRun)):
                self.touch_run(event.job_id, event.run_id)
        if changes:
            self.update_job(event.job_id, **changes)


# --------------------------------------------------------------------------------------------- resume


def resolve_checkpoint(
    store: JobStore,
    *,
    expert_key: str,
    continue_latest: bool = False,
    continue_job: str | None = None,
    resume_from: str | None = None,
) -> Checkpoint | None:
    """The checkpoint a new run starts from, or None for a fresh job (Perstack's `resolveRunContext`).

    * `--resume-from` needs `--continue-job` and names one checkpoint of that job;
    * `--continue-job` takes that job's last coordinator checkpoint (by step number);
    * `--continue` takes the job of the most recently updated run, then its last coordinator checkpoint.

    Only coordinator checkpoints resume; a checkpoint of another Expert is refused.
    """
    if resume_from is not None and continue_job is None:
        raise UserError("--resume-from requires --continue-job")
    checkpoint: Checkpoint | None
    if continue_job is not None and resume_from is not None:
        checkpoint = store.retrieve_checkpoint(continue_job, resume_from)
        if checkpoint is None:
            raise UserError("No checkpoint found")
    elif continue_job is not None:
        checkpoint = _last_coordinator_checkpoint(store, continue_job)
    elif continue_latest:
        run = store.latest_run()
        if run is None:
            raise UserError("No runs found")
        checkpoint = _last_coordinator_checkpoint(store, run.job_id)
    else:
        return None
    if checkpoint.delegated_by is not None:
        raise UserError(
            f"Checkpoint {checkpoint.id} belongs to a delegated run of {checkpoint.expert.key}; "
            "only coordinator checkpoints can be resumed"
        )
    if checkpoint.expert.key != expert_key:
        raise UserError(
            f"Checkpoint expert key {checkpoint.expert.key} does not match input expert key {expert_key}"
        )
    return checkpoint


def _last_coordinator_checkpoint(store: JobStore, job_id: str) -> Checkpoint:
    checkpoints = [c for c in store.list_checkpoints(job_id) if c.delegated_by is None]
    if not checkpoints:
        raise UserError("No checkpoint found")
    return checkpoints[-1]
