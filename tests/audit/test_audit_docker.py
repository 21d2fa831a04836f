"""`sandbox audit` on the example Expert, against the real engine: every probe is its own test case.

The audit runs twice per session: as the invoking user with every probe (the resource bombs included),
through the CLI command with `--json`; and as an unprivileged uid without the bombs (the battery must hold
for root-without-capabilities and for an ordinary user alike, shared/reference/sandboxes.md §5.4). Each
probe id is then one parametrized test, so a regression names itself (`test_probe[egress.icmp]`).

Images are content-addressed and shared with the executor's tests (same base images, same CA bundle), so a
warm CI machine builds only the audit's small helper image once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import typer
from typer.testing import CliRunner

from sandbox.audit import AuditReport, AuditSettings, UserLayout, run_audit
from sandbox.audit._catalog import Site, build_catalog
from sandbox.cli.audit import audit_command
from sandbox.config import load_config
from sandbox.docker._labels import Owner
from sandbox.docker._testkit import llm_tls
from sandbox.plan import PlanInputs, compute_plan
from sandbox.steering import steering_paths

pytestmark = [pytest.mark.docker, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "time-keeper" / "perstack.toml"
BASE = os.environ.get("SANDBOX_TEST_BASE_IMAGE", "sandbox-base:bookworm")
NODE = os.environ.get("SANDBOX_TEST_NODE_IMAGE", "sandbox-node:22")


def _ids(resources: bool) -> list[str]:
    """The probe ids the audit of the example produces (its plan allowlists api.anthropic.com)."""
    site = Site(
        nonce="n",
        proxy="p:1",
        control_proxy="c:1",
        proxy_name="x",
        proxy_ip="10.0.0.2",
        gateway="10.0.0.1",
        upstream_ip="198.51.100.10",
        upstream_private_ip="10.1.0.10",
        control_gateway="198.51.100.1",
        listener_port=1,
        cadata="",
        uid=0,
        memory_bytes=1,
        pids=512,
        tmpfs_bytes=1,
        cpus=2.0,
        plan_domains=("api.anthropic.com",),
    )
    ids = [p.id for p in build_catalog(site)]
    if not resources:
        ids = [i for i in ids if not i.startswith(("res.fork", "res.memory", "res.tmpfs", "res.host"))]
    return ids


def _leftovers() -> list[str]:
    """Containers and networks of audits run by this process (found by the owner label)."""
    client = docker.APIClient(version="auto")
    try:
        flt = {"label": ["sandbox.audit=1", f"sandbox.owner={Owner.current().token()}"]}
        names = [c["Names"][0] for c in client.containers(all=True, filters=flt)]
        names += [n["Name"] for n in client.networks(filters=flt)]
        return names
    finally:
        client.close()


@pytest.fixture(scope="module")
def as_invoker() -> Iterator[dict[str, Any]]:
    """The full audit through the CLI command, JSON on stdout."""
    app = typer.Typer()
    app.command("audit")(audit_command)
    app.command("noop")(lambda: None)
    args = [
        "audit",
        "time-keeper",
        "--config",
        str(EXAMPLE),
        "--json",
        "--base-image",
        BASE,
        "--node-image",
        NODE,
        "--ca-cert",
        str(llm_tls().bundle),
    ]
    # As root, `sandbox audit` (like `run`) starts the Expert as root only when asked to in the process
    # environment (sandbox/docker/_user.py): CI runs as root and asks (root-without-capabilities is audited).
    result = CliRunner().invoke(app, args, env={"SANDBOX_USER": "0:0"} if os.getuid() == 0 else None)
    assert result.exit_code in (0, 1), result.output
    data: dict[str, Any] = json.loads(result.stdout)
    data["exitCode"] = result.exit_code
    yield data


@pytest.fixture(scope="module")
def as_user(tmp_path_factory: pytest.TempPathFactory) -> AuditReport:
    """The audit with the Expert as uid/gid 1000, without the resource bombs."""
    loaded = load_config(EXAMPLE)
    env = dict(os.environ)
    plan = compute_plan(
        loaded.config,
        PlanInputs(
            expert_key="time-keeper",
            runtime="docker",
            env=env,
            base_image=BASE,
            node_image=NODE,
            ca_cert=str(llm_tls().bundle),
        ),
    )
    # The example's own directory as the workspace, as `sandbox run` from there would have it: its
    # perstack.toml, the `.env`/`.env.local` the demo reads and the job store: what the steering probes see.
    example = EXAMPLE.parent
    steering = steering_paths(
        cwd=example,
        config_file=EXAMPLE,
        env_files=[".env", ".env.local"],
        ca_cert=plan.ca_cert,
        jobs_dir=example / "perstack" / "jobs",
        env=env,
    )
    layout = UserLayout(workspace=example, steering=steering, env_files=(".env", ".env.local"))
    return run_audit(
        plan,
        loaded.config,
        env,
        settings=AuditSettings(
            uid=1000,
            gid=1000,
            resources=False,
            progress=False,
            temp_root=tmp_path_factory.mktemp("audit-user"),
            layout=layout,
        ),
    )


def _row(rows: list[dict[str, Any]], probe: str) -> dict[str, Any]:
    found = [r for r in rows if r["id"] == probe]
    assert found, f"the audit produced no {probe} row"
    return found[0]


@pytest.mark.parametrize("probe", _ids(resources=True))
def test_probe(as_invoker: dict[str, Any], probe: str) -> None:
    row = _row(as_invoker["probes"], probe)
    assert row["verdict"] == "pass", (
        f"{row['verdict']}: {row['observed']} (control: {row['controlObserved']})"
    )


@pytest.mark.parametrize("probe", _ids(resources=False))
def test_probe_as_unprivileged_user(as_user: AuditReport, probe: str) -> None:
    row = _row([o.to_json() for o in as_user.outcomes], probe)
    assert row["verdict"] == "pass", (
        f"{row['verdict']}: {row['observed']} (control: {row['controlObserved']})"
    )


def test_report_is_complete_and_exit_code_matches(as_invoker: dict[str, Any]) -> None:
    assert [r["id"] for r in as_invoker["probes"]] == _ids(resources=True)
    assert as_invoker["exitCode"] == (0 if as_invoker["ok"] else 1)
    sandbox = as_invoker["sandbox"]
    assert sandbox["user"] == f"{os.getuid()}:{os.getgid()}"
    assert all(a.split()[1].endswith("sandbox-audit.test") for a in sandbox["auditAdditions"])


def test_the_unprivileged_audit_ran_as_that_user(as_user: AuditReport) -> None:
    assert as_user.sandbox["user"] == "1000:1000"
    shadow = next(o for o in as_user.outcomes if o.id == "fs.etc-shadow")
    assert shadow.observed.startswith("unreadable (EACCES)")


def test_nothing_is_left_behind(as_invoker: dict[str, Any], as_user: AuditReport) -> None:
    assert _leftovers() == []


def test_the_steering_probes_ran_against_the_real_layout(
    as_invoker: dict[str, Any], as_user: AuditReport
) -> None:
    """Both audits saw the user's steering files: the CLI's (the repository as workspace, the example's
    perstack.toml inside it) and the example directory's (its perstack.toml at the workspace root)."""
    masked = _row(as_invoker["probes"], "fs.steering-masked")["observed"]
    assert "/workspace/examples/time-keeper/perstack.toml" in masked
    user = next(o for o in as_user.outcomes if o.id == "fs.steering-masked")
    assert "/workspace/perstack.toml" in user.observed
    undo = next(o for o in as_user.outcomes if o.id == "fs.steering-undo")
    assert "/workspace/.env" in undo.observed  # the demo's missing .env: created inside, undone after
