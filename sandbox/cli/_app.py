"""The Typer app: one small module per command, wired here (the entry point is `sandbox.cli.main`).

Heavy imports (pydantic-ai, the MCP SDK, the Docker SDK) happen inside command bodies so that
`sandbox --help` stays fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from sandbox._version import __version__

from .audit import audit_command
from .build import build_command
from .clean import clean_command
from .doctor import doctor_command
from .jobs import jobs_command
from .plan import plan_command
from .render import render_command
from .run import run_command, start_command
from .runtimes import compare_command, runtimes_command
from .warm import warm_command

__all__ = ["app"]

app = typer.Typer(
    name="sandbox",
    help="Run Perstack Experts in a Docker sandbox, natively, or through other agent CLIs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"sandbox {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Run Perstack Experts in a Docker sandbox, natively, or through other agent CLIs."""


app.command("plan")(plan_command)
app.command("render")(render_command)
app.command("doctor")(doctor_command)
app.command("audit")(audit_command)
app.command("build")(build_command)
app.command("clean")(clean_command)
app.command("jobs")(jobs_command)
app.command("runtimes")(runtimes_command)
app.command("compare")(compare_command)
app.command("run")(run_command)
app.command("warm")(warm_command)
app.command("start", help="Same as run (interactive UIs are out of scope; events stream as JSON lines).")(
    start_command
)

from .internal import internal_app  # noqa: E402 - after app so the internal group can register on it

app.add_typer(internal_app, name="internal", hidden=True)
