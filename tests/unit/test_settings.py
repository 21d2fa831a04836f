"""`sandbox.settings`: one resolution of a run's settings, with one defaults table (`sandbox._defaults`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from sandbox import _defaults
from sandbox.config import parse_config_text
from sandbox.options import RunOptions
from sandbox.settings import CliLimits, resolve_cli_limits, resolve_provider, resolve_settings


def options(toml: str = "", **flags: Any) -> RunOptions:
    config, _ = parse_config_text(toml + '[experts."a"]\ninstruction = "Do it."\n', "perstack.toml")
    return dataclasses.replace(
        RunOptions(config=config, config_path=Path("perstack.toml"), expert_key="a", query="q"), **flags
    )


def cli_limits(o: RunOptions) -> CliLimits:
    """A CLI run's limits, from the settings resolved once (as `run_cli` does with its request's)."""
    return resolve_cli_limits(o, resolve_settings(o))


def test_the_defaults_table_applies_when_nothing_is_set() -> None:
    s = resolve_settings(options())
    assert (s.provider, s.provider_setting, s.model) == (
        _defaults.DEFAULT_PROVIDER,
        {},
        _defaults.DEFAULT_MODEL,
    )
    assert s.max_steps == _defaults.DEFAULT_MAX_STEPS and s.max_retries == _defaults.DEFAULT_MAX_RETRIES
    assert (
        s.timeout_ms == _defaults.DEFAULT_TIMEOUT_MS
        and s.reasoning_budget == _defaults.DEFAULT_REASONING_BUDGET
    )
    assert s.wall_clock_s == _defaults.DEFAULT_TIMEOUT_MS / 1000 * _defaults.DEFAULT_MAX_STEPS
    cli = cli_limits(options())
    assert cli.max_steps is None and cli.timeout_ms == _defaults.DEFAULT_CLI_TIMEOUT_MS
    assert cli.max_retries == _defaults.DEFAULT_MAX_RETRIES


@pytest.mark.parametrize(
    ("toml", "flags"), [("maxRetries = 0\n", {}), ("maxRetries = 3\n", {"max_retries": 0})]
)
def test_zero_retries_is_a_setting_for_every_runtime(toml: str, flags: dict[str, object]) -> None:
    assert resolve_settings(options(toml, **flags)).max_retries == 0
    assert cli_limits(options(toml, **flags)).max_retries == 0


def test_flags_beat_the_file_and_the_files_provider_setting_stays_with_its_provider() -> None:
    toml = (
        'model = "m-file"\nmaxSteps = 7\ntimeout = 2000\nreasoningBudget = "high"\n'
        '[provider]\nproviderName = "openai"\n[provider.setting]\nbaseUrl = "https://llm.example.com/v1"\n'
    )
    s = resolve_settings(options(toml))
    assert (s.provider, s.model, s.max_steps, s.timeout_ms, s.reasoning_budget) == (
        "openai",
        "m-file",
        7,
        2000,
        "high",
    )
    assert s.provider_setting == {"baseUrl": "https://llm.example.com/v1"}
    s = resolve_settings(
        options(toml, provider="anthropic", model="m-flag", max_steps=3, reasoning_budget="1024")
    )
    assert (s.provider, s.provider_setting, s.model, s.max_steps, s.reasoning_budget) == (
        "anthropic",
        {},
        "m-flag",
        3,
        1024,
    )
    assert resolve_provider("openai", options(toml).config)[1] == {"baseUrl": "https://llm.example.com/v1"}
    # A CLI agent's step limit is only what someone set; its timeout is the whole run's, never the file's.
    cli = cli_limits(options(toml))
    assert cli.max_steps == 7 and cli.timeout_ms == _defaults.DEFAULT_CLI_TIMEOUT_MS
    assert cli_limits(options(toml, timeout_ms=900)).timeout_ms == 900
