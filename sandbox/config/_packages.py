"""MCP server packages: validating `packageName` and finding the package an `mcpStdioSkill` runs.

Why here and not in the planner: the image build installs these packages ahead of time (the sandbox
cannot reach a registry at run time), so the name must be provably a registry name, never a path, URL,
git spec or shell fragment; and the planner needs the same parse of `args = ["-y", "pkg@1.0"]` that the
launcher (npx / uvx) would do. Which ecosystem applies follows the command: npx/node/npm → npm,
uvx/uv/python/python3/pip → PyPI, anything else accepts either (npm first, Perstack's default).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ._issues import show

if TYPE_CHECKING:
    from ._model import InteractiveSkill, McpSseSkill, McpStdioSkill

__all__ = [
    "NPM_COMMANDS",
    "PYPI_COMMANDS",
    "Ecosystem",
    "PackageSpec",
    "launcher_parts",
    "package_spec",
    "parse_package",
]

Ecosystem = Literal["npm", "pypi"]

NPM_COMMANDS = frozenset({"npx", "node", "npm"})
PYPI_COMMANDS = frozenset({"uvx", "uv", "python", "python3", "pip", "pip3"})

MAX_NPM_NAME_LENGTH = 214
MAX_VERSION_LENGTH = 64

_NPM_NAME = re.compile(r"(?:@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*", re.ASCII)
# Exact versions, dist-tags and simple ranges (^1.2.0, ~1.2, 1.x, =1.0.0). No spaces, `<`, `>`, `|`, `:`
# or `/`: those would be shell syntax, or a git/file/URL spec that bypasses the registry.
_NPM_VERSION = re.compile(r"[0-9A-Za-z^~=*][0-9A-Za-z^~=*.+-]*", re.ASCII)
# PEP 508 names.
_PYPI_NAME = re.compile(r"[A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9]", re.ASCII | re.IGNORECASE)
# PEP 440 public versions (and `*` prefix matching, `latest` for uvx's name@latest). No epochs (`!`).
_PYPI_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+*_-]*", re.ASCII)

_NPX_VALUE_FLAGS = frozenset(
    {
        "-p",
        "--package",
        "-c",
        "--call",
        "-w",
        "--workspace",
        "--registry",
        "--cache",
        "--userconfig",
        "--prefix",
        "--loglevel",
    }
)
_UVX_VALUE_FLAGS = frozenset(
    {
        "--from",
        "--with",
        "-w",
        "--with-editable",
        "--with-requirements",
        "--python",
        "-p",
        "--index",
        "--index-url",
        "-i",
        "--extra-index-url",
        "--default-index",
        "--find-links",
        "-f",
        "--constraints",
        "-c",
        "--overrides",
        "--build-constraints",
        "-b",
        "--directory",
        "--project",
        "--cache-dir",
        "--config-file",
        "--color",
        "--python-preference",
        "--refresh-package",
        "--reinstall-package",
        "--upgrade-package",
        "-P",
        "--index-strategy",
        "--keyring-provider",
        "--resolution",
        "--prerelease",
        "--exclude-newer",
        "--link-mode",
        "--env-file",
        "--allow-insecure-host",
        "--config-setting",
        "-C",
    }
)


@dataclass(frozen=True)
class PackageSpec:
    """A registry package to install: `ecosystem`, the bare `name`, and the pinned `version` if any."""

    ecosystem: Ecosystem
    name: str
    version: str | None = None


def _parse_npm(value: str) -> PackageSpec:
    at = value.rfind("@")
    name, version = (value[:at], value[at + 1 :]) if at > 0 else (value, None)
    if len(name) > MAX_NPM_NAME_LENGTH:
        raise ValueError(f"{show(value)} is longer than {MAX_NPM_NAME_LENGTH} characters")
    if name.lower() != name and _NPM_NAME.fullmatch(name.lower()):
        raise ValueError(f"{show(value)} is not a valid npm package name: npm names are lower-case")
    if not _NPM_NAME.fullmatch(name) or name in {"node_modules", "favicon.ico"}:
        raise ValueError(
            f"{show(value)} is not a valid npm package name (lower-case letters, digits, `-`, `.`, `_`, "
            "optionally @scope/; not starting with `.` or `_`)"
        )
    if version is not None and (len(version) > MAX_VERSION_LENGTH or not _NPM_VERSION.fullmatch(version)):
        raise ValueError(f"{show(value)}: {show(version)} is not a valid npm version, tag or range")
    return PackageSpec("npm", name, version)


def _parse_pypi(value: str) -> PackageSpec:
    if "==" in value:
        name, _, version = value.partition("==")
        pinned: str | None = version
    elif "@" in value:
        name, _, pinned = value.partition("@")
    else:
        name, pinned = value, None
    if "[" in name:
        raise ValueError(f"{show(value)}: extras ([...]) are not supported; name the package only")
    if not _PYPI_NAME.fullmatch(name) or len(name) > MAX_NPM_NAME_LENGTH:
        raise ValueError(
            f"{show(value)} is not a valid PyPI package name (letters, digits, `.`, `_`, `-`, "
            "starting and ending with a letter or digit)"
        )
    if pinned is not None and (len(pinned) > MAX_VERSION_LENGTH or not _PYPI_VERSION.fullmatch(pinned)):
        raise ValueError(f"{show(value)}: {show(pinned)} is not a valid PyPI version")
    return PackageSpec("pypi", name, pinned)


def _program(command: str) -> str:
    return command.rsplit("/", 1)[-1]


def parse_package(value: str, command: str | None = None) -> PackageSpec:
    """Validate a `packageName` (with optional `@version`, or `==version` for PyPI) for `command`.

    npx/node/npm take npm names, uvx/uv/python/python3/pip take PyPI names, and any other (or unknown)
    command accepts either, npm first. Raises ValueError naming the rule that failed.
    """
    if not isinstance(value, str):
        raise ValueError(f"{show(value)} is not a string")
    if not value:
        raise ValueError("package name is empty")
    program = _program(command) if command else ""
    if program in NPM_COMMANDS:
        return _parse_npm(value)
    if program in PYPI_COMMANDS:
        return _parse_pypi(value)
    try:
        return _parse_npm(value)
    except ValueError:
        pass
    try:
        return _parse_pypi(value)
    except ValueError:
        raise ValueError(f"{show(value)} is neither a valid npm nor a valid PyPI package name") from None


def _package_argument(
    args: Sequence[str], value_flags: frozenset[str], package_flags: frozenset[str]
) -> tuple[str | None, list[str]]:
    """What a launcher would run: (package, the arguments passed on to the package's executable).

    The package is the value of a package flag (then the first positional argument is the executable's
    name), else the first positional argument. `--` ends the launcher's own flags.
    """
    flagged: str | None = None
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            index += 1
            break
        if arg.startswith("-") and arg != "-":
            flag, eq, inline = arg.partition("=")
            value: str | None = inline if eq else None
            if not eq and flag in value_flags:
                index += 1
                value = args[index] if index < len(args) else None
            if flag in package_flags and value is not None and flagged is None:
                flagged = value
            index += 1
            continue
        break
    positional = args[index] if index < len(args) else None
    rest = list(args[index + 1 :])
    if flagged is not None:
        return flagged, rest
    return positional, rest


def launcher_parts(skill: McpStdioSkill) -> tuple[PackageSpec, list[str]] | None:
    """For an `npx`/`uvx` skill: its package and the arguments meant for the package's executable.

    `npx -y pkg --flag` gives (pkg, ["--flag"]); `uvx --from pkg cmd -v` gives (pkg, ["-v"]); a
    `packageName` skill gives (package, []). None for other commands. Raises ValueError like `package_spec`.
    Inside a sandbox image this is how a skill is started from its installed executable, offline.
    """
    if skill.package_name is not None:
        return parse_package(skill.package_name, skill.command), []
    program, args = _launcher(skill.command, list(skill.args or ()))
    if program == "npx":
        target, rest = _package_argument(args, _NPX_VALUE_FLAGS, frozenset({"-p", "--package"}))
    elif program == "uvx":
        target, rest = _package_argument(args, _UVX_VALUE_FLAGS, frozenset({"--from"}))
    else:
        return None
    return (parse_package(target, program), rest) if target is not None else None


def _launcher(command: str, args: list[str]) -> tuple[str, list[str]]:
    """`npm exec`/`npm x` count as npx, `uv tool run`/`uv x` as uvx."""
    program = _program(command)
    if program == "npm" and args[:1] in (["exec"], ["x"]):
        return "npx", args[1:]
    if program == "uv" and args[:2] == ["tool", "run"]:
        return "uvx", args[2:]
    if program == "uv" and args[:1] == ["x"]:
        return "uvx", args[1:]
    return program, args


def package_spec(skill: McpStdioSkill | McpSseSkill | InteractiveSkill) -> PackageSpec | None:
    """The package an `mcpStdioSkill` runs, or None when it has none.

    - `packageName` → parsed with the command's rules (as validated at load time).
    - `args` with `npx` (or `npm exec`/`npm x`): the `--package`/`-p` value, else the first non-flag argument.
    - `args` with `uvx` (or `uv tool run`/`uv x`): the `--from` value, else the first non-flag argument.
    - Anything else (`node server.js`, `python -m x`, SSE and interactive skills, empty `args`): None.

    Raises ValueError when a launcher's package argument is not a valid registry package (a path, URL or
    git spec): `args` are not validated at load time, so the planner reports it when it needs the package.
    """
    if skill.type != "mcpStdioSkill":
        return None
    parts = launcher_parts(skill)
    return parts[0] if parts is not None else None
