"""Warm standby sandboxes: a sandbox started ahead of time, waiting for exactly one run.

Why: most of a warm run's cost is not Docker but start-up inside the container. Importing the provider SDK
and pydantic-ai's model module alone costs ~1.3 s on a 2-core machine (the Anthropic SDK defines hundreds of
pydantic models at import), several times a bare `docker run`; no amount of ordering hides it in a run that
starts its own container. A *standby* is the same sandbox a run would create (both networks, the proxy,
the Expert container), started by `sandbox warm` with the runtime's imports done and its proxy up, waiting
on stdin for the one job it will ever get. `sandbox run --runtime docker` claims a matching standby when
one exists and otherwise starts its own, with the same result either way.

What keeps this as safe as a fresh sandbox:

* A standby holds no secret: the run's env values, arguments and checkpoint arrive on its stdin when it is
  claimed, exactly as for a fresh sandbox.
* One standby serves one run. A claimed standby is torn down by the run like any run's sandbox; nothing of
  one run is ever reused by another.
* It matches only an identical sandbox: the key hashes everything that shapes it (plan minus the model
  name, config, workspace, uid:gid, hidden paths, CA bundle, the installed runtime's files), so a changed
  allowlist, image or workspace never meets an old standby.
* It ends by itself: its runtime exits after `ttl` idle seconds, and its objects carry a deadline label
  (no owner: the `warm` process that made them has exited) after which any run or `sandbox clean` removes
  them. `sandbox warm --stop` and `sandbox clean --all` remove them at once.

Claims are atomic on the host: records live in `$XDG_CACHE_HOME/sandbox/standby/<key>/<id>.json`, and a run
claims one with `rename()` to a name only it uses, so two runs never get the same standby.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox._errors import DockerError

from ._labels import HOST_LABEL, OWNER_LABEL, Owner, _proc_start, owner_alive, run_labels
from ._workspace_mount import release_mounts

if TYPE_CHECKING:
    from sandbox.config import PerstackConfig
    from sandbox.plan import SandboxPlan

    from ._backend import ContainerBackend

__all__ = [
    "READY_LINE",
    "STANDBY_LABEL",
    "StandbyPool",
    "StandbyRecord",
    "is_ready_line",
    "remove_standby",
    "spawn_refill",
    "standby_key",
    "standby_labels",
]

STANDBY_LABEL = "sandbox.standby"
"""Label on a standby's containers and networks: its key (so `sandbox warm --stop` can find them)."""

READY_LINE = "sandbox: standby ready"
"""What the standby runtime prints on stderr once its imports are done and the proxy is up."""
_EXPIRY_MARGIN_S = 5.0  # a standby this close to its idle timeout counts as gone: its runtime may quit now


def standby_key(
    *,
    plan: SandboxPlan,
    config: PerstackConfig,
    workspace: Path,
    uid: int,
    gid: int,
    hidden: Sequence[str],
    ca: bytes | None,
) -> str:
    """A digest of everything that shapes the sandbox, so a standby only ever serves an identical one.

    The model name is left out (it is a run argument; the allowlist follows the provider, which stays in),
    and so are the plan's warnings and which required variables this host lacks (values arrive per run).
    """
    plan_json = plan.model_dump_json(exclude={"model": True, "warnings": True, "env": {"missing"}})
    from sandbox.render import installation_fingerprint

    digest = hashlib.sha256()
    for part in (
        installation_fingerprint(),  # the runtime the image holds: an edited install never meets old standbys
        plan_json,
        config.model_dump_json(by_alias=True, exclude_none=True),
        str(workspace.resolve()),
        f"{uid}:{gid}",
        json.dumps(list(hidden)),
        hashlib.sha256(ca or b"").hexdigest(),
    ):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:24]


@dataclass(frozen=True)
class StandbyRecord:
    """What a run needs to take over a standby: its objects, its rendered dir and how to refill the pool."""

    id: str
    key: str
    expert: str
    containers: Mapping[str, str]  # service -> container id
    networks: Mapping[str, str]  # network id -> engine-level name
    run_dir: str
    proxy_url: str | None
    env_names: Sequence[str]  # the non-secret variables set on the Expert container
    created: float
    expires: float
    refill: Sequence[str] = ()  # `sandbox warm` arguments that top the pool up again ("" = none)
    refill_cwd: str = ""

    def live(self, now: float) -> bool:
        """Whether a run may still claim it at `now` (its runtime has not reached its idle timeout)."""
        return self.expires - _EXPIRY_MARGIN_S > now

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> StandbyRecord:
        data: dict[str, Any] = json.loads(text)
        return cls(
            id=str(data["id"]),
            key=str(data["key"]),
            expert=str(data["expert"]),
            containers={str(k): str(v) for k, v in dict(data["containers"]).items()},
            networks={str(k): str(v) for k, v in dict(data["networks"]).items()},
            run_dir=str(data["run_dir"]),
            proxy_url=data.get("proxy_url"),
            env_names=tuple(str(n) for n in data.get("env_names") or ()),
            created=float(data["created"]),
            expires=float(data["expires"]),
            refill=tuple(str(a) for a in data.get("refill") or ()),
            refill_cwd=str(data.get("refill_cwd") or ""),
        )


class StandbyPool:
    """The host's records of standbys, one directory per key. Claims are atomic renames."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def default(cls, env: Mapping[str, str]) -> StandbyPool:
        """`$SANDBOX_STANDBY_DIR`, else `$XDG_CACHE_HOME/sandbox/standby` (`~/.cache/...`)."""
        explicit = env.get("SANDBOX_STANDBY_DIR")
        if explicit:
            return cls(Path(explicit))
        base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
        return cls(Path(base) / "sandbox" / "standby")

    def _dir(self, key: str) -> Path:
        return self.root / key

    def add(self, record: StandbyRecord) -> None:
        """Publish a ready standby (write then rename, so a claimer never reads half a record)."""
        folder = self._dir(record.key)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = folder / f".{record.id}.tmp"
        tmp.write_text(record.to_json())
        tmp.chmod(0o600)
        os.replace(tmp, folder / f"{record.id}.json")

    def records(self, key: str | None = None) -> list[StandbyRecord]:
        """Unclaimed records (of one key, or all), oldest first; unreadable files are skipped."""
        out: list[StandbyRecord] = []
        for folder in (self._dir(k) for k in ([key] if key else self.keys())):
            with contextlib.suppress(OSError):
                for path in folder.glob("*.json"):
                    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                        out.append(StandbyRecord.from_json(path.read_text()))
        return sorted(out, key=lambda r: r.created)

    def claim(
        self, key: str, *, now: float | None = None
    ) -> tuple[StandbyRecord | None, list[StandbyRecord]]:
        """Take the oldest live standby of `key` for this process, and every expired one met on the way.

        Returns `(standby or None, expired)`: the caller runs in the first and tears the others down. A
        standby within 5 s of its expiry counts as expired, so a run never meets a runtime that has quit.
        """
        current = time.time() if now is None else now
        expired: list[StandbyRecord] = []
        for record in self.records(key):
            if not self.take(record):
                continue
            if not record.live(current):
                expired.append(record)
                continue
            return record, expired
        return None, expired

    def take(self, record: StandbyRecord) -> bool:
        """Claim exactly this record; False if another process got it first."""
        path = self._dir(record.key) / f"{record.id}.json"
        mine = path.with_name(f".{record.id}.claimed-{os.getpid()}")
        try:
            os.rename(path, mine)
        except OSError:
            return False
        with contextlib.suppress(OSError):
            mine.unlink()
        return True

    def keys(self) -> list[str]:
        """Every key with a directory here."""
        return sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []

    # A refill is announced between its spawn and its taking the fill lock (a new interpreter, ~0.3 s):
    # `sandbox run ...; sandbox warm --stop` in a script must not miss the standby that refill then makes.

    def announce_refill(self, key: str, pid: int) -> None:
        """Record that process `pid` is about to top `key` up (`wait_for_refills` waits for it)."""
        folder = self._dir(key)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(OSError):
            (folder / f"{_REFILL_PREFIX}{pid}").write_text(_proc_start(pid) or "")

    def refill_began(self, key: str) -> None:
        """This process holds `key`'s fill lock now (or found it busy): its announcement is done. Also
        forgets announcements whose process is gone."""
        for marker, owner in self._announced(key):
            if owner.pid == os.getpid() or not owner_alive(owner):
                with contextlib.suppress(OSError):
                    marker.unlink()

    def wait_for_refills(self, key: str, timeout: float = 60.0) -> None:
        """Block until every refill announced for `key` has begun (then the fill lock covers it) or died."""
        end = time.monotonic() + timeout
        for marker, owner in self._announced(key):
            while marker.exists() and owner_alive(owner) and time.monotonic() < end:
                time.sleep(0.05)
            with contextlib.suppress(OSError):
                marker.unlink()

    def _announced(self, key: str) -> list[tuple[Path, Owner]]:
        found = []
        with contextlib.suppress(OSError):
            for marker in self._dir(key).glob(f"{_REFILL_PREFIX}*"):
                pid = marker.name[len(_REFILL_PREFIX) :]
                with contextlib.suppress(OSError):
                    if pid.isdigit():
                        start = marker.read_text().strip()
                        found.append((marker, Owner(host=_HOST, pid=int(pid), start=start)))
        return found

    @contextlib.contextmanager
    def filling(self, key: str, *, wait: bool = False) -> Iterator[bool]:
        """Hold the key's fill lock for the block; yields False (at once) if another process holds it,
        unless `wait`, which blocks until that process is done (so `--stop` also gets what it was making)."""
        folder = self._dir(key)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(folder / ".fill.lock", "a+") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except OSError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


_REFILL_PREFIX = ".refill-"
_HOST = Owner.current().host


def is_ready_line(line: str) -> bool:
    """Whether `line` is the standby runtime's `READY_LINE`."""
    return line.strip() == READY_LINE


def standby_labels(*, run_id: str, key: str, deadline: float) -> dict[str, str]:
    """A standby's labels: a run's, minus the owner (the `warm` process exits), plus the standby key.

    Without an owner, garbage collection goes by the deadline alone, so a live standby is never reaped by
    another run, and an abandoned one is once its time is up.
    """
    labels = run_labels(run_id=run_id, job_id="standby", deadline=deadline)
    labels.pop(HOST_LABEL, None)
    labels.pop(OWNER_LABEL, None)
    labels[STANDBY_LABEL] = key
    return labels


def remove_standby(backend: ContainerBackend, record: StandbyRecord) -> list[str]:
    """Remove a standby's containers, networks and run dir; what could not be removed, as messages."""
    problems: list[str] = []
    for cid in record.containers.values():
        try:
            backend.remove_container(cid)
        except DockerError as exc:
            problems.append(f"container {cid[:12]}: {exc}")
    for nid, name in record.networks.items():
        try:
            backend.remove_network(nid)
        except DockerError as exc:
            problems.append(f"network {name}: {exc}")
    if release_mounts(Path(record.run_dir)):  # never delete through the workspace mount
        shutil.rmtree(record.run_dir, ignore_errors=True)
    else:
        problems.append(f"temp dir {record.run_dir}: the workspace is still mounted there")
    return problems


def spawn_refill(record: StandbyRecord, pool: StandbyPool, env: Mapping[str, str] | None = None) -> None:
    """Start `sandbox warm` again, detached, as the used standby's record says (it tops the pool up), and
    announce it in `pool` until it holds the key's fill lock.

    A new session and no inherited streams: it outlives this process and never writes to the run's output.
    """
    if not record.refill:
        return
    with contextlib.suppress(OSError):
        child = subprocess.Popen(  # our own interpreter and module; arguments from our own record
            [sys.executable, "-m", "sandbox", *record.refill],
            cwd=record.refill_cwd or None,
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
        pool.announce_refill(record.key, child.pid)
