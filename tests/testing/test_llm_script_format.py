"""The script's JSON form, its validation, and the package surface."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pydantic
import pytest

import sandbox.testing
import sandbox.testing.llm_server as llm_server_module
from sandbox.testing import ErrorSpec, Expectation, Script, ToolCall, Turn, Usage

REPO = Path(__file__).resolve().parents[2]


def full_script() -> Script:
    return Script(
        [
            Turn("plain"),
            Turn(
                "with everything",
                tool_calls=[ToolCall("read", {"path": "a", "n": [1, {"deep": None}]}, id="toolu_1")],
                thinking="hmm",
                delay_s=0.5,
                usage=Usage(10, 2, cache_read_input_tokens=3),
                stop_reason="max_tokens",
                expect=Expectation(
                    protocol="anthropic",
                    system_contains=["sys"],
                    tools=["read"],
                    headers={"x-api-key": None, "anthropic-version": "2023-06-01"},
                    body_includes={"temperature": 0},
                ),
                match="[agent:a]",
                label="the big one",
            ),
            Turn(error=ErrorSpec.rate_limit(retry_after=2.5)),
            Turn(error=ErrorSpec.overloaded(mid_stream=True)),
        ]
    )


def test_json_round_trip(tmp_path: Path) -> None:
    script = full_script()
    path = script.dump(tmp_path / "s.json")
    assert Script.load(path) == script
    assert Script.from_json(script.to_json()) == script


def test_json_is_short_and_versioned() -> None:
    data = json.loads(Script([Turn("hi"), Turn(tool_calls=[ToolCall("x")])]).to_json())
    assert data == {"turns": [{"text": "hi"}, {"tool_calls": [{"name": "x"}]}], "version": 1}


def test_hand_written_json_is_accepted() -> None:
    text = """{"turns": [
        {"text": "hello", "expect": {"system_contains": ["You are"]}},
        {"tool_calls": [{"name": "bash", "args": {"cmd": "ls"}}], "match": "[agent:b]"},
        {"error": {"status": 429, "retry_after": 1}}
    ]}"""
    script = Script.from_json(text)
    assert script.turns[0].expect == Expectation(system_contains=["You are"])
    assert script.turns[1].tool_calls == [ToolCall("bash", {"cmd": "ls"})]
    assert script.turns[2].error == ErrorSpec(429, retry_after=1)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"turns": [{"txt": "typo"}]}', "txt"),
        ('{"turns": [{"error": {"status": 200}}]}', "status"),
        ('{"turns": [{"delay_s": -1}]}', "delay_s"),
        ('{"turns": [{"stop_reason": "stop"}]}', "stop_reason"),
        ('{"turns": [{"expect": {"system_contain": ["x"]}}]}', "system_contain"),
        ('{"turns": [], "version": 2}', "version"),
    ],
)
def test_invalid_scripts_name_the_bad_key(text: str, where: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=where):
        Script.from_json(text)


def test_stop_reason_defaults() -> None:
    assert Turn("x").resolved_stop_reason == "end_turn"
    assert Turn(tool_calls=[ToolCall("t")]).resolved_stop_reason == "tool_use"
    assert Turn("x", stop_reason="max_tokens").resolved_stop_reason == "max_tokens"


def test_public_surface_is_pinned() -> None:
    assert sandbox.testing.__all__ == [
        "DEFAULT_MODELS",
        "ErrorSpec",
        "Expectation",
        "RecordedRequest",
        "RemoteLLMServer",
        "Script",
        "ScriptedLLMServer",
        "TLSFiles",
        "ToolCall",
        "Turn",
        "Unexpected",
        "Usage",
        "make_tls_files",
    ]
    assert set(sandbox.testing.__all__) <= set(llm_server_module.__all__)
    assert llm_server_module.ScriptedLLMServer is sandbox.testing.ScriptedLLMServer


def test_import_sandbox_does_not_import_the_test_doubles() -> None:
    code = (
        "import sys, sandbox; "
        "heavy = [m for m in ('sandbox.testing', 'starlette', 'uvicorn', 'trustme') if m in sys.modules]; "
        "print(heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


def test_running_the_module_gives_no_import_warning() -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", "-m", "sandbox.testing.llm_server", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--tls-cert" in result.stdout and "RuntimeWarning" not in result.stderr
