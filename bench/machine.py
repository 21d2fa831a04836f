"""What the benchmark ran on: cores, memory, kernel, OS, Docker and Compose versions, cgroup version."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["cgroup_version", "describe_machine"]


def _run(argv: list[str], cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, cwd=cwd, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _meminfo_total() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        return None
    return None


def _os_name() -> str | None:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        return None
    return None


def cgroup_version() -> str:
    """`v2` when /sys/fs/cgroup is the unified hierarchy, else `v1`."""
    return "v2" if Path("/sys/fs/cgroup/cgroup.controllers").exists() else "v1"


def describe_machine(repo: Path) -> dict[str, Any]:
    """A JSON-able description of this machine and checkout (read-only commands only)."""
    commit = _run(["git", "--no-optional-locks", "rev-parse", "--short=12", "HEAD"], cwd=repo)
    dirty = _run(["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"], cwd=repo)
    return {
        "cpus": os.cpu_count(),
        "cpuModel": _cpu_model(),
        "memoryBytes": _meminfo_total(),
        "kernel": platform.release(),
        "os": _os_name(),
        "python": platform.python_version(),
        "docker": _run(["docker", "version", "--format", "{{.Server.Version}}"]),
        "dockerClient": _run(["docker", "version", "--format", "{{.Client.Version}}"]),
        "compose": _run(["docker", "compose", "version", "--short"]),
        "storageDriver": _run(["docker", "info", "--format", "{{.Driver}}"]),
        "cgroup": cgroup_version(),
        "commit": commit,
        "dirty": bool(dirty) if dirty is not None else None,
    }
