"""An OpenAI *Responses* API front for the scripted LLM server, so current Codex can talk to it.

Why this exists: Codex dropped Chat Completions (`wire_api = "chat"` is "no longer supported" since
late 2025) and speaks only the Responses API, while `sandbox.testing.ScriptedLLMServer` speaks
Anthropic Messages and OpenAI Chat Completions. This shim translates one Responses request into one
non-streaming Chat Completions request to the scripted server (so the *script* still decides every
turn and records every request), then answers with the Responses SSE events Codex reads:
`response.created`, `response.output_item.added/done` per output item, `response.completed` with
usage. Errors from the scripted server are relayed with their status.

It is deliberately small and lives with the tests; the right long-term home is a third wire protocol in
`sandbox.testing` (reported to its owner).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

__all__ = ["ResponsesShim"]


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """A Responses request as a Chat Completions request (system, messages, function tools)."""
    messages: list[dict[str, Any]] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    pending_calls: list[dict[str, Any]] = []

    def flush_calls() -> None:
        if pending_calls:
            messages.append({"role": "assistant", "content": None, "tool_calls": list(pending_calls)})
            pending_calls.clear()

    items = body.get("input") or []
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": items}]
    for item in items:
        kind = item.get("type", "message")
        if kind == "message":
            flush_calls()
            role = item.get("role", "user")
            messages.append(
                {"role": "system" if role == "developer" else role, "content": _text_of(item.get("content"))}
            )
        elif kind in ("function_call", "custom_tool_call"):
            arguments = item.get("arguments", item.get("input", ""))
            pending_calls.append(
                {
                    "id": item.get("call_id"),
                    "type": "function",
                    "function": {
                        "name": item.get("name"),
                        "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
                    },
                }
            )
        elif kind in ("function_call_output", "custom_tool_call_output"):
            flush_calls()
            output = item.get("output")
            if isinstance(output, dict):
                output = output.get("content", json.dumps(output))
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": item.get("call_id"),
                    "content": _text_of(output) or str(output),
                }
            )
    flush_calls()
    tools = [
        {
            "type": "function",
            "function": {
                "name": t["name"],
                "description": t.get("description", ""),
                "parameters": t.get("parameters") or {"type": "object"},
            },
        }
        for t in body.get("tools") or []
        if isinstance(t, dict) and t.get("name")
    ]
    chat: dict[str, Any] = {"model": body.get("model", "gpt-test"), "messages": messages, "stream": False}
    if tools:
        chat["tools"] = tools
    return chat


def to_events(chat: dict[str, Any], response_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Responses SSE events for one Chat Completions answer."""
    message = (chat.get("choices") or [{}])[0].get("message") or {}
    output: list[dict[str, Any]] = []
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        name = str(function.get("name") or "")
        item = {
            "type": "function_call",
            "id": f"fc_{response_id}_{index}",
            "call_id": call.get("id"),
            "name": name,
            "arguments": function.get("arguments") or "{}",
            "status": "completed",
        }
        if "/" in name:  # "mcp__time/get_current_time": a tool inside one of Codex's namespace tools
            item["namespace"], item["name"] = name.split("/", 1)
        output.append(item)
    if message.get("content"):
        output.insert(
            0,
            {
                "type": "message",
                "id": f"msg_{response_id}",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": message["content"], "annotations": []}],
            },
        )
    usage = chat.get("usage") or {}
    cached = ((usage.get("prompt_tokens_details") or {}).get("cached_tokens")) or 0
    response = {
        "id": response_id,
        "object": "response",
        "status": "completed",
        "model": chat.get("model"),
        "output": output,
    }
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "response.created",
            {"type": "response.created", "response": {**response, "status": "in_progress", "output": []}},
        )
    ]
    for index, item in enumerate(output):
        events.append(
            (
                "response.output_item.added",
                {"type": "response.output_item.added", "output_index": index, "item": item},
            )
        )
        if item["type"] == "message":
            text = item["content"][0]["text"]
            events.append(
                (
                    "response.output_text.delta",
                    {
                        "type": "response.output_text.delta",
                        "item_id": item["id"],
                        "output_index": index,
                        "content_index": 0,
                        "delta": text,
                    },
                )
            )
        events.append(
            (
                "response.output_item.done",
                {"type": "response.output_item.done", "output_index": index, "item": item},
            )
        )
    response["usage"] = {
        "input_tokens": usage.get("prompt_tokens", 0),
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": usage.get("completion_tokens", 0),
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.get("total_tokens", 0),
    }
    events.append(("response.completed", {"type": "response.completed", "response": response}))
    return events


class ResponsesShim:
    """`with ResponsesShim(scripted.openai_base_url) as shim:` → point Codex at `shim.base_url`."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.requests: list[dict[str, Any]] = []
        shim = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                shim.requests.append(body)
                if not self.path.rstrip("/").endswith("/responses"):
                    self.send_error(404)
                    return
                headers = {"authorization": self.headers.get("authorization", "")}
                reply = httpx.post(
                    shim.upstream + "/chat/completions", json=to_chat(body), headers=headers, timeout=60
                )
                if reply.status_code != 200:
                    self.send_response(reply.status_code)
                    self.send_header("content-type", "application/json")
                    self.end_headers()
                    self.wfile.write(reply.content)
                    return
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                response_id = f"resp_{len(shim.requests)}"
                for name, data in to_events(reply.json(), response_id):
                    self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> ResponsesShim:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
