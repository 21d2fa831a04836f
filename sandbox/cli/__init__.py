"""The `sandbox` command line: the entry point, in front of the Typer app (`sandbox.cli._app`).

Every deliberate error (SandboxError) becomes one line on stderr and exit 1; a ConfigError prints one line
per problem. SANDBOX_DEBUG=1 shows tracebacks.

Why the app is not imported here: the Expert container's entry point (`sandbox internal container-run`)
runs on every sandbox start, and the Typer app with all its command modules costs it ~0.1 s it does not
need; `main` sends it straight to `sandbox.container_entry`. `sandbox.cli.app` still works (loaded on first
use).
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["app", "main"]


def __getattr__(name: str) -> Any:
    if name == "app":
        from ._app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Console entry point: run the app, turning deliberate errors into one-line messages.

    Collection is paused for start-up, and imports no command needs are skipped (`sandbox._startup`).
    It ends with `os._exit` once stdout and stderr are flushed (as mypy's `hard_exit` does): by then every
    command has finished its work and its cleanup (a docker run has torn its sandbox down), and the
    interpreter's own shutdown (joining idle pool threads, finalizing modules) only delays the exit.
    """
    from sandbox._startup import pause_gc, skip_unused_modules

    pause_gc()
    skip_unused_modules()
    argv = sys.argv[1:]
    if argv[:2] == ["internal", "container-run"]:
        from sandbox.container_entry import main as container_main

        container_main(argv[2:])
    code = _main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`sandbox run ... | head`): nothing more to say
            code = code or 1
    os._exit(code)


def _main() -> int:
    from sandbox._errors import ConfigError, SandboxError

    from ._app import app

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
