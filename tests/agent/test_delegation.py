"""Delegates are tools; each call is its own run in the same job; parallel calls run concurrently."""

from __future__ import annotations

import json

from sandbox.testing import ErrorSpec, Expectation, ToolCall, Turn
from tests.agent.conftest import Harness

CHAIN = """
[experts."a"]
instruction = "You are A."
delegates = ["b"]
[experts."b"]
description = "B knows things"
instruction = "You are B."
delegates = ["c"]
[experts."c"]
description = "C computes"
instruction = "You are C."
"""


def test_chain_a_to_b_to_c(harness: Harness) -> None:
    harness.server.enqueue(
        Turn(
            tool_calls=[ToolCall("b", {"query": "ask b"})],
            expect=Expectation(system_contains=["You are A.", "B knows things"], tools_include=["b"]),
        ),
        Turn(
            tool_calls=[ToolCall("c", {"query": "ask c"})], expect=Expectation(system_contains=["You are B."])
        ),
        Turn("c-answer", expect=Expectation(system_contains=["You are C."], last_message_contains=["ask c"])),
        Turn("b-answer", expect=Expectation(tool_result_contains=["c-answer"])),
        Turn("a-answer", expect=Expectation(tool_result_contains=["b-answer"])),
    )
    result = harness.run(harness.options(CHAIN, expert="a"))
    assert [u.message for u in harness.server.unexpected] == []
    assert result.code == 0
    completes = result.of("completeRun")
    assert [e.expert_key for e in completes] == ["c", "b", "a"]
    assert len({e.run_id for e in completes}) == 3 and len({e.job_id for e in completes}) == 1
    c_done = completes[0].checkpoint
    assert c_done.delegated_by is not None and c_done.delegated_by.expert.key == "b"
    stop = result.of("stopRunByDelegate")[0]
    assert stop.checkpoint.status == "stoppedByDelegate"
    assert stop.checkpoint.delegate_to[0].expert.key == "b"
    assert stop.checkpoint.delegate_to[0].query == "ask b"
    delegate_results = [r for e in result.of("resolveToolResults") for r in e.tool_results]
    assert {r.skill_name for r in delegate_results} == {"delegate/b", "delegate/c"}
    # job-wide step numbers: a=1, b=2, c=3, then b continues at 4, a at 5
    assert [e.step_number for e in result.of("startRun")] == [1, 2, 3]
    assert completes[-1].checkpoint.step_number == 5
    job = json.loads((harness.jobs_dir / completes[-1].job_id / "job.json").read_text())
    assert job["status"] == "completed" and job["totalSteps"] == 5
    runs = list((harness.jobs_dir / completes[-1].job_id / "runs").iterdir())
    assert len(runs) == 3


PARALLEL = """
[experts."lead"]
instruction = "You are the lead."
delegates = ["left", "right"]
[experts."left"]
instruction = "You are LEFT."
[experts."right"]
instruction = "You are RIGHT."
"""


def test_parallel_delegates_run_concurrently(harness: Harness) -> None:
    harness.server.enqueue(
        Turn(tool_calls=[ToolCall("left", {"query": "l"}), ToolCall("right", {"query": "r"})]),
        # Each delegate's answer is delayed; run one after the other they would take twice as long.
        Turn("left-done", match="You are LEFT.", delay_s=1.0),
        Turn("right-done", match="You are RIGHT.", delay_s=1.0),
        Turn("both", expect=Expectation(tool_result_contains=["left-done", "right-done"])),
    )
    result = harness.run(harness.options(PARALLEL, expert="lead"))
    assert [u.message for u in harness.server.unexpected] == []
    assert result.code == 0
    starts = {e.expert_key: e.timestamp for e in result.of("startRun")}
    ends = {e.expert_key: e.timestamp for e in result.of("completeRun")}
    # the second delegate started before the first one finished
    assert max(starts["left"], starts["right"]) < min(ends["left"], ends["right"])
    assert result.last("completeRun").text == "both"


def test_max_steps_counts_delegate_steps(harness: Harness) -> None:
    harness.server.enqueue(
        Turn(tool_calls=[ToolCall("b", {"query": "go"})]),  # a: step 1
        Turn(tool_calls=[ToolCall("c", {"query": "go"})]),  # b: step 2
        Turn(tool_calls=[ToolCall("think", {"thought": "hmm"})]),  # c: step 3 -> no step 4 left
    )
    result = harness.run(harness.options(CHAIN, expert="a", max_steps=3))
    assert result.code == 1
    stops = result.of("stopRunByExceededMaxSteps")
    assert [e.expert_key for e in stops] == ["c", "b", "a"]
    job_id = stops[-1].job_id
    job = json.loads((harness.jobs_dir / job_id / "job.json").read_text())
    assert job["status"] == "stoppedByMaxSteps"
    assert job["totalSteps"] == 3


def test_resume_from_a_stopped_by_delegate_checkpoint_reruns_the_delegate(harness: Harness) -> None:
    harness.server.enqueue(
        Turn(tool_calls=[ToolCall("b", {"query": "ask b"})]),
        Turn(error=ErrorSpec(400, message="b breaks")),
        Turn("a gives up", expect=Expectation(tool_result_contains=["b breaks"])),
    )
    first = harness.run(harness.options(CHAIN, expert="a"))
    assert first.code == 0
    stop = first.last("stopRunByDelegate").checkpoint
    harness.server.enqueue(
        Turn("b-answer", expect=Expectation(system_contains=["You are B."], last_message_contains=["ask b"])),
        Turn("a-done", expect=Expectation(tool_result_contains=["b-answer"])),
    )
    second = harness.run(
        harness.options(CHAIN, expert="a", query=None, continue_job=stop.job_id, resume_from=stop.id)
    )
    assert [u.message for u in harness.server.unexpected] == []
    assert second.code == 0 and second.last("completeRun").text == "a-done"
