"""Reading `envPath` files into a private map, the way Perstack does (`apps/perstack/src/lib/get-env.ts`).

Why a private map: secrets from `.env` files are forwarded by name into the sandbox; writing them into
`os.environ` would also hand them to every subprocess this tool starts (docker, compose, CLI agents).
So files are parsed with python-dotenv's `dotenv_values` and nothing here reads or writes `os.environ`,
not even for `${VAR}` interpolation (turned off: Perstack's dotenv does not interpolate either).

Decision on bad names: a line whose name is not a valid environment variable name (`FOO-BAR=1`,
`npm_config_//registry/:_authToken=...`) is skipped with a *warning*, not an error. Such names cannot be
passed to a container anyway, and real `.env` files carry them for other tools; refusing to run because
of them would punish an unrelated line. Undecodable or unreadable files are errors.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from dotenv import dotenv_values

from sandbox._errors import ConfigError, ConfigIssue

from ._issues import show
from ._validators import validate_env_name

__all__ = ["load_env_files"]

_log = logging.getLogger("sandbox.config")


def load_env_files(
    paths: Sequence[str],
    base_dir: Path,
    *,
    warnings: list[ConfigIssue] | None = None,
) -> dict[str, str]:
    """Merge the env files at `paths` (relative ones resolved against `base_dir`); later files win.

    Missing files are skipped silently (Perstack's default `[".env", ".env.local"]` rarely both exist).
    Keys without a value (`FOO` alone on a line) are skipped. Names that are not valid environment
    variable names are skipped and reported as warnings, appended to `warnings` when given, else logged.
    Raises ConfigError for a file that exists but cannot be read as UTF-8 text.
    """
    merged: dict[str, str] = {}
    errors: list[ConfigIssue] = []
    for entry in paths:
        path = Path(entry).expanduser()
        if not path.is_absolute():
            path = base_dir / path
        if not path.exists():
            continue
        label = str(path)
        if not path.is_file():
            errors.append(ConfigIssue(file=label, path="", message="is not a regular file"))
            continue
        try:
            values = dotenv_values(path, interpolate=False, encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(ConfigIssue(file=label, path="", message=f"cannot be read: {exc}"))
            continue
        for name, value in values.items():
            try:
                validate_env_name(name)
            except ValueError:
                bad = ConfigIssue(
                    file=label,
                    path=show(name),
                    message="skipped: not a valid environment variable name",
                    severity="warning",
                )
                if warnings is not None:
                    warnings.append(bad)
                else:
                    _log.warning("%s", bad)
                continue
            if value is not None:
                merged[name] = value
    if errors:
        raise ConfigError(errors)
    return merged
