"""Conversions between Perstack messages (what checkpoints store) and pydantic-ai messages (what models take).

Perstack's checkpoint is the source of truth: the conversation is kept as Perstack messages and converted
to pydantic-ai's `ModelRequest`/`ModelResponse` right before each generation, so a checkpoint written by
Perstack itself resumes here and vice versa. Consecutive request-side messages (instruction, user, tool)
are merged into one `ModelRequest` because providers require alternating roles.

A tool call with no result (a checkpoint cut mid-step by another producer) gets a synthetic error result,
since every provider rejects a dangling tool call.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sandbox.events import (
    ExpertMessage,
    FileInlinePart,
    ImageInlinePart,
    ImageUrlPart,
    InstructionMessage,
    Message,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolMessage,
    ToolResultPart,
    Usage,
    UserMessage,
)

if TYPE_CHECKING:
    from pydantic_ai.messages import ModelMessage, ModelResponse
    from pydantic_ai.usage import RequestUsage

__all__ = ["expert_message_from_response", "to_model_messages", "usage_from"]


def _user_content(msg: UserMessage) -> list[Any]:
    from pydantic_ai.messages import BinaryContent, ImageUrl

    out: list[Any] = []
    for part in msg.contents:
        if isinstance(part, TextPart):
            out.append(part.text)
        elif isinstance(part, ImageUrlPart):
            out.append(ImageUrl(url=part.url))
        elif isinstance(part, ImageInlinePart | FileInlinePart):
            out.append(BinaryContent(data=base64.b64decode(part.encoded_data), media_type=part.mime_type))
        else:  # binary/url file parts: describe rather than fail
            out.append(f"[{part.type} {getattr(part, 'url', '')}]")
    return out


def _tool_return_content(part: ToolResultPart) -> Any:
    from pydantic_ai.messages import BinaryContent

    texts = [c.text for c in part.contents if isinstance(c, TextPart)]
    binaries = [
        BinaryContent(data=base64.b64decode(c.encoded_data), media_type=c.mime_type)
        for c in part.contents
        if isinstance(c, ImageInlinePart | FileInlinePart)
    ]
    text = "\n".join(texts)
    if not binaries:
        return text
    return [text, *binaries] if text else binaries


def to_model_messages(messages: Sequence[Message], provider_name: str | None = None) -> list[ModelMessage]:
    """Perstack messages -> pydantic-ai messages, merging consecutive request-side messages."""
    from pydantic_ai import messages as pm

    answered = {p.tool_call_id for m in messages if isinstance(m, ToolMessage) for p in m.contents}
    out: list[ModelMessage] = []
    pending: list[Any] = []

    def flush() -> None:
        if pending:
            out.append(pm.ModelRequest(parts=list(pending)))
            pending.clear()

    for msg in messages:
        if isinstance(msg, InstructionMessage):
            pending.append(pm.SystemPromptPart(content="\n\n".join(p.text for p in msg.contents)))
        elif isinstance(msg, UserMessage):
            pending.append(pm.UserPromptPart(content=_user_content(msg)))
        elif isinstance(msg, ToolMessage):
            for part in msg.contents:
                pending.append(
                    pm.ToolReturnPart(
                        tool_name=part.tool_name,
                        content=_tool_return_content(part),
                        tool_call_id=part.tool_call_id,
                        outcome="failed" if part.is_error else "success",
                    )
                )
        else:
            flush()
            parts: list[Any] = []
            dangling: list[ToolCallPart] = []
            for c in msg.contents:
                if isinstance(c, TextPart):
                    if c.text:
                        parts.append(pm.TextPart(content=c.text))
                elif isinstance(c, ThinkingPart):
                    parts.append(
                        pm.ThinkingPart(
                            content=c.thinking,
                            signature=c.signature,
                            provider_name=provider_name if c.signature else None,
                        )
                    )
                else:
                    args = c.args if isinstance(c.args, dict) else {}
                    parts.append(
                        pm.ToolCallPart(tool_name=c.tool_name, args=args, tool_call_id=c.tool_call_id)
                    )
                    if c.tool_call_id not in answered:
                        dangling.append(c)
            out.append(pm.ModelResponse(parts=parts))
            for c in dangling:
                pending.append(
                    pm.ToolReturnPart(
                        tool_name=c.tool_name,
                        content="The tool call was interrupted before it returned.",
                        tool_call_id=c.tool_call_id,
                        outcome="failed",
                    )
                )
    flush()
    return out


def expert_message_from_response(response: ModelResponse) -> ExpertMessage:
    """pydantic-ai response parts -> a Perstack expertMessage (text, thinking and tool calls, in order)."""
    from pydantic_ai import messages as pm

    contents: list[Any] = []
    for part in response.parts:
        if isinstance(part, pm.TextPart):
            if part.content:
                contents.append(TextPart(text=part.content))
        elif isinstance(part, pm.ThinkingPart):
            if part.content or part.signature:
                contents.append(ThinkingPart(thinking=part.content, signature=part.signature))
        elif isinstance(part, pm.ToolCallPart):
            contents.append(
                ToolCallPart(tool_call_id=part.tool_call_id, tool_name=part.tool_name, args=_args_dict(part))
            )
    return ExpertMessage(contents=contents)


def _args_dict(part: Any) -> dict[str, Any]:
    try:
        args = part.args_as_dict()
    except (ValueError, json.JSONDecodeError, TypeError):
        return {"_raw": part.args}
    return args if isinstance(args, dict) else {"_value": args}


def usage_from(usage: RequestUsage) -> Usage:
    details = getattr(usage, "details", None) or {}
    reasoning = int(details.get("reasoning_tokens", 0) or details.get("thoughts_tokens", 0) or 0)
    inp, outp = int(usage.input_tokens or 0), int(usage.output_tokens or 0)
    return Usage(
        input_tokens=inp,
        output_tokens=outp,
        reasoning_tokens=reasoning,
        total_tokens=inp + outp,
        cached_input_tokens=int(usage.cache_read_tokens or 0),
    )
