"""The key pass that runs on the parsed TOML before validation: unknown, dropped and misplaced keys.

Why before pydantic: Perstack's zod schemas strip unknown keys silently, so a typo (`allowedDomain`) in a
Perstack file just loses a setting. Here a key that no model knows is an error with a "did you mean",
computed against the keys valid *at that level* (taken from the models' aliases, so the two cannot drift).
Two kinds of unknown keys are only warnings, and are removed so validation does not see them:

- keys Perstack itself removed (`temperature`, #240; the top-level and Expert-level `network` tables,
  #139) - old files must keep loading, as they do in Perstack;
- top-level keys written below a `[table]` header. TOML puts every key after a header into that table,
  so `envPath = [...]` written after `[provider]` is `provider.envPath`. Perstack ignores it there; many
  real configs (including Perstack's own e2e files) have exactly this, so it must load, with a warning.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from ._issues import Loc, show, with_suggestion
from ._model import (
    Expert,
    InteractiveSkill,
    InteractiveTool,
    McpSseSkill,
    McpStdioSkill,
    PerstackConfig,
    ProviderConfig,
    SandboxSettings,
)

__all__ = ["KeyIssue", "check_keys"]

# (location, message, severity)
KeyIssue = tuple[Loc, str, str]

_DROPPED_TOP: Mapping[str, str] = {
    "temperature": "ignored: Perstack removed `temperature` (perstack#240)",
    "network": (
        "ignored: Perstack removed the top-level `network` table (perstack#139); "
        "put `allowedDomains` on the skills that need the network"
    ),
}
_DROPPED_EXPERT: Mapping[str, str] = {
    "network": (
        "ignored: Perstack removed the Expert-level `network` table (perstack#139); "
        "put `allowedDomains` on the Expert's skills"
    ),
}
_SKILL_MODELS: Mapping[str, type[BaseModel]] = {
    "mcpStdioSkill": McpStdioSkill,
    "mcpSseSkill": McpSseSkill,
    "interactiveSkill": InteractiveSkill,
}


def _keys(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(field.alias or name for name, field in model.model_fields.items())


_TOP_KEYS = _keys(PerstackConfig) | frozenset(_DROPPED_TOP)


def _clean(
    table: Mapping[str, Any],
    model: type[BaseModel],
    loc: Loc,
    found: list[KeyIssue],
    dropped: Mapping[str, str],
) -> dict[str, Any]:
    """`table` without the keys `model` does not know; each removal is reported at its location."""
    valid = _keys(model)
    kept: dict[str, Any] = {}
    for key, value in table.items():
        if key in valid:
            kept[key] = value
        elif key in dropped:
            found.append(((*loc, key), dropped[key], "warning"))
        elif loc and key in _TOP_KEYS:
            found.append(
                (
                    (*loc, key),
                    f"ignored: {show(key)} belongs at the top level, but TOML puts keys written after a "
                    "[table] header into that table; move it above the first header (Perstack ignores it "
                    "here too)",
                    "warning",
                )
            )
        else:
            expected = ", ".join(f"`{k}`" for k in sorted(valid))
            message = with_suggestion("unknown key", key, valid)
            if "did you mean" not in message:
                message = f"unknown key (expected one of {expected})"
            found.append(((*loc, key), message, "error"))
    return kept


def _skill(raw: Mapping[str, Any], loc: Loc, found: list[KeyIssue]) -> Mapping[str, Any]:
    kind = raw.get("type")
    model = _SKILL_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        return raw  # a missing or unknown `type` is reported by validation, with the list of types
    skill = _clean(raw, model, loc, found, {})
    tools = skill.get("tools")
    if model is InteractiveSkill and isinstance(tools, dict):
        skill["tools"] = {
            name: _clean(tool, InteractiveTool, (*loc, "tools", name), found, {})
            if isinstance(tool, dict)
            else tool
            for name, tool in tools.items()
        }
    return skill


def _expert(raw: Mapping[str, Any], loc: Loc, found: list[KeyIssue]) -> dict[str, Any]:
    expert = _clean(raw, Expert, loc, found, _DROPPED_EXPERT)
    skills = expert.get("skills")
    if isinstance(skills, dict):
        expert["skills"] = {
            name: _skill(skill, (*loc, "skills", name), found) if isinstance(skill, dict) else skill
            for name, skill in skills.items()
        }
    return expert


def check_keys(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[KeyIssue]]:
    """The document without unknown/dropped/misplaced keys, and one issue per key removed.

    Tables whose keys are data rather than schema (`provider.setting`, `providerToolOptions`,
    `providerSkills`) are checked by their validators instead, which know the per-provider keys.
    Values of the wrong type are left alone for validation to report.
    """
    found: list[KeyIssue] = []
    top = _clean(raw, PerstackConfig, (), found, _DROPPED_TOP)
    if isinstance(top.get("provider"), dict):
        top["provider"] = _clean(top["provider"], ProviderConfig, ("provider",), found, {})
    if isinstance(top.get("sandbox"), dict):
        top["sandbox"] = _clean(top["sandbox"], SandboxSettings, ("sandbox",), found, {})
    experts = top.get("experts")
    if isinstance(experts, dict):
        top["experts"] = {
            key: _expert(expert, ("experts", key), found) if isinstance(expert, dict) else expert
            for key, expert in experts.items()
        }
    return top, found
