"""Config fuzzing: any perstack.toml either plans or fails cleanly, and what renders never carries raw input.

Two generators: structured configs (valid shapes with hostile values in every field that reaches a file:
expert keys, skill names, commands, packages, args, domains, env names, provider settings, sandbox
settings) and arbitrary text. For each, the pipeline parse -> plan -> render must end in one of:

* `ConfigError` (parse/validate), `PlanError` or `UserError` (plan): a clean, located error, or
* rendered files in which no input escaped its quoting: compose.yaml parses back (strictly, with the
  executor's own translator) to exactly the planned values, every Dockerfile instruction is one the
  template writes and every package is one shell word, squid.conf's access rules name only its own ACLs and
  the allowlist file holds exactly the plan's entries, and the JSON files parse.

Anything else (another exception type, a traceback) fails the test with the input that caused it.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sandbox._errors import ConfigError, PlanError, RenderError, UserError
from sandbox.config import parse_config_text
from sandbox.docker import parse_compose
from sandbox.plan import PlanInputs, compute_plan
from sandbox.render import RunSite, render_context
from sandbox.render._squid import squid_domain

HOSTILE = [
    "$HOME",
    "${X}",
    "$(id)",
    "`id`",
    "a\nb",
    "a\rb",
    'a"b',
    "a'b",
    "a\\b",
    "#c",
    "a;b",
    "a b",
    "\t",
    "",
    "http_access allow all",
    "\nhttp_access allow all",
    "x\n  privileged: true",
    "}}{{",
    "{% raw %}",
    "../../etc/passwd",
    "-rf",
    "--privileged",
    "\u202e",
    "é",
    "a" * 300,
    "\x7f",
    "\x1b[31m",
]
_TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40)
weird = st.one_of(st.sampled_from(HOSTILE), _TEXT)


def mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Valid nine times out of ten, hostile otherwise: with many fields per config, enough configs still
    get through to render (and the hostile values that validation lets through are rendered)."""
    return st.one_of(*([valid] * 9), weird)


key = mostly(st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,12}", fullmatch=True))
domain = mostly(
    st.one_of(
        st.from_regex(r"(\*\.)?[a-z0-9]{1,8}(\.[a-z0-9]{1,8}){1,3}", fullmatch=True),
        st.sampled_from(
            ["1.2.3.4", "[::1]", "localhost", "*.com", "a..b", "EXAMPLE.COM.", "xn--80ak6aa92e.com"]
        ),
    )
)
env_name = mostly(st.from_regex(r"[A-Z_][A-Z0-9_]{0,10}", fullmatch=True))
package = mostly(
    st.sampled_from(
        [
            "mcp-server-time",
            "@modelcontextprotocol/server-everything",
            "pkg@1.2.3",
            "pkg==1.0",
            "@scope/pkg@latest",
            "git+https://x/y",
            "./local",
            "pkg; rm -rf /",
            "a$b",
            "-e .",
        ]
    ),
)
command = mostly(st.sampled_from(["npx", "uvx", "node", "python", "python3", "/usr/bin/env", "sh"]))
url = mostly(
    st.sampled_from(
        [
            "https://api.example.com",
            "https://10.0.0.1:8443/v1",
            "http://x",
            "https://llm.test:8443",
            "https://a$b.com",
            "https://x.example/$HOME",
        ]
    )
)


@st.composite
def skill(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(
        mostly(st.sampled_from(["mcpStdioSkill", "mcpStdioSkill", "mcpSseSkill", "interactiveSkill"]))
    )
    out: dict[str, Any] = {"type": kind, "description": draw(st.one_of(weird, st.just("d")))}
    if kind == "mcpStdioSkill":
        out["command"] = draw(command)
        if draw(st.booleans()):
            out["packageName"] = draw(package)
        if draw(st.booleans()):
            out["args"] = draw(st.lists(st.one_of(package, weird), max_size=3))
        if draw(st.booleans()):
            out["requiredEnv"] = draw(st.lists(env_name, max_size=3))
    elif kind == "mcpSseSkill":
        out["endpoint"] = draw(url)
    if kind in ("mcpStdioSkill", "mcpSseSkill") and draw(st.booleans()):
        out["allowedDomains"] = draw(st.lists(domain, max_size=3))
    if kind in ("mcpStdioSkill", "mcpSseSkill") and draw(st.booleans()):
        out["pick"] = draw(st.lists(weird, max_size=2))
    return out


@st.composite
def config(draw: st.DrawFn) -> dict[str, Any]:
    experts: dict[str, Any] = {}
    for name in draw(st.lists(key, min_size=1, max_size=2, unique=True)):
        instruction = draw(st.one_of(weird, st.sampled_from(HOSTILE)).filter(lambda t: t.strip()))
        body: dict[str, Any] = {"instruction": instruction, "version": draw(mostly(st.just("1.0.0")))}
        if draw(st.booleans()):
            body["skills"] = draw(st.dictionaries(key, skill(), max_size=2))
        if draw(st.booleans()):
            body["delegates"] = draw(st.lists(key, max_size=2))
        experts[name] = body
    out: dict[str, Any] = {"experts": experts}
    if draw(st.booleans()):
        out["model"] = draw(mostly(st.just("claude-sonnet-4-5")))
    if draw(st.booleans()):
        provider: dict[str, Any] = {
            "providerName": draw(
                st.sampled_from(["anthropic", "openai", "google", "ollama", "azure-openai", "x"])
            )
        }
        if draw(st.booleans()):
            provider["setting"] = {"baseUrl": draw(url)}
        out["provider"] = provider
    if draw(st.booleans()):
        sandbox: dict[str, Any] = {}
        for field, strategy in (
            ("baseImage", mostly(st.sampled_from(["debian:bookworm-slim", "registry:5000/a/b:t"]))),
            ("nodeImage", mostly(st.just("node:22-bookworm-slim"))),
            ("memory", mostly(st.sampled_from(["2g", "512m", "0", "1x"]))),
            (
                "pids",
                st.one_of(
                    st.integers(min_value=16, max_value=4096), st.integers(min_value=-5, max_value=10**9)
                ),
            ),
            (
                "cpus",
                st.one_of(
                    st.floats(min_value=0.1, max_value=64),
                    st.floats(allow_nan=False, min_value=-1, max_value=1e300),
                ),
            ),
            ("tmpfsSize", mostly(st.just("64m"))),
            (
                "allowPrivate",
                st.lists(mostly(st.sampled_from(["gw.example:11434", "[fd00::1]:80"])), max_size=2),
            ),
            (
                "addHosts",
                st.lists(mostly(st.sampled_from(["gw.example:10.0.0.5", "v6.example:fd00::5"])), max_size=2),
            ),
        ):
            if draw(st.booleans()):
                sandbox[field] = draw(strategy)
        out["sandbox"] = sandbox
    return out


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # JSON basic strings are TOML basic strings, except that TOML also wants DEL escaped.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}" for k, v in value.items())
            + "}"
        )
    raise TypeError(type(value))


def to_toml(data: dict[str, Any]) -> str:
    return "\n".join(f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}" for k, v in data.items()) + "\n"


_INSTRUCTIONS = {"FROM", "LABEL", "ENV", "RUN", "COPY", "WORKDIR", "ENTRYPOINT", "ARG", "USER"}
_ACL_NAME = re.compile(r"^!?[A-Za-z][A-Za-z0-9_]*$")


def check_dockerfile(text: str, packages: tuple[str, ...]) -> None:
    logical: list[str] = []
    current = ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip("\\") + " "
        if not line.endswith("\\"):
            logical.append(current.strip())
            current = ""
    assert not current, "dangling continuation"
    for line in logical:
        assert line.split(" ", 1)[0] in _INSTRUCTIONS, f"unexpected Dockerfile instruction: {line[:120]!r}"
    for pkg in packages:
        assert shlex.quote(pkg) in text, f"package {pkg!r} is not one quoted shell word"


def check_squid(files: dict[str, bytes], allowlist: tuple[str, ...]) -> None:
    conf = files["proxy/config/squid.conf"].decode()
    defined = {line.split()[1] for line in conf.splitlines() if line.startswith("acl ")}
    for line in conf.splitlines():
        if line.startswith("http_access "):
            words = line.split()[2:]
            assert words, line
            for word in words:
                assert _ACL_NAME.match(word) and word.lstrip("!") in defined | {"all", "manager"}, line
    listed = [line for line in files["proxy/config/allowed_domains.txt"].decode().splitlines() if line]
    assert sorted(listed) == sorted(set(listed))
    for entry in listed:
        assert squid_domain(entry) == entry
    assert set(listed) <= set(allowlist)


def pipeline(text: str) -> str:
    """parse -> plan -> render; returns how it ended. Raises AssertionError on escaped input."""
    try:
        cfg, _ = parse_config_text(text, "fuzz.toml")
    except ConfigError as exc:
        assert exc.issues and all(str(i) for i in exc.issues)
        return "config-error"
    outcome = "config-ok"
    for expert in cfg.experts:
        try:
            plan = compute_plan(
                cfg, PlanInputs(expert_key=expert, runtime="docker", env={"ANTHROPIC_API_KEY": "k"})
            )
        except (PlanError, UserError) as exc:
            assert str(exc)
            outcome = "plan-error"
            continue
        try:
            ctx = render_context(plan, cfg, RunSite(project="fuzz", workspace=Path("/tmp/fuzz-ws")))
        except RenderError as exc:
            # The planner accepted a value the renderer's last line of defence refused: a validation gap.
            raise AssertionError(f"planned but not renderable: {exc}") from exc
        files = dict(ctx.files)
        compose = parse_compose(files["compose.yaml"].decode(), Path("/tmp/fuzz-run"))
        expert_spec = compose.services["expert"]
        assert expert_spec.labels["sandbox.expert"] == plan.expert
        assert dict(expert_spec.environment) == dict(ctx.environment)
        assert expert_spec.image == ctx.expert_image and compose.services["proxy"].image == ctx.proxy_image
        assert expert_spec.mem_limit == plan.limits.memory and expert_spec.pids_limit == plan.limits.pids
        check_dockerfile(files["Dockerfile"].decode(), (*plan.packages.npm, *plan.packages.pypi))
        check_squid(files, plan.allowed_domains)
        json.loads(files["expert/perstack.json"])
        assert json.loads(files["expert/plan.json"])["expert"] == plan.expert
        outcome = "rendered"
    return outcome


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(config())
@example({"experts": {"a\nb": {"instruction": "x"}}})
@example(
    {
        "experts": {
            "ok": {
                "instruction": "$(id)",
                "skills": {"s": {"type": "mcpStdioSkill", "command": "npx", "packageName": "pkg; rm -rf /"}},
            }
        }
    }
)
@example(
    {
        "experts": {
            "ok": {
                "instruction": "i",
                "skills": {
                    "s": {
                        "type": "mcpStdioSkill",
                        "command": "npx",
                        "packageName": "a",
                        "allowedDomains": ["x.com\nhttp_access allow all"],
                    }
                },
            }
        }
    }
)
@example({"experts": {"ok": {"instruction": "i"}}, "sandbox": {"baseImage": "x\nRUN id"}})
def test_structured_configs_plan_or_fail_cleanly(data: dict[str, Any]) -> None:
    assert pipeline(to_toml(data)) in ("config-error", "plan-error", "rendered", "config-ok")


@FUZZ
@given(st.text(max_size=300))
@example(
    '[experts."x"]\ninstruction = "i"\n[experts."x".skills."s"]\ntype = "mcpStdioSkill"\ncommand = "npx"'
)
@example("[[experts]]\n")
@example("experts = 1\n")
def test_arbitrary_text_never_crashes(text: str) -> None:
    pipeline(text)


def test_the_generators_reach_every_outcome() -> None:
    """The fuzzer is only useful if it also produces configs that plan and render (and ones that do not)."""
    seen: set[str] = set()

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(config())
    def collect(data: dict[str, Any]) -> None:
        seen.add(pipeline(to_toml(data)))

    collect()
    assert {"config-error", "rendered"} <= seen, seen


@pytest.mark.parametrize("text", [to_toml({"experts": {"ok": {"instruction": "i"}}})])
def test_a_plain_config_renders(text: str) -> None:
    assert pipeline(text) == "rendered"


@pytest.mark.parametrize("entry", ["10.0.0.5:11434", "[fd00::1]:80"])
def test_a_private_opt_in_by_address_is_refused_before_render(entry: str) -> None:
    """Found by the fuzzer: an address (not a name) in allowPrivate passed validation and planning and was
    refused only by the proxy renderer's last-line check. The opt-in is by name (with --add-host NAME:IP),
    so the config or the plan must refuse it with a located error."""
    assert pipeline(
        to_toml({"experts": {"ok": {"instruction": "i"}}, "sandbox": {"allowPrivate": [entry]}})
    ) in (
        "config-error",
        "plan-error",
    )
