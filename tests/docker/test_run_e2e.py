"""End to end: an Expert with a real npm MCP server and a real PyPI MCP server runs in the sandbox.

The provider is the scripted LLM server in a container on the egress side, over HTTPS, reachable only
through the proxy (see `sandbox.docker._testkit`). The Expert calls one tool of each skill and completes;
the stream, the host's job files, a `--continue` run of the same job and "no build step the second
time" are checked. Skills are installed at build time, so the first run of a fresh machine builds (slow).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.docker._testkit import Harness, base_env, module_harness
from sandbox.jobs import JobStore
from sandbox.testing import Expectation, ToolCall, Turn

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SECRET = "sk-ant-e2e-SECRET-4b1d9c"
EXPERT = """
[experts."clock"]
version = "1.0.0"
instruction = "Use the time and everything skills, then answer."

[experts."clock".skills."time"]
type = "mcpStdioSkill"
description = "time"
command = "uvx"
packageName = "mcp-server-time"

[experts."clock".skills."everything"]
type = "mcpStdioSkill"
description = "reference server"
command = "npx"
packageName = "@modelcontextprotocol/server-everything"
pick = ["echo", "get-sum"]
"""


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    yield from module_harness(tmp_path_factory.mktemp("llm"))


def test_real_skills_complete_and_continue(harness: Harness, tmp_path: Path) -> None:
    assert harness.llm is not None
    project = tmp_path / "project"
    harness.write_project(project, EXPERT)
    remote = harness.llm.remote()
    remote.set_script(
        [
            Turn(
                tool_calls=[
                    ToolCall("get_current_time", {"timezone": "UTC"}),
                    ToolCall("echo", {"message": "ping-42"}),
                ],
                expect=Expectation(tools_include=["get_current_time", "echo"], api_key=SECRET),
            ),
            Turn(
                "It is now, and the echo said ping-42.",
                expect=Expectation(tool_result_contains=["ping-42", "UTC"]),
            ),
            Turn(
                "Still here.",
                expect=Expectation(messages_contain=["ping-42"], last_message_contains=["once more"]),
            ),
        ]
    )
    env = base_env(tmp_path, ANTHROPIC_API_KEY=SECRET)

    first = harness.run_cli(project, ["clock", "What time is it? Echo ping-42."], env)
    assert first.code == 0, first.stderr[-3000:]
    types = first.types()
    for kind in (
        "initializeRuntime",
        "skillStarting",
        "skillConnected",
        "startRun",
        "callTools",
        "resolveToolResults",
        "completeRun",
    ):
        assert kind in types, (kind, types)
    # Runtime events (skills closing, the proxy logging a closed tunnel) may follow the last run event.
    assert [e["type"] for e in first.events if "expertKey" in e][-1] == "completeRun"
    started = {e["skillName"] for e in first.of("skillStarting")}
    assert {"time", "everything"} <= started
    results = json.dumps(first.of("resolveToolResults"))
    assert "ping-42" in results and "UTC" in results
    assert {e["jobId"] for e in first.events} == {first.events[0]["jobId"]}
    job_id = first.events[0]["jobId"]

    # The job lives on the host, in Perstack's layout.
    store = JobStore(project / "perstack" / "jobs")
    job = store.retrieve_job(job_id)
    assert job is not None and job.status == "completed"
    checkpoints = store.list_checkpoints(job_id)
    assert checkpoints and checkpoints[-1].status == "completed"
    assert len(store.list_runs(job_id)) == 1
    assert list((project / "perstack" / "jobs" / job_id).rglob("proxy-access.jsonl"))

    # A second run of the same job, resumed from the host's checkpoint.
    second = harness.run_cli(project, ["clock", "once more", "--continue"], env)
    assert second.code == 0, second.stderr[-3000:]
    assert {e["jobId"] for e in second.events} == {job_id}
    assert [e["type"] for e in second.events if "expertKey" in e][-1] == "completeRun"
    assert len(store.list_runs(job_id)) == 2
    assert store.list_checkpoints(job_id)[-1].step_number > checkpoints[-1].step_number
    remote.assert_all_served()
    assert [r.api_key for r in remote.requests] == [SECRET] * 3


def expert_tag(project: Path, expert: str, harness: Harness) -> str:
    """The expert image tag the CLI will compute for this project (same tree, same render)."""
    from sandbox.config import load_config
    from sandbox.plan import PlanInputs, compute_plan
    from sandbox.render import RunSite, render_context

    loaded = load_config(None, cwd=project)
    plan = compute_plan(
        loaded.config,
        PlanInputs(
            expert_key=expert,
            runtime="docker",
            env={},
            base_image=harness.base_image,
            node_image=harness.node_image,
            ca_cert=str(harness.tls.bundle),
        ),
    )
    ctx = render_context(
        plan, loaded.config, RunSite(project="x", workspace=project), ca_cert=harness.tls.bundle.read_bytes()
    )
    return ctx.expert_image


def test_second_run_with_unchanged_inputs_does_no_build(harness: Harness, tmp_path: Path) -> None:
    """Two runs back to back. The tag is a hash of the inputs, and this tree may be edited while the test
    runs (which rightly rebuilds), so the pair is retried until the inputs stayed the same across it."""
    assert harness.llm is not None
    project = tmp_path / "project"
    harness.write_project(project, '\n[experts."plain"]\nversion = "1.0.0"\ninstruction = "Answer."\n')
    env = base_env(tmp_path, ANTHROPIC_API_KEY=SECRET)
    for _ in range(3):
        harness.llm.remote().set_script([Turn("one"), Turn("two")])
        before = expert_tag(project, "plain", harness)
        first = harness.run_cli(project, ["plain", "hi"], env)
        second = harness.run_cli(project, ["plain", "hi", "--verbose"], env)
        assert first.code == 0 and second.code == 0, first.stderr[-2000:] + second.stderr[-2000:]
        if expert_tag(project, "plain", harness) == before:
            break
    else:
        pytest.fail("the inputs kept changing; cannot check the warm path")
    build = second.of("dockerBuildProgress")
    assert build and [e["stage"] for e in build] == ["complete"], build
    assert "images up to date" in build[0]["message"]
    assert "building the" not in second.stderr


def test_proxy_decisions_are_events(harness: Harness, tmp_path: Path) -> None:
    assert harness.llm is not None
    project = tmp_path / "project"
    harness.write_project(project, '\n[experts."plain"]\nversion = "1.0.0"\ninstruction = "Answer."\n')
    harness.llm.remote().set_script([Turn("hello")])
    result = harness.run_cli(project, ["plain", "hi"], base_env(tmp_path, ANTHROPIC_API_KEY=SECRET))
    assert result.code == 0, result.stderr[-2000:]
    access: list[dict[str, Any]] = result.of("proxyAccess")
    assert any(a["action"] == "allowed" and a["domain"] == "llm.test" for a in access), result.types()
