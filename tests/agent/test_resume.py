"""Interactive stops and `-i`, `--continue`, `--continue-job`, `--resume-from`, and the docker contract
(`store=None` + `initial_checkpoint`)."""

from __future__ import annotations

import json

import pytest

from sandbox._errors import UserError
from sandbox.agent import load_checkpoint
from sandbox.jobs import JobStore
from sandbox.testing import Expectation, ToolCall, Turn
from tests.agent.conftest import Harness

ASKING = """
[experts."main"]
instruction = "Ask when unsure."
[experts."main".skills."user"]
type = "interactiveSkill"
description = "Talk to the user"
rule = "Ask before deleting"
[experts."main".skills."user".tools."askUser"]
description = "Ask the user"
inputJsonSchema = '{"type":"object","properties":{"question":{"type":"string"}},"required":["question"]}'
"""


def _stop_for_question(harness: Harness) -> str:
    harness.server.enqueue(
        Turn(
            tool_calls=[ToolCall("askUser", {"question": "which colour?"}, id="ask_1")],
            expect=Expectation(tools=["askUser"], system_contains=["Ask before deleting"]),
        )
    )
    first = harness.run(harness.options(ASKING, query="paint it"))
    assert [u.message for u in harness.server.unexpected] == []
    assert first.code == 0
    assert first.types()[-2:] == ["callInteractiveTool", "stopRunByInteractiveTool"]
    stop = first.last("stopRunByInteractiveTool")
    assert stop.checkpoint.status == "stoppedByInteractiveTool"
    assert stop.checkpoint.pending_tool_calls[0].tool_name == "askUser"
    job = json.loads((harness.jobs_dir / stop.job_id / "job.json").read_text())
    assert job["status"] == "stoppedByInteractiveTool"
    return str(stop.job_id)


@pytest.mark.parametrize(
    "answer", ["blue", '{"toolCallId":"ask_1","toolName":"askUser","skillName":"user","text":"blue"}']
)
def test_interactive_stop_and_resume(harness: Harness, answer: str) -> None:
    job_id = _stop_for_question(harness)
    harness.server.enqueue(Turn("Painted blue.", expect=Expectation(tool_result_contains=["blue"])))
    second = harness.run(harness.options(ASKING, query=None, continue_latest=True, interactive_result=answer))
    assert [u.message for u in harness.server.unexpected] == []
    assert second.code == 0
    assert second.last("completeRun").job_id == job_id
    init = second.of("initializeRuntime")[0]
    assert init.interactive_tool_call.tool_call_id == "ask_1"
    assert second.of("startRun")[0].input_messages == []
    assert "resumeToolCalls" in second.types()
    job = json.loads((harness.jobs_dir / job_id / "job.json").read_text())
    assert job["status"] == "completed"


def test_interactive_checkpoint_needs_an_answer(harness: Harness) -> None:
    _stop_for_question(harness)
    with pytest.raises(UserError, match="-i"):
        harness.run(harness.options(ASKING, query="again", continue_latest=True))


SIMPLE = '[experts."main"]\ninstruction = "Count."\n'


def test_continue_appends_the_new_query(harness: Harness) -> None:
    harness.server.enqueue(Turn("one"))
    first = harness.run(harness.options(SIMPLE, query="first question"))
    job_id = first.last("completeRun").job_id
    harness.server.enqueue(
        Turn(
            "two",
            expect=Expectation(
                messages_contain=["first question", "one"], last_message_contains=["second question"]
            ),
        )
    )
    second = harness.run(harness.options(SIMPLE, query="second question", continue_job=job_id))
    assert [u.message for u in harness.server.unexpected] == []
    assert second.code == 0 and second.last("completeRun").job_id == job_id
    assert second.last("completeRun").checkpoint.step_number == 2
    assert second.last("completeRun").run_id != first.last("completeRun").run_id


def test_resume_from_an_earlier_checkpoint(harness: Harness) -> None:
    harness.server.enqueue(Turn(tool_calls=[ToolCall("think", {"thought": "a"})]), Turn("done-1"))
    first = harness.run(harness.options(SIMPLE, query="q1"))
    early = first.of("continueToNextStep")[0].checkpoint
    harness.server.enqueue(
        Turn("again", expect=Expectation(last_message_contains=["q2"], messages_contain=["q1"]))
    )
    second = harness.run(harness.options(SIMPLE, query="q2", continue_job=early.job_id, resume_from=early.id))
    assert [u.message for u in harness.server.unexpected] == []
    assert second.code == 0
    assert "done-1" not in json.dumps(
        [m.model_dump(mode="json") for m in second.last("completeRun").checkpoint.messages]
    )
    assert second.last("completeRun").checkpoint.step_number == early.step_number + 1


def test_resume_errors(harness: Harness) -> None:
    with pytest.raises(UserError, match="--resume-from requires --continue-job"):
        harness.run(harness.options(SIMPLE, resume_from="x"))
    with pytest.raises(UserError, match="No runs found"):
        harness.run(harness.options(SIMPLE, continue_latest=True))
    harness.server.enqueue(Turn("ok"))
    first = harness.run(harness.options(SIMPLE))
    with pytest.raises(UserError, match="No checkpoint found"):
        harness.run(
            harness.options(SIMPLE, continue_job=first.last("completeRun").job_id, resume_from="nope")
        )
    toml = SIMPLE + '[experts."other"]\ninstruction = "x"\n'
    with pytest.raises(UserError, match="does not match input expert key other"):
        harness.run(harness.options(toml, expert="other", continue_latest=True))


def test_docker_contract_no_store_and_initial_checkpoint(harness: Harness, tmp_path: object) -> None:
    """The container runs with storage off; the host stores from events and mounts a checkpoint file."""

    host = JobStore(harness.tmp / "host-jobs", durable=False)
    harness.server.enqueue(Turn(tool_calls=[ToolCall("askUser", {"question": "?"}, id="ask_9")]))
    first = harness.run(harness.options(ASKING, query="start"), store=None)
    for event in first.events:
        host.record(event)
    assert not harness.jobs_dir.exists()
    stop = first.last("stopRunByInteractiveTool")
    path = host.checkpoint_path(stop.job_id, stop.checkpoint.id)
    harness.server.enqueue(Turn("thanks", expect=Expectation(tool_result_contains=["yes"])))
    second = harness.run(
        harness.options(ASKING, query=None, interactive_result="yes"),
        store=None,
        initial_checkpoint=load_checkpoint(path),
    )
    assert [u.message for u in harness.server.unexpected] == []
    assert second.code == 0 and second.last("completeRun").job_id == stop.job_id
    for event in second.events:
        host.record(event)
    job = host.retrieve_job(stop.job_id)
    assert job is not None and job.status == "completed"
