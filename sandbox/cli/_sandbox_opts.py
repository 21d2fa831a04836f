"""Options that shape the sandbox, shared by `plan`, `render`, `build`, `run` and `start`."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = [
    "AddHostOpt",
    "AllowPrivateOpt",
    "BaseImageOpt",
    "CaCertOpt",
    "CpusOpt",
    "MemoryOpt",
    "NodeImageOpt",
    "PidsOpt",
    "WorkspaceQuotaOpt",
]

BaseImageOpt = Annotated[
    str | None,
    typer.Option(
        "--base-image",
        envvar="SANDBOX_BASE_IMAGE",
        help="Base image of the sandbox (default debian:bookworm-slim) [env var: SANDBOX_BASE_IMAGE].",
    ),
]
NodeImageOpt = Annotated[
    str | None,
    typer.Option(
        "--node-image",
        envvar="SANDBOX_NODE_IMAGE",
        help="Image Node.js is copied from (default node:22-bookworm-slim) [env var: SANDBOX_NODE_IMAGE].",
    ),
]
CaCertOpt = Annotated[
    str | None,
    typer.Option(
        "--ca-cert",
        envvar="SANDBOX_CA_CERT",
        help="Extra CA bundle (PEM) trusted in the image at build and run time [env var: SANDBOX_CA_CERT].",
    ),
]
AllowPrivateOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-private",
        help="Let the proxy reach HOST:PORT although it resolves to a private address: HTTPS (CONNECT) and, "
        "for this HOST:PORT only, plain HTTP (ollama on the LAN speaks http).",
    ),
]
AddHostOpt = Annotated[
    list[str] | None,
    typer.Option("--add-host", help="Resolve NAME to IP in the proxy (NAME:IP), like docker --add-host."),
]
MemoryOpt = Annotated[
    str | None, typer.Option("--memory", help="Memory limit of the Expert container (e.g. 2g).")
]
CpusOpt = Annotated[float | None, typer.Option("--cpus", help="CPU limit of the Expert container.")]
PidsOpt = Annotated[int | None, typer.Option("--pids", help="Process limit of the Expert container.")]
WorkspaceQuotaOpt = Annotated[
    str | None,
    typer.Option(
        "--workspace-quota",
        help="Most the Expert may write through the workspace (default 10g): per file (the kernel refuses "
        "more) and in total (the run is stopped).",
    ),
]
