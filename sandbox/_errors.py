"""Every error `sandbox` raises on purpose.

The tree::

    SandboxError                 base; the CLI prints str(err) on one line and exits 1
    ├── UserError                bad input from the person running sandbox (flags, files, names)
    │   └── ConfigError          perstack.toml / env files: one ConfigIssue per problem
    ├── PlanError                an Expert graph that cannot be turned into a sandbox plan
    ├── RenderError              a template or value that cannot be rendered safely
    ├── DockerError              Docker client/engine/compose problems (always with a fix hint)
    │   ├── BuildError           an image build failed (names the step, keeps the last log lines)
    │   └── RunError             a sandbox failed to start or died
    ├── AgentError               failures while running an Expert
    │   ├── ModelAPIError        a provider call failed
    │   └── ToolError            a skill/tool failed
    └── AdapterError             a CLI runtime (claude-code, codex, ...) failed

`UserError` and its children are the user's to fix; everything else is a run-time failure. Both exit 1:
the split exists so messages can say "your config" versus "the engine".
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
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
]


class SandboxError(Exception):
    """Base of every deliberate error. `str()` is a complete one-line message for the user."""


class UserError(SandboxError):
    """Bad input: a flag, a path, a name. Fixable by the user."""


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in one file at one key path, e.g. `experts."a".skills."b".allowedDomains[1]`."""

    file: str
    path: str
    message: str
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}" if self.path else self.file
        return f"{where}: {self.message}"


class ConfigError(UserError):
    """perstack.toml (or an env file) is invalid. Carries every issue found, not just the first."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


class PlanError(SandboxError):
    """The Expert graph cannot be planned (unknown Expert, unknown local delegate...)."""


class RenderError(SandboxError):
    """A value cannot be rendered safely into a Dockerfile, compose file or squid.conf."""


class DockerError(SandboxError):
    """Docker is missing, unreachable or misbehaving. `hint` says how to fix it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(f"{message} ({hint})" if hint else message)


class BuildError(DockerError):
    """An image build failed. `step` is the failing Dockerfile instruction, `log_tail` its last lines."""

    def __init__(self, message: str, *, step: str | None = None, log_tail: list[str] | None = None) -> None:
        self.step = step
        self.log_tail = log_tail or []
        super().__init__(message)


class RunError(DockerError):
    """The sandbox could not be started or died while running."""


class AgentError(SandboxError):
    """A failure while running an Expert."""


class ModelAPIError(AgentError):
    """A provider request failed. `retryable` says whether backing off and retrying may help."""

    def __init__(self, message: str, *, status_code: int | None = None, retryable: bool = False) -> None:
        self.status_code = status_code
        self.retryable = retryable
        super().__init__(message)


class ToolError(AgentError):
    """A skill or tool failed."""


class AdapterError(SandboxError):
    """A CLI runtime adapter failed (binary missing, auth missing, CLI error)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(f"{message} ({hint})" if hint else message)
