"""`sandbox render EXPERT --out DIR`: write the build context (Dockerfile, compose.yaml, proxy config...)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer

from ._common import err, prepare, workspace_dir
from ._options import (
    NO_FLAGS,
    ConfigOpt,
    EnvNameOpt,
    EnvPathOpt,
    ModelOpt,
    ProviderOpt,
    SandboxFlags,
    WorkspaceOpt,
    sandbox_flags,
)

__all__ = ["render_command"]


@sandbox_flags
def render_command(
    expert: Annotated[str, typer.Argument(help="Expert key in perstack.toml.")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write the build context to.")],
    config: ConfigOpt = None,
    workspace: WorkspaceOpt = None,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    env_path: EnvPathOpt = None,
    env: EnvNameOpt = None,
    flags: SandboxFlags = NO_FLAGS,
) -> None:
    """Render the sandbox's build context into DIR (deterministic: same inputs, same bytes)."""
    from sandbox.render import RunSite

    ws = workspace_dir(workspace)
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
    loaded = prepared.loaded
    project = "sandbox-" + hashlib.sha256(f"{loaded.path}\0{expert}".encode()).hexdigest()[:12]
    # The resolution `sandbox plan` shows (`sandbox.resolve`): the same CA bundle, so the same image tags.
    ctx = prepared.resolved.render(RunSite(project=project, workspace=ws))
    ctx.write(out)
    err(f"rendered {len(ctx.files)} files to {out} (image {ctx.expert_image}, proxy {ctx.proxy_image})")
    print(out)
