"""SignalGuard, leftover detection and collection, and subnet choice: the executor's small pieces."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sandbox.docker import ContainerSpec, FakeBackend, NetworkSpec, collect_leftovers
from sandbox.docker._labels import Owner, is_leftover, owner_alive, run_labels
from sandbox.docker._signals import SignalGuard
from sandbox.docker._subnet import host_routes, pick_subnet

# ------------------------------------------------------------------------------------------ signals


class FakeSignal:
    SIGINT = signal.SIGINT
    SIGTERM = signal.SIGTERM

    def __init__(self) -> None:
        self.handlers: dict[int, Any] = {
            int(signal.SIGINT): "default-int",
            int(signal.SIGTERM): "default-term",
        }

    def signal(self, signum: int, handler: Any) -> Any:
        previous = self.handlers[int(signum)]
        self.handlers[int(signum)] = handler
        return previous


def test_guard_maps_signals_and_calls_back_once() -> None:
    first: list[int] = []
    repeat: list[int] = []
    fake = FakeSignal()
    with SignalGuard(first.append, repeat.append, signal_module=fake) as guard:
        assert callable(fake.handlers[int(signal.SIGINT)])
        fake.handlers[int(signal.SIGTERM)](int(signal.SIGTERM), None)
        fake.handlers[int(signal.SIGINT)](int(signal.SIGINT), None)
        assert guard.exit_code == 143 and guard.count == 2
    assert first == [int(signal.SIGTERM)] and repeat == [int(signal.SIGINT)]
    assert fake.handlers == {int(signal.SIGINT): "default-int", int(signal.SIGTERM): "default-term"}


def test_guard_exit_code_for_sigint() -> None:
    guard = SignalGuard(lambda s: None, install=False)
    assert guard.exit_code is None
    guard.handle(int(signal.SIGINT))
    assert guard.exit_code == 130


def test_guard_does_not_install_outside_the_main_thread() -> None:
    fake = FakeSignal()
    done = threading.Event()

    def worker() -> None:
        with SignalGuard(lambda s: None, signal_module=fake):
            assert not callable(fake.handlers[int(signal.SIGINT)])
        done.set()

    threading.Thread(target=worker).start()
    assert done.wait(5)


def test_real_sigint_is_caught_while_guarded() -> None:
    got: list[int] = []
    with SignalGuard(got.append) as guard:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
    assert got == [int(signal.SIGINT)] and guard.exit_code == 130


# ------------------------------------------------------------------------------------------ leftovers

HOST = socket.gethostname()


def labels(owner: str, deadline: float | None = None, **extra: str) -> dict[str, str]:
    out = {"sandbox.tool": "perstack-sandbox", "sandbox.host": HOST, "sandbox.owner": owner, **extra}
    if deadline is not None:
        out["sandbox.deadline"] = str(int(deadline))
    return out


def test_owner_token_of_this_process_is_alive() -> None:
    me = Owner.current()
    assert owner_alive(me)
    assert not owner_alive(Owner(HOST, me.pid, "1"))  # same pid, other start time: recycled
    assert owner_alive(Owner("some-other-host", 1, "1"))  # other hosts are presumed alive


def test_is_leftover_rules() -> None:
    me = Owner.current().token()
    now = time.time()
    assert not is_leftover(labels(me, now + 100))
    assert is_leftover(labels(me, now - 1))  # deadline passed
    assert is_leftover(labels("999999999:1", now + 100))  # owner gone
    assert not is_leftover({"sandbox.tool": "other", "sandbox.deadline": "1"})
    assert not is_leftover({"sandbox.tool": "perstack-sandbox"})  # no owner, no deadline: not ours to judge
    labelled = run_labels(run_id="r", job_id="j", deadline=now + 5)
    assert labelled["sandbox.run"] == "r" and labelled["sandbox.job"] == "j"
    assert not is_leftover(labelled)


def seed(backend: FakeBackend, name: str, lab: dict[str, str]) -> None:
    backend.images.add("img")
    backend.create_network(NetworkSpec(name=f"{name}_net", labels=lab))
    backend.create_container(ContainerSpec(name=f"{name}-c", service=name, image="img", labels=lab))


def test_collect_removes_only_dead_owners(tmp_path: Path) -> None:
    backend = FakeBackend()
    me = Owner.current().token()
    seed(backend, "dead", labels("999999999:1"))
    seed(backend, "live", labels(me, time.time() + 100))
    seed(backend, "expired", labels(me, time.time() - 10))
    for name, lab in (("dead", labels("999999999:1")), ("live", labels(me, time.time() + 100))):
        d = tmp_path / f"sandbox-run-{name}-x"
        d.mkdir()
        (d / ".sandbox-owner.json").write_text(json.dumps(lab))
    report = collect_leftovers(backend, temp_root=tmp_path)
    assert sorted(report.containers) == ["dead-c", "expired-c"]
    assert sorted(report.networks) == ["dead_net", "expired_net"]
    assert [Path(p).name for p in report.temp_dirs] == ["sandbox-run-dead-x"]
    assert [c.spec.name for c in backend.containers.values()] == ["live-c"]
    assert (tmp_path / "sandbox-run-live-x").exists()


def test_collect_everything_and_dry_run(tmp_path: Path) -> None:
    backend = FakeBackend()
    seed(backend, "live", labels(Owner.current().token(), time.time() + 100))
    dry = collect_leftovers(backend, temp_root=tmp_path, everything=True, dry_run=True)
    assert dry.containers == ["live-c"] and backend.containers
    report = collect_leftovers(backend, temp_root=tmp_path, everything=True)
    assert report.containers == ["live-c"] and not backend.containers and not backend.networks


def test_collect_keeps_the_calling_run(tmp_path: Path) -> None:
    backend = FakeBackend()
    seed(backend, "mine", labels("999999999:1", **{"sandbox.run": "me"}))  # type: ignore[arg-type]
    assert collect_leftovers(backend, temp_root=tmp_path, keep_run="me").total() == 0


def test_markerless_temp_dir_is_reaped_only_when_old(tmp_path: Path) -> None:
    young = tmp_path / "sandbox-run-young"
    old = tmp_path / "sandbox-run-old"
    young.mkdir()
    old.mkdir()
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    report = collect_leftovers(None, temp_root=tmp_path)
    assert [Path(p).name for p in report.temp_dirs] == ["sandbox-run-old"]
    assert young.exists()


# ------------------------------------------------------------------------------------------ subnets


def test_pick_subnet_avoids_used_and_routes() -> None:
    import ipaddress

    rng = random.Random(7)
    used = [f"10.{a}.{b}.0/24" for a in range(200, 255) for b in range(0, 256) if (a + b) % 3]
    routes = [ipaddress.IPv4Network("10.250.0.0/16")]
    for _ in range(20):
        subnet = ipaddress.ip_network(pick_subnet(used, rng=rng, routes=routes))
        assert str(subnet) not in used and not subnet.overlaps(routes[0])
        assert subnet.prefixlen == 24 and str(subnet).startswith("10.")


def test_pick_subnet_fails_clearly_when_full() -> None:
    with pytest.raises(RuntimeError, match="no free /24"):
        pick_subnet(["10.0.0.0/8"], routes=[], attempts=20)


def test_host_routes_parses_proc_net_route(tmp_path: Path) -> None:
    table = tmp_path / "route"
    table.write_text(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        "docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
        "tun0\t0000D20A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
    )
    assert [str(r) for r in host_routes(table)] == ["172.17.0.0/16", "10.210.0.0/16"]
    assert host_routes(tmp_path / "missing") == []
