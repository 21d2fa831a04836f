"""EventPump: validation, job-id guard, storage order, terminal detection (incl. delegates), run settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandbox import events as ev
from sandbox.docker._pump import EventPump
from sandbox.events import EXIT_CODE_BY_TERMINAL as EXIT_BY_TERMINAL
from sandbox.jobs import JobStore

from .conftest import checkpoint, standard_events, step


def make(tmp_path: Path, **kw: Any) -> tuple[EventPump, list[ev.EventBase], list[str]]:
    emitted: list[ev.EventBase] = []
    diag: list[str] = []

    def setting(run_id: str, expert_key: str, text: str | None, init: object) -> ev.RunSetting:
        return ev.RunSetting(
            model="m",
            provider_config={"providerName": "anthropic", "apiKey": "sk-1"},
            job_id="job1",
            run_id=run_id,
            expert_key=expert_key,
            max_retries=1,
            timeout=1,
            started_at=1,
            updated_at=1,
            env={"ANTHROPIC_API_KEY": "sk-1"},
            input=ev.RunInput(text=text),
        )

    pump = EventPump(
        job_id="job1",
        expert_key="coord",
        emit=emitted.append,
        store=JobStore(tmp_path),
        diag=diag.append,
        run_setting=setting,
        **kw,
    )
    return pump, emitted, diag


def test_standard_run_is_stored_and_emitted_in_order(tmp_path: Path) -> None:
    pump, emitted, diag = make(tmp_path)
    for event in standard_events("job1", "run1"):
        pump.stdout_line(ev.event_to_json(event))
    assert [e.type for e in emitted] == ["initializeRuntime", "startRun", "completeRun"]
    assert pump.exit_code() == 0 and pump.run_id == "run1"
    store = JobStore(tmp_path)
    assert store.retrieve_job("job1").status == "completed"  # type: ignore[union-attr]
    setting = store.retrieve_run_setting("job1", "run1")
    assert setting is not None and setting.env == {"ANTHROPIC_API_KEY": "[redacted]"}
    assert setting.input.text == "hello"
    assert [e.type for e in store.list_events("job1", "run1")] == ["startRun", "completeRun"]
    assert diag == []


def test_exit_codes_match_the_native_runtime() -> None:
    from sandbox.agent import exit_code_for

    assert EXIT_BY_TERMINAL["completeRun"] == exit_code_for("completed")
    assert EXIT_BY_TERMINAL["stopRunByInteractiveTool"] == exit_code_for("interactive")
    assert EXIT_BY_TERMINAL["stopRunByExceededMaxSteps"] == exit_code_for("max_steps")
    assert EXIT_BY_TERMINAL["stopRunByError"] == exit_code_for("error") == 1


def test_no_terminal_means_no_exit_code(tmp_path: Path) -> None:
    pump, _, _ = make(tmp_path)
    for event in standard_events("job1", "run1")[:2]:
        pump.stdout_line(ev.event_to_json(event))
    assert pump.exit_code() is None


def test_a_delegates_terminal_event_does_not_end_the_job(tmp_path: Path) -> None:
    pump, _, _ = make(tmp_path)
    events = standard_events("job1", "run1")
    pump.stdout_line(ev.event_to_json(events[0]))
    delegated = ev.DelegatedBy(
        expert=ev.ExpertRef(key="coord", name="coord", version="1"),
        tool_call_id="t",
        tool_name="d",
        checkpoint_id="c",
        run_id="run1",
    )
    cp = checkpoint("job1", "run2", "completed", 2, delegated_by=delegated)
    start = ev.StartRun(
        expert_key="helper",
        job_id="job1",
        run_id="run2",
        step_number=2,
        initial_checkpoint=cp.model_copy(update={"status": "init"}),
        input_messages=[ev.UserMessage(contents=[ev.TextPart(text="sub task")])],
    )
    done = ev.CompleteRun(
        expert_key="helper",
        job_id="job1",
        run_id="run2",
        step_number=2,
        checkpoint=cp,
        step=step(2),
        text="ok",
        usage=ev.Usage(),
    )
    pump.stdout_line(ev.event_to_json(start))
    pump.stdout_line(ev.event_to_json(done))
    assert pump.terminal is None
    delegate_setting = JobStore(tmp_path).retrieve_run_setting("job1", "run2")
    assert delegate_setting is not None and delegate_setting.input.text == "sub task"
    assert delegate_setting.expert_key == "helper"


def test_foreign_job_and_invalid_events_are_dropped(tmp_path: Path) -> None:
    pump, emitted, diag = make(tmp_path)
    for event in standard_events("otherjob", "run1"):
        pump.stdout_line(ev.event_to_json(event))
    pump.stdout_line('{"type": "startRun", "jobId": "job1"}')
    assert emitted == []
    assert pump.counts.foreign == 3 and pump.counts.invalid == 1
    assert not (tmp_path / "otherjob").exists()
    assert any("otherjob" in d for d in diag) and any("invalid" in d for d in diag)


def test_other_output_is_kept_for_errors_and_shown_only_verbose(tmp_path: Path) -> None:
    quiet, _, diag_quiet = make(tmp_path)
    quiet.stdout_line("hello from npm")
    quiet.stderr_line("warning: x")
    assert diag_quiet == [] and list(quiet.tail) == ["hello from npm", "warning: x"]
    loud, _, diag_loud = make(tmp_path / "v", verbose=True)
    loud.stdout_line("[1, 2]")
    loud.stdout_line('{"no": "type"}')
    assert diag_loud == ["[1, 2]", '{"no": "type"}']


def test_store_failure_is_reported_once_and_remembered(tmp_path: Path) -> None:
    blocker = tmp_path / "jobs"
    blocker.write_text("not a directory")
    emitted: list[ev.EventBase] = []
    diag: list[str] = []
    pump = EventPump(
        job_id="job1", expert_key="coord", emit=emitted.append, store=JobStore(blocker), diag=diag.append
    )
    for event in standard_events("job1", "run1"):
        pump.stdout_line(ev.event_to_json(event))
    assert len(emitted) == 3  # the stream still flows
    assert pump.store_errors and len([d for d in diag if "cannot store" in d]) == 1
