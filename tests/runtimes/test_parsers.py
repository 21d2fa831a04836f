"""Recorded streams of every CLI → intermediate items and state: success, errors, partial output, noise."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from sandbox.runtimes import CliRuntime
from sandbox.runtimes._stream import Notice, Text, ToolCalls, ToolResult, decode_line
from sandbox.runtimes.claude_code import ClaudeCode
from sandbox.runtimes.codex import Codex
from sandbox.runtimes.copilot import Copilot, apply_usage_report
from sandbox.runtimes.cursor import Cursor
from sandbox.runtimes.gemini import Gemini
from sandbox.runtimes.opencode import OpenCode

from .conftest import STREAMS, parse_stream, stream_path


def calls(items: Sequence[object]) -> list[tuple[str, str, str | None]]:
    return [(c.id, c.name, c.skill) for i in items if isinstance(i, ToolCalls) for c in i.calls]


def results(items: Sequence[object]) -> list[tuple[str, bool]]:
    return [(i.call_id, i.is_error) for i in items if isinstance(i, ToolResult)]


@pytest.mark.parametrize("path", sorted(STREAMS.glob("*/*.jsonl")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_recorded_stream_parses_without_error(path: Path) -> None:
    factories: dict[str, Callable[[], CliRuntime]] = {
        "claude-code": ClaudeCode,
        "codex": Codex,
        "gemini": Gemini,
        "cursor": Cursor,
        "opencode": OpenCode,
        "copilot": Copilot,
    }
    runtime = factories[path.parent.name]()
    items, _state = parse_stream(runtime, path)
    # Every result answers a call announced before it or in the same breath (OpenCode yields both).
    announced: set[str] = set()
    for item in items:
        if isinstance(item, ToolCalls):
            announced.update(c.id for c in item.calls)
        if isinstance(item, ToolResult):
            assert item.call_id in announced


def test_decode_line_skips_noise_and_splits_arrays() -> None:
    assert list(decode_line("")) == []
    assert list(decode_line("! permission requested: x; auto-rejecting")) == []
    assert list(decode_line("{broken")) == []
    assert list(decode_line('\ufeff{"type":"a"}\r')) == [{"type": "a"}]
    assert list(decode_line('[{"type":"a"}, 3, {"type":"b"}]')) == [{"type": "a"}, {"type": "b"}]


# ----------------------------------------------------------------------------------------- Claude Code


def test_claude_reference_success() -> None:
    items, state = parse_stream(ClaudeCode(), stream_path("claude-code", "reference-2.1.59-write.jsonl"))
    assert calls(items) == [("toolu_01Jfbi5Nh713TYS9eYwVZ3zo", "Write", None)]
    assert results(items) == [("toolu_01Jfbi5Nh713TYS9eYwVZ3zo", False)]
    assert state.finished and state.error is None
    assert state.session_id == "8fc99cf0-8cae-4821-aa70-c0e9a24667c3"
    assert state.final_text == 'Created `stream-test.txt` with the content "stream works".'
    # prompt = input + cache writes + cache reads; cost and turns straight from the result
    assert state.usage.input_tokens == 4 + 1774 + 38897
    assert state.usage.output_tokens == 107
    assert state.usage.cached_input_tokens == 38897
    assert state.usage.cost_usd == pytest.approx(0.033231)
    assert state.usage.turns == 2
    assert "claude-opus-4-6" in state.usage.extra["modelUsage"]


def test_claude_real_capture_attributes_mcp_tools_to_their_skill() -> None:
    items, state = parse_stream(
        ClaudeCode(), stream_path("claude-code", "real-2.1.197-write-and-mcp.jsonl"), servers=("time",)
    )
    assert calls(items) == [("toolu_sbx_1_0", "Write", None), ("toolu_sbx_2_0", "get_current_time", "time")]
    assert results(items) == [("toolu_sbx_1_0", False), ("toolu_sbx_2_0", False)]
    assert state.mcp_status == {"time": "connected"}
    assert state.final_text == "Created hello.txt." and state.usage.turns == 3
    # text blocks arrive as their own lines before the tool_use of the same message
    assert [i.text for i in items if isinstance(i, Text)][:1] == ["I'll create the file."]


def test_claude_error_max_turns_is_an_error_with_the_cli_message() -> None:
    _, state = parse_stream(ClaudeCode(), stream_path("claude-code", "error-max-turns.jsonl"), exit_code=1)
    assert state.error == "error_max_turns: Reached maximum number of turns (1)"
    assert state.usage.cost_usd == pytest.approx(0.0012)


def test_claude_api_error_with_success_subtype_is_still_an_error() -> None:
    items, state = parse_stream(ClaudeCode(), stream_path("claude-code", "api-error-403.jsonl"))
    assert state.error is not None and state.error.startswith("api_error: API Error: 403")
    assert any(isinstance(i, Notice) and "401" in i.message for i in items)


def test_claude_partial_stream_has_no_terminal_event() -> None:
    items, state = parse_stream(
        ClaudeCode(), stream_path("claude-code", "partial-killed.jsonl"), exit_code=-9
    )
    assert not state.finished and state.error is None
    assert calls(items) == [("toolu_9", "Bash", None)]
    assert items[0] == ToolCalls(calls=items[0].calls, text="Let me look.")  # type: ignore[union-attr]


def test_claude_mcp_failure_is_a_notice() -> None:
    items, _ = parse_stream(
        ClaudeCode(), stream_path("claude-code", "partial-killed.jsonl"), servers=("web-search",)
    )
    assert Notice("MCP skill 'web-search' is failed") in items


def test_claude_skips_noise_unknown_types_and_subagent_messages() -> None:
    items, state = parse_stream(ClaudeCode(), stream_path("claude-code", "noise-and-unknown-types.jsonl"))
    assert calls(items) == []  # the Read belongs to a subagent (parent_tool_use_id set)
    assert items == [Text("Hello.")]
    assert state.finished and state.final_text == "Hello."


def test_claude_legacy_array_and_cost_usd() -> None:
    _, state = parse_stream(ClaudeCode(), stream_path("claude-code", "legacy-array-cost-usd.jsonl"))
    assert state.finished and state.usage.cost_usd == pytest.approx(0.0021)
    assert state.usage.input_tokens == 7


# ----------------------------------------------------------------------------------------- Codex


def test_codex_reference_success() -> None:
    items, state = parse_stream(Codex(), stream_path("codex", "reference-0.101.0.jsonl"))
    assert calls(items) == [("item_2", "shell", None)]
    assert results(items) == [("item_2", False)]
    assert state.session_id == "019ca529-3d5a-7a53-9b2a-db26bbaee746"
    assert state.final_text == "Created `stream-test.txt` with the content:\n\n`codex stream works`"
    assert (state.usage.input_tokens, state.usage.cached_input_tokens, state.usage.output_tokens) == (
        15931,
        14080,
        175,
    )
    assert state.usage.cost_usd is None and state.usage.turns is None  # Codex reports neither
    assert state.finished and state.error is None


def test_codex_real_capture() -> None:
    items, state = parse_stream(Codex(), stream_path("codex", "real-0.169.0-exec-command.jsonl"))
    assert calls(items) == [("item_2", "shell", None)]
    assert [i.text for i in items if isinstance(i, Text)] == ["Running a command.", "Created hello.txt."]
    assert any(isinstance(i, Notice) and "Model metadata" in i.message for i in items)
    assert state.usage.input_tokens == 350 and state.usage.output_tokens == 30


def test_codex_turn_failed() -> None:
    _, state = parse_stream(Codex(), stream_path("codex", "turn-failed-capacity.jsonl"), exit_code=1)
    assert state.error == "Selected model is at capacity. Please try a different model."


def test_codex_mcp_file_change_and_failed_command() -> None:
    items, state = parse_stream(Codex(), stream_path("codex", "mcp-file-change-0.149.0.jsonl"))
    assert calls(items) == [
        ("item_1", "get_current_time", "time"),
        ("item_2", "apply_patch", None),
        ("item_3", "shell", None),
    ]
    assert results(items) == [("item_1", False), ("item_2", False), ("item_3", True)]
    mcp = next(i for i in items if isinstance(i, ToolResult) and i.call_id == "item_1")
    assert "2026-08-01" in mcp.output
    assert state.usage.reasoning_tokens == 60


def test_codex_error_event_alone_fails_only_with_nonzero_exit(tmp_path: Path) -> None:
    path = tmp_path / "reconnect.jsonl"
    path.write_text(
        '{"type":"error","message":"Reconnecting... 1/5"}\n{"type":"turn.completed","usage":{}}\n'
    )
    _, ok = parse_stream(Codex(), path, exit_code=0)
    _, failed = parse_stream(Codex(), path, exit_code=1)
    assert ok.error is None
    assert failed.error == "Reconnecting... 1/5"


def test_codex_legacy_envelope() -> None:
    items, state = parse_stream(Codex(), stream_path("codex", "legacy-envelope-0.40.jsonl"))
    assert items == [Text("Done: nothing to change.")]
    assert state.finished and state.usage.input_tokens == 900


# ----------------------------------------------------------------------------------------- Gemini


def test_gemini_reference_stream() -> None:
    items, state = parse_stream(
        Gemini(), stream_path("gemini", "reference-0.53-write-file.jsonl"), servers=("time",)
    )
    assert calls(items) == [
        ("write_file_1772298122105_0", "write_file", None),
        ("mcp_1", "get_current_time", "time"),
    ]
    assert results(items) == [("write_file_1772298122105_0", False), ("mcp_1", True)]
    first = next(i for i in items if isinstance(i, ToolCalls))
    assert first.text == "I will create a new file named `stream-test.txt` with the specified content."
    assert state.final_text == "Created `stream-test.txt`."
    assert (state.usage.input_tokens, state.usage.output_tokens, state.usage.cached_input_tokens) == (
        20846,
        62,
        8089,
    )
    assert state.usage.turns is None and state.usage.cost_usd is None
    assert Notice("Loop detected, stopping execution") in items


def test_gemini_fatal_error_result() -> None:
    _, state = parse_stream(Gemini(), stream_path("gemini", "fatal-error-result.jsonl"), exit_code=53)
    assert state.error == "Reached max session turns for this session."


def test_gemini_json_error_on_stderr_when_stream_is_empty() -> None:
    error = '{"type": "AuthError", "message": "API key not valid", "code": 41}'
    stderr = f'YOLO mode is enabled.\n[ERROR] {{\n  "error": {error}\n}}'
    _, state = parse_stream(
        Gemini(), stream_path("gemini", "real-0.61.0-partial-no-network.jsonl"), exit_code=41, stderr=stderr
    )
    assert state.error == "API key not valid"
    assert state.session_id == "50132aad-ea23-4707-abe0-c9fcf162f4a3" and not state.finished


# ----------------------------------------------------------------------------------------- Cursor


def test_cursor_reference_stream() -> None:
    items, state = parse_stream(Cursor(), stream_path("cursor", "reference-2026.03.20.jsonl"))
    assert calls(items) == [("toolu_bdrk_01EKXzaxy6vAqm6a3wL93cNY", "edit", None)]
    result = next(i for i in items if isinstance(i, ToolResult))
    assert result.output == "Wrote contents to /tmp/gump-cursor-tests/stream-test.txt" and not result.is_error
    # result.result concatenates all narration; the final text is the last assistant message
    assert state.final_text == "Le fichier `stream-test.txt` a été créé."
    assert state.usage.input_tokens == 4 + 13535 + 15844 and state.usage.output_tokens == 122
    assert state.usage.cost_usd is None and state.usage.turns is None
    assert state.model == "Sonnet 4.6 1M"


def test_cursor_shell_error_and_mcp_call() -> None:
    items, state = parse_stream(Cursor(), stream_path("cursor", "shell-failure-and-mcp.jsonl"))
    assert calls(items) == [("call_sh", "shell", None), ("call_mcp", "search", "web-search")]
    assert results(items) == [("call_sh", True), ("call_mcp", False)]
    assert state.usage.input_tokens is None  # older builds report no usage: null, not 0


def test_cursor_failure_without_result() -> None:
    _, state = parse_stream(Cursor(), stream_path("cursor", "failure-no-result.jsonl"), exit_code=1)
    assert not state.finished and state.error is None  # the run layer turns exit 1 + stderr into the error


# ----------------------------------------------------------------------------------------- OpenCode


def test_opencode_reference_stream_sums_steps_and_skips_plain_text_warnings() -> None:
    items, state = parse_stream(OpenCode(), stream_path("opencode", "reference-1.18.21-read.jsonl"))
    assert calls(items) == [("call_Kap3tANM5Uu9U5raX0ogDuYu", "read", None)]
    assert results(items) == [("call_Kap3tANM5Uu9U5raX0ogDuYu", False)]
    assert state.session_id == "ses_fd1c15233ffeiwqf92JsdPfahU"
    assert state.final_text == "NANOPY_EVENT_PROBE_20260823"
    assert state.usage.input_tokens == 7952 + 397 + 7680
    assert state.usage.output_tokens == 35 + 16 and state.usage.reasoning_tokens == 44
    assert state.usage.cached_input_tokens == 7680
    assert state.usage.turns == 2 and state.usage.cost_usd == pytest.approx(0.0042)
    assert state.finished


def test_opencode_real_capture() -> None:
    items, state = parse_stream(OpenCode(), stream_path("opencode", "real-1.18.33-bash.jsonl"))
    assert calls(items) == [("call_sbx_1_0", "bash", None)]
    assert state.final_text == "Created hello.txt." and state.usage.turns == 2


def test_opencode_error_event_and_mcp_tool_naming() -> None:
    items, state = parse_stream(
        OpenCode(), stream_path("opencode", "error-event.jsonl"), exit_code=1, servers=("time",)
    )
    assert calls(items) == [("call_t", "get_current_time", "time")]
    assert results(items) == [("call_t", True)]
    assert state.error == "Invalid API key provided"
    assert Notice("permissions auto-rejected: external_directory") in items


# ----------------------------------------------------------------------------------------- Copilot


def test_copilot_reference_fixtures() -> None:
    items, state = parse_stream(Copilot(), stream_path("copilot", "reference-fixtures.jsonl"))
    assert calls(items) == [("tool-1", "bash", None), ("tool-2", "rg", None)]
    assert results(items) == [("tool-1", False), ("tool-2", True)]
    rg = next(i for i in items if isinstance(i, ToolCalls) and i.calls[0].id == "tool-2")
    assert rg.calls[0].args == {"pattern": "x", "type": "rs"}  # JSON-string arguments decoded
    assert state.final_text == "All done." and state.usage.turns == 2
    assert state.usage.output_tokens == 17 and state.usage.input_tokens is None
    assert state.usage.extra == {"premiumRequests": 0.33}
    assert state.session_id == "ea7" and state.model == "gpt-5.6-luna"


def test_copilot_real_capture_dedupes_tool_requests() -> None:
    items, state = parse_stream(Copilot(), stream_path("copilot", "real-1.0.102-byok-bash.jsonl"))
    assert calls(items) == [("call_sbx_0_0", "bash", None)]
    assert results(items) == [("call_sbx_0_0", False)]
    assert state.final_text == "Created hello.txt." and state.usage.turns == 2
    assert state.session_id == "e111009b-9a1c-408a-a65b-2d0c25e2767b"


def test_copilot_usage_file_replaces_stream_hints() -> None:
    _, state = parse_stream(Copilot(), stream_path("copilot", "reference-fixtures.jsonl"))
    report = json.loads(stream_path("copilot", "real-1.0.102-usage-output-file.json").read_text())
    apply_usage_report(state, report)
    assert (state.usage.input_tokens, state.usage.output_tokens, state.usage.cached_input_tokens) == (
        350,
        30,
        50,
    )
    assert state.usage.extra["premiumRequests"] == 0


def test_copilot_session_error() -> None:
    _, state = parse_stream(Copilot(), stream_path("copilot", "session-error.jsonl"), exit_code=1)
    assert state.error == 'Model "gpt-9" is not available for your plan.'
    assert state.finished


def test_copilot_mcp_tools_are_attributed_to_their_skill() -> None:
    items, state = parse_stream(
        Copilot(), stream_path("copilot", "real-1.0.102-mcp-tool.jsonl"), servers=("time",)
    )
    assert calls(items) == [("call_sbx_1_0", "get_current_time", "time")]
    assert "datetime" in next(i for i in items if isinstance(i, ToolResult)).output
    assert state.finished and state.final_text == "Done."


def test_codex_real_mcp_capture() -> None:
    items, state = parse_stream(Codex(), stream_path("codex", "real-0.169.0-mcp-tool.jsonl"))
    assert calls(items) == [("item_2", "get_current_time", "time")]
    assert results(items) == [("item_2", False)]
    assert state.final_text == "Done."
