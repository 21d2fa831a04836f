"""The public surface of sandbox.config is deliberate: pin it (httpx `test_exported_members.py` style)."""

from __future__ import annotations

import sandbox.config


def test_all_is_sorted_and_complete() -> None:
    exported = sandbox.config.__all__
    # ruff's RUF022 order: CONSTANTS, then Classes, then functions, each alphabetical.
    assert exported == sorted(exported, key=lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n))
    assert set(exported) == {
        "DEFAULT_ENV_PATH",
        "DEFAULT_MAX_RETRIES",
        "DEFAULT_MAX_STEPS",
        "DEFAULT_MODEL",
        "DEFAULT_PERSTACK_API_BASE_URL",
        "DEFAULT_REASONING_BUDGET",
        "DEFAULT_TIMEOUT_MS",
        "PROVIDERS",
        "RUNTIME_NAMES",
        "SKILL_TYPES",
        "Expert",
        "InteractiveSkill",
        "InteractiveTool",
        "LoadedConfig",
        "McpSseSkill",
        "McpStdioSkill",
        "PackageSpec",
        "PerstackConfig",
        "ProviderConfig",
        "ProviderName",
        "ProviderSpec",
        "ReasoningBudget",
        "RuntimeName",
        "SandboxSettings",
        "Skill",
        "is_host_only",
        "is_registry_key",
        "launcher_parts",
        "load_config",
        "load_env_files",
        "normalize_domain",
        "package_spec",
        "parse_add_host",
        "parse_config_text",
        "parse_host_port",
        "parse_package",
        "provider_spec",
        "size_bytes",
        "validate_base_url",
        "validate_cpus",
        "validate_endpoint_url",
        "validate_env_name",
        "validate_expert_key",
        "validate_size",
        "validation_issues",
    }
    for name in exported:
        assert getattr(sandbox.config, name) is not None
