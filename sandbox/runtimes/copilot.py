"""GitHub Copilot CLI (`copilot -p --output-format json`). Facts: shared/reference/cli-agents.md §6.

Invocation choices and why:

* Copilot has no system-prompt flag: the instruction and delegates go ahead of the query.
* `--output-format json` (JSONL session events, since 0.0.422) instead of text: PanCode parsed text and
  therefore had no session id, exit status, turns or usage.
* approval: `--allow-all-tools` (required for unattended tool use) and `--no-ask-user` (the agent must
  not stop to ask a question nobody will answer).
* MCP: `--additional-mcp-config @<file>` with `{"mcpServers": ...}`; `pick` becomes the server's
  `tools` list, `omit` becomes `--deny-tool <server>(<tool>)` (deny wins in Copilot).
* the prompt is passed as `--prompt=<text>`.

Parsing: final text = last `assistant.message` content; `toolRequests` on it and `tool.execution_start`
both announce calls (deduplicated by id); turns = `assistant.turn_end` count; output tokens are summed
from `assistant.message.outputTokens` where present; no input tokens or USD cost exist — premium
requests / AI credits from `result.usage` are kept in `usage.extra`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from ._base import CliRequest, CliRuntime, Invocation
from ._process import ProcessResult
from ._stream import (
    Call,
    Item,
    Notice,
    StreamState,
    Text,
    ToolCalls,
    ToolResult,
    as_dict,
    as_int,
    split_mcp_name,
    text_of,
)

__all__ = ["USAGE_FILE", "Copilot", "apply_usage_report", "register_runtimes"]

USAGE_FILE = "copilot-usage.json"


class Copilot(CliRuntime):
    """GitHub Copilot CLI."""

    id: ClassVar[str] = "copilot"
    name: ClassVar[str] = "Copilot CLI"
    binary: ClassVar[str] = "copilot"
    install_hint: ClassVar[str] = "install it with `npm install -g @github/copilot` (Node 22+)"
    auth_env: ClassVar[tuple[str, ...]] = (
        "COPILOT_GITHUB_TOKEN",
        "GH_TOKEN",
        "GITHUB_TOKEN",
        "COPILOT_PROVIDER_BASE_URL",
    )
    auth_files: ClassVar[tuple[str, ...]] = (".config/gh/hosts.yml",)
    env_names: ClassVar[tuple[str, ...]] = ("GH_HOST",)
    env_prefixes: ClassVar[tuple[str, ...]] = ("COPILOT_", "GITHUB_COPILOT_")
    model_prefixes: ClassVar[tuple[str, ...] | None] = ("claude", "gpt", "gemini", "o1", "o3", "o4", "auto")
    optional_flags: ClassVar[tuple[str, ...]] = ("--usage-output-file", "--no-ask-user")

    def auth_hint(self) -> str:
        return "set COPILOT_GITHUB_TOKEN (or GH_TOKEN/GITHUB_TOKEN), or run `copilot login`"

    def build_invocation(self, request: CliRequest) -> Invocation:
        expert = request.expert
        servers: dict[str, dict[str, object]] = {}
        applied: dict[str, str] = {}
        deny: list[str] = []
        for server in expert.servers:
            if server.is_stdio:
                entry: dict[str, object] = {
                    "type": "local",
                    "command": server.command,
                    "args": list(server.args),
                }
                if server.env:
                    entry["env"] = dict(server.env)
            else:
                entry = {"type": "sse", "url": server.url}
            entry["tools"] = list(server.pick) or ["*"]
            deny.extend(f"{server.name}({tool})" for tool in server.omit)
            servers[server.name] = entry
            applied[server.name] = "passed via --additional-mcp-config"
        args = [
            "--prompt=" + expert.prompt_with_instructions(request.query),
            "--output-format",
            "json",
            "--allow-all-tools",
            "--no-color",
        ]
        if "--no-ask-user" in request.flags:
            args.append("--no-ask-user")
        if "--usage-output-file" in request.flags:
            args += ["--usage-output-file", str(request.scratch / USAGE_FILE)]
        if servers:
            config = request.scratch / "mcp-config.json"
            config.write_text(json.dumps({"mcpServers": servers}))
            args += ["--additional-mcp-config", "@" + str(config)]
        args += [f"--deny-tool={rule}" for rule in deny]
        if request.model:
            args += ["--model", request.model]
        notes = ["Copilot has no step limit; --max-steps is not applied"] if request.max_steps else []
        return Invocation(args=args, skills=expert.statuses(self.id, applied, {}), notes=notes)

    def finish(self, state: StreamState, result: ProcessResult) -> None:
        """Read the token totals the stream lacks from `--usage-output-file` (written at exit)."""
        if state.workdir is None:
            return
        try:
            report = json.loads((state.workdir / USAGE_FILE).read_text())
        except (OSError, ValueError):
            return
        apply_usage_report(state, report)

    def parse(self, event: dict[str, Any], state: StreamState) -> Iterator[Item]:
        kind = str(event.get("type", ""))
        data = as_dict(event.get("data"))
        announced: set[str] = state.scratch.setdefault("announced", set())
        if kind == "assistant.message":
            state.model = data.get("model") or state.model
            text = text_of(data.get("content"))
            if text:
                state.final_text = text
            tokens = as_int(data.get("outputTokens"))
            if tokens is not None:
                state.usage.add(output_tokens=tokens)
            calls = []
            for request in data.get("toolRequests") or []:
                if not isinstance(request, Mapping):
                    continue
                call_id = str(request.get("toolCallId", ""))
                announced.add(call_id)
                calls.append(_call(call_id, str(request.get("name", "")), request.get("arguments"), state))
            if calls:
                yield ToolCalls(calls=tuple(calls), text=text)
            elif text:
                yield Text(text)
        elif kind == "tool.execution_start":
            call_id = str(data.get("toolCallId", ""))
            if call_id not in announced:
                announced.add(call_id)
                call = _call(call_id, str(data.get("toolName", "")), data.get("arguments"), state)
                if data.get("mcpServerName") and data.get("mcpToolName"):
                    call = Call(call_id, str(data["mcpToolName"]), call.args, str(data["mcpServerName"]))
                yield ToolCalls(calls=(call,))
        elif kind == "tool.execution_complete":
            call_id = str(data.get("toolCallId", ""))
            if data.get("success", True) is False or data.get("error"):
                error = data.get("error")
                message = error.get("message") if isinstance(error, Mapping) else error
                yield ToolResult(call_id, text_of(message) or "tool failed", is_error=True)
            else:
                result = data.get("result")
                content = result.get("content") if isinstance(result, Mapping) else result
                yield ToolResult(call_id, text_of(content))
        elif kind == "assistant.turn_end":
            state.usage.add(turns=1)
        elif kind == "session.auto_mode_resolved":
            state.model = data.get("chosenModel") or state.model
        elif kind == "session.error":
            state.error = str(data.get("message") or data.get("errorType") or "session error")
        elif kind == "session.warning":
            yield Notice(str(data.get("message", "")))
        elif kind == "result":
            state.finished = True
            state.session_id = str(event.get("sessionId") or "") or state.session_id
            usage = event.get("usage")
            if isinstance(usage, Mapping):
                state.usage.extra.update(
                    {k: v for k, v in usage.items() if k in ("premiumRequests", "aiCredits")}
                )
            code = as_int(event.get("exitCode"))
            if code not in (None, 0) and state.error is None:
                state.error = f"Copilot reported exit code {code}"


def apply_usage_report(state: StreamState, report: object) -> None:
    """Token totals from the usage file: summed over `modelMetrics`; premium requests kept as extra.

    `inputTokens` is the whole prompt as the provider counted it (OpenAI-style, cache included).
    """
    metrics = as_dict(as_dict(report).get("modelMetrics"))
    usage = state.usage
    if metrics:  # the file's totals replace what the stream hinted at (some outputTokens)
        usage.input_tokens = usage.output_tokens = usage.cached_input_tokens = usage.reasoning_tokens = None
    for model in metrics.values():
        figures = as_dict(as_dict(model).get("usage"))
        usage.input_tokens = _plus(usage.input_tokens, as_int(figures.get("inputTokens")))
        usage.output_tokens = _plus(usage.output_tokens, as_int(figures.get("outputTokens")))
        usage.cached_input_tokens = _plus(usage.cached_input_tokens, as_int(figures.get("cacheReadTokens")))
        usage.reasoning_tokens = _plus(usage.reasoning_tokens, as_int(figures.get("reasoningTokens")))
    premium = as_dict(report).get("totalPremiumRequestCost")
    if premium is not None:
        usage.extra["premiumRequests"] = premium


def _plus(total: int | None, value: int | None) -> int | None:
    if value is None:
        return total
    return value if total is None else total + value


def _call(call_id: str, name: str, arguments: object, state: StreamState) -> Call:
    """MCP tools are named `<server>-<tool>` in Copilot; attribute them to the Expert's skill."""
    mcp = split_mcp_name(name, state.servers, sep="-")
    if mcp is not None:
        return Call(call_id, mcp.name, _args(arguments), mcp.skill)
    return Call(call_id, name, _args(arguments))


def _args(value: object) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except ValueError:
            return {"arguments": value}
        return decoded if isinstance(decoded, dict) else {"arguments": decoded}
    return {}


def register_runtimes(register: Any) -> None:
    register(Copilot())
