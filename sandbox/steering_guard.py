"""One docker run's guard over the host's steering files, and what it leaves for the commands after it.

`sandbox.steering` masks the steering files inside the workspace and undoes, after the run, what the sandbox
created or changed in their place. Two windows remain that only a record outside the process can close:

* *Concurrent runs.* While run A is going, a command B started from the same workspace would read a
  `.env.local` that A's Expert has just created. So each run records, in the user's state directory (never a
  workspace), the digests of the steering paths it protects and who it is (host, pid, start time). A command
  that finds a live record for a related workspace (its working directory inside it, or the other way round)
  compares: if a protected path differs, it refuses with one line (wait for the other run: it undoes them).
* *A killed host.* If A's host process was killed (SIGKILL) before undoing, its record stays behind. The next
  command finds it with a dead owner and does what A would have done as far as a record allows: a steering
  path A's Expert created is moved to the quarantine; a file that existed and changed (only possible by
  swapping its directory) cannot be restored from a digest, so the command refuses once, naming it, and the
  record is dropped so that the next command, after the user reviewed the file, goes on.

Both checks run before any steering file is read (`check_records`, at the start of every command that
loads perstack.toml), and again for the run's own workspace before its containers start. Records hold hashes
and names only, never content.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sandbox._errors import UserError
from sandbox._owner import current_owner, process_alive
from sandbox._state import state_dir
from sandbox.steering import Change, Snapshot, SteeringPaths, state_digest

__all__ = ["SteeringGuard", "check_records"]


def _records_dir(env: Mapping[str, str]) -> Path:
    return state_dir(env) / "active"


@dataclass(frozen=True)
class _Record:
    path: Path
    run: str
    workspace: Path
    quarantine: Path
    owner: tuple[str, int, str]
    entries: Mapping[Path, str]


def _records(directory: Path) -> list[_Record]:
    found: list[_Record] = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            owner = data["owner"]
            found.append(
                _Record(
                    path=path,
                    run=str(data["run"]),
                    workspace=Path(str(data["workspace"])),
                    quarantine=Path(str(data["quarantine"])),
                    owner=(str(owner["host"]), int(owner["pid"]), str(owner["start"])),
                    entries={Path(str(k)): str(v) for k, v in dict(data["entries"]).items()},
                )
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return found


def _related(a: Path, b: Path) -> bool:
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def check_records(cwd: Path, env: Mapping[str, str], *, workspace: Path | None = None) -> list[str]:
    """Deal with other runs' records for the workspaces related to `cwd` (or exactly `workspace`).

    Raises UserError when this command must not go on (a live run changed a steering path; a dead run left a
    changed file). Returns one line per thing done on a dead run's behalf (a created file moved away).
    """
    done: list[str] = []
    here = cwd.resolve()
    for record in _records(_records_dir(env)):
        if workspace is not None:
            if record.workspace != workspace.resolve():
                continue
        elif not _related(here, record.workspace):
            continue
        changed = {p: d for p, d in record.entries.items() if state_digest(p) != d}
        if process_alive(*record.owner):
            if changed:
                names = ", ".join(str(p) for p in sorted(changed))
                raise UserError(
                    f"a sandboxed run (pid {record.owner[1]}) is running in {record.workspace} and has "
                    f"changed {names}, which the host reads to set up runs; wait for it to end (it undoes "
                    "them)"
                )
            continue
        done.extend(_after_dead_run(record, changed))
    return done


def _after_dead_run(record: _Record, changed: Mapping[Path, str]) -> list[str]:
    """What a killed run could not undo: move away what its sandbox created, refuse once for the rest."""
    done: list[str] = []
    refused: list[str] = []
    for path, before in sorted(changed.items()):
        if before != "absent":
            refused.append(str(path))
            continue
        kept = record.quarantine / record.run / path.relative_to(record.workspace)
        try:
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), str(kept))
        except (OSError, ValueError):
            refused.append(str(path))
            continue
        done.append(
            f"sandbox: run {record.run} ended before it could check {path}, which its sandbox created; "
            f"moved to {kept}"
        )
    with contextlib.suppress(OSError):
        record.path.unlink()
    if refused:
        raise UserError(
            f"run {record.run} ended before it could check the files the host reads, and these changed "
            f"meanwhile: {', '.join(refused)}; review them (the sandbox may have written them), then run "
            "again"
        )
    return done


@dataclass
class SteeringGuard:
    """One run's side: `begin` (before the containers start) and `end` (after teardown)."""

    workspace: Path
    steering: SteeringPaths
    quarantine: Path
    records: Path
    run_id: str = ""
    snapshot: Snapshot | None = None
    _record: Path | None = field(default=None, repr=False)

    @classmethod
    def for_run(
        cls, workspace: Path, steering: SteeringPaths, jobs_dir: Path, env: Mapping[str, str]
    ) -> SteeringGuard:
        """The guard of a run in `workspace`: the quarantine next to the job store (hidden from every
        sandbox), the records in `$XDG_STATE_HOME/sandbox/active` of the process environment `env`."""
        return cls(
            workspace=workspace.resolve(),
            steering=steering,
            quarantine=jobs_dir.parent / "quarantine",
            records=_records_dir(env),
        )

    def begin(self, run_id: str) -> None:
        """Snapshot the steering paths and record them, with this process as the owner."""
        self.run_id = run_id
        self.snapshot = Snapshot.take(self.workspace, self.steering)
        if not self.snapshot.states:
            return
        host, pid, start = current_owner()
        body = {
            "run": run_id,
            "workspace": str(self.workspace),
            "quarantine": str(self.quarantine),
            "entries": self.snapshot.digests(),
            "owner": {"host": host, "pid": pid, "start": start},
        }
        try:
            self.records.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = self.records / f"{run_id}.json"
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(body, sort_keys=True), encoding="utf-8")
            os.replace(tmp, path)
            self._record = path
        except OSError:
            self._record = None  # the undo after the run still happens; only the crash window stays open

    def end(self) -> list[Change]:
        """Undo what the run did to the steering paths, then drop the record. Never raises."""
        changes: list[Change] = []
        if self.snapshot is not None:
            changes = self.snapshot.settle(self.quarantine / (self.run_id or "run"))
        if self._record is not None:
            with contextlib.suppress(OSError):
                self._record.unlink()
        return changes
