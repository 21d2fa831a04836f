"""`sandbox`: run Perstack Experts in a Docker sandbox built from perstack.toml.

The small public API, for embedding the tool instead of calling the `sandbox` command::

    load_config(path, cwd=...) -> LoadedConfig                 perstack.toml, validated (`sandbox.config`)
    compute_plan(config, PlanInputs(...)) -> SandboxPlan       what the Expert graph may do (`sandbox.plan`)
    resolve_sandbox(config, inputs_or_plan) -> ResolvedSandbox what the sandbox is: plan, CA bundle, image
                                                               tags, destinations (`sandbox.resolve`)
    run_with_runtime(RunOptions(...), emit) -> exit code       one run on any runtime (`sandbox.runtimes`)

and the error tree (`sandbox._errors`: `SandboxError`, `UserError`, `ConfigError`, ...), so callers catch
`sandbox.UserError` as the docs say. Everything else lives in the subpackages.

Why every name loads lazily (PEP 562 `__getattr__`): every `import sandbox.<anything>` runs this file
first, including the Expert container's entry (`sandbox internal container-run`) and the CLI, whose
start-up time is measured. Importing the config models, the planner or the runtime registry here would
make each of them pay for all of it; `import sandbox` itself imports nothing.
"""

TYPE_CHECKING = False  # not `from typing import TYPE_CHECKING`: `import sandbox` imports no module at all
if TYPE_CHECKING:
    from typing import Any

    from sandbox._errors import (
        AdapterError,
        AgentError,
        BuildError,
        ConfigError,
        ConfigIssue,
        DockerError,
        ModelAPIError,
        PlanError,
        RenderError,
        RunError,
        SandboxError,
        ToolError,
        UserError,
    )
    from sandbox._version import __version__
    from sandbox.config import load_config
    from sandbox.options import RunOptions
    from sandbox.plan import PlanInputs, SandboxPlan, compute_plan
    from sandbox.resolve import ResolvedSandbox, resolve_sandbox
    from sandbox.runtimes import run_with_runtime

__all__ = [
    "AdapterError",
    "AgentError",
    "BuildError",
    "ConfigError",
    "ConfigIssue",
    "DockerError",
    "ModelAPIError",
    "PlanError",
    "PlanInputs",
    "RenderError",
    "ResolvedSandbox",
    "RunError",
    "RunOptions",
    "SandboxError",
    "SandboxPlan",
    "ToolError",
    "UserError",
    "__version__",
    "compute_plan",
    "load_config",
    "resolve_sandbox",
    "run_with_runtime",
]

_ERRORS = (
    "AdapterError",
    "AgentError",
    "BuildError",
    "ConfigError",
    "ConfigIssue",
    "DockerError",
    "ModelAPIError",
    "PlanError",
    "RenderError",
    "RunError",
    "SandboxError",
    "ToolError",
    "UserError",
)
_HOME: dict[str, str] = {
    **dict.fromkeys(_ERRORS, "sandbox._errors"),
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


def __getattr__(name: str) -> "Any":
    """Import a public name's home module on first access (see the module docstring for why)."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
