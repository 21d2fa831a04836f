"""Garbage collection of what a dead run left behind (`sandbox clean`, and the start of every run).

A run's own teardown removes its containers, networks and temp dir on every path it can see. What remains
after `kill -9` (or a crash of the engine connection) is found here by label: containers first (a network
with endpoints cannot be removed), then networks, then temp dirs, whose owner marker plays the label's role.
Only objects of this tool whose owner is dead or whose deadline passed are touched, unless `everything` is
asked for (`sandbox clean --all`), so a concurrent live run is never disturbed.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sandbox._errors import DockerError

from ._backend import ContainerBackend
from ._labels import TOOL_LABEL, TOOL_NAME, Owner, is_leftover, owner_alive
from ._workspace_mount import release_mounts

__all__ = ["OWNER_MARKER", "TEMP_PREFIX", "CleanReport", "collect_leftovers", "make_run_dir"]

TEMP_PREFIX = "sandbox-run-"
OWNER_MARKER = ".sandbox-owner.json"


@dataclass
class CleanReport:
    """What a collection removed (names), and what it could not remove (with why)."""

    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    temp_dirs: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def total(self) -> int:
        return len(self.containers) + len(self.networks) + len(self.temp_dirs) + len(self.images)

    def to_json(self) -> dict[str, list[str]]:
        return {
            "containers": self.containers,
            "networks": self.networks,
            "tempDirs": self.temp_dirs,
            "images": self.images,
            "errors": self.errors,
        }


def make_run_dir(root: Path | None, run_id: str, labels: Mapping[str, str]) -> Path:
    """A private (0700) directory for one run's rendered context, with an owner marker for collection."""
    path = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{run_id}-", dir=str(root) if root else None))
    path.chmod(0o700)
    (path / OWNER_MARKER).write_text(json.dumps(dict(labels), sort_keys=True))
    return path


def _temp_dirs(root: Path) -> list[Path]:
    try:
        return [p for p in root.iterdir() if p.name.startswith(TEMP_PREFIX) and p.is_dir()]
    except OSError:
        return []


def collect_leftovers(
    backend: ContainerBackend | None,
    *,
    temp_root: Path | None = None,
    everything: bool = False,
    dry_run: bool = False,
    now: float | None = None,
    alive: Callable[[Owner], bool] = owner_alive,
    keep_run: str | None = None,
) -> CleanReport:
    """Remove leftovers (see the module docstring). `keep_run` protects the calling run's own objects."""
    report = CleanReport()
    current = time.time() if now is None else now

    def dead(labels: Mapping[str, str]) -> bool:
        if keep_run is not None and labels.get("sandbox.run") == keep_run:
            return False
        if everything:
            return labels.get(TOOL_LABEL) == TOOL_NAME
        return is_leftover(labels, now=current, alive=alive)

    if backend is not None:
        tool = {TOOL_LABEL: TOOL_NAME}
        try:
            for info in backend.list_containers(tool):
                if dead(info.labels):
                    try:
                        if not dry_run:
                            backend.remove_container(info.id)
                        report.containers.append(info.name)
                    except DockerError as exc:
                        report.errors.append(f"container {info.name}: {exc}")
            for info in backend.list_networks(tool):
                if dead(info.labels):
                    try:
                        if not dry_run:
                            backend.remove_network(info.id)
                        report.networks.append(info.name)
                    except DockerError as exc:
                        report.errors.append(f"network {info.name}: {exc}")
        except DockerError as exc:
            report.errors.append(str(exc))

    root = temp_root or Path(tempfile.gettempdir())
    for path in _temp_dirs(root):
        labels = _marker_labels(path, current)
        if labels is None or not dead(labels):
            continue
        if not dry_run and release_mounts(path):  # never delete through a workspace mount
            shutil.rmtree(path, ignore_errors=True)
        if dry_run or not path.exists():
            report.temp_dirs.append(str(path))
        else:
            report.errors.append(f"temp dir {path}: could not remove")
    return report


def _marker_labels(path: Path, now: float) -> dict[str, str] | None:
    """The labels in a run dir's owner marker. A dir without a readable marker (a run that died between
    `mkdtemp` and writing it) counts as expired once it is an hour old, so a starting run keeps its own."""
    try:
        data = json.loads((path / OWNER_MARKER).read_text())
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            if now - path.stat().st_mtime > 3600:
                return {TOOL_LABEL: TOOL_NAME, "sandbox.deadline": "0"}
        return None
    if not isinstance(data, dict):
        return None
    return {str(k): str(v) for k, v in data.items()}
