"""`SandboxSession`, the one teardown a run, `sandbox warm` and `sandbox audit` share, on `FakeBackend`.

The fake refuses to remove a network that still has a container on it, as the engine does, so the order
guarantees are checked by the engine's own rule rather than by reading the calls.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

from sandbox._errors import DockerError
from sandbox.docker import ContainerSpec, FakeBackend, NetworkAttachment, NetworkSpec, SandboxSession

IMAGE = "img:1"


def _session(backend: FakeBackend) -> SandboxSession:
    return SandboxSession(backend, name="test-session")


def _sandbox(session: SandboxSession, backend: FakeBackend, tmp_path: Path) -> Path:
    """Two networks, two containers on them (one on both), an attached stream and a run dir."""
    session.create_networks([NetworkSpec(name="p_internal", internal=True), NetworkSpec(name="p_egress")])
    specs = {
        "expert": ContainerSpec(
            name="p-expert", service="expert", image=IMAGE, networks=(NetworkAttachment("p_internal"),)
        ),
        "proxy": ContainerSpec(
            name="p-proxy",
            service="proxy",
            image=IMAGE,
            networks=(NetworkAttachment("p_internal"), NetworkAttachment("p_egress")),
        ),
    }
    for service, spec in specs.items():
        cid = backend.create_container(spec)
        session.record_container(service, cid, spec)
        backend.start_container(cid)
    session.add_stream(backend.attach(session.containers["expert"], stdin=True))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "compose.yaml").write_text("services: {}\n")
    session.run_dir = run_dir
    return run_dir


def test_teardown_removes_everything_in_order_and_runs_the_hooks_around_the_removal(tmp_path: Path) -> None:
    backend = FakeBackend(images={IMAGE})
    session = _session(backend)
    run_dir = _sandbox(session, backend, tmp_path)
    seen: list[tuple[str, int]] = []
    session.before_removal(lambda: seen.append(("before", len(backend.containers))))
    session.after_removal(lambda: seen.append(("after", len(backend.containers))))
    real_remove = backend.remove_container

    def slow_remove(ref: str) -> None:  # a slow engine: the networks must still wait
        time.sleep(0.1)
        real_remove(ref)

    backend.remove_container = slow_remove  # type: ignore[method-assign]

    assert session.teardown() == []

    assert seen == [("before", 2), ("after", 0)]  # before: both still there; after: both gone
    assert backend.containers == {} and backend.networks == {}
    assert not run_dir.exists()
    at = {name: i for i, name in enumerate(backend.call_names())}
    # Each network goes after the containers on it: p_egress after the proxy, p_internal after both.
    assert at["remove_network:p_egress"] > at["remove_container:proxy"]
    assert at["remove_network:p_internal"] > max(at["remove_container:proxy"], at["remove_container:expert"])
    assert session.finishing.is_set()


def test_teardown_runs_once(tmp_path: Path) -> None:
    backend = FakeBackend(images={IMAGE})
    session = _session(backend)
    _sandbox(session, backend, tmp_path)
    session.teardown()
    calls = len(backend.calls)
    assert session.teardown() == []
    assert len(backend.calls) == calls


def test_teardown_never_raises_and_reports_what_it_could_not_remove(tmp_path: Path) -> None:
    backend = FakeBackend(images={IMAGE})
    session = _session(backend)
    run_dir = _sandbox(session, backend, tmp_path)
    after: list[str] = []

    def broken_hook() -> None:
        raise OSError("disk gone")

    session.before_removal(broken_hook)
    session.after_removal(lambda: after.append("ran"))
    backend.fail["remove_container"] = DockerError("engine says no")

    problems = session.teardown()

    assert "broken_hook: disk gone" in problems
    assert any(p.startswith("container expert: ") and "engine says no" in p for p in problems)
    assert any(p.startswith("container proxy: ") for p in problems)
    assert any(p.startswith("network p_internal: ") for p in problems)  # its containers are still on it
    assert after == ["ran"]  # a failure earlier does not skip the rest
    assert not run_dir.exists()


def test_a_container_is_removed_only_after_its_wait_future(tmp_path: Path) -> None:
    backend = FakeBackend(images={IMAGE})
    session = _session(backend)
    _sandbox(session, backend, tmp_path)
    exited: Future[int] = Future()
    done_at: list[float] = []

    def finish() -> None:
        time.sleep(0.2)
        done_at.append(time.monotonic())
        exited.set_result(0)

    session.wait_before_removing("expert", exited)
    threading.Thread(target=finish, daemon=True).start()
    removed_at: list[float] = []
    real_remove = backend.remove_container

    def remove(ref: str) -> None:
        if ref == session.containers["expert"]:
            removed_at.append(time.monotonic())
        real_remove(ref)

    backend.remove_container = remove  # type: ignore[method-assign]
    assert session.teardown() == []
    assert done_at and removed_at and removed_at[0] >= done_at[0]


def test_detach_leaves_the_objects_for_a_standby(tmp_path: Path) -> None:
    backend = FakeBackend(images={IMAGE})
    session = _session(backend)
    run_dir = _sandbox(session, backend, tmp_path)
    fired: list[str] = []
    session.timer(0.05, lambda: fired.append("timer"))
    session.detach()
    time.sleep(0.15)
    assert session.teardown() == []
    assert len(backend.containers) == 2 and len(backend.networks) == 2 and run_dir.exists()
    assert fired == []  # its timers are cancelled with it


def test_adopted_objects_are_removed_and_disowned_ones_are_not(tmp_path: Path) -> None:
    backend = FakeBackend(images={IMAGE})
    maker = _session(backend)
    run_dir = _sandbox(maker, backend, tmp_path)
    maker.detach()

    disowning = _session(backend)
    disowning.adopt(maker.containers, maker.networks, run_dir)
    disowning.disown()
    assert disowning.teardown() == []
    assert len(backend.containers) == 2 and run_dir.exists()

    adopting = _session(backend)
    adopting.adopt(maker.containers, maker.networks, run_dir)
    assert adopting.teardown() == []  # no specs: every network waits for every container
    assert backend.containers == {} and backend.networks == {} and not run_dir.exists()


def test_a_shared_network_is_made_sure_of_but_never_recorded(tmp_path: Path) -> None:
    backend = FakeBackend(images={IMAGE})
    session = _session(backend)
    session.create_networks([NetworkSpec(name="shared-egress", external=True), NetworkSpec(name="own")])
    assert list(session.networks.values()) == ["own"]
    session.teardown()
    assert [n.name for n in backend.networks.values()] == ["shared-egress"]


def test_a_failed_network_leaves_the_created_ones_recorded(tmp_path: Path) -> None:
    backend = FakeBackend(images={IMAGE}, fail={"create_network:bad": DockerError("no")})
    session = _session(backend)
    with pytest.raises(DockerError):
        session.create_networks([NetworkSpec(name="good"), NetworkSpec(name="bad")])
    assert list(session.networks.values()) == ["good"]
    session.teardown()
    assert backend.networks == {}


def test_a_session_that_never_reached_the_engine_does_not_connect_to_tear_down() -> None:
    session = SandboxSession(None, environ={"DOCKER_HOST": "unix:///nonexistent.sock"}, name="t")
    assert session.teardown() == []
    assert not session.engine_used
