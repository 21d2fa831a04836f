"""A protocol-neutral reading of a model request, and the `Expectation` checks that run on it.

Anthropic and OpenAI put the same things in different places (the system prompt is a top-level field
in one and a message in the other, tool results are content blocks in one and `tool` messages in the
other). Flattening both into one `RequestView` keeps expectations, `match` routing and test assertions
written once, in terms of what the agent said rather than how the SDK encoded it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._script import Expectation, Protocol

__all__ = ["RequestView", "check_expectation"]

_SHOWN = 160  # characters of an actual value quoted in a failure message


@dataclass(frozen=True)
class RequestView:
    """What a request says, whichever protocol carried it.

    `messages` holds `(role, text)` for every non-system message (a Responses function call or
    output item counts as an `assistant` / `tool` message), where text joins the message's
    text parts, tool-call names and arguments, and tool-result contents, so a substring check finds
    anything the agent put into the conversation.
    """

    protocol: Protocol
    model: str
    stream: bool
    system: str
    messages: tuple[tuple[str, str], ...]
    tool_names: tuple[str, ...]
    tool_results: tuple[str, ...]
    headers: Mapping[str, str]

    @property
    def api_key(self) -> str | None:
        """`x-api-key`, else the bearer token of `authorization`."""
        if key := self.headers.get("x-api-key"):
            return key
        auth = self.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    @property
    def haystack(self) -> str:
        """Everything a `match` marker may be found in: system prompt plus all message text."""
        return "\n".join([self.system, *(text for _, text in self.messages)])

    @classmethod
    def parse(cls, protocol: Protocol, body: Mapping[str, Any], headers: Mapping[str, str]) -> RequestView:
        """Read a decoded JSON body; malformed parts are skipped, not raised, because the server
        must still answer (and record) a request it cannot fully understand."""
        reader = {"anthropic": _read_anthropic, "openai": _read_openai, "openai-responses": _read_responses}[
            protocol
        ]
        system, messages, tools, results = reader(body)
        return cls(
            protocol=protocol,
            model=str(body.get("model", "")),
            stream=body.get("stream") is True,
            system=system,
            messages=tuple(messages),
            tool_names=tuple(tools),
            tool_results=tuple(results),
            headers=dict(headers),
        )


def _text_of(content: Any) -> str:
    """Text of a content value: a string, or a list of blocks/parts with `text` (images ignored)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict):
            parts.append(_text_of_block(block))
    return "\n".join(p for p in parts if p)


def _text_of_block(block: Mapping[str, Any]) -> str:
    kind = block.get("type")
    if kind == "tool_use":
        return f"{block.get('name', '')} {json.dumps(block.get('input', {}), sort_keys=True)}"
    if kind == "tool_result":
        return _text_of(block.get("content", ""))
    if kind == "thinking":
        return str(block.get("thinking", ""))
    text = block.get("text")
    return text if isinstance(text, str) else ""


def _read_anthropic(body: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]], list[str], list[str]]:
    system = _text_of(body.get("system", ""))
    messages: list[tuple[str, str]] = []
    results: list[str] = []
    raw_messages = body.get("messages")
    for message in raw_messages if isinstance(raw_messages, list) else []:
        if isinstance(message, dict):
            messages.append((str(message.get("role", "")), _text_of(message.get("content", ""))))
    if isinstance(raw_messages, list) and raw_messages and isinstance(raw_messages[-1], dict):
        content = raw_messages[-1].get("content")
        if isinstance(content, list):
            results = [
                _text_of(b.get("content", ""))
                for b in content
                if isinstance(b, dict) and b.get("type") == "tool_result"
            ]
    raw_tools = body.get("tools")
    tools = [str(t["name"]) for t in raw_tools or [] if isinstance(t, dict) and "name" in t]
    return system, messages, tools, results


def _read_openai(body: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]], list[str], list[str]]:
    system_parts: list[str] = []
    messages: list[tuple[str, str]] = []
    raw_messages = body.get("messages")
    typed = [m for m in (raw_messages if isinstance(raw_messages, list) else []) if isinstance(m, dict)]
    for message in typed:
        role = str(message.get("role", ""))
        text = _text_of(message.get("content", ""))
        if role in ("system", "developer"):
            system_parts.append(text)
            continue
        calls = message.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            function = call.get("function", {}) if isinstance(call, dict) else {}
            text += f"\n{function.get('name', '')} {function.get('arguments', '')}"
        messages.append((role, text.strip("\n")))
    results: list[str] = []
    for message in reversed(typed):
        if message.get("role") != "tool":
            break
        results.insert(0, _text_of(message.get("content", "")))
    tools: list[str] = []
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            spec = tool.get("function") or tool.get("custom") or {}
            if isinstance(spec, dict) and "name" in spec:
                tools.append(str(spec["name"]))
    return "\n".join(system_parts), messages, tools, results


def _read_responses(body: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]], list[str], list[str]]:
    system_parts = [_text_of(body.get("instructions", ""))]
    messages: list[tuple[str, str]] = []
    raw = body.get("input")
    items: list[Any] = [{"role": "user", "content": raw}] if isinstance(raw, str) else raw or []
    typed = [item for item in items if isinstance(item, dict)]
    for item in typed:
        kind = item.get("type", "message")
        if kind == "message":
            role = str(item.get("role", ""))
            text = _text_of(item.get("content", ""))
            if role in ("system", "developer"):
                system_parts.append(text)
            else:
                messages.append((role, text))
        elif kind in ("function_call", "custom_tool_call"):
            messages.append(
                ("assistant", f"{item.get('name', '')} {item.get('arguments', item.get('input', ''))}")
            )
        elif kind in ("function_call_output", "custom_tool_call_output"):
            messages.append(("tool", _text_of(item.get("output", ""))))
    results: list[str] = []
    for item in reversed(typed):
        if item.get("type") not in ("function_call_output", "custom_tool_call_output"):
            break
        results.insert(0, _text_of(item.get("output", "")))
    tools = [str(t["name"]) for t in body.get("tools") or [] if isinstance(t, dict) and "name" in t]
    return "\n".join(p for p in system_parts if p), messages, tools, results


def _quote(value: str) -> str:
    shown = value if len(value) <= _SHOWN else value[:_SHOWN] + f"... [{len(value)} chars]"
    return repr(shown)


def check_expectation(expect: Expectation, view: RequestView, body: Mapping[str, Any]) -> list[str]:
    """Every way `view` misses `expect`, as sentences naming what was wanted and what came."""
    problems: list[str] = []
    for name, wanted, actual in (
        ("protocol", expect.protocol, view.protocol),
        ("model", expect.model, view.model),
        ("stream", expect.stream, view.stream),
    ):
        if wanted is not None and wanted != actual:
            problems.append(f"{name} is {actual!r}, expected {wanted!r}")
    for needle in expect.system_contains:
        if needle not in view.system:
            problems.append(f"system prompt does not contain {needle!r} (system: {_quote(view.system)})")
    for needle in expect.system_excludes:
        if needle in view.system:
            problems.append(f"system prompt contains {needle!r}, which it must not")
    conversation = "\n".join(text for _, text in view.messages)
    for needle in expect.messages_contain:
        if needle not in conversation:
            problems.append(f"no message contains {needle!r}")
    last = view.messages[-1][1] if view.messages else ""
    for needle in expect.last_message_contains:
        if needle not in last:
            problems.append(f"last message does not contain {needle!r} (last message: {_quote(last)})")
    if expect.tools is not None and sorted(expect.tools) != sorted(view.tool_names):
        problems.append(f"tools are {sorted(view.tool_names)}, expected {sorted(expect.tools)}")
    missing_tools = [t for t in expect.tools_include if t not in view.tool_names]
    if missing_tools:
        problems.append(f"tools {missing_tools} not offered (offered: {sorted(view.tool_names)})")
    results = "\n".join(view.tool_results)
    for needle in expect.tool_result_contains:
        if not view.tool_results:
            problems.append(f"last message has no tool result (wanted one containing {needle!r})")
        elif needle not in results:
            problems.append(f"tool results do not contain {needle!r} (results: {_quote(results)})")
    for header, value in expect.headers.items():
        actual_header = view.headers.get(header.lower())
        if actual_header is None:
            problems.append(f"header {header.lower()!r} is missing")
        elif value is not None and actual_header != value:
            problems.append(f"header {header.lower()!r} is {actual_header!r}, expected {value!r}")
    if expect.api_key is not None and view.api_key != expect.api_key:
        problems.append(f"API key is {view.api_key!r}, expected {expect.api_key!r}")
    for key, value in expect.body_includes.items():
        if key not in body:
            problems.append(f"body has no {key!r}")
        elif body[key] != value:
            problems.append(f"body {key!r} is {body[key]!r}, expected {value!r}")
    return problems
