"""Walk an Expert's delegates and add every registry Expert the file does not define, validated."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._client import RegistryError, fetch_expert

if TYPE_CHECKING:
    import httpx

    from sandbox.config import Expert, PerstackConfig

__all__ = ["MAX_REGISTRY_EXPERTS", "Resolution", "resolve_registry_experts"]

MAX_REGISTRY_EXPERTS = 64
"""A registry graph larger than this is refused: delegation chains are short, and a hostile registry answer
must not make a run fetch without end."""

# What a registry definition may carry into an Expert, per Perstack's publish payload (§6). Anything else
# in the answer (ids, owner, status, timestamps) describes the listing, not the Expert.
_EXPERT_FIELDS = {"version", "minRuntimeVersion", "description", "instruction", "skills", "delegates", "tags"}
_SKILL_FIELDS = {
    "mcpStdioSkill": {"type", "description", "rule", "pick", "omit", "command", "packageName", "requiredEnv"},
    "mcpSseSkill": {"type", "description", "rule", "pick", "omit", "endpoint"},
    "interactiveSkill": {"type", "description", "rule", "tools"},
}
_REGISTRY_COMMANDS = ("npx", "uvx")


@dataclass
class Resolution:
    """The config with the registry Experts added, which keys were fetched, and what could not be."""

    config: PerstackConfig
    fetched: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def resolve_registry_experts(
    config: PerstackConfig,
    root: str,
    env: Mapping[str, str],
    *,
    transport: httpx.BaseTransport | None = None,
) -> Resolution:
    """Fetch the registry Experts reachable from `root` (itself included) that `config` does not define.

    Only registry-shaped keys are fetched (`@scope/name`, `name@1.2.3`, `name@tag`); a bare unknown name
    stays unknown (a typo must not become a download). With `SANDBOX_NO_REGISTRY` set nothing is fetched and
    each registry key is a problem. The API key is `PERSTACK_API_KEY` from the private env map.
    """
    from sandbox.config import is_registry_key, validate_expert_key

    out = Resolution(config)
    offline = bool(env.get("SANDBOX_NO_REGISTRY"))
    experts = dict(config.experts)
    seen, queue = {root}, deque([root])
    while queue:
        key = queue.popleft()
        expert = experts.get(key)
        if expert is None:
            if not is_registry_key(key):
                continue  # the planner reports unknown local names
            try:
                validate_expert_key(key)  # delegates were validated with the file; the Expert to run was not
            except ValueError as exc:
                out.problems.append(f"registry Expert {key!r}: {exc}")
                continue
            if offline:
                out.problems.append(f"registry Expert {key}: not fetched (SANDBOX_NO_REGISTRY is set)")
                continue
            if len(out.fetched) >= MAX_REGISTRY_EXPERTS:
                out.problems.append(
                    f"registry Expert {key}: not fetched: more than {MAX_REGISTRY_EXPERTS} "
                    "registry Experts are reachable"
                )
                continue
            try:
                raw = fetch_expert(
                    key,
                    base_url=config.perstack_api_base_url,
                    api_key=env.get("PERSTACK_API_KEY"),
                    transport=transport,
                )
                status = raw.get("status")
                if status == "disabled":  # taken down by its owner or the registry: never run it
                    raise RegistryError(f"registry Expert {key}: disabled in the registry; not used")
                expert = to_expert(key, raw)
            except RegistryError as exc:
                out.problems.append(str(exc))
                continue
            if status == "deprecated":
                out.problems.append(f"registry Expert {key}: deprecated by its owner (still used)")
            experts[key] = expert
            out.fetched.append(key)
        for delegate in expert.delegates:
            if delegate not in seen:
                seen.add(delegate)
                queue.append(delegate)
    if out.fetched:
        out.config = config.model_copy(update={"experts": experts})
    return out


def to_expert(key: str, data: Mapping[str, Any]) -> Expert:
    """A registry definition as an `Expert`, validated like perstack.toml; RegistryError names the field."""
    from pydantic import ValidationError

    from sandbox.config import Expert, validation_issues

    payload: dict[str, Any] = {k: v for k, v in data.items() if k in _EXPERT_FIELDS and v is not None}
    skills = payload.get("skills")
    if isinstance(skills, Mapping):
        payload["skills"] = {name: _skill(key, str(name), s) for name, s in skills.items()}
    try:
        return Expert.model_validate(payload)
    except ValidationError as exc:
        issue = validation_issues(exc, f"registry Expert {key}")[0]
        raise RegistryError(str(issue)) from None


def _skill(key: str, name: str, raw: Any) -> Any:
    if not isinstance(raw, Mapping):
        return raw  # validation names it
    kind = raw.get("type")
    allowed = _SKILL_FIELDS.get(kind) if isinstance(kind, str) else None
    if allowed is None:
        return dict(raw)
    skill = {k: v for k, v in raw.items() if k in allowed and v is not None}
    if kind == "mcpStdioSkill" and skill.get("command") not in _REGISTRY_COMMANDS:
        raise RegistryError(
            f"registry Expert {key}: skills.{name}.command: {skill.get('command')!r} is not "
            "allowed for a registry Expert (only npx or uvx with a packageName)"
        )
    if kind == "mcpStdioSkill" and not skill.get("packageName"):
        skill["packageName"] = name  # what Perstack's publish sends when packageName is unset
    return skill
