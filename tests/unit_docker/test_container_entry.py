"""The container side of the contract: the run on stdin (no secret in argv), the proxy wait, the deadline."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from sandbox.config import DEFAULT_MAX_STEPS
from sandbox.container_entry import read_payload, wait_for_proxy
from sandbox.docker import expert_command
from sandbox.request import WirePayload, resolve_run

from .conftest import SECRET, Env


def test_the_run_round_trips_through_the_stdin_payload(world: Env) -> None:
    """The run crosses into the container as the request the host resolved: every option, no secret."""
    options = world.options(
        query="what time is it?",
        provider="anthropic",
        model="claude-x",
        temperature=0.5,
        reasoning_budget="high",
        max_steps=7,
        max_retries=2,
        timeout_ms=9000,
        verbose=True,
        interactive_result='{"toolCallId": "t"}',
        job_id="job123",
    )
    request = resolve_run(options, None, deadline=1234.5)
    line = WirePayload(run=request, env={"ANTHROPIC_API_KEY": SECRET}, event_key="ab" * 32).to_line()
    parsed = read_payload(line.decode())
    assert isinstance(parsed, WirePayload)
    run = parsed.run
    assert (run.expert_key, run.query, run.job_id) == ("coord", "what time is it?", "job123")
    s = run.settings
    assert (s.provider, s.model, s.temperature) == ("anthropic", "claude-x", 0.5)
    assert (s.max_steps, s.max_retries, s.timeout_ms, run.deadline) == (7, 2, 9000, 1234.5)
    assert s.reasoning_budget == "high" and run.verbose and run.interactive_result == '{"toolCallId": "t"}'
    assert parsed.env == {"ANTHROPIC_API_KEY": SECRET} and parsed == WirePayload.model_validate_json(line)
    assert SECRET not in run.model_dump_json() and SECRET not in " ".join(expert_command("anthropic"))


def test_the_request_carries_every_default(world: Env) -> None:
    """Unset options arrive resolved (perstack.toml's, then the defaults table): the container has
    nothing left to decide, and a 0 given on purpose is kept."""
    run = resolve_run(world.options(query="q", max_retries=0), None)
    assert run.settings.max_retries == 0 and run.settings.model == "claude-sonnet-4-5"
    assert run.settings.max_steps == DEFAULT_MAX_STEPS and run.job_id and run.checkpoint is None


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("", "expects one JSON line on stdin"),
        ("not json", "expects one JSON line on stdin"),
        ('{"env": {}}', "run: Field required"),
        ('{"run": {"expert_key": "a"}, "eventKey": "k"}', "run.job_id: Field required"),
        (
            '{"run": {"expert_key": "a", "job_id": "j", "settings": {"provider": "x"}},'
            ' "eventKey": "k", "argv": [1]}',
            "argv: Extra inputs",
        ),
    ],
)
def test_a_bad_payload_is_one_clear_line(line: str, problem: str) -> None:
    reason = read_payload(line)
    assert isinstance(reason, str) and problem in reason and "\n" not in reason


def test_wait_for_proxy_returns_once_the_port_listens() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

    def listen_later() -> None:
        time.sleep(0.2)
        server.bind(("127.0.0.1", port))
        server.listen()

    threading.Thread(target=listen_later).start()
    started = time.monotonic()
    assert wait_for_proxy(f"http://127.0.0.1:{port}", timeout=5) is None
    assert 0.15 < time.monotonic() - started < 3
    server.close()


def test_wait_for_proxy_gives_up_with_a_message() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    message = wait_for_proxy(f"http://127.0.0.1:{port}", timeout=0.2)
    assert message is not None and f"127.0.0.1:{port}" in message and "did not accept" in message


def test_wait_for_proxy_without_a_proxy_is_a_no_op() -> None:
    assert wait_for_proxy(None) is None
