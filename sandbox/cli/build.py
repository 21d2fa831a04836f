"""`sandbox build EXPERT`: prebuild the sandbox's images and show the skill versions they hold.

The same content-addressed images `sandbox run --runtime docker` would build on first use: when both tags
already exist nothing is built (`--force` rebuilds). Progress goes to stderr; stdout gets the result, a
short table or, with `--json`, one object: `{"expertImage", "proxyImage", "built", "seconds", "skills"}`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from ._common import prepare
from ._options import (
    NO_FLAGS,
    ConfigOpt,
    EnvNameOpt,
    EnvPathOpt,
    ModelOpt,
    ProviderOpt,
    SandboxFlags,
    sandbox_flags,
)

__all__ = ["build_command"]


@sandbox_flags
def build_command(
    expert: Annotated[str, typer.Argument(help="Expert key in perstack.toml.")],
    config: ConfigOpt = None,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    env_path: EnvPathOpt = None,
    env: EnvNameOpt = None,
    flags: SandboxFlags = NO_FLAGS,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if the images exist.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="dockerBuildProgress events on stdout.")] = False,
) -> None:
    """Build (or confirm) the Expert's sandbox images; print their tags and resolved skill versions."""
    from sandbox.docker import (
        BuildReporter,
        ConsoleBuildReporter,
        DockerBackend,
        EventBuildReporter,
        SkillsCache,
        TeeReporter,
        ensure_images,
        format_skills,
    )
    from sandbox.events import JsonlWriter, create_id
    from sandbox.render import RunSite

    prepared = prepare(
        expert,
        config=config,
        env_path=env_path,
        env_names=env,
        runtime="docker",
        provider=provider,
        model=model,
        flags=flags,
    )
    env_map, plan = prepared.env, prepared.plan
    # The resolution `sandbox plan` shows (`sandbox.resolve`), so the tags built are the ones it printed.
    ctx = prepared.resolved.render(RunSite(project="sandbox-build", workspace=Path.cwd()))
    reporters: list[BuildReporter] = [ConsoleBuildReporter()]
    if verbose:
        run_id = create_id()
        reporters.append(EventBuildReporter(JsonlWriter(sys.stdout), job_id=run_id, run_id=run_id))
    reporter = TeeReporter(*reporters)
    backend = DockerBackend(environ=env_map)
    try:
        images = ensure_images(
            backend,
            ctx,
            plan,
            reporter=reporter,
            force=force,
            cache=SkillsCache.default(env_map),
            skills=True,
        )
    finally:
        reporter.close()
        backend.close()
    skills = format_skills(images.skills)
    if as_json:
        lock = images.skills
        print(
            json.dumps(
                {
                    "expertImage": images.expert,
                    "proxyImage": images.proxy,
                    "built": list(images.built),
                    "seconds": round(images.seconds, 2),
                    "skills": {
                        "npm": {p.name: p.version for p in lock.npm.values()} if lock else {},
                        "pypi": {p.name: p.version for p in lock.pypi.values()} if lock else {},
                    },
                },
                indent=2,
            )
        )
        return
    state = f"built {', '.join(images.built)} in {images.seconds:.1f}s" if images.built else "up to date"
    print(f"expert image  {images.expert}")
    print(f"proxy image   {images.proxy}")
    print(f"status        {state}")
    if skills:
        print("skills")
        for line in skills:
            print(f"  {line}")
