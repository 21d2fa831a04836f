"""OpenCode (`opencode run --format json`, npm `opencode-ai`). Facts: shared/reference/cli-agents.md §5.

Invocation choices and why:

* system prompt: OpenCode has no flag, but a custom agent's `prompt` is its system prompt. The Expert
  becomes agent `perstack-expert` in `OPENCODE_CONFIG_CONTENT` (inline JSON merged over the user's
  config) and runs with `--agent perstack-expert`; `--max-steps` becomes the agent's `steps`.
* MCP: the same inline config's `mcp` key (`type: local`, command as one list); `pick`/`omit` become the
  agent's `tools` switches (`<server>_*`), OpenCode's only per-tool control.
* approval: `OPENCODE_PERMISSION={"*":"allow"}` — recent `run` auto-*rejects* anything that would ask,
  and the `--auto` flag only exists in newer builds (unknown flags exit 1: yargs is strict).
* no `--quiet` (PanCode passed it; it is not an `opencode run` option).
* `--dir <workspace>`; the message follows `--`.

Parsing: every line carries `sessionID`; `tool_use` is emitted once, finished, so it yields the call and
its result together; `step_finish` carries each step's tokens and cost, summed here (`tokens.input`
excludes the cache, so the prompt is input + cache read + cache write); turns = number of steps. Plain-
text warnings on stdout are skipped by the shared line decoder. `error` events carry
`{name, data: {message}}`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
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
    as_float,
    as_int,
    split_mcp_name,
    text_of,
)

__all__ = ["AGENT", "OpenCode", "register_runtimes"]

AGENT = "perstack-expert"

_PROVIDER_BY_PREFIX = (
    ("claude", "anthropic"),
    ("gpt", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("gemini", "google"),
)


class OpenCode(CliRuntime):
    """sst/anomalyco OpenCode."""

    id: ClassVar[str] = "opencode"
    name: ClassVar[str] = "OpenCode"
    binary: ClassVar[str] = "opencode"
    install_hint: ClassVar[str] = "install it with `npm install -g opencode-ai`"
    auth_env: ClassVar[tuple[str, ...]] = (
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_GENERATIVE_AI_API_KEY",
        "OPENROUTER_API_KEY",
        "GROQ_API_KEY",
        "DEEPSEEK_API_KEY",
        "XAI_API_KEY",
        "OPENCODE_API_KEY",
    )
    auth_files: ClassVar[tuple[str, ...]] = (".local/share/opencode/auth.json",)
    env_names: ClassVar[tuple[str, ...]] = (
        "ANTHROPIC_BASE_URL",
        "OPENAI_BASE_URL",
        "AWS_REGION",
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    )
    env_prefixes: ClassVar[tuple[str, ...]] = ("OPENCODE_",)

    def auth_hint(self) -> str:
        return "set a provider key such as ANTHROPIC_API_KEY or OPENAI_API_KEY, or run `opencode auth login`"

    def find_auth(self, env: Mapping[str, str]) -> str | None:
        found = super().find_auth(env)
        data_home = env.get("XDG_DATA_HOME")
        if found is None and data_home and (Path(data_home) / "opencode" / "auth.json").is_file():
            return "$XDG_DATA_HOME/opencode/auth.json"
        return found

    def accepts_model(self, model: str) -> bool:
        return "/" in model or any(model.lower().startswith(p) for p, _ in _PROVIDER_BY_PREFIX)

    def build_invocation(self, request: CliRequest) -> Invocation:
        expert = request.expert
        mcp: dict[str, dict[str, object]] = {}
        tools: dict[str, bool] = {}
        applied: dict[str, str] = {}
        for server in expert.servers:
            if server.is_stdio:
                entry: dict[str, object] = {
                    "type": "local",
                    "command": [server.command or "", *server.args],
                    "enabled": True,
                }
                if server.env:
                    entry["environment"] = dict(server.env)
            else:
                entry = {"type": "remote", "url": server.url, "enabled": True}
            mcp[server.name] = entry
            if server.pick:
                tools[f"{server.name}_*"] = False
                tools.update({f"{server.name}_{tool}": True for tool in server.pick})
            tools.update({f"{server.name}_{tool}": False for tool in server.omit})
            applied[server.name] = "passed via OPENCODE_CONFIG_CONTENT mcp" + (
                " (pick/omit as agent tool switches)" if server.pick or server.omit else ""
            )
        agent: dict[str, Any] = {
            "description": f"Perstack Expert {expert.expert_key}",
            "mode": "primary",
            "prompt": expert.system_prompt,
        }
        if tools:
            agent["tools"] = tools
        if request.max_steps:
            agent["steps"] = request.max_steps
        config: dict[str, Any] = {"agent": {AGENT: agent}}
        if mcp:
            config["mcp"] = mcp
        args = ["run", "--format", "json", "--dir", str(request.workspace), "--agent", AGENT]
        if request.model:
            args += ["--model", _qualified(request.model)]
        args += ["--", request.query]
        env = {
            "OPENCODE_CONFIG_CONTENT": json.dumps(config),
            "OPENCODE_PERMISSION": json.dumps({"*": "allow"}),
            "OPENCODE_DISABLE_AUTOUPDATE": "true",
        }
        return Invocation(args=args, env=env, skills=expert.statuses(self.id, applied, {}))

    def parse(self, event: dict[str, Any], state: StreamState) -> Iterator[Item]:
        if event.get("sessionID") and state.session_id is None:
            state.session_id = str(event["sessionID"])
        kind = event.get("type")
        part = as_dict(event.get("part"))
        if kind == "text":
            text = str(part.get("text", ""))
            if text:
                state.final_text = text
                yield Text(text)
        elif kind == "tool_use":
            yield from _tool(part, state)
        elif kind == "step_finish":
            tokens = as_dict(part.get("tokens"))
            cache = as_dict(tokens.get("cache"))
            prompt = [as_int(tokens.get("input")), as_int(cache.get("read")), as_int(cache.get("write"))]
            known = [p for p in prompt if p is not None]
            state.usage.add(
                input_tokens=sum(known) if known else None,
                output_tokens=as_int(tokens.get("output")),
                reasoning_tokens=as_int(tokens.get("reasoning")),
                cached_input_tokens=as_int(cache.get("read")),
                cost_usd=as_float(part.get("cost")),
                turns=1,
            )
            if part.get("reason") not in ("tool-calls", "tool_calls"):
                state.finished = True
        elif kind == "done":
            state.finished = True
            rejected = event.get("rejected")
            if rejected:
                yield Notice(f"permissions auto-rejected: {', '.join(map(str, rejected))}")
        elif kind in ("error", "session.error"):
            error = event.get("error")
            message = None
            if isinstance(error, Mapping):
                data = error.get("data")
                message = data.get("message") if isinstance(data, Mapping) else None
                message = message or error.get("message") or error.get("name")
            state.error = str(message or error or "error")

    def finish(self, state: StreamState, result: ProcessResult) -> None:
        # 1.x has no terminal event: a clean exit after at least one step is the end of the run.
        if result.exit_code == 0 and state.usage.turns and not result.timed_out:
            state.finished = True


def _tool(part: dict[str, Any], state: StreamState) -> Iterator[Item]:
    name = str(part.get("tool", ""))
    call_id = str(part.get("callID") or part.get("id") or "")
    status = as_dict(part.get("state"))
    mcp = split_mcp_name(name, state.servers, sep="_")
    args = as_dict(status.get("input"))
    yield ToolCalls(
        calls=(
            Call(
                id=call_id, name=mcp.name if mcp else name, args=dict(args), skill=mcp.skill if mcp else None
            ),
        )
    )
    failed = status.get("status") == "error"
    output = status.get("error") if failed else status.get("output")
    yield ToolResult(call_id=call_id, output=text_of(output), is_error=failed)


def _qualified(model: str) -> str:
    if "/" in model:
        return model
    for prefix, provider in _PROVIDER_BY_PREFIX:
        if model.lower().startswith(prefix):
            return f"{provider}/{model}"
    return model


def register_runtimes(register: Any) -> None:
    register(OpenCode())
