"""Gemini CLI (`gemini -p -o stream-json`). Facts: shared/reference/cli-agents.md §3.

Invocation choices and why:

* system prompt: `GEMINI_SYSTEM_MD` must be a *path* (PanCode passed the text and Gemini failed with
  "missing system prompt file"); the instruction is written to a file in the run's scratch directory.
  It replaces Gemini's own system prompt, as a Perstack instruction replaces the native one.
* MCP and the step limit: Gemini has no per-run flag, so a settings file in the scratch directory is
  named by `GEMINI_CLI_SYSTEM_SETTINGS_PATH` (highest precedence, and the user's login stays usable —
  isolating `GEMINI_CLI_HOME` would hide `~/.gemini/oauth_creds.json`). `pick`/`omit` map to
  `includeTools`/`excludeTools`; `--max-steps` to `model.maxSessionTurns`.
* approval: `--approval-mode yolo` (`--yolo` is deprecated); `GEMINI_CLI_TRUST_WORKSPACE=true` so an
  untrusted folder does not stop the run (exit 55), across versions.
* the prompt is passed as `--prompt=<text>`, so a query starting with `-` stays a value.

Parsing: assistant text arrives as `message` deltas; the final answer is the text after the last tool
call. `result.stats` has the totals (`input_tokens` includes cached); turns are not reported (null).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar

from ._base import CliRequest, CliRuntime, Invocation
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
    as_int,
    split_mcp_name,
    text_of,
)

__all__ = ["Gemini", "register_runtimes"]


class Gemini(CliRuntime):
    """Google's Gemini CLI."""

    id: ClassVar[str] = "gemini"
    name: ClassVar[str] = "Gemini CLI"
    binary: ClassVar[str] = "gemini"
    install_hint: ClassVar[str] = "install it with `npm install -g @google/gemini-cli`"
    auth_env: ClassVar[tuple[str, ...]] = (
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "GOOGLE_GENAI_USE_VERTEXAI",
        "GOOGLE_GENAI_USE_GCA",
    )
    auth_files: ClassVar[tuple[str, ...]] = (".gemini/oauth_creds.json",)
    env_names: ClassVar[tuple[str, ...]] = (
        "GOOGLE_APPLICATION_CREDENTIALS",
        "GOOGLE_CLOUD_PROJECT",
        "GOOGLE_CLOUD_LOCATION",
    )
    env_prefixes: ClassVar[tuple[str, ...]] = ("GEMINI_", "GOOGLE_GEMINI_", "GOOGLE_GENAI_", "GOOGLE_VERTEX_")
    model_prefixes: ClassVar[tuple[str, ...] | None] = ("gemini", "auto", "pro", "flash", "gemma")

    def build_invocation(self, request: CliRequest) -> Invocation:
        expert = request.expert
        system_md = request.scratch / "system.md"
        system_md.write_text(expert.system_prompt + "\n")
        servers: dict[str, dict[str, object]] = {}
        applied: dict[str, str] = {}
        for server in expert.servers:
            entry: dict[str, object]
            if server.is_stdio:
                entry = {"command": server.command, "args": list(server.args), "cwd": str(request.workspace)}
                if server.env:
                    entry["env"] = dict(server.env)
            else:
                entry = {"url": server.url}
            entry["trust"] = True
            if server.pick:
                entry["includeTools"] = list(server.pick)
            if server.omit:
                entry["excludeTools"] = list(server.omit)
            servers[server.name] = entry
            applied[server.name] = "passed via settings.json mcpServers (GEMINI_CLI_SYSTEM_SETTINGS_PATH)"
        settings: dict[str, Any] = {"mcpServers": servers}
        if request.max_steps:
            settings["model"] = {"maxSessionTurns": request.max_steps}
        settings_path = request.scratch / "settings.json"
        settings_path.write_text(json.dumps(settings, indent=2))
        args = ["--output-format", "stream-json", "--approval-mode", "yolo"]
        if request.model:
            args += ["--model", request.model]
        args.append("--prompt=" + request.query)
        env = {
            "GEMINI_SYSTEM_MD": str(system_md),
            "GEMINI_CLI_SYSTEM_SETTINGS_PATH": str(settings_path),
            "GEMINI_CLI_TRUST_WORKSPACE": "true",
        }
        return Invocation(args=args, env=env, skills=expert.statuses(self.id, applied, {}))

    def parse(self, event: dict[str, Any], state: StreamState) -> Iterator[Item]:
        kind = event.get("type")
        buffer: list[str] = state.scratch.setdefault("text", [])
        if kind == "init":
            state.session_id = str(event.get("session_id") or "") or state.session_id
            state.model = event.get("model") or state.model
        elif kind == "message" and event.get("role") == "assistant":
            content = text_of(event.get("content"))
            if event.get("delta"):
                buffer.append(content)
            else:
                buffer[:] = [content]
        elif kind == "tool_use":
            name = str(event.get("tool_name", ""))
            mcp = split_mcp_name(name, state.servers)
            params = event.get("parameters")
            call = Call(
                id=str(event.get("tool_id", "")),
                name=mcp.name if mcp else name,
                args=params if isinstance(params, dict) else {},
                skill=mcp.skill if mcp else None,
            )
            text = "".join(buffer)
            buffer.clear()
            yield ToolCalls(calls=(call,), text=text)
        elif kind == "tool_result":
            failed = event.get("status") == "error"
            error = event.get("error")
            output = text_of(event.get("output"))
            if failed and isinstance(error, dict):
                output = str(error.get("message", output))
            yield ToolResult(call_id=str(event.get("tool_id", "")), output=output, is_error=failed)
        elif kind == "error":
            message = str(event.get("message", ""))
            if event.get("severity") == "error":
                state.scratch["last_error"] = message
            yield Notice(message)
        elif kind == "result":
            state.finished = True
            text = "".join(buffer)
            buffer.clear()
            state.final_text = text
            if text:
                yield Text(text)
            if isinstance(event.get("stats"), dict):
                state.usage = _usage(event["stats"])
            if event.get("status") == "error":
                error = event.get("error")
                state.error = str(error.get("message")) if isinstance(error, dict) else str(error or "error")

    def finish(self, state: StreamState, result: ProcessResult) -> None:
        if result.exit_code != 0 and state.error is None:
            if state.scratch.get("last_error"):
                state.error = str(state.scratch["last_error"])
            else:
                state.error = _stderr_error(result.stderr)


def _usage(stats: dict[str, Any]) -> RunUsage:
    usage = RunUsage(
        input_tokens=as_int(stats.get("input_tokens")),
        output_tokens=as_int(stats.get("output_tokens")),
        cached_input_tokens=as_int(stats.get("cached")),
    )
    if isinstance(stats.get("models"), dict):
        usage.extra["models"] = stats["models"]
    if as_int(stats.get("tool_calls")) is not None:
        usage.extra["toolCalls"] = stats["tool_calls"]
    return usage


def _stderr_error(stderr: str) -> str | None:
    """Gemini prints fatal errors as `[ERROR] {json}` or prose on stderr; return the message if found."""
    start = stderr.find("{")
    if "[ERROR]" in stderr and start >= 0:
        try:
            data = json.loads(stderr[start:])
        except ValueError:
            pass
        else:
            error = data.get("error") if isinstance(data, dict) else None
            if isinstance(error, dict) and error.get("message"):
                return str(error["message"])
    return None


def register_runtimes(register: Any) -> None:
    register(Gemini())
