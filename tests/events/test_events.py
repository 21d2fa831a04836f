"""The event models serialise exactly like Perstack's `JSON.stringify` output and round-trip."""

from __future__ import annotations

import io
import json
import re

import pytest
from pydantic import ValidationError

from sandbox import events as ev


def _checkpoint(**kw: object) -> ev.Checkpoint:
    base: dict[str, object] = {
        "id": "cp1",
        "job_id": "j1",
        "run_id": "r1",
        "status": "proceeding",
        "step_number": 1,
        "messages": [],
        "expert": ev.ExpertRef(key="a", name="a", version="1.0.0"),
    }
    base.update(kw)
    return ev.Checkpoint.model_validate(base)


def test_ids_are_cuid2_shaped_and_unique() -> None:
    ids = {ev.create_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"[a-z][0-9a-z]{23}", i) for i in ids)


def test_run_event_envelope_order_and_camel_case() -> None:
    e = ev.CallTools(
        expert_key="a",
        job_id="j1",
        run_id="r1",
        step_number=2,
        new_message=ev.ExpertMessage(contents=[ev.ToolCallPart(tool_call_id="t", tool_name="x", args={})]),
        tool_calls=[ev.ToolCall(id="t", skill_name="s", tool_name="x", args={"a": None})],
        usage=ev.Usage(input_tokens=3),
    )
    data = json.loads(ev.event_to_json(e))
    assert list(data)[:7] == ["type", "id", "expertKey", "timestamp", "jobId", "runId", "stepNumber"]
    assert data["type"] == "callTools"
    assert data["toolCalls"][0] == {"id": "t", "skillName": "s", "toolName": "x", "args": {"a": None}}
    assert data["newMessage"]["contents"][0]["toolCallId"] == "t"
    assert data["usage"]["inputTokens"] == 3
    # compact like JSON.stringify
    assert ", " not in ev.event_to_json(e) and '": ' not in ev.event_to_json(e)


def test_optional_none_fields_are_omitted_but_nested_nulls_kept() -> None:
    cp = _checkpoint(metadata={"runtime": "local", "x": None})
    data = json.loads(cp.model_dump_json())
    for absent in ("delegateTo", "delegatedBy", "error", "pendingToolCalls", "retryCount", "contextWindow"):
        assert absent not in data
    assert data["metadata"] == {"runtime": "local", "x": None}
    part = json.loads(ev.ToolResultPart(tool_call_id="t", tool_name="n", contents=[]).model_dump_json())
    assert "isError" not in part


def test_runtime_event_has_no_expert_or_step() -> None:
    e = ev.SkillConnected(job_id="j", run_id="r", skill_name="s", spawn_duration_ms=1.0)
    data = json.loads(ev.event_to_json(e))
    assert "expertKey" not in data and "stepNumber" not in data
    assert data["spawnDurationMs"] == 1.0
    assert not ev.is_run_event(e)


@pytest.mark.parametrize(
    "event",
    [
        ev.StopRunByError(
            expert_key="a",
            job_id="j",
            run_id="r",
            step_number=1,
            checkpoint=_checkpoint(status="stoppedByError"),
            step=ev.Step(step_number=1, started_at=1),
            error=ev.CheckpointError(name="APICallError", message="boom", status_code=529, is_retryable=True),
        ),
        ev.DockerBuildProgress(job_id="j", run_id="r", stage="building", service="runtime", message="m"),
        ev.ProxyAccess(job_id="j", run_id="r", action="blocked", domain="x.com", port=443, reason="r"),
        ev.InitializeRuntime(
            job_id="j",
            run_id="r",
            runtime_version="0.1",
            expert_name="a",
            experts=["a"],
            model="m",
            max_retries=5,
            timeout=1000,
        ),
        ev.StreamRunResult(expert_key="a", job_id="j", run_id="r", step_number=1, delta="hé"),
    ],
)
def test_round_trip(event: ev.EventBase) -> None:
    line = ev.event_to_json(event)
    assert ev.parse_event(line) == event
    assert ev.parse_event(json.loads(line)) == event


def test_parses_a_real_perstack_line_and_keeps_unknown_keys() -> None:
    line = (
        '{"type":"initializeRuntime","id":"xcombr0j","timestamp":1766462909377,"jobId":"i4409t99",'
        '"runId":"uaijcrtt","runtimeVersion":"0.0.70","runtime":"local","expertName":"attack-symlink",'
        '"experts":["attack-metadata"],"model":"claude-haiku-4-5","temperature":0,"maxSteps":100,'
        '"maxRetries":5,"timeout":300000,"query":"Try","futureField":{"a":1}}'
    )
    e = ev.parse_event(line)
    assert isinstance(e, ev.InitializeRuntime)
    assert json.loads(ev.event_to_json(e)) == json.loads(line)


def test_unknown_type_is_rejected() -> None:
    with pytest.raises(ValidationError):
        ev.parse_event('{"type":"nope","id":"x"}')


def test_jsonl_writer_writes_one_line_per_event() -> None:
    buf = io.StringIO()
    w = ev.JsonlWriter(buf)
    w(ev.SkillDisconnected(job_id="j", run_id="r", skill_name="s"))
    w.write_raw({"type": "x", "a": "é"})
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["skillName"] == "s"
    assert lines[1] == '{"type":"x","a":"é"}'


def test_usage_adds() -> None:
    u = ev.Usage(input_tokens=1, total_tokens=2) + ev.Usage(input_tokens=2, output_tokens=1, total_tokens=3)
    assert (u.input_tokens, u.output_tokens, u.total_tokens) == (3, 1, 5)
