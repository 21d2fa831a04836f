"""The container -> host event wire (`sandbox._wire`) and the pump's refusals (issue #12, item 5).

Each refusal is paired with its control: the same event, signed with the run's key and in sequence, is
accepted. Through the executor (FakeBackend), a forger in the container writes a `proxyAccess` event and
unsigned/forged/replayed runtime events to the container's stdout; only the runtime's signed lines reach
the user's stdout and the job store, every drop is reported on stderr and counted.
"""

from __future__ import annotations

import io
import json

import pytest

from sandbox import events as ev
from sandbox._wire import PREFIX, WireReader, WireWriter, new_key, sign_line
from sandbox.docker import FakeProcess
from sandbox.docker._pump import HOST_EVENT_TYPES, EventPump

from .conftest import Env, expert_program, standard_events

JOB, RUN = "jobw", "runw"


def _pump(key: str | None) -> tuple[EventPump, list[ev.EventBase], list[str]]:
    emitted: list[ev.EventBase] = []
    diag: list[str] = []
    pump = EventPump(
        job_id=JOB,
        expert_key="coord",
        emit=emitted.append,
        store=None,
        diag=diag.append,
        wire=WireReader(key) if key else None,
    )
    return pump, emitted, diag


def _proxy_access() -> str:
    return ev.event_to_json(
        ev.ProxyAccess(job_id=JOB, run_id=RUN, action="allowed", domain="evil.example", port=443)
    )


def _init() -> str:
    return ev.event_to_json(standard_events(JOB, RUN)[0])


def test_writer_lines_verify_in_order_and_carry_the_exact_json() -> None:
    key, out = new_key(), io.StringIO()
    writer = WireWriter(out, key)
    for event in standard_events(JOB, RUN):
        writer(event)
    reader = WireReader(key)
    lines = out.getvalue().splitlines()
    assert all(line.startswith(PREFIX + " ") for line in lines)
    bodies = [reader.check(line) for line in lines]
    assert [v.problem for v in bodies] == [None, None, None] and [v.lost for v in bodies] == [0, 0, 0]
    assert [json.loads(v.body or "")["type"] for v in bodies] == [
        "initializeRuntime",
        "startRun",
        "completeRun",
    ]


def test_a_line_signed_with_another_key_or_edited_is_refused() -> None:
    key = new_key()
    body = _init()
    good = sign_line(key, 0, body)
    assert WireReader(key).check(good).body == body  # control
    assert WireReader(key).check(sign_line(new_key(), 0, body)).problem == "bad-mac"
    assert WireReader(key).check(good.replace('"runw"', '"runx"')).problem == "bad-mac"
    assert WireReader(key).check(good.replace(f"{PREFIX} 0 ", f"{PREFIX} 1 ", 1)).problem == "bad-mac"
    assert WireReader(key).check(body).problem == "unsigned"
    assert WireReader(key).check(f"{PREFIX} x y {body}").problem == "bad-mac"


def test_replays_are_refused_and_gaps_are_counted() -> None:
    key = new_key()
    reader = WireReader(key)
    assert reader.check(sign_line(key, 0, "{}")).problem is None
    assert reader.check(sign_line(key, 0, "{}")).problem == "out-of-sequence"  # the same line again
    gap = reader.check(sign_line(key, 3, "{}"))
    assert gap.problem is None and gap.lost == 2
    assert reader.check(sign_line(key, 2, "{}")).problem == "out-of-sequence"  # older than the last


def test_a_short_or_non_hex_key_is_refused() -> None:
    with pytest.raises(ValueError):
        WireWriter(io.StringIO(), "abcd")
    with pytest.raises(ValueError):
        WireReader("zz" * 32)


def test_pump_drops_unsigned_and_forged_lines_and_accepts_signed_ones() -> None:
    key = new_key()
    pump, emitted, diag = _pump(key)
    pump.stdout_line(_init())  # unsigned runtime event
    pump.stdout_line(sign_line(new_key(), 0, _init()))  # signed with a guessed key
    assert emitted == [] and pump.counts.unsigned == 1 and pump.counts.bad_mac == 1
    assert any("does not carry the run key's MAC" in d for d in diag)
    assert any("not valid for this run's key" in d for d in diag)
    pump.stdout_line(sign_line(key, 0, _init()))  # control: the runtime's own line
    assert [e.type for e in emitted] == ["initializeRuntime"] and pump.counts.events == 1
    pump.stdout_line(sign_line(key, 0, _init()))  # replayed
    assert pump.counts.out_of_sequence == 1 and len(emitted) == 1


@pytest.mark.parametrize("kind", sorted(HOST_EVENT_TYPES))
def test_pump_drops_infrastructure_events_even_when_signed(kind: str) -> None:
    event = {
        "proxyAccess": ev.ProxyAccess(job_id=JOB, run_id=RUN, action="allowed", domain="x", port=443),
        "dockerBuildProgress": ev.DockerBuildProgress(
            job_id=JOB, run_id=RUN, stage="complete", service="expert", message="m"
        ),
        "dockerContainerStatus": ev.DockerContainerStatus(
            job_id=JOB, run_id=RUN, status="running", service="proxy"
        ),
    }[kind]
    key = new_key()
    pump, emitted, diag = _pump(key)
    pump.stdout_line(sign_line(key, 0, ev.event_to_json(event)))
    pump.stdout_line(ev.event_to_json(event))
    assert emitted == [] and pump.counts.infrastructure == 1 and pump.counts.unsigned == 1
    assert any("infrastructure events come only from the host" in d for d in diag)
    # Control: without a wire (the legacy path) a runtime event is still accepted, the host's one is not.
    bare, bare_emitted, _ = _pump(None)
    bare.stdout_line(ev.event_to_json(event))
    bare.stdout_line(_init())
    assert [e.type for e in bare_emitted] == ["initializeRuntime"] and bare.counts.infrastructure == 1


def test_pump_reports_a_few_then_counts() -> None:
    pump, _, diag = _pump(new_key())
    for _ in range(50):
        pump.stdout_line(_proxy_access())
    assert pump.counts.unsigned == 50 and len(diag) == 5 and "counted, not shown" in diag[-1]


def test_plain_text_is_not_an_event_and_not_a_drop() -> None:
    pump, emitted, diag = _pump(new_key())
    pump.stdout_line("npm notice hello")
    assert pump.counts.other == 1 and pump.counts.unsigned == 0 and emitted == [] and diag == []


def test_a_gap_fails_the_run_even_with_a_completing_terminal_event() -> None:
    key = new_key()
    pump, emitted, diag = _pump(key)
    init, start, done = (ev.event_to_json(e) for e in standard_events(JOB, RUN))
    pump.stdout_line(sign_line(key, 0, init))
    pump.stdout_line(sign_line(key, 2, done))  # startRun (1) never arrived
    assert [e.type for e in emitted] == ["initializeRuntime", "completeRun"]
    assert pump.counts.lost == 1 and pump.exit_code() == 1 and any("missing" in d for d in diag)
    control, _, _ = _pump(key)
    for seq, body in enumerate((init, start, done)):
        control.stdout_line(sign_line(key, seq, body))
    assert control.exit_code() == 0


def test_forged_lines_from_inside_the_container_never_reach_stdout_or_the_store(world: Env) -> None:
    """The attack of issue #12 item 5, end to end through the executor: a process in the container writes
    to the container's stdout (as one that opened /proc/1/fd/1 would)."""
    world.warm()
    key_seen: list[str] = []

    def forger(proc: FakeProcess, job: str, run_id: str) -> None:
        key_seen.append(proc.event_key())
        spec = proc.spec  # the key travelled on stdin only: not in argv, env or labels
        key_seen.append(json.dumps([spec.command, dict(spec.environment), dict(spec.labels)]))
        access = ev.ProxyAccess(
            job_id=job, run_id=run_id, action="allowed", domain="forged.example", port=443
        )
        proc.stdout(ev.event_to_json(access) + "\n")  # infrastructure, unsigned
        proc.stdout(sign_line(new_key(), 0, ev.event_to_json(access)) + "\n")  # guessed key
        fake_done = standard_events(job, run_id)[-1]
        proc.stdout(ev.event_to_json(fake_done) + "\n")  # a runtime event, unsigned
        proc.event(access)  # even signed: the runtime never speaks for the proxy

    world.backend.programs["expert"] = expert_program(before=forger)
    from .test_run import run

    assert run(world) == 0
    types = [e.type for e in world.emitted]
    assert types == ["initializeRuntime", "startRun", "completeRun"]  # only the runtime's own, signed lines
    assert not any(getattr(e, "domain", None) == "forged.example" for e in world.emitted)
    text = world.err_text()
    assert "'proxyAccess' line" in text and "'completeRun' line" in text
    assert "forged.example" not in "".join(p.read_text() for p in world.jobs.rglob("*") if p.is_file())
    assert len(key_seen[0]) == 64 and key_seen[0] not in key_seen[1]


def test_a_run_sends_a_fresh_event_key_each_time(world: Env) -> None:
    world.warm()
    keys: list[str] = []

    def grab(proc: FakeProcess, job: str, run_id: str) -> None:
        keys.append(proc.event_key())

    world.backend.programs["expert"] = expert_program(before=grab)
    from .test_run import run

    assert run(world) == 0 and run(world) == 0
    assert len(keys) == 2 and keys[0] != keys[1]
