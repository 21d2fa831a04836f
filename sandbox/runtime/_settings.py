"""The effective settings of one job: CLI options over perstack.toml over Perstack's defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandbox.config import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_STEPS,
    DEFAULT_MODEL,
    DEFAULT_REASONING_BUDGET,
    DEFAULT_TIMEOUT_MS,
)
from sandbox.options import RunOptions

__all__ = ["ResolvedSettings", "resolve_settings"]


@dataclass(frozen=True)
class ResolvedSettings:
    provider: str
    provider_setting: dict[str, Any] = field(default_factory=dict)
    model: str = DEFAULT_MODEL
    temperature: float | None = None
    reasoning_budget: str | int = DEFAULT_REASONING_BUDGET
    max_steps: int = DEFAULT_MAX_STEPS
    max_retries: int = DEFAULT_MAX_RETRIES
    timeout_ms: int = DEFAULT_TIMEOUT_MS


def resolve_settings(options: RunOptions) -> ResolvedSettings:
    cfg = options.config
    file_provider = cfg.provider.provider_name if cfg.provider else None
    provider = options.provider or file_provider or "anthropic"
    # `[provider.setting]` belongs to the file's provider; an overriding --provider starts from no settings.
    setting = dict(cfg.provider.setting) if cfg.provider and provider == file_provider else {}
    budget = options.reasoning_budget if options.reasoning_budget is not None else cfg.reasoning_budget
    if isinstance(budget, str) and budget.isdigit():
        budget = int(budget)
    return ResolvedSettings(
        provider=provider,
        provider_setting=setting,
        model=options.model or cfg.model or DEFAULT_MODEL,
        temperature=options.temperature,
        reasoning_budget=budget if budget is not None else DEFAULT_REASONING_BUDGET,
        max_steps=options.max_steps or cfg.max_steps or DEFAULT_MAX_STEPS,
        max_retries=options.max_retries
        if options.max_retries is not None
        else (cfg.max_retries if cfg.max_retries is not None else DEFAULT_MAX_RETRIES),
        timeout_ms=options.timeout_ms or cfg.timeout or DEFAULT_TIMEOUT_MS,
    )
