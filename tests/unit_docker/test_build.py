"""ensure_images: content-addressed skipping, build contexts, failures with step and tail, skill versions."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from sandbox import events as ev
from sandbox._errors import BuildError, DockerError
from sandbox.docker import (
    EventBuildReporter,
    FakeBackend,
    NullReporter,
    SkillsCache,
    ensure_images,
    format_skills,
)
from sandbox.docker._build import SKILLS_LOCK_PATH, BuildCancelled, context_tar
from sandbox.render import RunSite, render_context

from .conftest import config, plan_for

LOCK = {
    "npm": {"@modelcontextprotocol/server-everything": {"version": "2025.9.25", "bins": {"x": "/x"}}},
    "pypi": {"mcp-server-time": {"version": "2025.9.1", "bins": {"mcp-server-time": "/usr/local/bin/m"}}},
}


@pytest.fixture
def ctx(tmp_path: Path) -> Any:
    cfg = config()
    plan = plan_for(cfg, {"ANTHROPIC_API_KEY": "x"})
    return plan, render_context(plan, cfg, RunSite(project="p", workspace=tmp_path))


def names(tar_bytes: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        return sorted(m.name for m in tar.getmembers())


def test_existing_tags_mean_no_build_at_all(ctx: Any, tmp_path: Path) -> None:
    plan, rendered = ctx
    backend = FakeBackend(images={rendered.expert_image, rendered.proxy_image})
    result = ensure_images(
        backend, rendered, plan, reporter=NullReporter(), cache=SkillsCache(tmp_path), skills=False
    )
    assert result.built == () and backend.builds == []
    assert [c[0] for c in backend.calls] == ["image_exists", "image_exists"]


def test_missing_images_are_built_from_minimal_contexts(ctx: Any, tmp_path: Path) -> None:
    plan, rendered = ctx
    backend = FakeBackend(
        images={"sandbox-base:bookworm"},
        image_files={(rendered.expert_image, SKILLS_LOCK_PATH): json.dumps(LOCK).encode()},
    )
    result = ensure_images(backend, rendered, plan, reporter=NullReporter(), cache=SkillsCache(tmp_path))
    assert sorted(result.built) == ["expert", "proxy"]
    by = {b.service: b for b in backend.builds}
    expert_files = names(by["expert"].context_tar)
    assert "Dockerfile" in expert_files and any(n.startswith("runtime/") for n in expert_files)
    assert not [n for n in expert_files if n.startswith(("proxy/", "expert/")) or n == "compose.yaml"]
    proxy_files = names(by["proxy"].context_tar)
    assert "Dockerfile" in proxy_files and not [n for n in proxy_files if n.startswith("config/")]
    assert result.skills is not None
    assert format_skills(result.skills) == [
        "npm  @modelcontextprotocol/server-everything  2025.9.25",
        "pypi mcp-server-time  2025.9.1",
    ]
    # Recorded on the host: the next look-up needs no engine call.
    assert SkillsCache(tmp_path).get(rendered.expert_image) is not None


def test_context_tar_is_deterministic() -> None:
    files = {"b.txt": b"2", "a.sh": b"#!/bin/sh\n", "skip/x": b"x"}
    one, two = (
        context_tar(files, exclude=("skip/",)),
        context_tar(dict(reversed(files.items())), exclude=("skip/",)),
    )
    assert one == two and names(one) == ["a.sh", "b.txt"]
    with tarfile.open(fileobj=io.BytesIO(one)) as tar:
        modes = {m.name: (m.mode, m.mtime, m.uid) for m in tar.getmembers()}
    assert modes == {"a.sh": (0o755, 0, 0), "b.txt": (0o644, 0, 0)}


def test_build_failure_names_image_step_and_tail(ctx: Any, tmp_path: Path) -> None:
    plan, rendered = ctx

    def messages(request: Any) -> list[dict[str, Any]]:
        if request.service == "proxy":
            return [{"stream": f"Successfully tagged {request.tag}\n"}]
        return [
            {"stream": "Step 3/9 : RUN uv tool install mcp-server-time\n"},
            *({"stream": f"line {i}\n"} for i in range(30)),
            {"error": "The command returned a non-zero code: 2", "errorDetail": {"code": 2}},
        ]

    backend = FakeBackend(images={"sandbox-base:bookworm"}, build_messages=messages)
    with pytest.raises(BuildError) as info:
        ensure_images(backend, rendered, plan, reporter=NullReporter(), cache=SkillsCache(tmp_path))
    err = info.value
    assert err.step == "RUN uv tool install mcp-server-time"
    assert err.log_tail[-1] == "line 29" and len(err.log_tail) == 15
    assert "expert image" in str(err) and "step 3/9" in str(err) and "non-zero code: 2" in str(err)


def test_missing_node_image_is_named(tmp_path: Path) -> None:
    cfg = config("""
[provider]
providerName = "anthropic"
[experts."coord"]
instruction = "x"
[experts."coord".skills."e"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@modelcontextprotocol/server-everything"
""")
    plan = plan_for(cfg, {"ANTHROPIC_API_KEY": "x"})
    rendered = render_context(plan, cfg, RunSite(project="p", workspace=tmp_path))
    backend = FakeBackend(images={"sandbox-base:bookworm"})
    with pytest.raises(DockerError) as info:
        ensure_images(backend, rendered, plan, reporter=NullReporter())
    assert "Node image sandbox-node:22" in str(info.value) and "never pulls" in str(info.value)
    assert backend.builds == []


def test_cancel_stops_a_build(ctx: Any) -> None:
    plan, rendered = ctx
    backend = FakeBackend(images={"sandbox-base:bookworm"})
    with pytest.raises(BuildCancelled):
        ensure_images(backend, rendered, plan, reporter=NullReporter(), cancelled=lambda: True)


def test_force_rebuilds_existing_images(ctx: Any) -> None:
    plan, rendered = ctx
    backend = FakeBackend(images={"sandbox-base:bookworm", rendered.expert_image, rendered.proxy_image})
    result = ensure_images(backend, rendered, plan, reporter=NullReporter(), force=True, skills=False)
    assert sorted(result.built) == ["expert", "proxy"]


def test_event_reporter_emits_docker_build_progress(ctx: Any) -> None:
    plan, rendered = ctx
    events: list[ev.EventBase] = []
    backend = FakeBackend(images={"sandbox-base:bookworm"})
    ensure_images(
        backend,
        rendered,
        plan,
        reporter=EventBuildReporter(events.append, job_id="j", run_id="r"),
        skills=False,
    )
    progress = [e for e in events if isinstance(e, ev.DockerBuildProgress)]
    assert {e.service for e in progress} == {"proxy", "expert"}
    assert [e.stage for e in progress if e.service == "expert"][-1] == "complete"
    steps = [e for e in progress if e.message.startswith("Step ")]
    assert steps and all(0 < (e.progress or 0) <= 1 for e in steps)


def test_console_reporter_plain_lines_when_not_a_terminal(ctx: Any) -> None:
    from sandbox.docker import ConsoleBuildReporter

    plan, rendered = ctx
    out = io.StringIO()
    reporter = ConsoleBuildReporter(out)
    ensure_images(
        FakeBackend(images={"sandbox-base:bookworm"}), rendered, plan, reporter=reporter, skills=False
    )
    reporter.close()
    text = out.getvalue()
    assert (
        "building the expert image" in text
        and "step 2/3: RUN install" in text
        and "built the proxy image" in text
    )
