"""The loop against the scripted LLM server, over both wire protocols: what is sent, what is emitted,
what is stored."""

from __future__ import annotations

import json
from typing import Literal

import pytest

from sandbox._errors import UserError
from sandbox.testing import Expectation, ToolCall, Turn
from tests.agent.conftest import Harness, host_env

EXPERT = """
[experts."main"]
instruction = "You are the file clerk."
[experts."main".skills."@perstack/base"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@perstack/base"
description = "Files of the workspace"
rule = "Always write notes to notes.txt"
pick = ["readTextFile", "writeTextFile", "attemptCompletion", "exec"]
omit = ["exec"]
"""


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_tool_step_then_completion_over_both_protocols(
    harness: Harness, provider: Literal["anthropic", "openai"]
) -> None:
    (harness.workspace / "in.txt").write_text("payload-123")
    key = "sk-ant-test" if provider == "anthropic" else "sk-oai-test"
    harness.server.enqueue(
        Turn(
            tool_calls=[ToolCall("readTextFile", {"path": "in.txt"}, id="call_read")],
            expect=Expectation(
                protocol=provider,
                model="claude-test",
                stream=True,
                system_contains=[
                    "You are the file clerk.",
                    "Always write notes to notes.txt",
                    "Files of the workspace",
                ],
                tools=["attemptCompletion", "readTextFile", "writeTextFile"],
                api_key=key,
                headers={"x-test-header": "yes"},
                last_message_contains=["please read"],
            ),
        ),
        Turn(
            tool_calls=[ToolCall("attemptCompletion", {})],
            expect=Expectation(tool_result_contains=["payload-123"]),
        ),
        Turn("The file says payload-123."),
    )
    result = harness.run(harness.options(EXPERT, query="please read in.txt", provider_name=provider))
    assert [u.message for u in harness.server.unexpected] == []
    assert result.code == 0
    assert result.types() == [
        "initializeRuntime",
        "startRun",
        "startGeneration",
        "callTools",
        "resolveToolResults",
        "finishToolCall",
        "continueToNextStep",
        "startGeneration",
        "callTools",
        "resolveToolResults",
        "finishToolCall",
        "attemptCompletion",
        "startGeneration",
        "startStreamingRunResult",
        *["streamRunResult"] * len(result.of("streamRunResult")),
        "completeStreamingRunResult",
        "completeRun",
    ]
    complete = result.last("completeRun")
    assert complete.text == "The file says payload-123."
    assert result.last("completeStreamingRunResult").text == complete.text
    assert complete.checkpoint.status == "completed" and complete.checkpoint.step_number == 2
    call = result.of("callTools")[0].tool_calls[0]
    assert (call.id, call.skill_name, call.tool_name) == ("call_read", "@perstack/base", "readTextFile")
    tool_result = result.of("resolveToolResults")[0].tool_results[0]
    assert tool_result.result[0].text == "payload-123"
    harness.server.assert_all_served()

    # storage: job.json, checkpoints, run setting (redacted), events
    job_dir = harness.jobs_dir / complete.job_id
    job = json.loads((job_dir / "job.json").read_text())
    assert job["status"] == "completed" and job["totalSteps"] == 2 and job["coordinatorExpertKey"] == "main"
    assert job["usage"]["totalTokens"] > 0
    checkpoints = sorted(p.name for p in (job_dir / "checkpoints").iterdir())
    assert f"{complete.checkpoint.id}.json" in checkpoints and len(checkpoints) == 2
    setting = (job_dir / "runs" / complete.run_id / "run-setting.json").read_text()
    assert key not in setting and "[redacted]" in setting
    stored = sorted(p.name.split("-", 3)[3] for p in (job_dir / "runs" / complete.run_id).glob("event-*"))
    assert "completeRun.json" in stored and "streamRunResult.json" not in stored


def test_text_only_answer_completes_the_run(harness: Harness) -> None:
    harness.server.enqueue(Turn("Hi there."))
    result = harness.run(harness.options('[experts."main"]\ninstruction = "Greet."\n'))
    assert result.code == 0
    assert result.types()[-2:] == ["startGeneration", "completeRun"]
    assert result.last("completeRun").text == "Hi there."


def test_expert_without_skills_gets_the_base_skill(harness: Harness) -> None:
    harness.server.enqueue(
        Turn(
            "ok",
            expect=Expectation(tools_include=["readTextFile", "exec", "attemptCompletion", "grep", "glob"]),
        )
    )
    result = harness.run(harness.options('[experts."main"]\ninstruction = "x"\n'))
    assert [u.message for u in harness.server.unexpected] == []
    assert result.code == 0


def test_unknown_tool_is_reported_to_the_model(harness: Harness) -> None:
    harness.server.enqueue(
        Turn(tool_calls=[ToolCall("noSuchTool", {})]),
        Turn("gave up", expect=Expectation(tool_result_contains=["Tool noSuchTool not found"])),
    )
    result = harness.run(harness.options('[experts."main"]\ninstruction = "x"\n'))
    assert [u.message for u in harness.server.unexpected] == []
    assert result.code == 0


def test_thinking_streams_reasoning_events(harness: Harness) -> None:
    harness.server.enqueue(Turn("answer", thinking="let me think about it"))
    result = harness.run(harness.options('[experts."main"]\ninstruction = "x"\n', reasoning_budget="low"))
    assert result.code == 0
    assert "startStreamingReasoning" in result.types()
    assert result.last("completeStreamingReasoning").text == "let me think about it"
    assert "".join(e.delta for e in result.of("streamReasoning")) == "let me think about it"
    body = harness.server.requests[-1].body
    assert body.get("thinking", {}).get("type") in ("enabled", "adaptive")


def test_store_none_writes_nothing(harness: Harness) -> None:
    harness.server.enqueue(Turn("ok"))
    result = harness.run(harness.options('[experts."main"]\ninstruction = "x"\n'), store=None)
    assert result.code == 0
    assert not harness.jobs_dir.exists()


def test_unknown_expert_is_a_user_error(harness: Harness) -> None:

    with pytest.raises(UserError, match="Expert nope is not defined"):
        harness.run(harness.options('[experts."main"]\ninstruction = "x"\n', expert="nope"))


def test_missing_provider_key_is_a_user_error(harness: Harness) -> None:

    with pytest.raises(UserError, match="ANTHROPIC_API_KEY"):
        harness.run(harness.options('[experts."main"]\ninstruction = "x"\n', env=host_env()))


def test_temperature_and_numeric_reasoning_budget_reach_the_wire(harness: Harness) -> None:
    harness.server.enqueue(Turn("cold", expect=Expectation(body_includes={"temperature": 0.25})))
    result = harness.run(harness.options('[experts."main"]\ninstruction = "x"\n', temperature=0.25))
    assert [u.message for u in harness.server.unexpected] == []
    assert result.code == 0
    harness.server.enqueue(Turn("deep"))
    result = harness.run(harness.options('[experts."main"]\ninstruction = "x"\n', reasoning_budget=3000))
    assert result.code == 0
    assert harness.server.requests[-1].body["thinking"] == {"type": "enabled", "budget_tokens": 3000}
