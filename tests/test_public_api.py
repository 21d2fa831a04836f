"""The top-level `sandbox` API is deliberate and lazy: pin both (httpx `test_exported_members.py` style).

The docs tell users to catch `sandbox.UserError`; that must stay true. And `import sandbox` runs before every
submodule import, the Expert container's entry included, so it must import nothing.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import sandbox

EXPECTED = {
    # The error tree (sandbox._errors).
    "AdapterError": "sandbox._errors",
    "AgentError": "sandbox._errors",
    "BuildError": "sandbox._errors",
    "ConfigError": "sandbox._errors",
    "ConfigIssue": "sandbox._errors",
    "DockerError": "sandbox._errors",
    "ModelAPIError": "sandbox._errors",
    "PlanError": "sandbox._errors",
    "RenderError": "sandbox._errors",
    "RunError": "sandbox._errors",
    "SandboxError": "sandbox._errors",
    "ToolError": "sandbox._errors",
    "UserError": "sandbox._errors",
    # Config -> plan -> the resolved sandbox -> a run.
    "__version__": "sandbox._version",
    "load_config": "sandbox.config",
    "PlanInputs": "sandbox.plan",
    "SandboxPlan": "sandbox.plan",
    "compute_plan": "sandbox.plan",
    "ResolvedSandbox": "sandbox.resolve",
    "resolve_sandbox": "sandbox.resolve",
    "RunOptions": "sandbox.options",
    "run_with_runtime": "sandbox.runtimes",
}


def test_all_is_exactly_the_public_api_in_ruff_order() -> None:
    exported = sandbox.__all__
    assert set(exported) == set(EXPECTED)
    assert len(exported) == len(set(exported))
    # ruff's RUF022 order: CONSTANTS, then Classes, then the rest (`__version__` among them), alphabetical.
    assert exported == sorted(exported, key=lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_name_is_its_home_modules_object(name: str) -> None:
    home = importlib.import_module(EXPECTED[name])
    assert getattr(sandbox, name) is getattr(home, name)
    assert name in dir(sandbox)
    exec(f"from sandbox import {name}", {})  # the spelling users write


def test_errors_are_one_tree() -> None:
    for name, home in EXPECTED.items():
        if home == "sandbox._errors" and name != "ConfigIssue":
            assert issubclass(getattr(sandbox, name), sandbox.SandboxError)
    assert issubclass(sandbox.ConfigError, sandbox.UserError)


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = sandbox.nope
    assert not hasattr(sandbox, "run_in_docker")  # the executor is `sandbox.docker`'s, not the API


def test_import_sandbox_imports_nothing() -> None:
    code = (
        "import sys; before = set(sys.modules); import sandbox; "
        "print(sorted(set(sys.modules) - before - {'sandbox'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
