"""Cursor Agent CLI (`cursor-agent -p --output-format stream-json`). Facts: cli-agents.md §4.

Invocation choices and why:

* Cursor has no system-prompt flag: the instruction (and delegates) go ahead of the query, in the same
  `## Instructions` / `## User Request` layout as Perstack's own Cursor adapter.
* approval: `--force` (run commands unless denied) and `--trust` (headless runs can otherwise block on
  the workspace-trust question); `--workspace` names the workspace explicitly.
* MCP skills are reported *not applied*: Cursor reads MCP servers only from `.cursor/mcp.json` in the
  workspace or `~/.cursor/mcp.json`, and writing into the user's project or home to smuggle them in would
  change files the user owns.

Parsing: `assistant` lines are complete messages; `tool_call` `started`/`completed` carry the tool as the
single key of `tool_call` (`editToolCall` → `edit`); `result.result` concatenates all narration, so the
final text is the last assistant message. Usage is camelCase on `result.usage` (newer builds); no cost
and no turn count. On failure Cursor exits non-zero with the message on stderr and no `result`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from ._base import CliRequest, CliRuntime, Invocation
from ._stream import Call, Item, RunUsage, StreamState, Text, ToolCalls, ToolResult, as_int, text_of

__all__ = ["Cursor", "register_runtimes"]


def _tool_kind(tool_call: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """(`edit`, body) from `{"editToolCall": body}`; a generic `function{name,arguments}` keeps its name."""
    for key, body in tool_call.items():
        if not isinstance(body, Mapping):
            continue
        if key == "function":
            return str(body.get("name", "function")), body
        return (key[: -len("ToolCall")] if key.endswith("ToolCall") else key), body
    return "tool", {}


class Cursor(CliRuntime):
    """Cursor's headless agent."""

    id: ClassVar[str] = "cursor"
    name: ClassVar[str] = "Cursor Agent"
    binary: ClassVar[str] = "cursor-agent"
    install_hint: ClassVar[str] = "install it with `curl https://cursor.com/install -fsS | bash` (not on npm)"
    auth_env: ClassVar[tuple[str, ...]] = ("CURSOR_API_KEY",)
    auth_files: ClassVar[tuple[str, ...]] = (".config/cursor/auth.json", ".cursor/auth.json")
    env_prefixes: ClassVar[tuple[str, ...]] = ("CURSOR_",)
    # Cursor's own ids ("sonnet-4.5", "claude-4.6-sonnet-medium", "gpt-5", "auto"): Perstack's
    # "claude-sonnet-4-5" is not one of them, so it is not passed on.
    model_prefixes: ClassVar[tuple[str, ...] | None] = (
        "auto",
        "gpt",
        "sonnet",
        "opus",
        "haiku",
        "claude-4",
        "composer",
        "grok",
        "gemini",
        "o3",
        "o4",
    )

    def auth_hint(self) -> str:
        return "set CURSOR_API_KEY, or run `cursor-agent login`"

    def build_invocation(self, request: CliRequest) -> Invocation:
        expert = request.expert
        refused = {
            s.name: "cursor-agent reads MCP servers only from .cursor/mcp.json or ~/.cursor/mcp.json; "
            "sandbox does not write into your project or home"
            for s in expert.servers
        }
        args = [
            "-p",
            "--output-format",
            "stream-json",
            "--force",
            "--trust",
            "--workspace",
            str(request.workspace),
        ]
        if request.model:
            args += ["--model", request.model]
        notes = ["Cursor has no step limit; --max-steps is not applied"] if request.max_steps else []
        args.append(expert.prompt_with_instructions(request.query))
        return Invocation(args=args, skills=expert.statuses(self.id, {}, refused), notes=notes)

    def parse(self, event: dict[str, Any], state: StreamState) -> Iterator[Item]:
        kind = event.get("type")
        if event.get("session_id") and state.session_id is None:
            state.session_id = str(event["session_id"])
        if kind == "system" and event.get("subtype") == "init":
            state.model = event.get("model") or state.model
        elif kind == "assistant":
            text = text_of((event.get("message") or {}).get("content"))
            if text:
                state.scratch["last_text"] = text
                yield Text(text)
        elif kind == "tool_call" and isinstance(event.get("tool_call"), Mapping):
            name, body = _tool_kind(event["tool_call"])
            call_id = str(event.get("call_id", ""))
            if event.get("subtype") == "started":
                args = body.get("args") if isinstance(body.get("args"), Mapping) else {}
                if name == "function" or "arguments" in body:
                    args = {"arguments": body.get("arguments")}
                skill = None
                if name == "mcp" and isinstance(args, Mapping):
                    skill = str(args.get("providerIdentifier") or args.get("serverName") or "") or None
                    name = str(args.get("toolName") or args.get("name") or name)
                yield ToolCalls(calls=(Call(id=call_id, name=name, args=dict(args or {}), skill=skill),))
            elif event.get("subtype") == "completed":
                yield _result(call_id, body.get("result"), name)
        elif kind == "result":
            state.finished = True
            state.final_text = state.scratch.get("last_text") or str(event.get("result") or "")
            if isinstance(event.get("usage"), Mapping):
                state.usage = _usage(event["usage"])
            if event.get("is_error") or event.get("subtype", "success") != "success":
                state.error = str(event.get("result") or event.get("subtype") or "error")


def _result(call_id: str, result: object, name: str) -> ToolResult:
    if isinstance(result, Mapping):
        if "error" in result:
            error = result["error"]
            message = error.get("message", error) if isinstance(error, Mapping) else error
            return ToolResult(call_id, text_of(message), is_error=True, name=name)
        success = result.get("success", result)
        if isinstance(success, Mapping):
            for key in ("content", "output", "stdout", "message"):
                if key in success:
                    return ToolResult(call_id, text_of(success[key]), name=name)
        return ToolResult(call_id, text_of(success), name=name)
    return ToolResult(call_id, text_of(result), name=name)


def _usage(raw: Mapping[str, Any]) -> RunUsage:
    """camelCase usage; input here excludes the cache, so the prompt is input + cache reads + writes."""
    parts = [as_int(raw.get(k)) for k in ("inputTokens", "cacheReadTokens", "cacheWriteTokens")]
    known = [p for p in parts if p is not None]
    return RunUsage(
        input_tokens=sum(known) if known else None,
        output_tokens=as_int(raw.get("outputTokens")),
        cached_input_tokens=as_int(raw.get("cacheReadTokens")),
    )


def register_runtimes(register: Any) -> None:
    register(Cursor())
