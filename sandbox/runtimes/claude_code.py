"""Claude Code (`claude -p`), stream-json output. Facts: shared/reference/cli-agents.md §1.

Invocation choices and why:

* `--output-format stream-json --verbose`: the stream needs `--verbose` with `-p` (else exit 1).
* `--append-system-prompt`: the instruction is *appended*, keeping Claude Code's own tool guidance (the
  reference's adapter does the same); delegates ride along in the same text.
* approval: `--permission-mode acceptEdits` plus an explicit `--allowedTools` list (built-in tools and
  the Expert's MCP servers, honouring `pick`/`omit`). Not `--dangerously-skip-permissions`: that exits 1
  when run as root, which is exactly how CI and containers run.
* `--mcp-config <file> --strict-mcp-config`: the Expert gets exactly its own skills, not whatever MCP
  servers the user configured for interactive use.
* the prompt follows `--`, so a query starting with `-` is not read as an option.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar

from ._base import CliRequest, CliRuntime, Invocation
from ._expert import mcp_servers_json
from ._process import ProcessResult
from ._stream import (
    Call,
    Item,
    Notice,
    RunUsage,
    StreamState,
    Text,
    ToolCalls,
    ToolResult,
    as_dict,
    as_float,
    as_int,
    split_mcp_name,
    text_of,
)

__all__ = ["ClaudeCode", "register_runtimes"]

BUILTIN_TOOLS = (
    "Bash",
    "Edit",
    "Write",
    "Read",
    "Glob",
    "Grep",
    "NotebookEdit",
    "WebFetch",
    "WebSearch",
    "TodoWrite",
    "Task",
)


def _usage(raw: dict[str, Any]) -> RunUsage:
    """Anthropic usage: the prompt is input + cache writes + cache reads (the API splits them)."""
    parts = [
        as_int(raw.get(k)) for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    ]
    known = [p for p in parts if p is not None]
    return RunUsage(
        input_tokens=sum(known) if known else None,
        output_tokens=as_int(raw.get("output_tokens")),
        cached_input_tokens=as_int(raw.get("cache_read_input_tokens")),
    )


class ClaudeCode(CliRuntime):
    """Anthropic's Claude Code CLI."""

    id: ClassVar[str] = "claude-code"
    name: ClassVar[str] = "Claude Code"
    binary: ClassVar[str] = "claude"
    install_hint: ClassVar[str] = "install it with `npm install -g @anthropic-ai/claude-code`"
    auth_env: ClassVar[tuple[str, ...]] = (
        "ANTHROPIC_API_KEY",
        "CLAUDE_CODE_OAUTH_TOKEN",
        "ANTHROPIC_AUTH_TOKEN",
        "CLAUDE_CODE_USE_BEDROCK",
        "CLAUDE_CODE_USE_VERTEX",
    )
    auth_files: ClassVar[tuple[str, ...]] = (".claude/.credentials.json",)
    env_names: ClassVar[tuple[str, ...]] = (
        "CLAUDE_CONFIG_DIR",
        "DISABLE_TELEMETRY",
        "DISABLE_AUTOUPDATER",
        "DISABLE_ERROR_REPORTING",
        "MCP_TIMEOUT",
        "MCP_TOOL_TIMEOUT",
        "MCP_CONNECTION_NONBLOCKING",
        "IS_SANDBOX",
        "CLOUD_ML_REGION",
        "AWS_REGION",
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "GOOGLE_APPLICATION_CREDENTIALS",
    )
    env_prefixes: ClassVar[tuple[str, ...]] = ("ANTHROPIC_", "CLAUDE_CODE_", "VERTEX_REGION_")
    model_prefixes: ClassVar[tuple[str, ...] | None] = ("claude", "sonnet", "opus", "haiku", "fable")

    def build_invocation(self, request: CliRequest) -> Invocation:
        expert = request.expert
        config_path = request.scratch / "mcp.json"
        config_path.write_text(json.dumps({"mcpServers": mcp_servers_json(expert.servers)}))
        allowed = list(BUILTIN_TOOLS)
        denied: list[str] = []
        applied: dict[str, str] = {}
        for server in expert.servers:
            if server.pick:
                allowed.extend(f"mcp__{server.name}__{tool}" for tool in server.pick)
            else:
                allowed.append(f"mcp__{server.name}")
            denied.extend(f"mcp__{server.name}__{tool}" for tool in server.omit)
            applied[server.name] = "passed via --mcp-config" + (
                " (pick/omit as tool permissions)" if server.pick or server.omit else ""
            )
        args = [
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--append-system-prompt",
            expert.system_prompt,
            "--permission-mode",
            "acceptEdits",
            "--allowedTools",
            ",".join(allowed),
            "--mcp-config",
            str(config_path),
            "--strict-mcp-config",
        ]
        if denied:
            args += ["--disallowedTools", ",".join(denied)]
        if request.model:
            args += ["--model", request.model]
        if request.max_steps:
            # 2.x counts the prompt delivery as a turn; 1 would fail before any work.
            args += ["--max-turns", str(max(2, request.max_steps))]
        args += ["--", request.query]
        return Invocation(args=args, skills=expert.statuses(self.id, applied, {}))

    def parse(self, event: dict[str, Any], state: StreamState) -> Iterator[Item]:
        kind = event.get("type")
        if event.get("session_id") and state.session_id is None:
            state.session_id = str(event["session_id"])
        if kind == "system":
            yield from self._system(event, state)
        elif kind == "assistant" and event.get("parent_tool_use_id") is None:
            yield from self._assistant(event, state)
        elif kind == "user" and event.get("parent_tool_use_id") is None:
            for block in _blocks(event):
                if block.get("type") == "tool_result":
                    yield ToolResult(
                        call_id=str(block.get("tool_use_id", "")),
                        output=text_of(block.get("content")),
                        is_error=bool(block.get("is_error")),
                    )
        elif kind == "result":
            self._result(event, state)

    def _system(self, event: dict[str, Any], state: StreamState) -> Iterator[Item]:
        subtype = event.get("subtype")
        if subtype == "init":
            state.model = event.get("model") or state.model
            for server in event.get("mcp_servers") or []:
                if isinstance(server, dict) and server.get("name") in state.servers:
                    status = str(server.get("status"))
                    state.mcp_status[str(server["name"])] = status
                    if status not in ("connected", "pending"):
                        yield Notice(f"MCP skill {server['name']!r} is {status}")
        elif subtype == "api_retry":
            yield Notice(
                f"API retry {event.get('attempt')}/{event.get('max_retries')}: "
                f"{event.get('error_status') or ''} {event.get('error') or ''}".rstrip()
            )

    def _assistant(self, event: dict[str, Any], state: StreamState) -> Iterator[Item]:
        text = "".join(str(b.get("text", "")) for b in _blocks(event) if b.get("type") == "text")
        calls = []
        for block in _blocks(event):
            if block.get("type") != "tool_use":
                continue
            name = str(block.get("name", ""))
            mcp = split_mcp_name(name, state.servers, prefix="mcp__")
            args = as_dict(block.get("input"))
            calls.append(
                Call(
                    id=str(block.get("id", "")),
                    name=mcp.name if mcp else name,
                    args=args,
                    skill=mcp.skill if mcp else None,
                )
            )
        # Per-message usage is not used: the stream shows each message's usage as of its first block
        # (output_tokens 1), and helper-model calls never appear; `result.usage` has the real totals.
        if calls:
            yield ToolCalls(calls=tuple(calls), text=text)
        elif text:
            yield Text(text)
        if event.get("error"):
            state.scratch["assistant_error"] = str(event["error"])

    def _result(self, event: dict[str, Any], state: StreamState) -> None:
        state.finished = True
        if isinstance(event.get("result"), str):
            state.final_text = event["result"]
        usage = _usage(event["usage"]) if isinstance(event.get("usage"), dict) else RunUsage()
        usage.cost_usd = as_float(event.get("total_cost_usd", event.get("cost_usd")))
        usage.turns = as_int(event.get("num_turns"))
        if isinstance(event.get("modelUsage"), dict):
            usage.extra["modelUsage"] = event["modelUsage"]
        state.usage = usage
        if event.get("is_error") or str(event.get("subtype", "success")) != "success":
            errors = [str(e) for e in event.get("errors") or [] if e]
            detail = "; ".join(errors) or (
                event.get("result") if isinstance(event.get("result"), str) else ""
            )
            if not detail and event.get("api_error_status"):
                detail = f"API error {event['api_error_status']}"
            detail = detail or state.scratch.get("assistant_error") or str(event.get("subtype"))
            subtype = event.get("subtype")
            label = subtype if subtype not in (None, "success") else (event.get("terminal_reason") or "error")
            state.error = f"{label}: {detail}"

    def finish(self, state: StreamState, result: ProcessResult) -> None:
        if (
            state.error is None
            and not state.finished
            and result.exit_code != 0
            and state.scratch.get("assistant_error")
        ):
            state.error = str(state.scratch["assistant_error"])


def _blocks(event: dict[str, Any]) -> list[dict[str, Any]]:
    content = (event.get("message") or {}).get("content")
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def register_runtimes(register: Any) -> None:
    """Plugin hook: built-ins register exactly like third-party runtimes."""
    register(ClaudeCode())
