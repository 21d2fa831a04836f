"""`sandbox plan` shows what runs: its image tags and destinations are the ones a docker run uses.

The plan is the contract a user reviews before a run (`docs/security.md`), so what `plan --json` prints must
be what the executor builds and starts: the Expert image it creates the container from (a content hash that
includes the `--ca-cert` bundle), the proxy image, and the proxy policy it writes (allowlist, private
opt-ins, static names). Both commands go through the real CLI; the run uses the in-memory `FakeBackend`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import sandbox.docker
from sandbox.cli import app
from sandbox.docker import DockerSettings, FakeBackend, FakeProcess, SkillsCache, load_compose
from sandbox.docker import run_in_docker as real_run_in_docker
from sandbox.docker._fake import idle_program
from sandbox.render import PROXY_CONFIG_DIR

from .conftest import expert_program

TOML = """
[provider]
providerName = "anthropic"

[experts."coord"]
instruction = "Do it."
[experts."coord".skills."sse"]
type = "mcpSseSkill"
endpoint = "https://tools.example.net/sse"
"""
CA = b"-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
FLAGS = [
    "--base-image", "sandbox-base:bookworm",
    "--node-image", "sandbox-node:22",
    "--ca-cert", "corp-ca.pem",
    "--allow-private", "gw.corp:8443",
    "--add-host", "gw.corp:10.1.2.3",
]  # fmt: skip


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "perstack.toml").write_text(TOML)
    (tmp_path / "corp-ca.pem").write_bytes(CA)
    (tmp_path / "ws").mkdir()
    (tmp_path / "tmp").mkdir()
    if os.getuid() == 0:
        os.chown(tmp_path / "ws", 1000, 1000)  # as root the Expert runs as the workspace's owner
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _env(tmp: Path) -> dict[str, str]:
    return {
        "ANTHROPIC_API_KEY": "sk-test",
        "HOME": str(tmp),
        "XDG_STATE_HOME": str(tmp / "state"),
        "XDG_CACHE_HOME": str(tmp / "cache"),
        "COLUMNS": "200",
    }


def _plan_json(tmp: Path) -> dict[str, Any]:
    result = CliRunner().invoke(
        app, ["plan", "coord", "--json", "--runtime", "docker", *FLAGS], env=_env(tmp)
    )
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _docker_run(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run `sandbox run coord q --runtime docker` on a fake engine; what it created and wrote."""
    seen: dict[str, Any] = {}

    def proxy(proc: FakeProcess) -> int:
        seen["proxy_image"] = proc.spec.image
        (config,) = [m.source for m in proc.spec.mounts if m.target == PROXY_CONFIG_DIR]
        seen["policy"] = {p.name: p.read_text() for p in Path(config).iterdir()}
        return idle_program(proc)

    def before(proc: FakeProcess, job: str, run: str) -> None:
        seen["expert_image"] = proc.spec.image

    backend = FakeBackend(
        images={"sandbox-base:bookworm", "sandbox-node:22"},
        programs={"proxy": proxy, "expert": expert_program(before=before)},
    )
    settings = DockerSettings(
        install_signal_handlers=False,
        temp_root=tmp / "tmp",
        skills_cache=SkillsCache(tmp / "skills"),
        progress=False,
        collect_garbage=False,
        use_standby=False,
        nosuid_workspace=False,
        stop_grace_s=0.5,
        exit_grace_s=0.5,
    )

    def run_in_docker(options: Any, plan: Any, emit: Any) -> int:
        seen["plan"] = plan
        return real_run_in_docker(options, plan, emit, backend=backend, settings=settings)

    monkeypatch.setattr(sandbox.docker, "run_in_docker", run_in_docker)
    args = ["run", "coord", "q", "--runtime", "docker", "--workspace", str(tmp / "ws"), *FLAGS]
    result = CliRunner().invoke(app, args, env=_env(tmp))
    assert result.exit_code == 0, result.output
    seen["built"] = {b.service: b.tag for b in backend.builds}
    return seen


def _opt_ins(squid_conf: str) -> set[str]:
    hosts = dict(re.findall(r"^acl (optin_\d+)_host dstdomain -n (\S+)$", squid_conf, re.MULTILINE))
    ports = dict(re.findall(r"^acl (optin_\d+)_port port (\d+)$", squid_conf, re.MULTILINE))
    return {f"{hosts[acl]}:{ports[acl]}" for acl in hosts}


def test_plan_json_is_what_a_docker_run_used(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _plan_json(project)
    seen = _docker_run(project, monkeypatch)
    # The images: what the Expert and proxy containers were created from, and what was built.
    assert data["image"] == seen["expert_image"] == seen["built"]["expert"]
    assert data["proxyImage"] == seen["proxy_image"] == seen["built"]["proxy"]
    # The proxy policy the run wrote is the plan's: allowlist, private opt-ins, static names.
    policy = seen["policy"]
    assert policy["allowed_domains.txt"].split() == data["network"]["allowedDomains"]
    assert _opt_ins(policy["squid.conf"]) == set(data["network"]["allowPrivate"]) == {"gw.corp:8443"}
    static = {f"{name}:{ip}" for ip, name in (line.split() for line in policy["hosts"].splitlines()[2:])}
    assert static == set(data["network"]["addHosts"]) == {"gw.corp:10.1.2.3"}
    # And what plan says may be reached is exactly that policy.
    reach = {(d["host"], d["port"], tuple(d["schemes"])) for d in data["reach"]}
    assert reach == {
        ("api.anthropic.com", 443, ("https",)),
        ("tools.example.net", 443, ("https",)),
        ("gw.corp", 8443, ("https", "http")),
    }
    # The rest of plan --json is the plan the run was given.
    extra = {"image", "proxyImage", "configPath", "widenedSinceAccepted", "reach"}
    assert seen["plan"].model_dump(mode="json", by_alias=True) == {
        k: v for k, v in data.items() if k not in extra
    }


def test_render_and_build_use_the_tags_plan_prints(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _plan_json(project)
    env = _env(project)
    result = CliRunner().invoke(app, ["render", "coord", "--out", str(project / "out"), *FLAGS], env=env)
    assert result.exit_code == 0, result.output
    compose = load_compose(project / "out" / "compose.yaml")
    assert compose.services["expert"].image == data["image"]
    assert compose.services["proxy"].image == data["proxyImage"]
    assert (project / "out" / "runtime" / "extra-ca.crt").read_bytes() == CA
    backend = FakeBackend(images={"sandbox-base:bookworm", "sandbox-node:22"})
    monkeypatch.setattr(sandbox.docker, "DockerBackend", lambda environ: backend, raising=False)
    result = CliRunner().invoke(app, ["build", "coord", "--json", *FLAGS], env=env)
    assert result.exit_code == 0, result.output
    built = json.loads(result.stdout)
    assert (built["expertImage"], built["proxyImage"]) == (data["image"], data["proxyImage"])
    assert {b.service: b.tag for b in backend.builds} == {
        "expert": data["image"],
        "proxy": data["proxyImage"],
    }


def test_plan_image_includes_the_ca_bundle(project: Path) -> None:
    """The bundle's bytes are part of the Expert image's content hash, so plan must render with them."""
    with_ca = _plan_json(project)["image"]
    (project / "corp-ca.pem").write_bytes(CA.replace(b"fake", b"other"))
    assert _plan_json(project)["image"] != with_ca


def test_plan_table_lists_private_opt_ins_as_reachable(project: Path) -> None:
    result = CliRunner().invoke(app, ["plan", "coord", *FLAGS], env=_env(project))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "443 only" not in out  # an opt-in is another port, and plain HTTP too
    (line,) = [ln for ln in out.splitlines() if "gw.corp:8443" in ln and "http" in ln]
    assert "https, http" in line and "10.1.2.3" in line
    assert re.search(r"api\.anthropic\.com:443 \(https\)", out)
