"""Standby pool bookkeeping (no engine): what a key covers, atomic claims, expiry, and the standby runtime's
own contract (ready line, idle exit, payload checks) run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import cast

import pytest

from sandbox._wire import WireReader, new_key
from sandbox.config import parse_config_text
from sandbox.docker._standby import READY_LINE, StandbyPool, StandbyRecord, standby_key, standby_labels
from sandbox.plan import PlanInputs, compute_plan
from sandbox.request import RunRequest
from sandbox.settings import ResolvedSettings

TOML = """
model = "claude-x"
[provider]
providerName = "anthropic"
[experts."a"]
instruction = "x"
"""


def key(tmp_path: Path, **inputs: object) -> str:
    cfg, _ = parse_config_text(TOML, "perstack.toml")
    fields: dict[str, object] = {"expert_key": "a", "runtime": "docker", "env": {}}
    fields.update({k: v for k, v in inputs.items() if k not in ("workspace", "uid", "ca")})
    plan = compute_plan(cfg, PlanInputs(**fields))  # type: ignore[arg-type]
    workspace = inputs.get("workspace", tmp_path)
    assert isinstance(workspace, Path)
    return standby_key(
        plan=plan,
        config=cfg,
        workspace=workspace,
        uid=int(str(inputs.get("uid", 1000))),
        gid=1000,
        hidden=(),
        ca=cast("bytes | None", inputs.get("ca")),
    )


def test_the_key_covers_what_shapes_the_sandbox_and_nothing_else(tmp_path: Path) -> None:
    base = key(tmp_path)
    assert key(tmp_path) == base
    assert key(tmp_path, model="claude-other") == base  # a run argument, not the sandbox
    assert key(tmp_path, env={"ANTHROPIC_API_KEY": "k"}) == base  # values arrive per run
    (tmp_path / "w2").mkdir()
    for changed in (
        key(tmp_path, workspace=tmp_path / "w2"),
        key(tmp_path, uid=1001),
        key(tmp_path, memory="1g"),
        key(tmp_path, allow_private=("gw.corp:8443",)),
        key(tmp_path, base_image="other:1"),
        key(tmp_path, ca=b"-----BEGIN CERTIFICATE-----\n"),
    ):
        assert changed != base


def test_the_key_follows_the_installed_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An edited installation makes new images, so it must never meet a standby of the old ones."""
    import sandbox.render as render

    base = key(tmp_path)
    monkeypatch.setattr(render, "installation_fingerprint", lambda: "an-edited-installation")
    assert key(tmp_path) != base


def test_the_shared_egress_network_is_made_once_and_found_after() -> None:
    from sandbox.docker import FakeBackend, NetworkExists, NetworkSpec, ensure_shared_network

    backend = FakeBackend()
    ensure_shared_network(backend, "shared-egress")
    ensure_shared_network(backend, "shared-egress")  # a second run: the name is taken, which is fine
    nets = [n for n in backend.networks.values() if n.name == "shared-egress"]
    assert len(nets) == 1 and nets[0].options == {"com.docker.network.bridge.enable_icc": "false"}
    with pytest.raises(NetworkExists):
        backend.create_network(NetworkSpec(name="shared-egress"))


def record(key: str, rid: str, *, expires: float, created: float = 0.0) -> StandbyRecord:
    return StandbyRecord(
        id=rid,
        key=key,
        expert="a",
        containers={"proxy": "p" + rid, "expert": "e" + rid},
        networks={"n" + rid: "net"},
        run_dir="/nonexistent",
        proxy_url=None,
        env_names=(),
        created=created,
        expires=expires,
        refill=("warm", "a"),
        refill_cwd="/",
    )


def test_records_round_trip_and_hold_no_values(tmp_path: Path) -> None:
    pool = StandbyPool(tmp_path)
    rec = record("k1", "r1", expires=time.time() + 600)
    pool.add(rec)
    assert pool.records("k1") == [rec]
    path = tmp_path / "k1" / "r1.json"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert set(json.loads(path.read_text())) == {
        "id",
        "key",
        "expert",
        "containers",
        "networks",
        "run_dir",
        "proxy_url",
        "env_names",
        "created",
        "expires",
        "refill",
        "refill_cwd",
    }


def test_one_standby_goes_to_exactly_one_claimer(tmp_path: Path) -> None:
    pool = StandbyPool(tmp_path)
    pool.add(record("k", "only", expires=time.time() + 600))
    got: list[StandbyRecord | None] = []
    barrier = threading.Barrier(8)

    def claimer() -> None:
        barrier.wait()
        got.append(StandbyPool(tmp_path).claim("k")[0])

    threads = [threading.Thread(target=claimer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.id for r in got if r is not None] == ["only"]
    assert pool.records("k") == [] and pool.claim("k") == (None, [])


def test_claim_skips_expired_ones_and_hands_them_over_for_removal(tmp_path: Path) -> None:
    pool = StandbyPool(tmp_path)
    now = 1_000_000.0
    pool.add(record("k", "old", expires=now + 3, created=1))  # within the 5 s margin: counts as expired
    pool.add(record("k", "live", expires=now + 600, created=2))
    pool.add(record("other", "x", expires=now + 600))
    live, expired = pool.claim("k", now=now)
    assert live is not None and live.id == "live"
    assert [r.id for r in expired] == ["old"]
    assert pool.records("k") == [] and [r.id for r in pool.records()] == ["x"]


def test_fill_lock_lets_one_filler_in(tmp_path: Path) -> None:
    pool = StandbyPool(tmp_path)
    with pool.filling("k") as first:
        assert first
        with StandbyPool(tmp_path).filling("k") as second:
            assert not second
    with pool.filling("k") as again:
        assert again


def test_standby_labels_have_a_deadline_but_no_owner() -> None:
    labels = standby_labels(run_id="r", key="k", deadline=123.0)
    assert labels["sandbox.standby"] == "k" and labels["sandbox.deadline"] == "123"
    assert "sandbox.owner" not in labels and "sandbox.host" not in labels


def _standby(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    config = tmp_path / "perstack.json"
    config.write_text(
        json.dumps(
            {
                "model": "claude-x",
                "provider": {"providerName": "anthropic"},
                "experts": {"a": {"instruction": "x"}},
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_")}
    env["SANDBOX_CONFIG"] = str(config)
    argv = [sys.executable, "-m", "sandbox", "internal", "container-run", "--standby", *extra]
    return subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )


def _request(query: str, job_id: str, *, model: str = "claude-sonnet-4-5") -> RunRequest:
    """A run as the host resolves it (`sandbox.request.resolve_run`) for the standby's Expert `a`."""
    return RunRequest(
        expert_key="a",
        query=query,
        job_id=job_id,
        settings=ResolvedSettings(provider="anthropic", model=model),
    )


def test_standby_runtime_says_ready_then_exits_when_nobody_claims_it(tmp_path: Path) -> None:
    proc = _standby(tmp_path, "--idle", "0.5")
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.wait(timeout=120) == 0  # stdin stays open, as a standby's does: the idle timeout ends it
    lines = proc.stderr.read().splitlines()
    assert lines[0] == READY_LINE and "not claimed in time" in lines[-1]
    assert proc.stdout.read() == ""
    proc.stdin.close()  # type: ignore[union-attr]


def test_standby_runtime_exits_when_its_stdin_closes(tmp_path: Path) -> None:
    proc = _standby(tmp_path, "--idle", "60")
    out, err = proc.communicate("", timeout=120)
    assert proc.returncode == 0 and "stdin closed" in err and out == ""


@pytest.mark.parametrize("payload", ["not json", '{"env": {}}', '{"args": 3}'])
def test_standby_runtime_rejects_a_job_without_a_run(tmp_path: Path, payload: str) -> None:
    proc = _standby(tmp_path, "--idle", "60")
    assert proc.stderr is not None and proc.stdin is not None
    assert proc.stderr.readline().strip() == READY_LINE
    out, err = proc.communicate(payload + "\n", timeout=60)
    assert proc.returncode == 2 and "a standby expects one JSON line on stdin" in err and out == ""


def test_standby_runtime_refuses_a_claim_without_an_event_key(tmp_path: Path) -> None:
    proc = _standby(tmp_path, "--idle", "60")
    assert proc.stderr is not None and proc.stdin is not None
    assert proc.stderr.readline().strip() == READY_LINE
    claim = json.dumps({"run": _request("hi", "j").model_dump(mode="json"), "env": {}})
    out, err = proc.communicate(claim + "\n", timeout=60)
    assert proc.returncode == 2 and "event key" in err and out == ""


def test_stop_waits_for_a_fill_in_flight_and_removes_its_standby(tmp_path: Path) -> None:
    from sandbox.docker import FakeBackend
    from sandbox.docker._warm import stop_pool

    pool = StandbyPool(tmp_path)
    done: list[list[str]] = []
    with pool.filling("k"):
        other = StandbyPool(tmp_path)
        stopper = threading.Thread(target=lambda: done.append(stop_pool(other, FakeBackend())))
        stopper.start()
        time.sleep(0.3)
        assert not done  # blocked on the fill lock
        pool.add(record("k", "late", expires=time.time() + 600))  # what the filler was making
    stopper.join(timeout=10)
    assert done == [["late"]] and pool.records() == []


def test_a_claimed_standby_runs_against_the_provider_after_its_rehearsal(tmp_path: Path) -> None:
    """The standby's offline rehearsal reaches nothing; the claimed run sends exactly one request, with
    the key that came on stdin, and streams the run's events (and only the run's) on stdout."""
    from sandbox.testing import ScriptedLLMServer, Turn

    with ScriptedLLMServer([Turn("claimed answer")]) as server:
        proc = _standby(tmp_path, "--idle", "60")
        assert proc.stderr is not None and proc.stdin is not None
        assert proc.stderr.readline().strip() == READY_LINE
        assert server.requests == []  # the rehearsal happened before ready, offline
        key = new_key()
        payload = {
            "run": _request("hello", "j1", model="claude-x").model_dump(mode="json"),
            "env": {"ANTHROPIC_API_KEY": "sk-claimed", "ANTHROPIC_BASE_URL": server.base_url},
            "eventKey": key,
        }
        out, err = proc.communicate(json.dumps(payload) + "\n", timeout=120)
        assert proc.returncode == 0, err
        # Every line is signed with the key the claim brought, in sequence (sandbox._wire).
        reader = WireReader(key)
        verdicts = [reader.check(line) for line in out.splitlines()]
        assert all(v.problem is None and v.lost == 0 for v in verdicts), out[:500]
        events = [json.loads(v.body or "") for v in verdicts]
        assert [e["type"] for e in events] == [
            "initializeRuntime",
            "startRun",
            "startGeneration",
            "completeRun",
        ]
        assert events[-1]["text"] == "claimed answer" and events[0]["jobId"] == "j1"
        assert len(server.requests) == 1 and server.requests[0].view.api_key == "sk-claimed"


_LATE_REFILL = """
import sys, time
from pathlib import Path
from sandbox.docker._standby import StandbyPool, StandbyRecord
time.sleep(float(sys.argv[3]))  # a new interpreter's start: the run that spawned it has exited by now
pool = StandbyPool(Path(sys.argv[1]))
with pool.filling(sys.argv[2]) as mine:
    pool.refill_began(sys.argv[2])
    time.sleep(0.3)  # making the standby
    pool.add(StandbyRecord.from_json(sys.argv[4]))
"""


def test_stop_waits_for_a_refill_that_has_not_taken_the_lock_yet(tmp_path: Path) -> None:
    """`sandbox run ...; sandbox warm --stop`: the run's refill is still starting when --stop comes."""
    from sandbox.docker import FakeBackend
    from sandbox.docker._warm import stop_pool

    late = record("k", "late", expires=time.time() + 600)
    child = subprocess.Popen([sys.executable, "-c", _LATE_REFILL, str(tmp_path), "k", "0.8", late.to_json()])
    try:
        StandbyPool(tmp_path).announce_refill("k", child.pid)  # what spawn_refill does
        assert stop_pool(StandbyPool(tmp_path), FakeBackend(), "k") == ["late"]
        assert StandbyPool(tmp_path).records() == []
        assert not list((tmp_path / "k").glob(".refill-*"))
    finally:
        child.wait(timeout=30)


def test_an_announced_refill_that_died_is_not_waited_for(tmp_path: Path) -> None:
    from sandbox.docker import FakeBackend
    from sandbox.docker._warm import stop_pool

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    StandbyPool(tmp_path).announce_refill("k", dead.pid)
    dead.wait(timeout=30)
    started = time.monotonic()
    assert stop_pool(StandbyPool(tmp_path), FakeBackend(), "k") == []
    assert time.monotonic() - started < 10  # not the 60 s an announced, live refill may take
    assert not list((tmp_path / "k").glob(".refill-*"))


def test_an_exited_process_nobody_has_collected_is_not_alive() -> None:
    """A refill whose parent never waits for it stays a zombie: it must count as gone, not block --stop."""
    from sandbox.docker._labels import Owner, _proc_start, owner_alive

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        owner = Owner(host=Owner.current().host, pid=child.pid, start=_proc_start(child.pid) or "")
        assert owner_alive(owner)
        child.kill()
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not owner_alive(owner)  # exited, not yet waited for
    finally:
        child.wait(timeout=10)
