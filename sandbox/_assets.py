"""Where the shipped templates live, and the one Jinja environment that renders them.

In a wheel, `templates/`, `proxy/` and `compose/` are packed under `sandbox/_assets/` (see pyproject's
force-include). In a source checkout they sit at the repository root, next to the package. Looking in
both places keeps one code path for installed and editable use.

The environment uses `StrictUndefined` (a missing value is an error, never an empty string) and no
autoescaping: the targets are Dockerfiles, YAML and squid.conf, not HTML. Untrusted values must be
validated and quoted by the caller's filters before they reach a template.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2

__all__ = ["asset_dir", "asset_path", "jinja_env"]

_PACKAGE_DIR = Path(__file__).resolve().parent
_SECTIONS = ("templates", "proxy", "compose")


@functools.cache
def asset_dir() -> Path:
    """The directory holding `templates/`, `proxy/` and `compose/` (wheel or source checkout)."""
    for candidate in (_PACKAGE_DIR / "_assets", _PACKAGE_DIR.parent):
        if all((candidate / s).is_dir() for s in _SECTIONS):
            return candidate
    raise FileNotFoundError(f"sandbox assets not found next to {_PACKAGE_DIR}; is the package installed?")


def asset_path(relative: str) -> Path:
    """Absolute path of a shipped asset, e.g. `asset_path("proxy/squid.conf.j2")`."""
    path = asset_dir() / relative
    if not path.is_file():
        raise FileNotFoundError(f"sandbox asset missing: {relative}")
    return path


@functools.cache
def jinja_env() -> jinja2.Environment:
    """The shared Jinja environment; templates are addressed as `templates/Dockerfile.j2` etc."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(asset_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701 - Dockerfile, YAML and squid.conf are not HTML
    )
