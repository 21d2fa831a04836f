"""pydantic v2 models of perstack.toml (Perstack's schema, shared/reference/perstack.md §1).

Python attributes are snake_case; the TOML keys are Perstack's camelCase (aliases). Unknown keys are
rejected (`extra="forbid"`); the loader turns those errors into "did you mean" messages and downgrades
keys Perstack itself dropped (e.g. `temperature`) to warnings before validation.

Field-level validation (domains, package names, env names, URLs, sizes) lives in `_validators.py` and is
attached here with `Annotated[..., AfterValidator(...)]` so every consumer gets already-normalised values:
domains are lower-cased without trailing dot, for example.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DEFAULT_ENV_PATH",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MAX_STEPS",
    "DEFAULT_MODEL",
    "DEFAULT_PERSTACK_API_BASE_URL",
    "DEFAULT_REASONING_BUDGET",
    "DEFAULT_TIMEOUT_MS",
    "RUNTIME_NAMES",
    "Expert",
    "InteractiveSkill",
    "InteractiveTool",
    "McpSseSkill",
    "McpStdioSkill",
    "PerstackConfig",
    "ProviderConfig",
    "ProviderName",
    "ReasoningBudget",
    "RuntimeName",
    "SandboxSettings",
    "Skill",
]

DEFAULT_MODEL = "claude-sonnet-4-5"
DEFAULT_MAX_STEPS = 100
DEFAULT_MAX_RETRIES = 5
DEFAULT_TIMEOUT_MS = 5 * 60 * 1000
DEFAULT_REASONING_BUDGET = "low"
DEFAULT_ENV_PATH = (".env", ".env.local")
DEFAULT_PERSTACK_API_BASE_URL = "https://api.perstack.ai"

RuntimeName = Literal[
    "perstack", "local", "docker", "cursor", "claude-code", "gemini", "codex", "opencode", "copilot"
]
RUNTIME_NAMES: tuple[str, ...] = (
    "perstack",
    "local",
    "docker",
    "cursor",
    "claude-code",
    "gemini",
    "codex",
    "opencode",
    "copilot",
)

ProviderName = Literal[
    "anthropic", "openai", "google", "azure-openai", "amazon-bedrock", "google-vertex", "deepseek", "ollama"
]
ReasoningBudget = Literal["none", "minimal", "low", "medium", "high"] | Annotated[int, Field(ge=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class McpStdioSkill(_Model):
    type: Literal["mcpStdioSkill"]
    description: str | None = None
    rule: str | None = None
    command: str
    package_name: str | None = Field(default=None, alias="packageName")
    args: tuple[str, ...] | None = None
    pick: tuple[str, ...] = ()
    omit: tuple[str, ...] = ()
    required_env: tuple[str, ...] = Field(default=(), alias="requiredEnv")
    allowed_domains: tuple[str, ...] = Field(default=(), alias="allowedDomains")
    lazy_init: bool = Field(default=False, alias="lazyInit")


class McpSseSkill(_Model):
    type: Literal["mcpSseSkill"]
    description: str | None = None
    rule: str | None = None
    endpoint: str
    pick: tuple[str, ...] = ()
    omit: tuple[str, ...] = ()
    allowed_domains: tuple[str, ...] = Field(default=(), alias="allowedDomains")


class InteractiveTool(_Model):
    description: str | None = None
    input_json_schema: str = Field(alias="inputJsonSchema")


class InteractiveSkill(_Model):
    type: Literal["interactiveSkill"]
    description: str | None = None
    rule: str | None = None
    tools: dict[str, InteractiveTool] = Field(default_factory=dict)


Skill = Annotated[McpStdioSkill | McpSseSkill | InteractiveSkill, Field(discriminator="type")]


class Expert(_Model):
    version: str = "1.0.0"
    min_runtime_version: str | None = Field(default=None, alias="minRuntimeVersion")
    description: str | None = None
    instruction: str
    skills: dict[str, Skill] | None = None
    delegates: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    provider_tools: tuple[str, ...] = Field(default=(), alias="providerTools")
    provider_skills: tuple[dict[str, Any], ...] = Field(default=(), alias="providerSkills")
    provider_tool_options: dict[str, Any] | None = Field(default=None, alias="providerToolOptions")


class ProviderConfig(_Model):
    provider_name: ProviderName = Field(alias="providerName")
    setting: dict[str, Any] = Field(default_factory=dict)


class PerstackConfig(_Model):
    runtime: RuntimeName | None = None
    model: str | None = None
    reasoning_budget: ReasoningBudget | None = Field(default=None, alias="reasoningBudget")
    max_steps: int | None = Field(default=None, alias="maxSteps", ge=1)
    max_retries: int | None = Field(default=None, alias="maxRetries", ge=0)
    timeout: int | None = Field(default=None, ge=1)
    env_path: tuple[str, ...] | None = Field(default=None, alias="envPath")
    provider: ProviderConfig | None = None
    perstack_api_base_url: str | None = Field(default=None, alias="perstackApiBaseUrl")
    perstack_base_skill_command: tuple[str, ...] | None = Field(default=None, alias="perstackBaseSkillCommand")
    experts: dict[str, Expert] = Field(default_factory=dict)
    sandbox: "SandboxSettings | None" = None


class SandboxSettings(_Model):
    """`[sandbox]`: this tool's own settings. Perstack ignores unknown tables, so a file using it stays portable.

    Every key has a CLI twin that wins over it (`--base-image`, `--ca-cert`, `--memory`, ...).
    """

    base_image: str | None = Field(default=None, alias="baseImage")
    node_image: str | None = Field(default=None, alias="nodeImage")
    ca_cert: str | None = Field(default=None, alias="caCert")
    memory: str | None = None
    cpus: float | None = Field(default=None, gt=0)
    pids: int | None = Field(default=None, ge=16)
    tmpfs_size: str | None = Field(default=None, alias="tmpfsSize")
    # Private destinations the proxy may reach although they resolve to private addresses: "host:port".
    allow_private: tuple[str, ...] = Field(default=(), alias="allowPrivate")
    # Static name resolution for the proxy: "name:ip".
    add_hosts: tuple[str, ...] = Field(default=(), alias="addHosts")


PerstackConfig.model_rebuild()
