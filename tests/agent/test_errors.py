"""Retries with backoff and `retry` events, per-generation timeouts, and errors ending in stopRunByError."""

from __future__ import annotations

import json

from sandbox.testing import ErrorSpec, Turn
from tests.agent.conftest import Harness

SIMPLE = '[experts."main"]\ninstruction = "x"\n'


def test_429_and_529_are_retried_with_retry_events(harness: Harness) -> None:
    harness.server.enqueue(
        Turn(error=ErrorSpec.rate_limit(retry_after=0)),
        Turn(error=ErrorSpec.overloaded()),
        Turn("finally"),
    )
    result = harness.run(harness.options(SIMPLE, max_retries=3))
    assert result.code == 0
    retries = result.of("retry")
    assert len(retries) == 2
    assert result.last("completeRun").text == "finally"
    assert result.types().index("retry") > result.types().index("startGeneration")


def test_overloaded_mid_stream_is_retried(harness: Harness) -> None:
    harness.server.enqueue(Turn("partial answer", error=ErrorSpec.overloaded(mid_stream=True)), Turn("whole"))
    result = harness.run(harness.options(SIMPLE))
    assert result.code == 0 and len(result.of("retry")) == 1


def test_retries_exhausted_stop_by_error(harness: Harness) -> None:
    harness.server.enqueue(*[Turn(error=ErrorSpec.server_error()) for _ in range(3)])
    result = harness.run(harness.options(SIMPLE, max_retries=2))
    assert result.code == 1
    assert len(result.of("retry")) == 2
    stop = result.last("stopRunByError")
    assert stop.error.status_code == 500 and stop.error.is_retryable
    assert stop.checkpoint.status == "stoppedByError"
    job = json.loads((harness.jobs_dir / stop.job_id / "job.json").read_text())
    assert job["status"] == "stoppedByError"


def test_non_retryable_provider_error_stops_at_once(harness: Harness) -> None:
    harness.server.enqueue(Turn(error=ErrorSpec(400, message="bad request body")))
    result = harness.run(harness.options(SIMPLE, max_retries=5))
    assert result.code == 1
    assert result.of("retry") == []
    stop = result.last("stopRunByError")
    assert stop.error.status_code == 400 and not stop.error.is_retryable
    assert stop.error.name == "APICallError"


def test_generation_timeout(harness: Harness) -> None:
    harness.server.enqueue(Turn("slow", delay_s=3), Turn("slow again", delay_s=3))
    result = harness.run(harness.options(SIMPLE, timeout_ms=300, max_retries=1))
    assert result.code == 1
    assert len(result.of("retry")) == 1
    stop = result.last("stopRunByError")
    assert stop.error.is_retryable


def test_timeout_then_success(harness: Harness) -> None:
    harness.server.enqueue(Turn("slow", delay_s=3), Turn("fast"))
    result = harness.run(harness.options(SIMPLE, timeout_ms=500, max_retries=1))
    assert result.code == 0 and result.last("completeRun").text == "fast"
