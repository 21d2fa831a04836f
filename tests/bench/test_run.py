"""bench.run and the parts' pure helpers: part selection, exit codes, the docs block, parsers, the
reference compose file. No Docker."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
import yaml

from bench.parts import PART_NAMES, PartResult
from bench.parts.runtime import parse_importtime
from bench.parts.warm import STANDBY_PHASES, chart_series, phase_text
from bench.reference import REFERENCE_SQUID_CONF, compose_file
from bench.run import generated_block, parse_only, results_exit_code
from bench.stats import MET, NOT_MEASURED, NOT_MET, summarize


def test_parse_only_keeps_the_suite_order_and_rejects_unknown_parts() -> None:
    assert parse_only(None) == list(PART_NAMES)
    assert parse_only("") == list(PART_NAMES)
    assert parse_only("proxy, warm") == ["warm", "proxy"]
    with pytest.raises(argparse.ArgumentTypeError, match="unknown part"):
        parse_only("warm,turbo")


def _results(part_status: str = "ok", target_status: str = MET) -> dict[str, Any]:
    return {"parts": {"warm": {"status": part_status}}, "targets": [{"status": target_status}]}


def test_exit_code_failed_part_beats_missed_target_beats_success() -> None:
    assert results_exit_code(_results()) == 0
    assert results_exit_code(_results(target_status=NOT_MEASURED)) == 0
    assert results_exit_code(_results(target_status=NOT_MET)) == 1
    assert results_exit_code(_results(part_status="failed", target_status=NOT_MET)) == 2


def test_generated_block_names_machine_parts_not_run_and_chart(tmp_path: Any) -> None:
    results = {
        "startedAt": "2026-01-01T00:00:00+00:00",
        "machine": {"cpus": 2, "commit": "abc123", "dirty": True},
        "parts": {"warm": {**PartResult("warm").to_json(), "targets": []}},
        "targets": [],
    }
    block = generated_block(results, tmp_path / "benchmarks-warm-start.png")
    assert block.startswith("### Latest results (2026-01-01T00:00:00+00:00)")
    assert "Code: commit `abc123` with uncommitted changes" in block
    assert "Parts not run in this run: runtime, startup, cold, proxy, concurrency." in block
    assert "![Warm start: ours, bare docker run and the reference flow](benchmarks-warm-start.png)" in block


def test_parse_importtime_reports_shallow_imports_by_cumulative_time() -> None:
    log = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       100 |        100 |   typer.core",
            "import time:       300 |      90000 | typer",
            "import time:       200 |     180000 | sandbox.cli",
            "import time:       900 |      50000 |       deeply.nested",
            "not an import line",
        ]
    )
    top = parse_importtime(log, n=5, max_depth=1)
    assert top == [
        {"module": "sandbox.cli", "cumulativeMs": 180.0},
        {"module": "typer", "cumulativeMs": 90.0},
        {"module": "typer.core", "cumulativeMs": 0.1},
    ]


def test_phase_text_turns_marks_into_durations() -> None:
    phases = {
        "start": {"median": 0.0},
        "rendered": {"median": 0.1},
        "networks": {"median": 0.3},
        "started": {"median": 0.8},
        "torn-down": {"median": 2.8},
    }
    assert phase_text(phases) == (
        "plan + render 0.100 s, networks 0.200 s, containers started 0.500 s, teardown 2.00 s"
    )


def test_standby_phase_text_starts_with_the_host_cli() -> None:
    phases = {
        "cli-start-up": {"median": 0.22},
        "start": {"median": 0.0},
        "started": {"median": 0.07},
        "first-event": {"median": 0.09},
        "torn-down": {"median": 0.45},
    }
    assert phase_text(phases, STANDBY_PHASES) == (
        "host CLI start-up 0.220 s, claim + hand-over 0.070 s, first event 0.020 s, teardown 0.360 s"
    )


def test_chart_series_labels_only_what_was_measured() -> None:
    s = {"oursTotal": summarize([3.0]), "bareTotal": summarize([0.3])}
    assert list(chart_series(s)) == ["ours: total", "bare docker run --rm IMAGE true"]


def test_reference_compose_file_keeps_the_reference_timing_behaviour() -> None:
    doc = yaml.safe_load(compose_file("sandbox-expert:abc", "sandbox-proxy:def"))
    runtime, proxy = doc["services"]["runtime"], doc["services"]["proxy"]
    assert runtime["image"] == "sandbox-expert:abc"
    assert runtime["depends_on"] == {"proxy": {"condition": "service_healthy"}}
    assert proxy["healthcheck"]["interval"] == "2s"
    assert proxy["image"] == "sandbox-proxy:def"
    assert doc["networks"]["perstack-net-internal"]["internal"] is True
    assert runtime["networks"] == ["perstack-net-internal"]
    # Squid's default shutdown: the reference config sets no shutdown_lifetime
    assert "shutdown_lifetime" not in REFERENCE_SQUID_CONF
    assert "stop_grace_period" not in compose_file("a", "b")


class _FakeAPI:
    def __init__(self, labels: dict[str, dict[str, str]]) -> None:
        self._labels = labels

    def inspect_container(self, cid: str) -> dict[str, Any]:
        return {"Config": {"Labels": self._labels.get(cid, {})}}


class _FakeClient:
    def __init__(self, labels: dict[str, dict[str, str]]) -> None:
        self.api = _FakeAPI(labels)


def test_memory_sampler_attributes_cgroup_peaks_to_runs_and_roles(tmp_path: Any) -> None:
    import time

    from bench.parts.concurrency import CgroupMemorySampler

    files = {"c1": 100 << 20, "c2": 12 << 20, "c3": 90 << 20, "other": 999 << 20}
    for cid, value in files.items():
        d = tmp_path / "memory" / "docker" / cid
        d.mkdir(parents=True)
        (d / "memory.max_usage_in_bytes").write_text(f"{value}\n")
    labels = {
        "c1": {"sandbox.job": "j1", "sandbox.role": "expert"},
        "c2": {"sandbox.job": "j1", "sandbox.role": "proxy"},
        "c3": {"sandbox.job": "j2", "sandbox.role": "expert"},
        "other": {"unrelated": "1"},  # not a sandbox run: ignored
    }
    sampler = CgroupMemorySampler(_FakeClient(labels), interval=0.01, root=tmp_path)
    sampler.v2 = False
    with sampler:
        time.sleep(0.05)
        # the high-water mark only grows; a lower later reading does not lower the peak
        (tmp_path / "memory" / "docker" / "c1" / "memory.max_usage_in_bytes").write_text(str(50 << 20))
        time.sleep(0.05)
    assert sampler.by("sandbox.job") == {
        "j1": {"expert": 100 << 20, "proxy": 12 << 20},
        "j2": {"expert": 90 << 20},
    }


def test_cpu_seconds_reads_cgroup_v1_and_v2(tmp_path: Any) -> None:
    from bench.parts.proxy import cpu_seconds

    v1 = tmp_path / "cpuacct" / "docker" / "abc"
    v1.mkdir(parents=True)
    (v1 / "cpuacct.usage").write_text("2500000000\n")
    assert cpu_seconds("abc", tmp_path) == 2.5
    v2 = tmp_path / "system.slice" / "docker-def.scope"
    v2.mkdir(parents=True)
    (v2 / "cpu.stat").write_text("usage_usec 1500000\nuser_usec 1000000\n")
    assert cpu_seconds("def", tmp_path) == 1.5
    assert cpu_seconds("missing", tmp_path) is None


def test_cpu_text_orders_roles_and_uses_medians() -> None:
    from bench.parts.proxy import cpu_text

    assert cpu_text({"client": [50.0, 52.0, 90.0], "proxy": [80.0], "upstream": [36.0]}) == (
        "proxy 80%, upstream 36%, client 52%"
    )
    assert cpu_text({}) == "n/a"
