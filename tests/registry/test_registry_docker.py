"""Someone else's Expert in the sandbox: a registry delegate with a real PyPI MCP server, end to end.

The registry is served over HTTPS on the host and reached only by the host CLI, before planning; the
delegate's skill package is installed into the image at build time, and inside the sandbox the proxy's
allowlist has the model provider only (no registry, no package index).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.docker._testkit import PROVIDER_TOML, Harness, base_env, module_harness
from sandbox.testing import Expectation, ToolCall, Turn

from .conftest import RegistryServer

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SECRET = "sk-ant-registry-SECRET-77e1"
KEY = "@org/timekeeper@1.0.0"
TOOL = "org_timekeeper_1_0_0"  # the delegate's tool name: the key with what tool names cannot hold replaced


def timekeeper() -> dict[str, Any]:
    return {
        "data": {
            "expert": {
                "type": "registryExpert",
                "key": KEY,
                "name": "@org/timekeeper",
                "version": "1.0.0",
                "minRuntimeVersion": "v1.0",
                "description": "Tells the time",
                "status": "available",
                "instruction": "You are the registry timekeeper. Use the time tool.",
                "delegates": [],
                "tags": ["latest"],
                "skills": {
                    "time": {
                        "type": "mcpStdioSkill",
                        "command": "uvx",
                        "packageName": "mcp-server-time",
                        "description": "time",
                        "pick": [],
                        "omit": [],
                        "requiredEnv": [],
                    }
                },
            }
        }
    }


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    yield from module_harness(tmp_path_factory.mktemp("llm"))


def test_a_registry_delegate_runs_in_the_sandbox_with_its_skill(
    harness: Harness, https_registry: RegistryServer, tmp_path: Path
) -> None:
    assert harness.llm is not None
    https_registry.answers = {KEY: timekeeper()}
    project = tmp_path / "project"
    project.mkdir()
    (project / "perstack.toml").write_text(
        f'perstackApiBaseUrl = "{https_registry.url}"\n'
        + PROVIDER_TOML.format(base_url=harness.llm.base_url)
        + f'[experts."coord"]\ninstruction = "You coordinate."\ndelegates = ["{KEY}"]\n'
    )
    harness.llm.remote().set_script(
        [
            Turn(
                tool_calls=[ToolCall(TOOL, {"query": "what time is it in UTC?"})],
                expect=Expectation(
                    system_contains=["You coordinate.", "Tells the time"],
                    tools_include=[TOOL],
                    api_key=SECRET,
                ),
            ),
            Turn(
                tool_calls=[ToolCall("get_current_time", {"timezone": "UTC"})],
                expect=Expectation(
                    system_contains=["You are the registry timekeeper."], tools_include=["get_current_time"]
                ),
            ),
            Turn("It is T in UTC.", expect=Expectation(tool_result_contains=["UTC"])),
            Turn("The timekeeper says: T.", expect=Expectation(tool_result_contains=["It is T in UTC."])),
        ]
    )
    # The host trusts the test registry's CA next to its own bundle (the CLI fetches the definition).
    bundle = tmp_path / "host-ca.pem"
    host_ca = Path(os.environ["SSL_CERT_FILE"]).read_bytes() if os.environ.get("SSL_CERT_FILE") else b""
    bundle.write_bytes(host_ca + b"\n" + https_registry.ca.read_bytes())
    env = base_env(
        tmp_path, ANTHROPIC_API_KEY=SECRET, PERSTACK_API_KEY="pk-registry", SSL_CERT_FILE=str(bundle)
    )

    result = harness.run_cli(project, ["coord", "What time is it?"], env)
    assert result.code == 0, result.stderr[-3000:]
    completes = [e for e in result.events if e["type"] == "completeRun"]
    assert [e["expertKey"] for e in completes] == [KEY, "coord"], [e["type"] for e in result.events]
    assert completes[-1]["text"] == "The timekeeper says: T."
    path = "/api/registry/v1/experts/%40org%2Ftimekeeper%401.0.0"
    assert https_registry.seen == [(path, "Bearer pk-registry")]
    # Inside, the only way out went to the model provider: no registry, no package index.
    hosts = {e["domain"] for e in result.events if e["type"] == "proxyAccess"}
    assert hosts == {"llm.test"}
    assert "pk-registry" not in result.stdout + result.stderr
