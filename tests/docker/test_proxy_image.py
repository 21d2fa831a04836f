"""The proxy image on its own: it refuses to run without its configuration, every kind of rendered policy
starts (both with and without the SNI check stage), and it starts and stops fast."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sandbox.docker._proxylog import is_proxy_ready_line
from sandbox.render._squid import PROXY_CONFIG_DIR, ProxyPolicy, render_squid

from .conftest import PROXY_HARDENING, Topology, wait_for_log, write_files

pytestmark = pytest.mark.docker


def _wait_exit(container: object, timeout: float = 20) -> int:
    result = container.wait(timeout=timeout)  # type: ignore[attr-defined]
    return int(result["StatusCode"])


@pytest.fixture(scope="module")
def topo(topology_factory: Callable[[], Topology]) -> Topology:
    return topology_factory()


@pytest.fixture(scope="module")
def net(topo: Topology) -> object:
    return topo.network("proxy-image", internal=True)


def test_refuses_to_start_without_configuration(topo: Topology, net: object, proxy_image: str) -> None:
    c = topo.container(proxy_image, "noconf", networks=[(net, [])], **PROXY_HARDENING)
    assert _wait_exit(c) == 78
    logs = c.logs().decode()
    assert "sandbox-proxy: FATAL: no configuration at /etc/squid/sandbox/squid.conf" in logs
    assert "Squid Cache" not in logs  # Squid itself never ran


def test_refuses_to_start_without_a_writable_run_dir(
    topo: Topology, net: object, proxy_image: str, tmp_path: Path
) -> None:
    cfg = write_files(tmp_path / "cfg", render_squid(ProxyPolicy(allowed_domains=("a.example",))))
    hardening = {k: v for k, v in PROXY_HARDENING.items() if k != "tmpfs"}
    c = topo.container(
        proxy_image,
        "notmpfs",
        networks=[(net, [])],
        binds={str(cfg): {"bind": PROXY_CONFIG_DIR, "mode": "ro"}},
        **hardening,
    )
    assert _wait_exit(c) == 78
    assert "/run/squid must be a writable tmpfs" in c.logs().decode()


VARIANTS = {
    "empty-allowlist": ProxyPolicy(allowed_domains=()),
    "no-sni": ProxyPolicy(allowed_domains=(".example.com", "api.openai.com"), check_sni=False),
    "opt-ins-v6": ProxyPolicy(
        allowed_domains=("api.anthropic.com",),
        allow_private=(("ollama.internal", 11434), ("gateway.corp", 443)),
        add_hosts=(("ollama.internal", "10.0.0.2"), ("gateway.corp", "fd00::2")),
        allowed_ports=(443, 8443),
        client_networks=("10.213.0.0/24", "fd00:1::/64"),
    ),
    "many-names": ProxyPolicy(allowed_domains=tuple(f"api{i}.example.org" for i in range(200))),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_rendered_variant_starts_cleanly(
    topo: Topology, net: object, proxy_image: str, tmp_path: Path, variant: str
) -> None:
    cfg = write_files(tmp_path / "cfg", render_squid(VARIANTS[variant]))
    c = topo.container(
        proxy_image,
        f"variant-{variant}",
        networks=[(net, [])],
        binds={str(cfg): {"bind": PROXY_CONFIG_DIR, "mode": "ro"}},
        **PROXY_HARDENING,
    )
    wait_for_log(c, is_proxy_ready_line)
    log = c.logs().decode()
    problems = [
        line
        for line in log.splitlines()
        if ("ERROR" in line or "WARNING" in line or "FATAL" in line) and "BCP 177" not in line
    ]
    assert problems == [], log
    c.remove(force=True)


def test_start_and_stop_are_fast(
    topo: Topology, net: object, proxy_image: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Container start -> ready line, and `docker stop` -> exited, with and without the SNI stage."""
    timings: dict[str, dict[str, list[float]]] = {}
    for check_sni in (True, False):
        cfg = write_files(
            tmp_path / f"cfg-{check_sni}",
            render_squid(ProxyPolicy(allowed_domains=("api.example.com",), check_sni=check_sni)),
        )
        starts, stops = [], []
        for i in range(3):
            c = topo.container(
                proxy_image,
                f"timing-{check_sni}-{i}",
                networks=[(net, [])],
                binds={str(cfg): {"bind": PROXY_CONFIG_DIR, "mode": "ro"}},
                start=False,
                **PROXY_HARDENING,
            )
            t0 = time.monotonic()
            c.start()
            wait_for_log(c, is_proxy_ready_line)
            starts.append(time.monotonic() - t0)
            t0 = time.monotonic()
            c.stop(timeout=10)
            stops.append(time.monotonic() - t0)
            c.reload()
            assert c.status == "exited"
            assert c.attrs["State"]["ExitCode"] == 0, c.logs().decode()[-2000:]
            c.remove(force=True)
        timings["sni" if check_sni else "plain"] = {"start": starts, "stop": stops}
    with capsys.disabled():
        for mode, t in timings.items():
            print(
                f"\nproxy {mode}: start->ready median {statistics.median(t['start']):.3f}s "
                f"(all {[round(x, 3) for x in t['start']]}), "
                f"stop->exited median {statistics.median(t['stop']):.3f}s "
                f"(all {[round(x, 3) for x in t['stop']]})"
            )
    for t in timings.values():
        # Generous bounds for slow CI; the point is "no 10-30 s shutdown waits, no 2 s polling".
        assert statistics.median(t["start"]) < 3.0
        assert max(t["stop"]) < 3.0
