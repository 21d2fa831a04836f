"""OpenAI Codex CLI (`codex exec --json`). Facts: shared/reference/cli-agents.md §2.

Invocation choices and why:

* `exec --json`: JSONL `ThreadEvent`s on stdout (`thread.*`, `turn.*`, `item.*`, `error`).
* system prompt: Codex has no flag; `-c developer_instructions=...` adds a developer message, which keeps
  Codex's base instructions (replacing them with `model_instructions_file` would lose its tool guidance).
* approval: `exec` never asks; `--sandbox workspace-write` lets it edit the workspace. Where Codex's own
  Linux sandbox cannot start (containers without Landlock/user namespaces), set
  `SANDBOX_CODEX_SANDBOX=danger-full-access` to use `--dangerously-bypass-approvals-and-sandbox`.
* `-C <workspace> --skip-git-repo-check`: Codex otherwise refuses to run outside a git repository.
* MCP: one `-c mcp_servers={...}` inline table, replacing the user's servers for this run (as Claude's
  `--strict-mcp-config` does); `pick`/`omit` become `enabled_tools`/`disabled_tools`. SSE skills are not
  passed: Codex speaks streamable HTTP, not SSE.
* the prompt follows `--`.

Parsing notes (where PanCode went wrong): the answer is the last `item.completed` whose item is an
`agent_message`; usage is `turn.completed.usage` and is the thread total, so it replaces, never adds;
errors are objects (`turn.failed.error.message`, `error.message`). Legacy shapes (`item_type`,
`assistant_message`, the pre-0.44 `{"msg": {...}}` envelope) are read as fallbacks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from ._base import CliRequest, CliRuntime, Invocation
from ._process import ProcessResult
from ._stream import Call, Item, Notice, RunUsage, StreamState, Text, ToolCalls, ToolResult, as_int, text_of

__all__ = ["Codex", "register_runtimes", "toml_value"]

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_value(value: object) -> str:
    """A TOML literal for `-c key=value`: JSON strings are valid TOML basic strings; tables go inline."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(
            f"{k if _BARE_KEY.match(str(k)) else json.dumps(str(k))} = {toml_value(v)}"
            for k, v in value.items()
        )
        return "{" + items + "}"
    raise TypeError(f"cannot express {type(value).__name__} in TOML")


def _item_type(item: Mapping[str, Any]) -> str:
    kind = str(item.get("type") or item.get("item_type") or "")
    return "agent_message" if kind == "assistant_message" else kind


MCP_STARTUP_TIMEOUT_S = 60
"""Seconds Codex waits for each skill's MCP server to start (its own default is 10)."""


class Codex(CliRuntime):
    """OpenAI's Codex CLI."""

    id: ClassVar[str] = "codex"
    name: ClassVar[str] = "Codex"
    binary: ClassVar[str] = "codex"
    install_hint: ClassVar[str] = "install it with `npm install -g @openai/codex`"
    auth_env: ClassVar[tuple[str, ...]] = ("CODEX_API_KEY", "OPENAI_API_KEY")
    auth_files: ClassVar[tuple[str, ...]] = (".codex/auth.json",)
    env_names: ClassVar[tuple[str, ...]] = (
        "CODEX_HOME",
        "OPENAI_BASE_URL",
        "OPENAI_ORGANIZATION",
        "OPENAI_PROJECT",
        "RUST_LOG",
    )
    env_prefixes: ClassVar[tuple[str, ...]] = ()
    model_prefixes: ClassVar[tuple[str, ...] | None] = ("gpt", "o1", "o3", "o4", "codex", "gpt-oss")

    def find_auth(self, env: Mapping[str, str]) -> str | None:
        found = super().find_auth(env)
        if found is None and env.get("CODEX_HOME") and (Path(env["CODEX_HOME"]) / "auth.json").is_file():
            return "$CODEX_HOME/auth.json"
        return found

    def auth_hint(self) -> str:
        return "set CODEX_API_KEY or OPENAI_API_KEY, or run `codex login`"

    def build_invocation(self, request: CliRequest) -> Invocation:
        expert = request.expert
        servers: dict[str, dict[str, object]] = {}
        applied: dict[str, str] = {}
        refused: dict[str, str] = {}
        for server in expert.servers:
            if not server.is_stdio:
                refused[server.name] = "Codex connects to MCP servers over stdio or streamable HTTP, not SSE"
                continue
            # Codex gives an MCP server 10 s to start by default; a skill run through uvx/npx downloads its
            # package on first use, which takes longer on a slow or busy machine, and Codex then runs on
            # without the skill's tools. Perstack waits for its skills; so does this.
            entry: dict[str, object] = {
                "command": server.command or "",
                "args": list(server.args),
                "startup_timeout_sec": MCP_STARTUP_TIMEOUT_S,
            }
            if server.env:
                entry["env"] = dict(server.env)
            if server.pick:
                entry["enabled_tools"] = list(server.pick)
            if server.omit:
                entry["disabled_tools"] = list(server.omit)
            servers[server.name] = entry
            applied[server.name] = "passed via -c mcp_servers"
        sandbox_mode = request.env.get("SANDBOX_CODEX_SANDBOX", "workspace-write")
        args = ["exec", "--json", "--color", "never", "--skip-git-repo-check", "-C", str(request.workspace)]
        if sandbox_mode == "danger-full-access":
            args.append("--dangerously-bypass-approvals-and-sandbox")
        else:
            args += ["--sandbox", sandbox_mode]
        args += ["-c", "developer_instructions=" + toml_value(expert.system_prompt)]
        args += ["-c", "mcp_servers=" + toml_value(servers)]
        if request.model:
            args += ["--model", request.model]
        notes = []
        if request.max_steps:
            notes.append("Codex has no step limit; --max-steps is not applied (the timeout still is)")
        args += ["--", request.query]
        return Invocation(args=args, skills=expert.statuses(self.id, applied, refused), notes=notes)

    def parse(self, event: dict[str, Any], state: StreamState) -> Iterator[Item]:
        if isinstance(event.get("msg"), dict):  # pre-0.44 envelope
            yield from self._legacy(event["msg"], state)
            return
        kind = event.get("type")
        if kind == "thread.started":
            state.session_id = str(event.get("thread_id") or "") or state.session_id
        elif kind == "turn.completed":
            state.finished = True
            if isinstance(event.get("usage"), dict):
                state.usage = _usage(event["usage"])
        elif kind == "turn.failed":
            state.finished = True
            state.error = _message(event.get("error")) or "turn failed"
            if isinstance(event.get("usage"), dict):
                state.usage = _usage(event["usage"])
        elif kind == "error":
            # Retryable stream errors are reported too and may be followed by a completed turn: keep the
            # message for the exit-code path instead of failing now.
            message = _message(event) or "error"
            state.scratch["last_error"] = message
            yield Notice(message)
        elif kind in ("item.started", "item.completed") and isinstance(event.get("item"), dict):
            yield from self._item(event["item"], state, completed=kind == "item.completed")

    def _item(self, item: dict[str, Any], state: StreamState, *, completed: bool) -> Iterator[Item]:
        kind = _item_type(item)
        item_id = str(item.get("id", ""))
        started: set[str] = state.scratch.setdefault("started", set())
        if kind == "agent_message":
            if completed:
                text = str(item.get("text", ""))
                state.final_text = text
                yield Text(text)
            return
        if kind == "error":
            if completed:
                yield Notice(str(item.get("message", "")))
            return
        call = _tool_call(kind, item, item_id)
        if call is None:
            return  # reasoning, todo_list, plan: nothing to record
        if item_id not in started:
            started.add(item_id)
            yield ToolCalls(calls=(call,))
        if completed:
            yield _tool_result(kind, item, item_id, call.name)

    def _legacy(self, msg: dict[str, Any], state: StreamState) -> Iterator[Item]:
        kind = msg.get("type")
        if kind == "agent_message":
            state.final_text = str(msg.get("message", ""))
            yield Text(state.final_text)
        elif kind == "task_complete":
            state.finished = True
            if msg.get("last_agent_message"):
                state.final_text = str(msg["last_agent_message"])
        elif kind == "token_count" and isinstance(msg.get("info"), dict):
            total = msg["info"].get("total_token_usage")
            if isinstance(total, dict):
                state.usage = _usage(total)
        elif kind in ("error", "stream_error"):
            state.scratch["last_error"] = str(msg.get("message", "error"))

    def finish(self, state: StreamState, result: ProcessResult) -> None:
        if result.exit_code != 0 and state.error is None and state.scratch.get("last_error"):
            state.error = str(state.scratch["last_error"])


def _message(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        inner = value.get("message")
        return str(inner) if inner is not None else None
    return None


def _usage(raw: Mapping[str, Any]) -> RunUsage:
    """OpenAI usage: `input_tokens` already includes the cached part."""
    return RunUsage(
        input_tokens=as_int(raw.get("input_tokens")),
        output_tokens=as_int(raw.get("output_tokens")),
        cached_input_tokens=as_int(raw.get("cached_input_tokens")),
        reasoning_tokens=as_int(raw.get("reasoning_output_tokens")),
    )


def _tool_call(kind: str, item: Mapping[str, Any], item_id: str) -> Call | None:
    if kind == "command_execution":
        return Call(id=item_id, name="shell", args={"command": item.get("command", "")})
    if kind == "file_change":
        return Call(id=item_id, name="apply_patch", args={"changes": item.get("changes") or []})
    if kind == "mcp_tool_call":
        args = item.get("arguments")
        return Call(
            id=item_id,
            name=str(item.get("tool", "")),
            args=args if isinstance(args, dict) else {"arguments": args},
            skill=str(item.get("server", "")) or None,
        )
    if kind == "web_search":
        return Call(id=item_id, name="web_search", args={"query": item.get("query", "")})
    if kind == "collab_tool_call":
        return Call(id=item_id, name=str(item.get("tool", "collab")), args={"prompt": item.get("prompt", "")})
    return None


def _tool_result(kind: str, item: Mapping[str, Any], item_id: str, name: str) -> ToolResult:
    status = str(item.get("status", "completed"))
    failed = status in ("failed", "declined")
    if kind == "command_execution":
        code = item.get("exit_code")
        output = str(item.get("aggregated_output", ""))
        return ToolResult(
            item_id, output, is_error=failed or (isinstance(code, int) and code != 0), name=name
        )
    if kind == "file_change":
        changes = item.get("changes") or []
        summary = ", ".join(
            f"{c.get('kind', 'update')} {c.get('path', '')}" for c in changes if isinstance(c, dict)
        )
        return ToolResult(item_id, summary or status, is_error=failed, name=name)
    if kind == "mcp_tool_call":
        error = _message(item.get("error"))
        if error:
            return ToolResult(item_id, error, is_error=True, name=name)
        result = item.get("result")
        content = result.get("content") if isinstance(result, dict) else result
        return ToolResult(item_id, text_of(content), is_error=failed, name=name)
    return ToolResult(item_id, status, is_error=failed, name=name)


def register_runtimes(register: Any) -> None:
    register(Codex())
