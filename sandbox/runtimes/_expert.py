"""What of a Perstack Expert a CLI agent can take, computed once per run and shared by every adapter.

The seed's mapping: the instruction becomes the CLI's system prompt (or goes ahead of the query when the
CLI has no flag for it), delegates are described in the prompt ("instruction-based delegation": the CLI
cannot call Perstack delegates, so it is told what they would have done), interactive skills are
unsupported. Beyond the seed, MCP skills are handed to the CLI's own MCP configuration; each adapter
says per skill whether that took effect (`SkillStatus`).

`@perstack/base` (Perstack's file/shell tool server) is not passed on: every CLI has its own file and
shell tools, and starting a second set would only confuse the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sandbox._errors import AdapterError

if TYPE_CHECKING:  # models only for typing: importing sandbox.runtimes must stay cheap
    from sandbox.config import Expert, McpStdioSkill, PerstackConfig

__all__ = [
    "BASE_SKILL",
    "ExpertMapping",
    "McpServer",
    "SkillStatus",
    "map_expert",
]

BASE_SKILL = "@perstack/base"


@dataclass(frozen=True)
class McpServer:
    """One MCP skill in the neutral shape every CLI config format is built from.

    Exactly one of `command` (stdio) and `url` (SSE) is set. `env` holds the skill's `requiredEnv`
    values, resolved from the run's private env map.
    """

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    url: str | None = None
    pick: tuple[str, ...] = ()
    omit: tuple[str, ...] = ()

    @property
    def is_stdio(self) -> bool:
        return self.command is not None


@dataclass(frozen=True)
class SkillStatus:
    """Whether one skill of the Expert took effect in a runtime, and how (or why not)."""

    name: str
    type: str
    applied: bool
    detail: str

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "type": self.type, "applied": self.applied, "detail": self.detail}


@dataclass(frozen=True)
class ExpertMapping:
    """An Expert reduced to what CLI agents understand."""

    expert_key: str
    expert_name: str
    version: str
    instruction: str
    system_prompt: str
    """Instruction plus the delegates section: what goes to a system-prompt flag."""
    servers: tuple[McpServer, ...]
    base_skill: bool
    """True when the Expert uses `@perstack/base` (explicitly or by default)."""
    interactive: tuple[str, ...]
    delegates: tuple[str, ...]

    def prompt_with_instructions(self, query: str) -> str:
        """The query with the system prompt ahead of it, for CLIs without a system-prompt channel."""
        return f"## Instructions\n{self.system_prompt}\n\n## User Request\n{query}"

    def statuses(
        self, runtime: str, applied: Mapping[str, str], refused: Mapping[str, str]
    ) -> list[SkillStatus]:
        """Per-skill report: `applied` maps server name → how, `refused` maps server name → why not."""
        out: list[SkillStatus] = []
        if self.base_skill:
            out.append(
                SkillStatus(
                    BASE_SKILL,
                    "mcpStdioSkill",
                    True,
                    f"replaced by {runtime}'s built-in file and shell tools",
                )
            )
        for server in self.servers:
            kind = "mcpStdioSkill" if server.is_stdio else "mcpSseSkill"
            if server.name in applied:
                out.append(SkillStatus(server.name, kind, True, applied[server.name]))
            else:
                reason = refused.get(server.name, f"{runtime} cannot load this kind of skill")
                out.append(SkillStatus(server.name, kind, False, reason))
        out.extend(
            SkillStatus(name, "interactiveSkill", False, f"interactive skills are not supported by {runtime}")
            for name in self.interactive
        )
        return out


def _stdio_argv(skill: McpStdioSkill) -> tuple[str, tuple[str, ...]]:
    """Perstack's rule: `packageName` alone is the argument list; `npx` gets `-y` so it never prompts."""
    args = (
        list(skill.args) if skill.args is not None else ([skill.package_name] if skill.package_name else [])
    )
    if skill.command == "npx" and "-y" not in args and "--yes" not in args:
        args.insert(0, "-y")
    return skill.command, tuple(args)


def _delegates_section(config: PerstackConfig, delegates: tuple[str, ...]) -> str:
    if not delegates:
        return ""
    lines = [
        "## Delegates",
        "In Perstack this Expert can delegate to the Experts below. Here you cannot call them as tools:",
        "when part of the task matches one of them, do that part yourself, following its instruction.",
    ]
    for key in delegates:
        lines.append("")
        lines.append(f"### {key}")
        delegate: Expert | None = config.experts.get(key)
        if delegate is None:
            lines.append("(a registry Expert; its definition is not available here)")
            continue
        if delegate.description:
            lines.append(delegate.description.strip())
        lines.append("Instruction:")
        lines.append(delegate.instruction.strip())
    return "\n".join(lines)


def map_expert(config: PerstackConfig, expert_key: str, env: Mapping[str, str]) -> ExpertMapping:
    """Reduce `config.experts[expert_key]` for a CLI runtime.

    Raises `AdapterError` when the Expert is unknown or an MCP skill's `requiredEnv` is missing (the
    native runtime fails the same way: a skill without its key would only fail later, less clearly).
    """
    expert = config.experts.get(expert_key)
    if expert is None:
        known = ", ".join(sorted(config.experts)) or "none"
        raise AdapterError(f"Expert {expert_key!r} is not defined in perstack.toml (defined: {known})")
    skills = expert.skills
    base = skills is None or BASE_SKILL in skills
    servers: list[McpServer] = []
    interactive: list[str] = []
    for name, skill in (skills or {}).items():
        if name == BASE_SKILL:
            continue
        if skill.type == "interactiveSkill":
            interactive.append(name)
        elif skill.type == "mcpStdioSkill":
            missing = [var for var in skill.required_env if not env.get(var)]
            if missing:
                raise AdapterError(
                    f"skill {name!r} of Expert {expert_key!r} needs {', '.join(missing)}, which is not set",
                    hint="export it or add it to an env file",
                )
            command, args = _stdio_argv(skill)
            servers.append(
                McpServer(
                    name=name,
                    command=command,
                    args=args,
                    env={var: env[var] for var in skill.required_env},
                    pick=skill.pick,
                    omit=skill.omit,
                )
            )
        else:
            servers.append(McpServer(name=name, url=skill.endpoint, pick=skill.pick, omit=skill.omit))
    instruction = expert.instruction.strip()
    delegates = _delegates_section(config, expert.delegates)
    system_prompt = f"{instruction}\n\n{delegates}" if delegates else instruction
    return ExpertMapping(
        expert_key=expert_key,
        expert_name=expert_key,
        version=expert.version,
        instruction=instruction,
        system_prompt=system_prompt,
        servers=tuple(servers),
        base_skill=base,
        interactive=tuple(interactive),
        delegates=expert.delegates,
    )


def mcp_servers_json(
    servers: tuple[McpServer, ...], *, sse_type: str = "sse"
) -> dict[str, dict[str, object]]:
    """The `mcpServers` object shared by Claude Code, Gemini, Cursor and Copilot config files."""
    out: dict[str, dict[str, object]] = {}
    for server in servers:
        if server.is_stdio:
            entry: dict[str, object] = {"command": server.command, "args": list(server.args)}
            if server.env:
                entry["env"] = dict(server.env)
        else:
            entry = {"type": sse_type, "url": server.url}
        out[server.name] = entry
    return out
