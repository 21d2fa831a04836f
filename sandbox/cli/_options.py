"""The options several commands take, each declared once: its name, type, help, default and env var.

Two kinds:

* Options whose place in `--help` differs from command to command (`--config`, `--provider`, `--model`,
  `--env-path`, `--env`, `--workspace`): one `Annotated` alias each, written into the signatures.
* The sandbox flags (`--base-image` ... `--workspace-quota`), which shape the sandbox a plan describes and
  so must be the same set on every command that plans one (`plan`, `render`, `build`, `run`, `start`,
  `audit`, `warm`): a command that lacked one showed or built another sandbox than the run got. They are
  the fields of `SandboxFlags`, and `@sandbox_flags` puts one option per field in the command's signature
  where its `flags: SandboxFlags` parameter stands, then hands the command the parsed values as one
  `SandboxFlags`. A new field is a new flag on every such command; none can be left out or spelled twice.
  (`doctor`, which plans nothing, takes the two image flags alone: `BaseImageOpt`, `NodeImageOpt`.)

Typer builds a command from `inspect.signature`, which honours `__signature__`: that is all the splice is.
`tests/cli/test_shared_options.py` pins that every command declares these options the same way.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = [
    "NO_FLAGS",
    "BaseImageOpt",
    "ConfigOpt",
    "EnvNameOpt",
    "EnvPathOpt",
    "ModelOpt",
    "NodeImageOpt",
    "ProviderOpt",
    "SandboxFlags",
    "WorkspaceOpt",
    "sandbox_flags",
]

ConfigOpt = Annotated[
    str | None, typer.Option("--config", help="Path to perstack.toml (default: search upward from cwd).")
]
EnvPathOpt = Annotated[
    list[str] | None,
    typer.Option("--env-path", help="Env file(s) to read into a private map (default: .env, .env.local)."),
]
EnvNameOpt = Annotated[
    list[str] | None,
    typer.Option("--env", help="Pass this environment variable into the sandbox (repeatable)."),
]
ProviderOpt = Annotated[str | None, typer.Option("--provider", help="Provider (overrides the file).")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Model (overrides the file).")]
WorkspaceOpt = Annotated[
    Path | None, typer.Option("--workspace", help="The directory the Expert works in (default: cwd).")
]

# Typer appends "[env var: NAME]" to the help of an option with an envvar itself.
BaseImageOpt = Annotated[
    str | None,
    typer.Option(
        "--base-image",
        envvar="SANDBOX_BASE_IMAGE",
        help="Base image of the sandbox (default debian:bookworm-slim).",
    ),
]
NodeImageOpt = Annotated[
    str | None,
    typer.Option(
        "--node-image",
        envvar="SANDBOX_NODE_IMAGE",
        help="Image Node.js is copied from (default node:22-bookworm-slim).",
    ),
]
_CaCertOpt = Annotated[
    str | None,
    typer.Option(
        "--ca-cert",
        envvar="SANDBOX_CA_CERT",
        help="Extra CA bundle (PEM) trusted in the image at build and run time.",
    ),
]
_AllowPrivateOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-private",
        help="Let the proxy reach HOST:PORT although it resolves to a private address: HTTPS (CONNECT) and, "
        "for this HOST:PORT only, plain HTTP (ollama on the LAN speaks http).",
    ),
]
_AddHostOpt = Annotated[
    list[str] | None,
    typer.Option("--add-host", help="Resolve NAME to IP in the proxy (NAME:IP), like docker --add-host."),
]
_MemoryOpt = Annotated[
    str | None, typer.Option("--memory", help="Memory limit of the Expert container (e.g. 2g).")
]
_CpusOpt = Annotated[float | None, typer.Option("--cpus", help="CPU limit of the Expert container.")]
_PidsOpt = Annotated[int | None, typer.Option("--pids", help="Process limit of the Expert container.")]
_WorkspaceQuotaOpt = Annotated[
    str | None,
    typer.Option(
        "--workspace-quota",
        help="Most the Expert may write through the workspace (default 10g): per file (the kernel refuses "
        "more) and in total (the run is stopped).",
    ),
]


@dataclasses.dataclass(frozen=True)
class SandboxFlags:
    """The sandbox-shaping flags every planning command takes; each field is one option (see above).

    None is "not given": perstack.toml's setting, else the planner's default, applies (`sandbox.plan`).
    """

    base_image: BaseImageOpt = None
    node_image: NodeImageOpt = None
    ca_cert: _CaCertOpt = None
    allow_private: _AllowPrivateOpt = None
    add_host: _AddHostOpt = None
    memory: _MemoryOpt = None
    cpus: _CpusOpt = None
    pids: _PidsOpt = None
    workspace_quota: _WorkspaceQuotaOpt = None


NO_FLAGS = SandboxFlags()
"""The default of a command's `flags` parameter, which Python needs there and Typer never sees: it sees
the flags instead, each with its own default, and the command always gets the `SandboxFlags` they made."""


def _flag_parameters() -> list[inspect.Parameter]:
    """One keyword parameter per `SandboxFlags` field, annotated with its option (as Typer reads them)."""
    hints = typing.get_type_hints(SandboxFlags, include_extras=True)
    return [
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=hints[f.name], default=f.default)
        for f in dataclasses.fields(SandboxFlags)
    ]


def sandbox_flags(command: Callable[..., None]) -> Callable[..., None]:
    """`command` with its `flags: SandboxFlags` parameter shown to Typer as the sandbox flags, in its place
    (so `--help` lists them where the parameter stands), and called with them gathered into `flags`."""
    signature = inspect.signature(command, eval_str=True)
    params = list(signature.parameters.values())
    where = next(
        (i for i, p in enumerate(params) if p.name == "flags" and p.annotation is SandboxFlags), None
    )
    if where is None:
        raise TypeError(f"{command.__qualname__}: @sandbox_flags needs a `flags: SandboxFlags` parameter")
    flag_params = _flag_parameters()
    names = [p.name for p in flag_params]
    # The flags are keyword-only, so what follows them must be too; Typer passes everything by keyword.
    rest = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params[where + 1 :]]
    spliced = signature.replace(parameters=[*params[:where], *flag_params, *rest])

    @functools.wraps(command)
    def with_flags(*args: Any, **kwargs: Any) -> None:
        flags = SandboxFlags(**{name: kwargs.pop(name) for name in names if name in kwargs})
        command(*args, flags=flags, **kwargs)

    with_flags.__signature__ = spliced  # type: ignore[attr-defined]  # what inspect.signature returns
    with_flags.__annotations__ = {p.name: p.annotation for p in spliced.parameters.values()} | {
        "return": signature.return_annotation
    }
    return with_flags
