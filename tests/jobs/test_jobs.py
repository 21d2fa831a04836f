"""The filesystem job store: Perstack layout, atomic writes, redaction and continue/resume look-ups."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sandbox import events as ev
from sandbox._errors import UserError
from sandbox.jobs import REDACTED, JobStore, atomic_write, resolve_checkpoint

EXPERT = ev.ExpertRef(key="coord", name="coord", version="1.0.0")


def cp(
    cid: str,
    step: int,
    *,
    status: ev.CheckpointStatus = "proceeding",
    job: str = "j1",
    run: str = "r1",
    **kw: object,
) -> ev.Checkpoint:
    data: dict[str, object] = {
        "id": cid,
        "job_id": job,
        "run_id": run,
        "status": status,
        "step_number": step,
        "messages": [],
        "expert": EXPERT,
    }
    data.update(kw)
    return ev.Checkpoint.model_validate(data)


def setting(job: str, run: str, updated: int, **kw: object) -> ev.RunSetting:
    data: dict[str, object] = {
        "model": "m",
        "provider_config": {"providerName": "anthropic", "apiKey": "sk-secret", "headers": {"X-A": "v"}},
        "job_id": job,
        "run_id": run,
        "expert_key": "coord",
        "max_retries": 1,
        "timeout": 1,
        "started_at": updated,
        "updated_at": updated,
        "env": {"ANTHROPIC_API_KEY": "sk-secret", "PLAIN": "value"},
        "perstack_api_key": "pk",
    }
    data.update(kw)
    return ev.RunSetting.model_validate(data)


def start(c: ev.Checkpoint) -> ev.StartRun:
    return ev.StartRun(
        expert_key=c.expert.key,
        job_id=c.job_id,
        run_id=c.run_id,
        step_number=c.step_number,
        initial_checkpoint=c,
        input_messages=[],
    )


def test_layout_and_record(tmp_path: Path) -> None:
    store = JobStore(tmp_path, durable=False)
    store.record(start(cp("c0", 0, status="init")))
    msg = ev.ExpertMessage(contents=[ev.TextPart(text="x")])
    store.record(
        ev.CallTools(
            expert_key="coord",
            job_id="j1",
            run_id="r1",
            step_number=1,
            new_message=msg,
            tool_calls=[],
            usage=ev.Usage(input_tokens=5, total_tokens=5),
        )
    )
    done = cp("c1", 1, status="completed")
    store.record(
        ev.CompleteRun(
            expert_key="coord",
            job_id="j1",
            run_id="r1",
            step_number=1,
            checkpoint=done,
            step=ev.Step(step_number=1, started_at=1),
            text="ok",
            usage=ev.Usage(output_tokens=2, total_tokens=2),
        )
    )
    store.record(ev.SkillStderr(job_id="j1", run_id="r1", skill_name="s", message="m"))  # not stored
    store.record(ev.StreamRunResult(expert_key="coord", job_id="j1", run_id="r1", step_number=1, delta="d"))

    jdir = tmp_path / "j1"
    job = json.loads((jdir / "job.json").read_text())
    assert (jdir / "job.json").read_text().startswith('{\n  "id": "j1"')
    assert job["status"] == "completed" and job["totalSteps"] == 1 and "finishedAt" in job
    assert job["usage"]["totalTokens"] == 7 and job["coordinatorExpertKey"] == "coord"
    assert [p.name for p in (jdir / "checkpoints").iterdir()] == ["c1.json"]
    names = sorted(p.name.split("-", 3)[3] for p in (jdir / "runs" / "r1").iterdir())
    assert names == ["callTools.json", "completeRun.json", "startRun.json"]
    assert [e.type for e in store.list_events("j1", "r1")] == ["startRun", "callTools", "completeRun"]
    assert not any(p.name.startswith(".") for p in jdir.rglob("*"))


def test_same_millisecond_events_do_not_clobber(tmp_path: Path) -> None:
    store = JobStore(tmp_path, durable=False)
    for i in range(3):
        store.store_event(
            ev.StreamReasoning(
                expert_key="a", job_id="j", run_id="r", step_number=1, timestamp=1000, delta=str(i)
            )
        )
    assert len(store.list_events("j", "r")) == 3


def test_run_setting_is_redacted(tmp_path: Path) -> None:
    store = JobStore(tmp_path, durable=False)
    store.store_run_setting(setting("j1", "r1", 1))
    raw = (tmp_path / "j1" / "runs" / "r1" / "run-setting.json").read_text()
    assert "sk-secret" not in raw and '"value"' not in raw and "pk" not in raw.replace("perstack", "")
    data = json.loads(raw)
    assert data["providerConfig"]["apiKey"] == REDACTED
    assert data["providerConfig"]["headers"] == {"X-A": REDACTED}
    assert data["env"] == {"ANTHROPIC_API_KEY": REDACTED, "PLAIN": REDACTED}
    assert data["providerConfig"]["providerName"] == "anthropic"


def test_bad_ids_are_refused(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    for bad in ("../x", "a/b", "", ".hidden"):
        with pytest.raises(UserError):
            store.job_dir(bad)


def test_atomic_write_leaves_old_file_when_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f.json"
    atomic_write(target, b'{"v":1}')

    def boom(src: object, dst: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, b'{"v":2}')
    assert target.read_bytes() == b'{"v":1}'
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


class TestResolve:
    def test_resume_from_requires_continue_job(self, tmp_path: Path) -> None:
        with pytest.raises(UserError, match="--resume-from requires --continue-job"):
            resolve_checkpoint(JobStore(tmp_path), expert_key="coord", resume_from="x")

    def test_no_runs(self, tmp_path: Path) -> None:
        with pytest.raises(UserError, match="No runs found"):
            resolve_checkpoint(JobStore(tmp_path), expert_key="coord", continue_latest=True)

    def test_no_checkpoint(self, tmp_path: Path) -> None:
        with pytest.raises(UserError, match="No checkpoint found"):
            resolve_checkpoint(JobStore(tmp_path), expert_key="coord", continue_job="j1")
        with pytest.raises(UserError, match="No checkpoint found"):
            resolve_checkpoint(JobStore(tmp_path), expert_key="coord", continue_job="j1", resume_from="c9")

    def test_fresh(self, tmp_path: Path) -> None:
        assert resolve_checkpoint(JobStore(tmp_path), expert_key="coord") is None

    def test_latest_job_last_coordinator_checkpoint(self, tmp_path: Path) -> None:
        store = JobStore(tmp_path, durable=False)
        store.store_run_setting(setting("old", "r1", 100))
        store.store_checkpoint(cp("o1", 1, job="old"))
        store.store_run_setting(setting("new", "r2", 200))
        store.store_checkpoint(cp("n1", 1, job="new", run="r2"))
        store.store_checkpoint(cp("n2", 2, job="new", run="r2"))
        delegated = ev.DelegatedBy(
            expert=EXPERT, tool_call_id="t", tool_name="d", checkpoint_id="n2", run_id="r2"
        )
        store.store_checkpoint(
            cp(
                "d3",
                3,
                job="new",
                run="r3",
                expert=ev.ExpertRef(key="d", name="d", version="1"),
                delegated_by=delegated,
            )
        )
        got = resolve_checkpoint(store, expert_key="coord", continue_latest=True)
        assert got is not None and got.id == "n2"
        got = resolve_checkpoint(store, expert_key="coord", continue_job="old")
        assert got is not None and got.id == "o1"
        got = resolve_checkpoint(store, expert_key="coord", continue_job="new", resume_from="n1")
        assert got is not None and got.id == "n1"
        with pytest.raises(UserError, match="only coordinator"):
            resolve_checkpoint(store, expert_key="d", continue_job="new", resume_from="d3")

    def test_expert_mismatch(self, tmp_path: Path) -> None:
        store = JobStore(tmp_path, durable=False)
        store.store_checkpoint(cp("c1", 1))
        with pytest.raises(
            UserError, match="Checkpoint expert key coord does not match input expert key other"
        ):
            resolve_checkpoint(store, expert_key="other", continue_job="j1")

    def test_torn_temp_file_is_ignored(self, tmp_path: Path) -> None:
        store = JobStore(tmp_path, durable=False)
        store.store_checkpoint(cp("c1", 1))
        (tmp_path / "j1" / "checkpoints" / ".c2.json.abcd.tmp").write_text('{"id": "c2", "jobI')
        got = resolve_checkpoint(store, expert_key="coord", continue_job="j1")
        assert got is not None and got.id == "c1"


def test_list_jobs_synthesises_missing_job_json(tmp_path: Path) -> None:
    store = JobStore(tmp_path, durable=False)
    store.store_checkpoint(cp("c1", 3, status="stoppedByInteractiveTool", job="perstack-made"))
    store.ensure_job("ours", "coord", max_steps=10)
    jobs = {j.id: j for j in store.list_jobs()}
    assert jobs["perstack-made"].status == "stoppedByInteractiveTool"
    assert jobs["perstack-made"].total_steps == 3
    assert jobs["ours"].max_steps == 10 and jobs["ours"].status == "running"
    details = store.job_details("perstack-made")
    assert details is not None and details.to_json()["checkpoints"][0]["id"] == "c1"
