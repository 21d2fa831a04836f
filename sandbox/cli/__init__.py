"""The `sandbox` command line: one small module per command, wired here.

Heavy imports (pydantic-ai, the MCP SDK, the Docker SDK) happen inside command bodies so that
`sandbox --help` stays fast. Every deliberate error (SandboxError) becomes one line on stderr and exit 1;
a ConfigError prints one line per problem. SANDBOX_DEBUG=1 shows tracebacks.
"""

from __future__ import annotations

import os
import sys
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

__all__ = ["app", "main"]

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


def main() -> None:
    """Console entry point: run the app, turning deliberate errors into one-line messages.

    It ends with `os._exit` once stdout and stderr are flushed (as mypy's `hard_exit` does): by then every
    command has finished its work and its cleanup (a docker run has torn its sandbox down), and the
    interpreter's own shutdown (joining idle pool threads, finalizing modules) only delays the exit.
    """
    code = _main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`sandbox run ... | head`): nothing more to say
            code = code or 1
    os._exit(code)


def _main() -> int:
    from sandbox._errors import ConfigError, SandboxError

    try:
        app(standalone_mode=True)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)  # what sys.exit("message") prints
        return 1
    except ConfigError as exc:
        for issue in exc.issues:
            print(f"{'warning' if issue.severity == 'warning' else 'error'}: {issue}", file=sys.stderr)
        return 1
    except SandboxError as exc:
        if os.environ.get("SANDBOX_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
