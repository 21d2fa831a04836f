"""The `docker` runtime: the native runtime inside the generated sandbox (Dockerfile + compose + Squid).

Registered here for `sandbox runtimes`/`compare`; the executor itself is `sandbox.docker.run_in_docker`,
imported only when a run starts. Availability is the `docker` binary on PATH; whether the engine answers
is `sandbox doctor`'s business (probing it here would slow every listing).
"""

from __future__ import annotations

import importlib
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sandbox.plan import PlanInputs, compute_plan

from ._base import Emit, Runtime, RuntimeInfo, Tier
from ._process import ProcessSpec, spawn

if TYPE_CHECKING:
    from sandbox.options import RunOptions

__all__ = ["Docker", "register_runtimes"]


class Docker(Runtime):
    """Perstack's `--runtime docker`: isolation by container, network by allowlist."""

    id: ClassVar[str] = "docker"
    name: ClassVar[str] = "Docker sandbox"
    tier: ClassVar[Tier] = "native"

    def info(self, env: Mapping[str, str]) -> RuntimeInfo:
        binary = shutil.which("docker", path=env.get("PATH"))
        if binary is None:
            return RuntimeInfo(
                self.id,
                self.name,
                self.tier,
                False,
                reason="`docker` not found on PATH; install Docker Engine (https://docs.docker.com/engine/install/)",
            )
        try:
            result = spawn(
                ProcessSpec(
                    [binary, "--version"], env={"PATH": env.get("PATH", "")}, cwd=Path("/"), timeout=10
                )
            )
            match = re.search(r"\d+\.\d+\.\d+", result.stdout)
            version = match.group(0) if match else None
        except OSError:
            version = None
        return RuntimeInfo(self.id, self.name, self.tier, True, version=version, binary=binary)

    def run(self, options: RunOptions, emit: Emit) -> int:
        # Imported at run time: the executor pulls in the Docker SDK; `sandbox runtimes` must not pay.
        run_in_docker = importlib.import_module("sandbox.docker").run_in_docker

        plan = options.plan or compute_plan(
            options.config,
            PlanInputs(
                expert_key=options.expert_key,
                runtime="docker",
                provider=options.provider,
                model=options.model,
                env=options.env,
                extra_env=options.env_names,
            ),
        )
        code: int = run_in_docker(options, plan, emit)
        return code


def register_runtimes(register: Any) -> None:
    register(Docker())
