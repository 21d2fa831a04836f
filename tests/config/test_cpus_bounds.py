"""The CPU limit Docker can enforce: 0.01 to 1024, from perstack.toml and from `--cpus` alike.

Below 0.01 the limit rounds to `NanoCpus=0`, which Docker reads as no limit at all; a huge value overflowed
the compose translation (found by the config fuzzer: `cpus = 1.797e299`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox._errors import ConfigError, PlanError
from sandbox.config import parse_config_text
from sandbox.docker import parse_compose
from sandbox.plan import PlanInputs, compute_plan
from sandbox.render import RunSite, render_context

BASE = '[experts."e"]\ninstruction = "x"\n'


@pytest.mark.parametrize(
    ("cpus", "message"),
    [
        ("1.797693134862316e+299", "is above the largest CPU limit (1024)"),
        ("0.001", "is below the smallest CPU limit (0.01)"),
        ("nan", "must be greater than 0"),  # refused by the bound before the range check
    ],
)
def test_the_file_refuses_a_limit_docker_cannot_enforce(cpus: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config_text(f"[sandbox]\ncpus = {cpus}\n{BASE}", "perstack.toml")
    (line,) = str(info.value).splitlines()
    assert line.startswith("perstack.toml: sandbox.cpus: ") and message in line


@pytest.mark.parametrize("cpus", [0.0, -1.0, 1e-12, 5000.0])
def test_the_flag_refuses_it_too(cpus: float) -> None:
    cfg, _ = parse_config_text(BASE, "perstack.toml")
    with pytest.raises(PlanError, match=r"^--cpus: "):
        compute_plan(cfg, PlanInputs(expert_key="e", runtime="docker", env={}, cpus=cpus))


def test_control_a_fractional_limit_reaches_the_container_spec(tmp_path: Path) -> None:
    cfg, _ = parse_config_text(f"[sandbox]\ncpus = 0.5\n{BASE}", "perstack.toml")
    plan = compute_plan(cfg, PlanInputs(expert_key="e", runtime="docker", env={}))
    assert plan.limits.cpus == 0.5
    flagged = compute_plan(cfg, PlanInputs(expert_key="e", runtime="docker", env={}, cpus=0.01))
    assert flagged.limits.cpus == 0.01
    ctx = render_context(plan, cfg, RunSite(project="p", workspace=tmp_path))
    compose = parse_compose(ctx.files["compose.yaml"].decode(), tmp_path)
    assert compose.services["expert"].nano_cpus == 500_000_000
