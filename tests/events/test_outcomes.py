"""Terminal events declare their outcome in `sandbox.events`; unions and type sets derive from one list.

Why a test of its own: the executor, the job store, the native runtime and `compare` read these declarations
instead of keeping tables, so this is where a new terminal event (or a changed exit code) is decided.
"""

from __future__ import annotations

from typing import get_args

from sandbox import events as ev
from sandbox.agent import exit_code_for
from sandbox.agent._loop import OutcomeKind
from sandbox.jobs import _LIFECYCLE_ORDER


def _types(union: object) -> set[str]:
    inner = get_args(union)[0]  # Annotated[X | Y, Field(...)] -> X | Y
    return {cls.model_fields["type"].default for cls in get_args(inner)}


def test_event_is_run_events_and_runtime_events_and_the_type_sets_match_the_unions() -> None:
    run, runtime = _types(ev.RunEvent), _types(ev.RuntimeEvent)
    assert _types(ev.Event) == run | runtime and not run & runtime
    assert run == ev.RUN_EVENT_TYPES and runtime == ev.RUNTIME_EVENT_TYPES
    assert ev.STREAMING_EVENT_TYPES < ev.RUN_EVENT_TYPES and ev.TERMINAL_EVENT_TYPES < ev.RUN_EVENT_TYPES


def test_the_job_store_orders_every_run_event() -> None:
    assert set(_LIFECYCLE_ORDER) == ev.RUN_EVENT_TYPES


def test_terminal_events_declare_their_outcome_and_a_delegation_is_not_one() -> None:
    assert ev.StopRunByDelegate.outcome is None and ev.outcome_of("stopRunByDelegate") is None
    assert ev.outcome_of("callTools") is None
    assert dict(ev.EXIT_CODE_BY_TERMINAL) == {
        "completeRun": 0,
        "stopRunByInteractiveTool": 0,
        "stopRunByExceededMaxSteps": 1,
        "stopRunByError": 1,
    }
    jobs = {name: o.job_status for name, o in ev.TERMINAL_OUTCOMES.items()}
    assert jobs == {
        "completeRun": "completed",
        "stopRunByInteractiveTool": "stoppedByInteractiveTool",
        "stopRunByExceededMaxSteps": "stoppedByMaxSteps",
        "stopRunByError": "stoppedByError",
    }
    for outcome in ev.TERMINAL_OUTCOMES.values():
        assert ev.outcome_of_checkpoint(outcome.checkpoint_status) is outcome
    assert ev.outcome_of_checkpoint("stoppedByDelegate") is None


def test_every_native_outcome_kind_but_interrupted_is_declared_by_an_event() -> None:
    kinds = {o.kind for o in ev.TERMINAL_OUTCOMES.values()}
    assert kinds == set(get_args(OutcomeKind)) - {"interrupted"}
    assert {k: exit_code_for(k) for k in kinds} == {
        "completed": 0,
        "interactive": 0,
        "max_steps": 1,
        "error": 1,
    }
    assert exit_code_for("interrupted") == 1
