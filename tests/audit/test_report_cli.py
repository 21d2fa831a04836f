"""`sandbox audit`: the table, the JSON report and the exit code, with the audit itself replaced.

The command is exposed as `audit_command` for the lead to wire into the app; here it is mounted on a test
app exactly as `sandbox.cli` mounts its commands.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from sandbox.audit._catalog import build_catalog, evidence_from_json, judge_all, site_from_json
from sandbox.audit._report import print_json, print_table
from sandbox.audit._run import AuditReport
from sandbox.cli.audit import audit_command

FIXTURE = Path(__file__).parent / "fixtures" / "evidence-all-pass.json"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "time-keeper" / "perstack.toml"


def report(*, broken: bool = False) -> AuditReport:
    data = json.loads(FIXTURE.read_text())
    site, evidence = site_from_json(data["site"]), evidence_from_json(data["evidence"])
    if broken:
        evidence.inside["egress.host-services/real"] = {
            "connected": ["192.0.2.2:2375"],
            "errors": {},
            "count": 1,
        }
        evidence.inside["egress.allowlisted/connect"] = {"status": 503}
    outcomes = judge_all(build_catalog(site), evidence)
    return AuditReport("time-keeper", outcomes, 12.5, {"expertImage": "sandbox-expert:x", "user": "0:0"})


def app() -> typer.Typer:
    a = typer.Typer()
    a.command("audit")(audit_command)

    @a.command("noop")
    def _noop() -> None:  # a second command, so "audit" stays a subcommand as in the real app
        pass

    return a


def test_table_lists_every_probe_and_the_summary() -> None:
    out = io.StringIO()
    print_table(report(), out, width=250)
    text = out.getvalue()
    assert "sandbox audit: time-keeper" in text
    for probe in ("egress.not-allowlisted", "fs.read-only", "priv.capabilities", "res.fork-bomb"):
        assert probe in text
    assert text.rstrip().endswith("86 passed, 0 failed, 0 unproven")


def test_table_explains_failures_and_unproven_rows() -> None:
    out = io.StringIO()
    print_table(report(broken=True), out, width=250)
    text = out.getvalue()
    assert (
        "fail egress.host-services: the sandbox did not hold: connected to host services: 192.0.2.2:2375"
        in text
    )
    assert "unproven egress.ip-literal.decimal: the control failed, so the result proves nothing" in text


def test_json_report_schema() -> None:
    out = io.StringIO()
    print_json(report(broken=True), out)
    data = json.loads(out.getvalue())
    assert data["schema"] == "sandbox-audit/1" and data["ok"] is False
    assert data["summary"]["fail"] >= 2 and data["summary"]["unproven"] >= 1
    row = next(p for p in data["probes"] if p["id"] == "egress.host-services")
    assert set(row) == {
        "id",
        "group",
        "title",
        "expected",
        "observed",
        "control",
        "controlObserved",
        "verdict",
        "details",
    }
    assert row["details"]["raw"]["egress.host-services/real"]["connected"] == ["192.0.2.2:2375"]


@pytest.mark.parametrize(("broken", "code"), [(False, 0), (True, 1)])
def test_exit_code_follows_the_verdicts(monkeypatch: pytest.MonkeyPatch, broken: bool, code: int) -> None:
    seen: dict[str, Any] = {}

    def fake(plan: Any, config: Any, env: Any, **kwargs: Any) -> AuditReport:
        seen.update(plan=plan, settings=kwargs["settings"])
        return report(broken=broken)

    monkeypatch.setattr("sandbox.audit._run.run_audit", fake)
    result = CliRunner().invoke(
        app(),
        [
            "audit",
            "time-keeper",
            "--config",
            str(EXAMPLE),
            "--json",
            "--base-image",
            "sandbox-base:bookworm",
            "--memory",
            "1g",
            "--no-resources",
        ],
    )
    assert result.exit_code == code, result.output
    assert json.loads(result.stdout)["ok"] is (not broken)
    plan = seen["plan"]
    assert plan.expert == "time-keeper" and plan.base_image == "sandbox-base:bookworm"
    assert plan.limits.memory == "1g" and plan.runtime == "docker"
    assert seen["settings"].resources is False


def test_table_output_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sandbox.audit._run.run_audit", lambda *a, **k: report())
    result = CliRunner().invoke(app(), ["audit", "time-keeper", "--config", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "egress.not-allowlisted" in result.stdout and "86 passed" in result.stdout


def test_an_unreachable_engine_is_one_clear_line(tmp_path: Path) -> None:
    """Through the real entry point (`sandbox.cli.main`), with the audit mounted as the lead will mount it."""
    code = (
        "import sandbox.cli as c\n"
        "from sandbox.cli.audit import audit_command\n"
        "if not any(getattr(x, 'name', None) == 'audit' for x in c.app.registered_commands):\n"
        "    c.app.command('audit')(audit_command)\n"
        "c.main()\n"
    )
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    env.pop("SANDBOX_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-c", code, "audit", "time-keeper", "--config", str(EXAMPLE)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("warning:")]
    assert len(lines) == 1, proc.stderr
    assert "Docker engine is unreachable" in lines[0] and "no-engine.sock" in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
