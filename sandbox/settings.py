"""The effective settings of one run: the command line over perstack.toml over the defaults table.

Why one module: the native runtime (on the host or in the container), the docker executor (which writes the
run's settings on the host and sizes its wall-clock guard) and the CLI runtimes all ask "which provider,
model and limits?". Each once answered on its own, and they disagreed: a falsy `or` made `--max-retries 0`
(or `maxRetries = 0`) a 5 for CLI runtimes. Here every limit goes through `_pick`, which takes an
explicit 0 as set, and every default comes from the one table, `sandbox._defaults` (`DEFAULT_*`, which
`sandbox.config` re-exports).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sandbox._defaults import (
    DEFAULT_CLI_TIMEOUT_MS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_STEPS,
    DEFAULT_MODEL,
    DEFAULT_PROVIDER,
    DEFAULT_REASONING_BUDGET,
    DEFAULT_TIMEOUT_MS,
)

if TYPE_CHECKING:
    from sandbox.config import PerstackConfig
    from sandbox.options import RunOptions

__all__ = [
    "DEFAULT_CLI_TIMEOUT_MS",
    "DEFAULT_PROVIDER",
    "CliLimits",
    "ResolvedSettings",
    "resolve_cli_limits",
    "resolve_provider",
    "resolve_settings",
]

_T = TypeVar("_T")


def _pick(default: _T, *values: _T | None) -> _T:
    """The first value that is set (not None), else `default`: a 0 given on purpose is kept."""
    return next((v for v in values if v is not None), default)


@dataclass(frozen=True)
class ResolvedSettings:
    """A run's provider, model and limits with every default applied (Perstack's RunSetting fields)."""

    provider: str
    provider_setting: dict[str, Any] = field(default_factory=dict)
    model: str = DEFAULT_MODEL
    temperature: float | None = None
    reasoning_budget: str | int = DEFAULT_REASONING_BUDGET
    max_steps: int = DEFAULT_MAX_STEPS
    max_retries: int = DEFAULT_MAX_RETRIES
    timeout_ms: int = DEFAULT_TIMEOUT_MS

    @property
    def wall_clock_s(self) -> float:
        """The docker sandbox's overall guard: every step may take one generation's timeout (the reference's
        `timeout x maxSteps`)."""
        return self.timeout_ms / 1000 * self.max_steps


@dataclass(frozen=True)
class CliLimits:
    """What a CLI runtime is told: the step limit someone set (None: the CLI keeps its own; the native
    default of 100 is not the CLI's), retries as recorded, and the whole run's timeout."""

    max_steps: int | None
    max_retries: int
    timeout_ms: int


def resolve_provider(flag: str | None, config: PerstackConfig) -> tuple[str, dict[str, Any]]:
    """(provider, its `[provider.setting]`): `--provider` over the file's over the default.

    The file's settings belong to the file's provider; an overriding `--provider` starts from none.
    """
    file_provider = config.provider.provider_name if config.provider else None
    provider = flag or file_provider or DEFAULT_PROVIDER
    setting = dict(config.provider.setting) if config.provider and provider == file_provider else {}
    return provider, setting


def resolve_settings(options: RunOptions) -> ResolvedSettings:
    """The settings of a native or docker run (`model`/`provider` given as "" count as unset)."""
    cfg = options.config
    provider, setting = resolve_provider(options.provider, cfg)
    default_budget: str | int = DEFAULT_REASONING_BUDGET
    budget = _pick(default_budget, options.reasoning_budget, cfg.reasoning_budget)
    if isinstance(budget, str) and budget.isdigit():
        budget = int(budget)
    return ResolvedSettings(
        provider=provider,
        provider_setting=setting,
        model=options.model or cfg.model or DEFAULT_MODEL,
        temperature=options.temperature,
        reasoning_budget=budget,
        max_steps=_pick(DEFAULT_MAX_STEPS, options.max_steps, cfg.max_steps),
        max_retries=_pick(DEFAULT_MAX_RETRIES, options.max_retries, cfg.max_retries),
        timeout_ms=_pick(DEFAULT_TIMEOUT_MS, options.timeout_ms, cfg.timeout),
    )


def resolve_cli_limits(options: RunOptions, settings: ResolvedSettings) -> CliLimits:
    """The limits of a run through a CLI agent. perstack.toml's `timeout` is per generation, which a CLI
    does not expose, so only `--timeout` (the whole run) applies there. `settings`: the run's, resolved
    once (`sandbox.request.RunRequest.settings`); the retries recorded are theirs."""
    return CliLimits(
        max_steps=_pick(None, options.max_steps, options.config.max_steps),
        max_retries=settings.max_retries,
        timeout_ms=_pick(DEFAULT_CLI_TIMEOUT_MS, options.timeout_ms),
    )
