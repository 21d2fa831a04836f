"""`sandbox render EXPERT --out DIR`: write the build context (Dockerfile, compose.yaml, proxy config...)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer

from ._common import ConfigOpt, EnvNameOpt, EnvPathOpt, SandboxFlags, err, prepare
from ._sandbox_opts import (
    AddHostOpt,
    AllowPrivateOpt,
    BaseImageOpt,
    CaCertOpt,
    CpusOpt,
    MemoryOpt,
    NodeImageOpt,
    PidsOpt,
)

__all__ = ["render_command"]


def render_command(
    expert: Annotated[str, typer.Argument(help="Expert key in perstack.toml.")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write the build context to.")],
    config: ConfigOpt = None,
    workspace: Annotated[
        Path | None, typer.Option("--workspace", help="Workspace to mount (default: cwd).")
    ] = None,
    provider: Annotated[str | None, typer.Option("--provider")] = None,
    model: Annotated[str | None, typer.Option("--model")] = None,
    env_path: EnvPathOpt = None,
    env: EnvNameOpt = None,
    base_image: BaseImageOpt = None,
    node_image: NodeImageOpt = None,
    ca_cert: CaCertOpt = None,
    allow_private: AllowPrivateOpt = None,
    add_host: AddHostOpt = None,
    memory: MemoryOpt = None,
    cpus: CpusOpt = None,
    pids: PidsOpt = None,
) -> None:
    """Render the sandbox's build context into DIR (deterministic: same inputs, same bytes)."""
    from sandbox.render import RunSite

    prepared = prepare(
        expert,
        config=config,
        env_path=env_path,
        env_names=env,
        runtime="docker",
        provider=provider,
        model=model,
        flags=SandboxFlags(base_image, node_image, ca_cert, allow_private, add_host, memory, cpus, pids),
    )
    loaded = prepared.loaded
    ws = (workspace or Path.cwd()).resolve()
    project = "sandbox-" + hashlib.sha256(f"{loaded.path}\0{expert}".encode()).hexdigest()[:12]
    # The resolution `sandbox plan` shows (`sandbox.resolve`): the same CA bundle, so the same image tags.
    ctx = prepared.resolved.render(RunSite(project=project, workspace=ws))
    ctx.write(out)
    err(f"rendered {len(ctx.files)} files to {out} (image {ctx.expert_image}, proxy {ctx.proxy_image})")
    print(out)
