"""perstack.toml for `sandbox`: models, discovery and loading, env files, the provider table, validators.

`load_config()` finds and validates the file and returns a `LoadedConfig`; every problem in it comes back
as one `ConfigError` with one located line per issue. The validator helpers are exported so CLI flags are
checked exactly like the file (`--allow-private`, `--add-host`, `--env`...).
"""

from ._envfile import is_host_only, load_env_files
from ._errors_format import validation_issues
from ._load import LoadedConfig, load_config, parse_config_text
from ._model import (
    DEFAULT_ENV_PATH,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_STEPS,
    DEFAULT_MODEL,
    DEFAULT_PERSTACK_API_BASE_URL,
    DEFAULT_REASONING_BUDGET,
    DEFAULT_TIMEOUT_MS,
    RUNTIME_NAMES,
    SKILL_TYPES,
    Expert,
    InteractiveSkill,
    InteractiveTool,
    McpSseSkill,
    McpStdioSkill,
    PerstackConfig,
    ProviderConfig,
    ProviderName,
    ReasoningBudget,
    RuntimeName,
    SandboxSettings,
    Skill,
)
from ._net import normalize_domain, parse_add_host, parse_host_port, validate_base_url, validate_endpoint_url
from ._packages import PackageSpec, launcher_parts, package_spec, parse_package
from ._providers import PROVIDERS, ProviderSpec, provider_spec
from ._validators import (
    is_registry_key,
    size_bytes,
    validate_cpus,
    validate_env_name,
    validate_expert_key,
    validate_size,
)

__all__ = [
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
]
