"""Turning parser and pydantic errors into `ConfigIssue`s that name the TOML key path the user wrote.

Why a translator instead of pydantic's own text: pydantic reports `experts.reviewer.skills.web.
mcpStdioSkill.allowedDomains.1` with "Value error, ..." and one error per union branch. Users wrote
`[experts."reviewer".skills."web"]` and `allowedDomains = [...]`, so paths are rendered the way Perstack's
docs write them: table keys of experts/skills/tools/headers quoted, field names plain, `[i]` for array
items, discriminated-union tags dropped, and python attribute names mapped back to their TOML aliases.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Any

from pydantic import BaseModel, ValidationError

from sandbox._errors import ConfigIssue

from ._issues import ISSUE_TYPE, show, with_suggestion
from ._model import (
    SKILL_TYPES,
    Expert,
    InteractiveSkill,
    InteractiveTool,
    McpSseSkill,
    McpStdioSkill,
    PerstackConfig,
    ProviderConfig,
    SandboxSettings,
)

__all__ = ["render_path", "toml_error_issue", "toml_type", "validation_issues"]

_MODELS: tuple[type[BaseModel], ...] = (
    PerstackConfig,
    ProviderConfig,
    Expert,
    McpStdioSkill,
    McpSseSkill,
    InteractiveSkill,
    InteractiveTool,
    SandboxSettings,
)
# Python attribute → TOML key, for errors raised while validating by attribute name.
_ALIASES = {
    name: field.alias for model in _MODELS for name, field in model.model_fields.items() if field.alias
}
# Fields whose next path element is a user-chosen table key, rendered quoted.
_KEYED_TABLES = frozenset({"experts", "skills", "tools", "headers"})
# Location elements pydantic adds for union branches and validator wrappers, never written by users.
_BRANCH = re.compile(r"(?:[a-z-]+\[.*\]|int|str|float|bool|none|constrained-int|constrained-str)")
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")

_TYPE_MESSAGES = {
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be an array",
    "tuple_type": "must be an array",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
}


def toml_type(value: Any) -> str:
    """The TOML name of a parsed value's type, for "must be a string (got an integer)" messages."""
    names: tuple[tuple[type | tuple[type, ...], str], ...] = (
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a float"),
        (str, "a string"),
        ((list, tuple), "an array"),
        (dict, "a table"),
        ((datetime, date, time), "a date/time"),
    )
    for kind, name in names:
        if isinstance(value, kind):
            return name
    return type(value).__name__  # pragma: no cover - tomllib produces only the types above


def render_path(loc: Sequence[str | int], *, map_aliases: bool = True) -> str:
    """A pydantic location as the TOML key path a user writes.

    `('experts', 'a', 'skills', 'web', 'mcpStdioSkill', 'allowedDomains', 1)` becomes
    `experts."a".skills."web".allowedDomains[1]`. `map_aliases=False` keeps element names as written
    (the key pass reports keys exactly as the user typed them, `package_name` included).
    """
    out = ""
    quote_next = False
    after_skill_key = False
    for element in loc:
        if isinstance(element, int):
            out += f"[{element}]"
            quote_next = False
            continue
        if quote_next:
            out += ("." if out else "") + json.dumps(element, ensure_ascii=False)
            quote_next = False
            continue
        if element == "[key]" or (after_skill_key and element in SKILL_TYPES) or _BRANCH.fullmatch(element):
            after_skill_key = False
            continue
        name = _ALIASES.get(element, element) if map_aliases else element
        out += ("." if out else "") + name
        quote_next = name in _KEYED_TABLES
        after_skill_key = False
        if name == "skills":
            after_skill_key = True  # armed for the element after the (quoted) skill key
    return out


def _number(value: Any) -> str:
    """`0` rather than pydantic's `0.0` for a float bound that is a whole number."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _message(error: Any) -> tuple[Sequence[str | int], str]:
    """(location, message) for one pydantic error dict."""
    loc: Sequence[str | int] = error["loc"]
    kind: str = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    if kind == ISSUE_TYPE:
        return loc, str(ctx.get("detail", error["msg"]))
    if kind in {"value_error", "assertion_error"} and "error" in ctx:
        return loc, str(ctx["error"])
    if kind == "missing":
        return loc, "is required but missing"
    if kind == "extra_forbidden":
        return loc, "unknown key"
    if kind == "union_tag_invalid":
        tag = str(ctx.get("tag", ""))
        options = ", ".join(f"`{t}`" for t in SKILL_TYPES)
        return (*loc, "type"), with_suggestion(
            f"unknown skill type {show(tag)} (expected {options})", tag, SKILL_TYPES
        )
    if kind == "union_tag_not_found":
        options = ", ".join(f"`{t}`" for t in SKILL_TYPES)
        return (*loc, "type"), f"is required but missing (one of {options})"
    if kind in _TYPE_MESSAGES:
        return loc, f"{_TYPE_MESSAGES[kind]} (got {toml_type(error.get('input'))})"
    if kind == "greater_than_equal":
        return loc, f"must be at least {_number(ctx.get('ge'))}"
    if kind == "greater_than":
        return loc, f"must be greater than {_number(ctx.get('gt'))}"
    if kind == "literal_error":
        return loc, f"must be {ctx.get('expected')}"
    text = str(error["msg"])
    return loc, text[:1].lower() + text[1:]


def validation_issues(error: ValidationError, file: str) -> list[ConfigIssue]:
    """Every pydantic error as a located, de-duplicated, one-line ConfigIssue."""
    issues: list[ConfigIssue] = []
    seen: set[tuple[str, str]] = set()
    for raw in error.errors(include_url=False):
        loc, message = _message(raw)
        path = render_path(loc)
        message = " ".join(message.splitlines())
        if (path, message) in seen:
            continue
        seen.add((path, message))
        issues.append(ConfigIssue(file=file, path=path, message=message))
    return issues


def toml_error_issue(error: tomllib.TOMLDecodeError, file: str) -> ConfigIssue:
    """`perstack.toml:3:9: invalid TOML: Invalid value` (compiler style, so editors can jump to it)."""
    text = str(error)
    match = _TOML_POSITION.search(text)
    if match:
        line, column = match.groups()
        return ConfigIssue(
            file=f"{file}:{line}:{column}", path="", message=f"invalid TOML: {text[: match.start()]}"
        )
    return ConfigIssue(file=file, path="", message=f"invalid TOML: {text}")
