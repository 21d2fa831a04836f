"""`run_in_docker` on `FakeBackend`: phases, stdin payload, job store, exit codes, teardown on every path."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox import events as ev
from sandbox._errors import BuildError, DockerError, RunError, UserError
from sandbox.docker import ContainerSpec, FakeProcess, run_in_docker
from sandbox.jobs import REDACTED, JobStore

from .conftest import (
    SECRET,
    Env,
    Seen,
    checkpoint,
    expert_program,
    job_of,
    read_payload,
    standard_events,
    step,
    wait_for,
)


def run(world: Env, **kw: object) -> int:
    options = world.options(**{k: v for k, v in kw.items() if k != "settings"})  # type: ignore[arg-type]
    settings = kw.get("settings") or world.settings()
    return run_in_docker(options, world.plan, world.emitted.append, backend=world.backend, settings=settings)  # type: ignore[arg-type]


def assert_clean(world: Env) -> None:
    assert world.leftovers() == {"containers": [], "networks": [], "temp": []}


def test_happy_path_streams_stores_and_tears_down(world: Env) -> None:
    seen = Seen()
    world.backend.programs["expert"] = expert_program(seen, crlf=True)
    assert run(world) == 0
    types = [e.type for e in world.emitted]
    assert types == ["initializeRuntime", "startRun", "completeRun"]
    assert_clean(world)
    # Secrets arrive on stdin only: exactly the plan's names with values, nothing else from the host.
    # The per-run event key (sandbox._wire) rides in the same payload, and nowhere else.
    key = seen.payload.pop("eventKey")
    assert isinstance(key, str) and len(key) == 64 and key not in json.dumps([seen.argv, seen.env])
    run_request = seen.payload.pop("run")
    assert seen.payload == {"env": {"ANTHROPIC_API_KEY": SECRET}}
    assert run_request["checkpoint"] is None
    assert SECRET not in " ".join(seen.argv)
    assert SECRET not in json.dumps(seen.env) and SECRET not in json.dumps(run_request)
    # The run travels as the typed request the host resolved, not as argv (a start-up hint only).
    assert (run_request["expert_key"], run_request["query"]) == ("coord", "hello")
    assert seen.argv == ("--provider", "anthropic")
    # The job landed on the host in Perstack's layout.
    job_id = world.emitted[0].job_id  # type: ignore[attr-defined]
    store = JobStore(world.jobs)
    job = store.retrieve_job(job_id)
    assert job is not None and job.status == "completed" and job.coordinator_expert_key == "coord"
    assert [c.status for c in store.list_checkpoints(job_id)] == ["completed"]
    runs = store.list_runs(job_id)
    assert len(runs) == 1 and runs[0].env["ANTHROPIC_API_KEY"] == REDACTED
    for path in world.jobs.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text()


def test_order_of_engine_calls(world: Env) -> None:
    world.backend.programs["expert"] = expert_program()
    assert run(world) == 0
    calls = world.backend.call_names()
    # Both builds happen (cold), networks before containers, attach before start, teardown at the end.
    first_network = min(i for i, c in enumerate(calls) if c.startswith("create_network"))
    assert calls.index("build:proxy") < first_network and calls.index("build:expert") < first_network
    first_create = min(i for i, c in enumerate(calls) if c.startswith("create_container"))
    assert all(i < first_create for i, c in enumerate(calls) if c.startswith("create_network"))
    assert calls.index("attach:expert") < calls.index("start_container:expert")
    assert calls.index("attach:proxy") < calls.index("start_container:proxy")
    assert calls.index("close_stdin:expert") > calls.index("send:expert")
    last_remove = max(i for i, c in enumerate(calls) if c.startswith("remove_container"))
    assert all(i > last_remove for i, c in enumerate(calls) if c.startswith("remove_network"))


def test_warm_run_has_no_build_step(world: Env) -> None:
    world.warm()
    world.backend.programs["expert"] = expert_program()
    assert run(world) == 0
    assert world.backend.builds == []
    assert not [c for c in world.backend.calls if c[0] == "read_file_from_image"]


def test_cold_run_builds_both_images_with_labels(world: Env) -> None:
    world.backend.programs["expert"] = expert_program()
    assert run(world) == 0
    built = {b.service: b for b in world.backend.builds}
    assert set(built) == {"proxy", "expert"}
    assert built["proxy"].buildargs == {"BASE_IMAGE": "sandbox-base:bookworm"}
    for request in built.values():
        assert request.labels["sandbox.tool"] == "perstack-sandbox"


def test_missing_env_is_one_error_before_any_engine_call(world: Env) -> None:
    cfg_env = {k: v for k, v in world.env.items() if k != "ANTHROPIC_API_KEY"}
    world.env.clear()
    world.env.update(cfg_env)
    with pytest.raises(UserError, match="missing required environment variables: ANTHROPIC_API_KEY"):
        run(world)
    assert world.backend.calls == []


def test_missing_env_lists_all_names(world: Env) -> None:
    from .conftest import config, plan_for

    cfg = config(
        world.cfg
        and """
[provider]
providerName = "anthropic"
[experts."coord"]
instruction = "x"
[experts."coord".skills."s"]
type = "mcpStdioSkill"
command = "uvx"
packageName = "some-tool"
requiredEnv = ["TOOL_TOKEN", "OTHER_TOKEN"]
"""
    )
    world.cfg = cfg
    world.env.pop("ANTHROPIC_API_KEY")
    world.plan = plan_for(cfg, world.env)
    with pytest.raises(UserError) as info:
        run(world)
    for name in ("TOOL_TOKEN", "OTHER_TOKEN", "ANTHROPIC_API_KEY"):
        assert name in str(info.value)
    assert world.backend.calls == []


@pytest.mark.parametrize(
    ("terminal", "code"),
    [
        ("completeRun", 0),
        ("stopRunByInteractiveTool", 0),
        ("stopRunByError", 1),
        ("stopRunByExceededMaxSteps", 1),
    ],
)
def test_exit_code_follows_the_terminal_event(world: Env, terminal: str, code: int) -> None:
    world.warm()
    world.backend.programs["expert"] = expert_program(terminal=terminal)
    assert run(world) == code
    assert_clean(world)


def test_no_terminal_event_is_a_failure_with_the_last_lines(world: Env) -> None:
    world.warm()

    def crash(proc: FakeProcess) -> int:
        proc.read_stdin()
        proc.stdout("not json at all\n")
        proc.stderr("Traceback: something broke\n")
        return 3

    world.backend.programs["expert"] = crash
    assert run(world) == 1
    text = world.err_text()
    assert "without a terminal event" in text and "code 3" in text and "something broke" in text
    assert world.emitted == []  # non-JSON output never reaches stdout
    assert_clean(world)


def test_non_json_output_goes_to_stderr_only_with_verbose(world: Env) -> None:
    world.warm()

    def noisy(proc: FakeProcess) -> int:
        proc.stdout("npm notice hello\n")
        return expert_program()(proc)

    world.backend.programs["expert"] = noisy
    assert run(world, verbose=True) == 0
    assert "npm notice hello" in world.err_text()
    assert all(e.type != "npm" for e in world.emitted)


def test_events_for_another_job_are_dropped(world: Env) -> None:
    world.warm()

    def forger(proc: FakeProcess, job: str, run_id: str) -> None:
        fake = ev.CompleteRun(
            expert_key="coord",
            job_id="victimjob",
            run_id=run_id,
            step_number=1,
            checkpoint=ev.Checkpoint(
                id="evil",
                job_id="victimjob",
                run_id=run_id,
                status="completed",
                step_number=1,
                messages=[],
                expert=ev.ExpertRef(key="coord", name="c", version="1"),
            ),
            step=ev.Step(step_number=1, started_at=1),
            text="x",
            usage=ev.Usage(),
        )
        proc.event(fake)

    world.backend.programs["expert"] = expert_program(before=forger)
    assert run(world) == 0
    assert not (world.jobs / "victimjob").exists()
    assert "victimjob" in world.err_text()


def test_invalid_event_is_dropped_not_stored(world: Env) -> None:
    world.warm()

    def bad(proc: FakeProcess, job: str, run_id: str) -> None:
        proc.event(json.dumps({"type": "completeRun", "jobId": job, "runId": run_id}))

    world.backend.programs["expert"] = expert_program(before=bad)
    assert run(world) == 0
    assert [e.type for e in world.emitted].count("completeRun") == 1
    assert "dropped an invalid 'completeRun' event" in world.err_text()


def test_continue_sends_the_host_checkpoint_and_keeps_the_job(world: Env) -> None:
    world.warm()
    world.backend.programs["expert"] = expert_program(terminal="stopRunByInteractiveTool")
    assert run(world) == 0
    first_job = world.emitted[0].job_id  # type: ignore[attr-defined]
    last_cp = JobStore(world.jobs).list_checkpoints(first_job)[-1]

    seen = Seen()
    world.emitted.clear()
    world.backend.programs["expert"] = expert_program(seen)
    assert run(world, query=None, continue_latest=True, interactive_result="yes") == 0
    assert seen.payload["run"]["checkpoint"]["id"] == last_cp.id
    assert seen.payload["run"]["job_id"] == first_job
    assert seen.payload["run"]["interactive_result"] == "yes"
    assert {e.job_id for e in world.emitted} == {first_job}  # type: ignore[attr-defined]
    store = JobStore(world.jobs)
    assert len(store.list_runs(first_job)) == 2
    assert store.retrieve_job(first_job).status == "completed"  # type: ignore[union-attr]


def test_continue_job_and_resume_from(world: Env) -> None:
    world.warm()
    world.backend.programs["expert"] = expert_program()
    assert run(world) == 0
    job = world.emitted[0].job_id  # type: ignore[attr-defined]
    cp = JobStore(world.jobs).list_checkpoints(job)[-1]
    seen = Seen()
    world.backend.programs["expert"] = expert_program(seen)
    assert run(world, query="again", continue_job=job, resume_from=cp.id) == 0
    assert seen.payload["run"]["checkpoint"]["id"] == cp.id


def test_continue_without_jobs_fails_before_docker(world: Env) -> None:
    with pytest.raises(UserError, match="No runs found"):
        run(world, continue_latest=True)
    assert world.backend.calls == []


def test_interactive_checkpoint_needs_an_answer(world: Env) -> None:
    world.warm()
    world.backend.programs["expert"] = expert_program(terminal="stopRunByInteractiveTool")
    assert run(world) == 0
    calls = len(world.backend.calls)
    with pytest.raises(UserError, match="-i"):
        run(world, query=None, continue_latest=True)
    assert len(world.backend.calls) == calls


def test_subnet_overlap_is_retried_with_another(world: Env) -> None:
    world.warm()
    world.backend.programs["expert"] = expert_program()
    original = world.backend.create_network
    attempts: list[str] = []

    def flaky(spec):  # type: ignore[no-untyped-def]
        if spec.subnet and not attempts:
            attempts.append(spec.subnet)
            world.backend.taken_subnets.append(spec.subnet)  # "another run took it first"
        return original(spec)

    world.backend.create_network = flaky  # type: ignore[method-assign]
    assert run(world) == 0
    internal = [c for c in world.backend.calls if c[0] == "create_network" and c[1].endswith("_internal")]
    assert len(internal) == 2
    assert_clean(world)


def test_proxy_failing_to_start_is_a_clear_error_and_cleans_up(world: Env) -> None:
    world.warm()
    world.backend.programs["expert"] = expert_program()
    world.backend.fail["start:proxy"] = RunError("starting container failed: port is bad")
    with pytest.raises(RunError, match="the proxy failed to start"):
        run(world)
    assert_clean(world)


def test_proxy_dying_mid_run_stops_the_expert(world: Env) -> None:
    world.warm()
    release = threading.Event()

    def dying_proxy(proc: FakeProcess) -> int:
        proc.stdout("sandbox-proxy/1 event=ready\n")
        release.wait(5)
        proc.stderr("FATAL: squid crashed\n")
        return 1

    def hanging_expert(proc: FakeProcess) -> int:
        proc.read_stdin()
        release.set()
        sig = proc.wait_signal(10)
        return 137 if sig == "SIGKILL" else 0

    world.backend.programs["proxy"] = dying_proxy
    world.backend.programs["expert"] = hanging_expert
    assert run(world) == 1
    text = world.err_text()
    assert "the proxy exited during the run" in text and "squid crashed" in text
    assert_clean(world)


def test_proxy_that_never_becomes_ready_is_a_start_error(world: Env) -> None:
    world.warm()

    def broken_proxy(proc: FakeProcess) -> int:
        proc.stderr("sandbox-proxy: FATAL: no configuration at /etc/squid/sandbox/squid.conf\n")
        return 78

    def waiting_expert(proc: FakeProcess) -> int:
        proc.read_stdin()
        sig = proc.wait_signal(10)
        return 137 if sig == "SIGKILL" else 69

    world.backend.programs["proxy"] = broken_proxy
    world.backend.programs["expert"] = waiting_expert
    with pytest.raises(RunError) as info:
        run(world)
    assert "the proxy failed to start (exit code 78)" in str(info.value) and "FATAL" in str(info.value)
    assert_clean(world)


def test_build_failure_names_the_step_and_tears_down(world: Env) -> None:
    def fail_expert(request):  # type: ignore[no-untyped-def]
        if request.service == "proxy":
            return [{"stream": "Step 1/1 : FROM x\n"}, {"stream": f"Successfully tagged {request.tag}\n"}]
        return [
            {"stream": "Step 7/9 : RUN npm install -g left-pad\n"},
            {"stream": "npm ERR! 404 nope\n"},
            {
                "error": "The command '/bin/sh -c npm install' returned a non-zero code: 1",
                "errorDetail": {"message": "returned a non-zero code: 1"},
            },
        ]

    world.backend.build_messages = fail_expert
    with pytest.raises(BuildError) as info:
        run(world)
    text = str(info.value)
    assert "step 7/9" in text and "RUN npm install -g left-pad" in text and "npm ERR! 404 nope" in text
    assert info.value.step == "RUN npm install -g left-pad"
    assert_clean(world)


def test_missing_base_image_says_how_to_fix(world: Env) -> None:
    world.backend.images.clear()
    with pytest.raises(DockerError) as info:
        run(world)
    assert "sandbox-base:bookworm" in str(info.value) and "scripts/base-image.sh" in str(info.value)
    assert world.backend.builds == []
    assert_clean(world)


def test_engine_unreachable_is_a_docker_error_and_leaves_nothing(world: Env) -> None:
    world.backend.reachable = False
    with pytest.raises(DockerError, match="unreachable"):
        run(world)
    assert_clean(world)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_the_expert_gracefully(world: Env, signum: int, code: int) -> None:
    """A real signal to this process (pytest runs tests in the main thread, so the handlers install)."""
    world.warm()

    def interrupted(proc: FakeProcess, job: str, run_id: str) -> int:
        os.kill(os.getpid(), signum)
        sig = proc.wait_signal(10)
        assert sig == "SIGTERM"  # asked to stop first, so it can write its last checkpoint
        err = ev.CheckpointError(name="Interrupted", message="Interrupted by SIGTERM")
        cp = ev.Checkpoint(
            id="last-cp",
            job_id=job,
            run_id=run_id,
            status="stoppedByError",
            step_number=1,
            messages=[],
            expert=ev.ExpertRef(key="coord", name="coord", version="1.0.0"),
            error=err,
        )
        stop = ev.StopRunByError(
            expert_key="coord",
            job_id=job,
            run_id=run_id,
            step_number=1,
            checkpoint=cp,
            step=ev.Step(step_number=1, started_at=1),
            error=err,
        )
        proc.event(stop)
        return 143

    def program(proc: FakeProcess) -> int:
        job = job_of(read_payload(proc))
        run_id = ev.create_id()
        init = ev.InitializeRuntime(
            job_id=job,
            run_id=run_id,
            runtime_version="0",
            expert_name="coord",
            experts=["coord"],
            model="m",
            max_retries=1,
            timeout=1,
        )
        proc.event(init)
        return interrupted(proc, job, run_id)

    world.backend.programs["expert"] = program
    previous = signal.getsignal(signum)
    assert run(world, settings=world.settings(install_signal_handlers=True)) == code
    assert signal.getsignal(signum) == previous  # handlers restored
    job = world.emitted[0].job_id  # type: ignore[attr-defined]
    assert JobStore(world.jobs).retrieve_checkpoint(job, "last-cp") is not None  # --continue can resume
    kills = [c for c in world.backend.calls if c[0] == "kill_container"]
    assert kills and kills[0][2] == "SIGTERM"
    assert_clean(world)


def test_signal_during_build_stops_and_cleans_up(world: Env) -> None:
    def slow_build(request: Any) -> Iterator[dict[str, str]]:
        yield {"stream": "Step 1/2 : FROM base\n"}
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(200):
            time.sleep(0.01)
            yield {"stream": "still working\n"}
        yield {"stream": f"Successfully tagged {request.tag}\n"}

    world.backend.build_messages = lambda r: list(slow_build(r))  # evaluated lazily below
    original = world.backend.build

    def build(request):  # type: ignore[no-untyped-def]
        world.backend.builds.append(request)
        yield from slow_build(request)

    world.backend.build = build  # type: ignore[method-assign]
    assert original is not None
    assert run(world, settings=world.settings(install_signal_handlers=True)) == 130
    assert not [c for c in world.backend.calls if c[0] == "create_container"]
    assert_clean(world)


def test_wall_clock_guard_kills_a_container_that_outlives_its_run(world: Env) -> None:
    world.warm()

    def stuck(proc: FakeProcess) -> int:
        proc.read_stdin()
        while True:
            sig = proc.wait_signal(10)
            if sig == "SIGKILL" or sig is None:
                return 137

    world.backend.programs["expert"] = stuck
    assert run(world, settings=world.settings(wall_clock_s=0.3, stop_grace_s=0.2)) == 1
    assert "wall-clock guard" in world.err_text()
    signals = [c[2] for c in world.backend.calls if c[0] == "kill_container" and c[1] == "expert"]
    assert signals[:2] == ["SIGTERM", "SIGKILL"]
    assert_clean(world)


def test_a_skill_that_never_exits_after_complete_is_killed(world: Env) -> None:
    world.warm()

    def linger(proc: FakeProcess, job: str, run_id: str) -> int:
        sig = proc.wait_signal(10)
        return 137 if sig == "SIGKILL" else 0

    world.backend.programs["expert"] = expert_program(after=linger)
    assert run(world, settings=world.settings(exit_grace_s=0.2)) == 0
    assert_clean(world)


def test_expert_runs_as_the_requested_user_with_the_compose_hardening(world: Env) -> None:
    world.warm()
    world.backend.programs["expert"] = expert_program()
    specs: dict[str, object] = {}
    original = world.backend.create_container

    def capture(spec):  # type: ignore[no-untyped-def]
        specs[spec.service] = spec
        return original(spec)

    world.backend.create_container = capture  # type: ignore[method-assign]
    assert run(world, settings=world.settings(uid=4321, gid=8765)) == 0
    expert = specs["expert"]
    assert expert.user == "4321:8765"  # type: ignore[attr-defined]
    assert expert.cap_drop == ("ALL",) and expert.read_only  # type: ignore[attr-defined]
    assert "no-new-privileges:true" in expert.security_opt  # type: ignore[attr-defined]
    assert [m.target for m in expert.mounts] == ["/workspace", "/sandbox/expert"]  # type: ignore[attr-defined]
    assert expert.mounts[0].source == str(world.workspace)  # type: ignore[attr-defined]
    assert [a.network.endswith("_internal") for a in expert.networks] == [True]  # type: ignore[attr-defined]
    proxy = specs["proxy"]
    assert proxy.cap_drop == ("ALL",) and proxy.read_only  # type: ignore[attr-defined]
    assert len(proxy.networks) == 2  # type: ignore[attr-defined]


def test_sandbox_user_env_override(world: Env) -> None:
    world.warm()
    seen = Seen()
    world.backend.programs["expert"] = expert_program(seen)
    world.env["SANDBOX_USER"] = "1234:5678"
    specs: list[object] = []
    original = world.backend.create_container

    def create_container(spec: ContainerSpec) -> str:
        specs.append(spec)
        return original(spec)

    world.backend.create_container = create_container  # type: ignore[method-assign]
    assert run(world) == 0
    assert [s.user for s in specs if s.service == "expert"] == ["1234:5678"]  # type: ignore[attr-defined]


def test_verbose_adds_docker_status_and_build_events(world: Env) -> None:
    world.backend.programs["expert"] = expert_program()
    assert run(world, verbose=True) == 0
    types = [e.type for e in world.emitted]
    assert "dockerBuildProgress" in types and "dockerContainerStatus" in types
    stages = {e.stage for e in world.emitted if isinstance(e, ev.DockerBuildProgress)}
    assert {"building", "complete"} <= stages


def test_quiet_run_has_only_runtime_events(world: Env) -> None:
    world.warm()
    world.backend.programs["expert"] = expert_program()
    assert run(world) == 0
    assert not [e for e in world.emitted if e.type.startswith("docker")]


def test_proxy_decisions_become_events_and_an_audit_file(world: Env) -> None:
    world.warm()
    done = threading.Event()

    def proxy(proc: FakeProcess) -> int:
        proc.stdout("sandbox-proxy/1 event=ready\n")
        done.wait(5)
        proc.stdout(
            "sandbox-proxy/1 ts=1.0 client=10.0.0.3 local_port=3128 action=TCP_TUNNEL status=200 "
            "method=CONNECT host=llm.test port=443 upstream=1.2.3.4 hier=HIER_DIRECT reason=- sni=llm.test "
            "bump=splice\n"
        )
        proc.stdout(
            "sandbox-proxy/1 ts=1.1 client=10.0.0.3 local_port=3128 action=TCP_DENIED status=403 "
            "method=CONNECT host=evil.example port=443 upstream=- hier=HIER_NONE reason=not_allowlisted "
            "sni=- bump=-\n"
        )
        proc.wait_signal()
        return 0

    def finish(proc: FakeProcess, job: str, run_id: str) -> None:
        done.set()
        wait_for(lambda: sum(1 for e in world.emitted if e.type == "proxyAccess") == 2)

    world.backend.programs["proxy"] = proxy
    world.backend.programs["expert"] = expert_program(before=finish)
    assert run(world) == 0
    access = [e for e in world.emitted if isinstance(e, ev.ProxyAccess)]
    assert {(a.action, a.domain, a.port) for a in access} == {
        ("allowed", "llm.test", 443),
        ("blocked", "evil.example", 443),
    }
    audit = list(world.jobs.rglob("proxy-access.jsonl"))
    assert len(audit) == 1
    lines = [json.loads(line) for line in audit[0].read_text().splitlines()]
    assert {line["domain"] for line in lines} == {"llm.test", "evil.example"}
    init = next(e for e in world.emitted if isinstance(e, ev.InitializeRuntime))
    assert audit[0].parent.name == init.run_id  # the coordinator run's directory, next to its events


def test_gc_at_start_removes_a_dead_runs_leftovers(world: Env) -> None:
    from sandbox.docker import ContainerSpec, NetworkSpec

    world.warm()
    dead = {
        "sandbox.tool": "perstack-sandbox",
        "sandbox.host": __import__("socket").gethostname(),
        "sandbox.owner": "999999:1",
        "sandbox.run": "old",
    }
    world.backend.create_network(NetworkSpec(name="old_internal", labels=dead))
    world.backend.images.add("img")
    world.backend.create_container(ContainerSpec(name="old-proxy-1", service="old", image="img", labels=dead))
    old_dir = world.temp_root / "sandbox-run-old-x"
    old_dir.mkdir()
    (old_dir / ".sandbox-owner.json").write_text(json.dumps(dead))
    world.backend.programs["expert"] = expert_program()
    assert run(world) == 0
    wait_for(lambda: not old_dir.exists())
    assert_clean(world)


def test_temp_dir_is_private_and_holds_the_rendered_context(world: Env) -> None:
    world.warm()
    seen_dir: dict[str, Path] = {}

    def look(proc: FakeProcess, job: str, run_id: str) -> None:
        run_dir = next(world.temp_root.iterdir())
        seen_dir["mode"] = run_dir.stat().st_mode & 0o777  # type: ignore[assignment]
        seen_dir["files"] = sorted(
            p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()
        )  # type: ignore[assignment]
        for path in run_dir.rglob("*"):
            if path.is_file():
                assert SECRET.encode() not in path.read_bytes()

    world.backend.programs["expert"] = expert_program(before=look)
    assert run(world) == 0
    assert seen_dir["mode"] == 0o700  # type: ignore[comparison-overlap]
    assert "compose.yaml" in seen_dir["files"] and "proxy/config/squid.conf" in seen_dir["files"]  # type: ignore[operator]
    assert_clean(world)


def test_teardown_does_not_wait_for_the_engine_to_finish_a_decided_expert(world: Env) -> None:
    """After a terminal event the engine's exit handling of the Expert container overlaps the teardown
    (the proxy goes meanwhile); only the Expert's own removal waits for it."""
    world.backend.programs["expert"] = expert_program()
    backend = world.backend
    released = threading.Event()
    order: list[str] = []
    real_wait, real_remove = backend.wait_container, backend.remove_container

    def service_of(ref: str) -> str:
        container = backend._find(ref)
        return container.spec.service if container else ref

    def slow_wait(ref: str, timeout: float | None = None) -> int:
        code = real_wait(ref, timeout)
        if service_of(ref) == "expert":
            released.wait(10)
            order.append("expert exit handled")
        return code

    def remove(ref: str) -> None:
        service = service_of(ref)
        order.append(f"remove {service}")
        if service == "proxy":
            released.set()  # only teardown reaching the proxy ends the Expert's exit handling
        real_remove(ref)

    backend.wait_container = slow_wait  # type: ignore[method-assign]
    backend.remove_container = remove  # type: ignore[method-assign]
    assert run(world) == 0
    assert order.index("remove proxy") < order.index("expert exit handled") < order.index("remove expert")
    assert_clean(world)


def test_a_coordinator_that_delegates_is_not_stopped_at_its_delegation(world: Env) -> None:
    """`stopRunByDelegate` is not the end of the run: the delegates run in the same runtime and the
    coordinator goes on. The container must not get the terminal event's short exit grace there."""
    world.warm()
    grace = world.settings().exit_grace_s

    def program(proc: FakeProcess) -> int:
        job, run_id = job_of(read_payload(proc)), ev.create_id()
        init, start, done = standard_events(job, run_id)
        stop = ev.StopRunByDelegate(
            expert_key="coord",
            job_id=job,
            run_id=run_id,
            step_number=1,
            checkpoint=checkpoint(job, run_id, "stoppedByDelegate", 1),
            step=step(1),
        )
        for event in (init, start, stop):
            proc.event(event)
        if proc.killed.wait(grace * 4 + 0.5):  # the delegates working
            return 137
        proc.event(done)
        return 0

    world.backend.programs["expert"] = program
    assert run(world) == 0
    assert [e.type for e in world.emitted] == [
        "initializeRuntime",
        "startRun",
        "stopRunByDelegate",
        "completeRun",
    ]
    assert_clean(world)
