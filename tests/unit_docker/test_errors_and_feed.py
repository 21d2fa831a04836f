"""The one error mapping (SDK/transport -> DockerError with a fix), the proxy feed, the hidden job store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import requests

from sandbox import events as ev
from sandbox._errors import DockerError, RunError
from sandbox.docker import SubnetTaken, map_docker_errors
from sandbox.docker._proxylog_feed import AUDIT_FILE, ProxyFeed
from sandbox.docker._settings import Hidden
from sandbox.docker._settings import hidden_paths as _hidden_paths
from sandbox.jobs import JobStore

from .conftest import Env


def api_error(text: str, status: int = 500) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    return docker.errors.APIError(text, response=response, explanation=text)


def raised(exc: BaseException, env: dict[str, str] | None = None) -> DockerError:
    with pytest.raises(DockerError) as info, map_docker_errors("doing x", env or {}):
        raise exc
    assert info.value.__cause__ is exc  # chained, like httpx's mapping
    return info.value


def test_no_docker_at_all_says_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.path.exists", lambda p: False)
    monkeypatch.setattr("shutil.which", lambda name: None)
    err = raised(requests.exceptions.ConnectionError("boom"))
    assert "not installed" in str(err) and err.hint and "get-docker" in err.hint


def test_engine_down_says_start_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: "/usr/bin/docker")
    err = raised(requests.exceptions.ConnectionError("Connection refused"), {"DOCKER_HOST": "tcp://h:2375"})
    assert "unreachable at tcp://h:2375" in str(err) and err.hint and "start the engine" in err.hint


def test_permission_denied_says_docker_group() -> None:
    err = raised(PermissionError(13, "Permission denied"))
    assert "permission denied" in str(err) and err.hint and "docker` group" in err.hint


def test_sdk_version_negotiation_failure_is_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: "/usr/bin/docker")
    err = raised(docker.errors.DockerException("Error while fetching server API version: ..."))
    assert "unreachable" in str(err)


def test_pool_overlap_is_subnet_taken() -> None:
    err = raised(api_error("Pool overlaps with other one on this address space", 403))
    assert isinstance(err, SubnetTaken)


def test_missing_image_names_the_fix() -> None:
    err = raised(docker.errors.ImageNotFound("No such image: sandbox-expert:abc"))
    assert "image not found" in str(err) and err.hint and "sandbox build" in err.hint


def test_other_api_errors_are_run_errors_with_the_engine_text() -> None:
    err = raised(api_error("Conflict. The container name is already in use", 409))
    assert isinstance(err, RunError) and "doing x failed" in str(err) and "already in use" in str(err)


def test_timeouts_are_docker_errors() -> None:
    assert "did not answer" in str(raised(requests.exceptions.ReadTimeout("slow")))


def test_our_own_errors_pass_through() -> None:
    original = RunError("mine")
    with pytest.raises(RunError) as info, map_docker_errors("x"):
        raise original
    assert info.value is original


# ------------------------------------------------------------------------------------------ proxy feed

ALLOWED = (
    "sandbox-proxy/1 ts=1.0 client=10.0.0.3 local_port=3128 action=TCP_TUNNEL status=200 method=CONNECT "
    "host=llm.test port=443 upstream=1.2.3.4 hier=HIER_DIRECT reason=- sni=llm.test bump=splice"
)
DENIED = (
    "sandbox-proxy/1 ts=1.1 client=10.0.0.3 local_port=3128 action=TCP_DENIED status=403 method=CONNECT "
    "host=evil.example port=443 upstream=- hier=HIER_NONE reason=not-allowlisted sni=- bump=-"
)


def test_feed_holds_lines_until_the_run_is_known(tmp_path: Path) -> None:
    feed = ProxyFeed()
    first = feed.line(ALLOWED, job_id="j1", run_id="host-run")
    assert isinstance(first, ev.ProxyAccess) and (first.action, first.domain, first.port) == (
        "allowed",
        "llm.test",
        443,
    )
    assert (
        feed.line("2026/01/01 12:00:00| Accepting HTTP Socket connections", job_id="j1", run_id="r") is None
    )
    assert feed.is_ready("sandbox-proxy/1 event=ready") and not feed.is_ready(ALLOWED)
    store = JobStore(tmp_path)
    feed.set_run(store, "j1", "r1")
    blocked = feed.line(DENIED, job_id="j1", run_id="r1")
    assert blocked is not None and blocked.action == "blocked" and blocked.reason == "Domain not in allowlist"
    feed.close()
    lines = [json.loads(line) for line in (store.run_dir("j1", "r1") / AUDIT_FILE).read_text().splitlines()]
    assert [(x["action"], x["domain"], x["code"]) for x in lines] == [
        ("allowed", "llm.test", None),
        ("blocked", "evil.example", "not-allowlisted"),
    ]
    assert lines[0]["raw"] == ALLOWED
    # The audit file is not an event file: the job store's listings ignore it.
    assert store.list_events("j1", "r1") == []


def test_feed_falls_back_to_the_host_run_when_no_run_id_arrives(tmp_path: Path) -> None:
    feed = ProxyFeed()
    feed.line(DENIED, job_id="j1", run_id="host")
    feed.close((JobStore(tmp_path), "j1", "host"))
    assert (JobStore(tmp_path).run_dir("j1", "host") / AUDIT_FILE).is_file()


# ------------------------------------------------------------------------------------------ hidden job store


def test_job_store_inside_the_workspace_is_hidden(world: Env) -> None:
    options = world.options()
    assert _hidden_paths(options) == Hidden()  # jobs outside the workspace: nothing to hide
    inside: Any = world.options().__class__(
        **{**options.__dict__, "jobs_dir": world.workspace / "perstack" / "jobs"}
    )
    assert _hidden_paths(inside) == Hidden(dirs=("/workspace/perstack",))
    assert (world.workspace / "perstack" / "jobs").is_dir()  # created by the host, not by the engine as root


def test_hidden_path_becomes_a_read_only_tmpfs(world: Env) -> None:
    from sandbox.render import RunSite, render_context

    site = RunSite(project="p", workspace=world.workspace, hidden=("/workspace/perstack",))
    compose = render_context(world.plan, world.cfg, site).files["compose.yaml"].decode()
    assert '"/workspace/perstack:ro,size=64k,mode=0555"' in compose
