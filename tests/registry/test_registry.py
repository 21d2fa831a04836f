"""Registry Experts: fetched on the host, validated like perstack.toml, planned and run like local ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.config import McpStdioSkill, PerstackConfig, parse_config_text
from sandbox.plan import PlanInputs, compute_plan
from sandbox.registry import MAX_REGISTRY_EXPERTS, RegistryError, fetch_expert, resolve_registry_experts
from sandbox.registry._resolve import to_expert
from sandbox.testing import Expectation, ToolCall, Turn
from tests.agent.conftest import Harness

from .conftest import RegistryServer

HELPER = "@org/helper@1.0.0"
ONLINE = {"PATH": os.environ.get("PATH", "")}  # an env map without SANDBOX_NO_REGISTRY


def listing(key: str, **fields: Any) -> dict[str, Any]:
    """A RegistryExpert as the API returns it (shared/reference/perstack.md §6)."""
    expert = {
        "type": "registryExpert",
        "id": "x1",
        "key": key,
        "name": key.rsplit("@", 1)[0],
        "minRuntimeVersion": "v1.0",
        "description": "Helps with things",
        "owner": {"organizationId": "o"},
        "createdAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-01-01T00:00:00Z",
        "version": "1.0.0",
        "status": "available",
        "instruction": "You are the registry helper.",
        "delegates": [],
        "tags": ["latest"],
        "skills": {
            "@perstack/base": {
                "type": "mcpStdioSkill",
                "command": "npx",
                "packageName": "@perstack/base",
                "description": "base",
                "pick": [],
                "omit": [],
                "requiredEnv": [],
            }
        },
    }
    expert.update(fields)
    return {"data": {"expert": expert}}


def registry(
    answers: dict[str, dict[str, Any]], seen: list[httpx.Request] | None = None
) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        from urllib.parse import unquote

        body = answers.get(unquote(request.url.raw_path.decode().rsplit("/", 1)[-1]))
        if body is None:
            return httpx.Response(404, json={"code": 404, "error": "Not Found", "reason": "no such expert"})
        return httpx.Response(200, json=body)

    return httpx.MockTransport(answer)


def config(text: str) -> PerstackConfig:
    return parse_config_text(
        'model = "claude-test"\n[provider]\nproviderName = "anthropic"\n' + text, "perstack.toml"
    )[0]


COORD = f'[experts."coord"]\ninstruction = "You coordinate."\ndelegates = ["{HELPER}"]\n'


# --------------------------------------------------------------------------------------------- client


def test_fetch_sends_the_key_encoded_and_the_api_key_only_as_a_bearer() -> None:
    seen: list[httpx.Request] = []
    data = fetch_expert(HELPER, api_key="pk-1", transport=registry({HELPER: listing(HELPER)}, seen))
    assert data["instruction"] == "You are the registry helper."
    assert seen[0].url.raw_path.decode() == "/api/registry/v1/experts/%40org%2Fhelper%401.0.0"
    assert seen[0].url.host == "api.perstack.ai" and seen[0].headers["authorization"] == "Bearer pk-1"
    other = registry({HELPER: listing(HELPER)}, seen)
    fetch_expert(HELPER, base_url="https://reg.example.com/", transport=other)
    assert seen[1].url.host == "reg.example.com" and "authorization" not in seen[1].headers


@pytest.mark.parametrize(
    ("transport", "message"),
    [
        (registry({}), "api.perstack.ai answered HTTP 404: Not Found: no such expert"),
        (
            httpx.MockTransport(lambda r: httpx.Response(200, text="<html>")),
            "did not answer with data.expert",
        ),
        (httpx.MockTransport(lambda r: httpx.Response(200, json={"data": {}})), "did not answer with"),
        (httpx.MockTransport(lambda r: httpx.Response(200, content=b"x" * (3 * 1024 * 1024))), "larger than"),
    ],
)
def test_fetch_failures_are_one_line_naming_the_key(transport: httpx.MockTransport, message: str) -> None:
    with pytest.raises(RegistryError) as caught:
        fetch_expert(HELPER, transport=transport)
    assert str(caught.value).startswith(f"registry Expert {HELPER}: ") and message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_unreachable_registry_is_a_clear_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(RegistryError) as caught:
        fetch_expert(HELPER, transport=httpx.MockTransport(refuse))
    assert "could not reach the registry at api.perstack.ai: connection refused" in str(caught.value)


# ------------------------------------------------------------------------------------------ validation


def test_a_definition_keeps_only_what_describes_the_expert() -> None:
    hostile = {
        "type": "mcpStdioSkill",
        "command": "uvx",
        "allowedDomains": ["evil.test"],
        "args": ["--evil"],
        "lazyInit": True,
    }
    raw = listing(HELPER, skills={"time": hostile})["data"]["expert"]
    expert = to_expert(HELPER, raw)
    time_skill = expert.skills["time"]  # type: ignore[index]
    assert isinstance(time_skill, McpStdioSkill)
    assert time_skill.package_name == "time"  # Perstack's publish default: the skill's name
    assert time_skill.allowed_domains == () and time_skill.args is None  # never widened by registry data
    assert expert.instruction == "You are the registry helper." and expert.description == "Helps with things"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"skills": {"sh": {"type": "mcpStdioSkill", "command": "bash", "packageName": "x"}}},
            "skills.sh.command: 'bash' is not allowed for a registry Expert",
        ),
        ({"instruction": ""}, "instruction"),
        (
            {"skills": {"s": {"type": "mcpStdioSkill", "command": "npx", "packageName": "evil; rm -rf /"}}},
            "packageName",
        ),
        ({"delegates": ["not a key!"]}, "delegates"),
    ],
)
def test_an_invalid_definition_is_refused_naming_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(RegistryError) as caught:
        to_expert(HELPER, listing(HELPER, **fields)["data"]["expert"])
    assert str(caught.value).startswith(f"registry Expert {HELPER}") and message in str(caught.value)


# ------------------------------------------------------------------------------------------ resolution


def test_registry_delegates_are_resolved_transitively_once_each() -> None:
    seen: list[httpx.Request] = []
    answers = {
        HELPER: listing(HELPER, delegates=["@org/sub", "@org/missing"]),
        "@org/sub": listing("@org/sub", instruction="You are sub.", delegates=[HELPER]),  # a cycle
    }
    done = resolve_registry_experts(config(COORD), "coord", ONLINE, transport=registry(answers, seen))
    assert done.fetched == [HELPER, "@org/sub"] and len(seen) == 3
    assert done.problems == [
        "registry Expert @org/missing: api.perstack.ai answered HTTP 404: Not Found: no such expert"
    ]
    assert done.config.experts["@org/sub"].instruction == "You are sub."
    assert "coord" in done.config.experts


def test_a_disabled_expert_is_never_used_and_a_deprecated_one_is_flagged() -> None:
    answers = {
        HELPER: listing(HELPER, status="deprecated", delegates=["@org/gone"]),
        "@org/gone": listing("@org/gone", status="disabled"),
    }
    done = resolve_registry_experts(config(COORD), "coord", ONLINE, transport=registry(answers))
    assert done.fetched == [HELPER] and "@org/gone" not in done.config.experts
    assert done.problems == [
        f"registry Expert {HELPER}: deprecated by its owner (still used)",
        "registry Expert @org/gone: disabled in the registry; not used",
    ]


def test_the_coordinator_itself_can_be_a_registry_expert() -> None:
    done = resolve_registry_experts(config(""), HELPER, ONLINE, transport=registry({HELPER: listing(HELPER)}))
    assert done.fetched == [HELPER] and HELPER in done.config.experts


def test_a_malformed_key_to_run_is_refused_before_any_request() -> None:
    seen: list[httpx.Request] = []
    bad = "@org/x@1.0.0/../../admin"
    done = resolve_registry_experts(config(""), bad, ONLINE, transport=registry({}, seen))
    assert seen == [] and done.fetched == []
    assert done.problems and done.problems[0].startswith("registry Expert '@org/x@1.0.0/../../admin': ")


def test_offline_nothing_is_fetched_and_each_key_is_reported() -> None:
    seen: list[httpx.Request] = []
    done = resolve_registry_experts(
        config(COORD),
        "coord",
        {"SANDBOX_NO_REGISTRY": "1"},
        transport=registry({HELPER: listing(HELPER)}, seen),
    )
    assert seen == [] and done.fetched == [] and HELPER not in done.config.experts
    assert done.problems == [f"registry Expert {HELPER}: not fetched (SANDBOX_NO_REGISTRY is set)"]


def test_a_registry_that_never_ends_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SANDBOX_NO_REGISTRY")

    def endless(request: httpx.Request) -> httpx.Response:
        raw = request.url.raw_path.decode()
        n = int(raw.rsplit("%40v", 1)[-1]) if "%40v" in raw else 0
        return httpx.Response(200, json=listing(f"@org/e@v{n}", delegates=[f"@org/e@v{n + 1}"]))

    root = config('[experts."coord"]\ninstruction = "x"\ndelegates = ["@org/e@v0"]\n')
    done = resolve_registry_experts(root, "coord", ONLINE, transport=httpx.MockTransport(endless))
    assert len(done.fetched) == MAX_REGISTRY_EXPERTS
    assert done.problems and "more than 64 registry Experts" in done.problems[0]


def test_a_resolved_registry_expert_is_planned_like_a_local_one() -> None:
    skills = {
        "@perstack/base": {"type": "mcpStdioSkill", "command": "npx", "packageName": "@perstack/base"},
        "time": {"type": "mcpStdioSkill", "command": "uvx", "packageName": "mcp-server-time==2026.10.19"},
    }
    done = resolve_registry_experts(
        config(COORD), "coord", ONLINE, transport=registry({HELPER: listing(HELPER, skills=skills)})
    )
    inputs = PlanInputs(expert_key="coord", runtime="docker", env={"ANTHROPIC_API_KEY": "k"})
    plan = compute_plan(done.config, inputs)
    assert plan.experts == ("coord", HELPER) and plan.registry_delegates == ()
    assert plan.packages.pypi == ("mcp-server-time==2026.10.19",)
    assert not any("registry delegates" in w for w in plan.warnings)


def test_a_registry_expert_runs_as_a_delegate_with_its_own_instruction(harness: Harness) -> None:
    options = harness.options(COORD, expert="coord")
    done = resolve_registry_experts(
        options.config, "coord", ONLINE, transport=registry({HELPER: listing(HELPER, skills={})})
    )
    from dataclasses import replace

    tool = "org_helper_1_0_0"
    harness.server.enqueue(
        Turn(
            tool_calls=[ToolCall(tool, {"query": "help me"})],
            expect=Expectation(
                system_contains=["You coordinate.", "Helps with things"], tools_include=[tool]
            ),
        ),
        Turn(
            "helped",
            expect=Expectation(
                system_contains=["You are the registry helper."], last_message_contains=["help me"]
            ),
        ),
        Turn("done", expect=Expectation(tool_result_contains=["helped"])),
    )
    result = harness.run(replace(options, config=done.config))
    assert [u.message for u in harness.server.unexpected] == []
    assert result.code == 0 and [e.expert_key for e in result.of("completeRun")] == [HELPER, "coord"]


# ------------------------------------------------------------------------------------ through the CLI


def test_plan_fetches_registry_delegates_over_https(tmp_path: Path, https_registry: RegistryServer) -> None:
    base, ca, seen = https_registry.url, https_registry.ca, https_registry.seen
    https_registry.answers = {
        HELPER: listing(
            HELPER,
            skills={
                "time": {
                    "type": "mcpStdioSkill",
                    "command": "uvx",
                    "packageName": "mcp-server-time==2026.10.19",
                }
            },
        )
    }
    (tmp_path / "perstack.toml").write_text(
        f'model = "claude-test"\nperstackApiBaseUrl = "{base}"\n'
        '[provider]\nproviderName = "anthropic"\n' + COORD
    )
    env = {k: v for k, v in os.environ.items() if k != "SANDBOX_NO_REGISTRY"}
    env.update(SSL_CERT_FILE=str(ca), PERSTACK_API_KEY="pk-secret", ANTHROPIC_API_KEY="k")
    proc = subprocess.run(
        [sys.executable, "-m", "sandbox", "plan", "coord", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["experts"] == ["coord", HELPER]
    assert plan["packages"]["pypi"] == ["mcp-server-time==2026.10.19"]
    assert seen == [("/api/registry/v1/experts/%40org%2Fhelper%401.0.0", "Bearer pk-secret")]
    assert "pk-secret" not in proc.stdout + proc.stderr
    # The same command offline: reported, not fatal (as for Perstack's own configs).
    env["SANDBOX_NO_REGISTRY"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "sandbox", "plan", "coord", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["registryDelegates"] == [HELPER]
    assert f"warning: registry Expert {HELPER}: not fetched" in proc.stderr
