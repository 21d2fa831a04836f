"""compute_plan: the walk over delegates, the allowlist, packages, runtimes and environment names."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox._errors import PlanError
from sandbox.config import parse_config_text
from sandbox.plan import PlanInputs, compute_plan, to_proxy_domains

PEERS = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "peer-configs").glob("*.toml"))


def plan_of(toml: str, expert: str, **kw: object):  # type: ignore[no-untyped-def]
    config, _ = parse_config_text(toml, "perstack.toml")
    return compute_plan(config, PlanInputs(expert_key=expert, **kw))  # type: ignore[arg-type]


GRAPH = """
[provider]
providerName = "anthropic"

[experts."lead"]
instruction = "lead"
delegates = ["worker", "@org/remote", "lead"]
[experts."lead".skills."time"]
type = "mcpStdioSkill"
command = "uvx"
packageName = "mcp-server-time@2026.10.19"
allowedDomains = ["api.github.com", "*.github.com"]

[experts."worker"]
instruction = "worker"
delegates = ["helper"]
[experts."worker".skills."everything"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@modelcontextprotocol/server-everything"
requiredEnv = ["WORKER_TOKEN"]
allowedDomains = ["Docs.Example.com.", "a.b.example.org"]

[experts."helper"]
instruction = "helper"
delegates = ["worker"]
[experts."helper".skills."remote"]
type = "mcpSseSkill"
endpoint = "https://mcp.remote-tools.io/sse"

[experts."unrelated"]
instruction = "not reachable from lead"
[experts."unrelated".skills."x"]
type = "mcpStdioSkill"
command = "npx"
packageName = "left-pad"
allowedDomains = ["unrelated.example"]
"""


def test_walks_delegates_transitively_and_terminates_on_cycles() -> None:
    plan = plan_of(GRAPH, "lead")
    assert plan.experts == ("lead", "worker", "helper")
    assert plan.registry_delegates == ("@org/remote",)
    assert any("@org/remote" in w for w in plan.warnings)


def test_allowlist_merges_every_reachable_skill_sse_host_and_provider_only() -> None:
    plan = plan_of(GRAPH, "lead")
    assert plan.allowed_domains == (
        "a.b.example.org",
        "api.anthropic.com",
        "docs.example.com",
        ".github.com",
        "mcp.remote-tools.io",
    )
    assert "unrelated.example" not in plan.allowed_domains
    assert "registry.npmjs.org" not in plan.allowed_domains
    assert "api.github.com" not in plan.allowed_domains  # covered by the wildcard
    assert list(plan.allowed_domains) == sorted(plan.allowed_domains, key=lambda d: (d.lstrip("."), d))


def test_packages_runtimes_and_env() -> None:
    plan = plan_of(GRAPH, "lead", env={"ANTHROPIC_API_KEY": "k"}, extra_env=("NPM_TOKEN",))
    assert plan.packages.npm == ("@modelcontextprotocol/server-everything",)
    assert plan.packages.pypi == ("mcp-server-time==2026.10.19",)
    assert plan.runtimes == ("node", "python")
    assert plan.env.required == ("WORKER_TOKEN", "ANTHROPIC_API_KEY", "NPM_TOKEN")
    assert plan.env.missing == ("WORKER_TOKEN", "NPM_TOKEN")
    assert "ANTHROPIC_BASE_URL" in plan.env.optional


def test_python_only_expert_needs_no_node() -> None:
    toml = """
[experts."t"]
instruction = "x"
[experts."t".skills."time"]
type = "mcpStdioSkill"
command = "uvx"
packageName = "mcp-server-time"
"""
    plan = plan_of(toml, "t")
    assert plan.runtimes == ("python",)
    assert plan.packages.npm == ()


def test_expert_without_skills_gets_the_builtin_base_and_no_packages() -> None:
    plan = plan_of('[experts."t"]\ninstruction = "x"\n', "t")
    assert [s.name for s in plan.skills] == ["@perstack/base"]
    assert plan.skills[0].builtin
    assert plan.packages.npm == () and plan.packages.pypi == ()


def test_unknown_expert_is_a_plan_error() -> None:
    with pytest.raises(PlanError, match="unknown Expert 'nope'"):
        plan_of('[experts."t"]\ninstruction = "x"\n', "nope")


@pytest.mark.parametrize(
    ("provider", "setting", "env", "expected"),
    [
        ("anthropic", "", {}, {"api.anthropic.com"}),
        ("openai", "", {}, {"api.openai.com"}),
        ("google", "", {}, {"generativelanguage.googleapis.com"}),
        ("deepseek", "", {}, {"api.deepseek.com"}),
        ("amazon-bedrock", 'region = "eu-west-1"', {}, {"bedrock-runtime.eu-west-1.amazonaws.com"}),
        ("amazon-bedrock", "", {"AWS_REGION": "us-east-2"}, {"bedrock-runtime.us-east-2.amazonaws.com"}),
        ("azure-openai", 'resourceName = "acme"', {}, {"acme.openai.azure.com"}),
        (
            "google-vertex",
            'project = "p"\nlocation = "us-central1"',
            {},
            {"us-central1-aiplatform.googleapis.com", "oauth2.googleapis.com"},
        ),
        ("anthropic", 'baseUrl = "https://llm.corp.example/v1"', {}, {"llm.corp.example"}),
    ],
)
def test_provider_hosts(provider: str, setting: str, env: dict[str, str], expected: set[str]) -> None:
    toml = (
        f'[provider]\nproviderName = "{provider}"\n[provider.setting]\n{setting}\n'
        '[experts."t"]\ninstruction = "x"\n'
    )
    plan = plan_of(toml, "t", env=env)
    assert expected <= set(plan.allowed_domains)
    assert {d for d in plan.allowed_domains if d not in expected} <= {"oauth2.googleapis.com"}


def test_cli_provider_beats_file() -> None:
    plan = plan_of(
        '[provider]\nproviderName = "openai"\n[experts."t"]\ninstruction = "x"\n', "t", provider="anthropic"
    )
    assert plan.provider == "anthropic"
    assert "api.anthropic.com" in plan.allowed_domains
    assert "api.openai.com" not in plan.allowed_domains


def test_private_opt_ins_are_off_by_default_and_shown_when_given() -> None:
    plain = plan_of('[experts."t"]\ninstruction = "x"\n', "t")
    assert plain.network.allow_private == () and plain.network.add_hosts == ()
    opened = plan_of(
        '[experts."t"]\ninstruction = "x"\n',
        "t",
        allow_private=("gateway.corp:8443",),
        add_hosts=("gateway.corp:10.1.2.3",),
    )
    assert opened.network.allow_private == ("gateway.corp:8443",)
    assert opened.network.add_hosts == ("gateway.corp:10.1.2.3",)
    assert any("gateway.corp:8443" in w for w in opened.warnings)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["api.github.com", "*.github.com"], (".github.com",)),
        (["*.a.example.com", "*.example.com", "x.example.com"], (".example.com",)),
        (["b.com", "a.com", "a.com"], ("a.com", "b.com")),
        (["example.com", "*.example.com"], (".example.com",)),
        (["notexample.com", "*.example.com"], (".example.com", "notexample.com")),
    ],
)
def test_to_proxy_domains(given: list[str], expected: tuple[str, ...]) -> None:
    assert to_proxy_domains(given) == expected


def test_peer_configs_are_present() -> None:
    assert len(PEERS) >= 28


@pytest.mark.parametrize("path", PEERS, ids=lambda p: p.name)
def test_every_peer_config_plans_and_renders(path: Path, tmp_path: Path) -> None:
    from sandbox.render import RunSite, render_context

    config, _ = parse_config_text(path.read_text(), str(path))
    assert config.experts, path
    for key in config.experts:
        plan = compute_plan(config, PlanInputs(expert_key=key))
        assert plan.expert == key
        assert plan.experts[0] == key
        for d in plan.allowed_domains:
            assert d == d.lower() and " " not in d and not d.endswith(".")
        ctx = render_context(plan, config, RunSite(project="peer", workspace=tmp_path))
        assert b"FROM " in ctx.files["Dockerfile"]
        for pkg in (*plan.packages.npm, *plan.packages.pypi):
            assert pkg.encode() in ctx.files["Dockerfile"]


def test_unknown_bare_delegate_is_reported_not_fatal_to_plan() -> None:
    plan = plan_of('[experts."a"]\ninstruction = "x"\ndelegates = ["ghost", "@org/real"]\n', "a")
    assert plan.unknown_delegates == ("ghost",)
    assert plan.registry_delegates == ("@org/real",)
    assert any("ghost" in w for w in plan.warnings)
