"""The image's record of installed skill packages: exact versions and the executables each provides.

Written at build time by `sandbox internal lock-skills` (the last RUN of the image), read at run time by
the native runtime inside the sandbox so that `npx -y pkg` / `uvx pkg` skills start from the installed
executable, offline, instead of asking a registry. It is also how the host learns which versions an
unpinned package resolved to (`sandbox build` prints them).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandbox.config import McpStdioSkill

__all__ = [
    "InstalledPackage",
    "SkillsLock",
    "build_lock",
    "installed_command",
    "load_lock",
    "split_spec",
]


@dataclass(frozen=True)
class InstalledPackage:
    name: str
    version: str
    bins: Mapping[str, str]


@dataclass(frozen=True)
class SkillsLock:
    npm: Mapping[str, InstalledPackage]
    pypi: Mapping[str, InstalledPackage]

    def to_json(self) -> str:
        def dump(pkgs: Mapping[str, InstalledPackage]) -> dict[str, object]:
            return {
                k: {"version": p.version, "bins": dict(sorted(p.bins.items()))}
                for k, p in sorted(pkgs.items())
            }

        return json.dumps({"npm": dump(self.npm), "pypi": dump(self.pypi)}, indent=2, sort_keys=True) + "\n"

    def executable(self, ecosystem: str, name: str) -> str | None:
        """The executable to start for package `name`: its only bin, or the bin named like the package."""
        pkgs = self.npm if ecosystem == "npm" else self.pypi
        pkg = pkgs.get(name if ecosystem == "npm" else _norm(name))
        if pkg is None or not pkg.bins:
            return None
        if len(pkg.bins) == 1:
            return next(iter(pkg.bins.values()))
        short = name.rsplit("/", 1)[-1]
        return pkg.bins.get(short) or pkg.bins.get(_norm(short)) or sorted(pkg.bins.values())[0]


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def split_spec(spec: str, ecosystem: str) -> str:
    """Package name of an install spec: `@s/n@1.2` -> `@s/n`, `pkg==1.0` -> `pkg`."""
    if ecosystem == "npm":
        at = spec.find("@", 1)
        return spec if at == -1 else spec[:at]
    for sep in ("==", "@"):
        if sep in spec:
            return spec.split(sep, 1)[0]
    return spec


def _npm_packages(names: list[str]) -> dict[str, InstalledPackage]:
    if not names:
        return {}
    root = Path(
        subprocess.run(["npm", "root", "-g"], capture_output=True, text=True, check=True).stdout.strip()
    )
    out: dict[str, InstalledPackage] = {}
    for name in names:
        manifest = json.loads((root / name / "package.json").read_text())
        bin_field = manifest.get("bin") or {}
        if isinstance(bin_field, str):
            bin_field = {name.rsplit("/", 1)[-1]: bin_field}
        bins = {b: str(Path("/usr/local/bin") / b) for b in bin_field}
        out[name] = InstalledPackage(name=name, version=str(manifest["version"]), bins=bins)
    return out


def _pypi_packages(names: list[str]) -> dict[str, InstalledPackage]:
    import importlib.metadata as md

    tool_dir = Path(os.environ.get("UV_TOOL_DIR", "/opt/sandbox/uv-tools"))
    bin_dir = Path(os.environ.get("UV_TOOL_BIN_DIR", "/usr/local/bin"))
    out: dict[str, InstalledPackage] = {}
    for name in names:
        key = _norm(name)
        env_dir = (
            next((p for p in tool_dir.iterdir() if _norm(p.name) == key), None) if tool_dir.is_dir() else None
        )
        if env_dir is None:
            raise FileNotFoundError(f"uv tool environment for {name!r} not found under {tool_dir}")
        site = next(env_dir.glob("lib/python*/site-packages"))
        dist = next(d for d in md.distributions(path=[str(site)]) if _norm(d.metadata["Name"]) == key)
        bins = {ep.name: str(bin_dir / ep.name) for ep in dist.entry_points if ep.group == "console_scripts"}
        out[key] = InstalledPackage(name=dist.metadata["Name"], version=dist.version, bins=bins)
    return out


def build_lock(npm_specs: list[str], pypi_specs: list[str]) -> SkillsLock:
    """Inspect what the image installed for these specs."""
    return SkillsLock(
        npm=_npm_packages([split_spec(s, "npm") for s in npm_specs]),
        pypi=_pypi_packages([split_spec(s, "pypi") for s in pypi_specs]),
    )


def load_lock(path: str | os.PathLike[str] | None = None) -> SkillsLock | None:
    """The lock of this image (SANDBOX_SKILLS_LOCK), or None outside a sandbox image."""
    where = path or os.environ.get("SANDBOX_SKILLS_LOCK")
    if not where or not Path(where).is_file():
        return None
    data = json.loads(Path(where).read_text())

    def load(section: Mapping[str, dict[str, object]]) -> dict[str, InstalledPackage]:
        return {
            k: InstalledPackage(name=k, version=str(v["version"]), bins=dict(v["bins"]))  # type: ignore[call-overload]
            for k, v in section.items()
        }

    return SkillsLock(npm=load(data.get("npm", {})), pypi=load(data.get("pypi", {})))


@functools.cache
def _image_lock() -> SkillsLock | None:
    return load_lock()


def installed_command(skill: McpStdioSkill) -> tuple[str, list[str]] | None:
    """Inside a sandbox image: the installed executable for an `npx`/`uvx` skill, with its remaining args.

    `npx -y pkg --flag` becomes `/usr/local/bin/pkg-bin --flag`. Returns None outside an image, for other
    commands, or when the package is not in the lock (the caller then runs the command as written). The
    launcher's arguments are read by the config layer's `launcher_parts`, the same parser that decided
    what the image installs.
    """
    from sandbox.config import launcher_parts

    lock = _image_lock()
    if lock is None:
        return None
    try:
        parts = launcher_parts(skill)
    except ValueError:
        return None
    if parts is None:
        return None
    spec, rest = parts
    exe = lock.executable(spec.ecosystem, spec.name)
    return (exe, rest) if exe else None
