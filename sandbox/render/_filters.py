"""Quoting filters: the only way a value reaches a rendered file.

Every interpolation in the Dockerfile and compose templates goes through one of these filters, and each one
both validates and quotes. Validation happens upstream too (config validators, plan), so these are defence
in depth: a value that slipped through must still not be able to add a Dockerfile instruction, a YAML key,
a compose `${VAR}` interpolation or a shell command.
"""

from __future__ import annotations

import json
import re
import shlex

from sandbox._errors import RenderError

__all__ = ["FILTERS", "dockerfile_json", "image_ref", "sh", "yaml_str"]

# docker/distribution reference grammar, simplified and strict: [host[:port]/]path[:tag][@digest]
_IMAGE_REF = re.compile(
    r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]{1,5})?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _plain(value: object, what: str) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise RenderError(f"SECURITY: {what} must be a string or number, got {type(value).__name__}")
    text = str(value)
    if _CONTROL.search(text):
        raise RenderError(f"SECURITY: control character in {what}: {text!r}")
    return text


def sh(value: object) -> str:
    """One shell word, single-quoted when needed (for RUN lines)."""
    return shlex.quote(_plain(value, "shell word"))


def yaml_str(value: object) -> str:
    """A YAML double-quoted scalar with compose interpolation disabled (`$` becomes `$$`).

    JSON string syntax is a subset of YAML's double-quoted style, so `json.dumps` gives a scalar that
    no newline, colon, `#` or brace can break out of. Compose would still expand `${X}` inside it, hence
    the doubling.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value) if isinstance(value, int | float) else value
    if not isinstance(text, str):
        raise RenderError(f"SECURITY: YAML value must be a string or number, got {type(value).__name__}")
    return json.dumps(text, ensure_ascii=True).replace("$", "$$")


def dockerfile_json(value: object) -> str:
    """A JSON string for LABEL/ENV values; `$` is refused (Dockerfile expands it)."""
    text = _plain(value, "Dockerfile value")
    if "$" in text:
        raise RenderError(f"SECURITY: '$' in Dockerfile value {text!r}")
    return json.dumps(text, ensure_ascii=True)


def image_ref(value: object) -> str:
    """A Docker image reference, validated against the reference grammar (FROM lines)."""
    text = _plain(value, "image reference")
    if not _IMAGE_REF.fullmatch(text) or len(text) > 255:
        raise RenderError(f"SECURITY: not a valid image reference: {text!r}")
    return text


FILTERS = {"sh": sh, "yaml_str": yaml_str, "dockerfile_json": dockerfile_json, "image_ref": image_ref}
