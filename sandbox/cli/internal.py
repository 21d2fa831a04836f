"""Hidden commands used inside the sandbox image (not part of the user-facing CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["internal_app"]

internal_app = typer.Typer(help="Internal commands used inside the sandbox image.", no_args_is_help=True)


@internal_app.command("lock-skills")
def lock_skills(
    out: Annotated[Path, typer.Option("--out")],
    npm: Annotated[list[str] | None, typer.Option("--npm")] = None,
    pypi: Annotated[list[str] | None, typer.Option("--pypi")] = None,
) -> None:
    """Record installed skill packages (versions, executables) at image build time."""
    from sandbox.skills_lock import build_lock

    lock = build_lock(list(npm or ()), list(pypi or ()))
    out.write_text(lock.to_json())
    print(lock.to_json(), end="")


@internal_app.command(
    "container-run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def container_run(ctx: typer.Context) -> None:
    """Entry point of the Expert container (`sandbox.container_entry`).

    Reads one JSON line from stdin, `{"run": {...}, "env": {NAME: value}, "eventKey": hex}`: the run the
    host resolved (`sandbox.request.RunRequest`), the secret values (never in argv, `docker inspect`, image
    layers or rendered files) and the key that signs every event line written to stdout (`sandbox._wire`).
    Arguments are start-up hints only: `--provider P`, and `--standby --idle S` for `sandbox warm`.
    """
    from sandbox.container_entry import main

    main(list(ctx.args))
