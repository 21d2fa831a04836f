"""pydantic v2 models of perstack.toml (Perstack's schema, shared/reference/perstack.md §1).

Python attributes are snake_case; the TOML keys are Perstack's camelCase (aliases). Unknown keys are
rejected (`extra="forbid"`); the loader turns those errors into "did you mean" messages and downgrades
keys Perstack itself dropped (e.g. `temperature`) to warnings before validation.

Field-level validation (domains, package names, env names, URLs, sizes) lives in `_validators.py`,
`_net.py` and `_packages.py` and is attached here with `Annotated[..., AfterValidator(...)]` so every
consumer gets already-normalised values: domains are lower-cased without trailing dot, for example.
Checks that span fields (exactly one of `packageName`/`args`, provider settings per provider, a tool's
`name` matching its key) are model or field validators that report each problem at its exact location
(`_issues.issues_error`). Booleans and integers are strict: TOML has real types, and `lazyInit = "no"`
must not quietly become `True`.

Validating with `context={"base_dir": Path}` resolves `[sandbox].caCert` against that directory; the
loader passes the config file's directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    Strict,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)

# The defaults table lives in a module that imports nothing, so the container's entry can read it before
# pydantic loads (`sandbox._defaults`); these are the names perstack.toml's defaults have always had.
from sandbox._defaults import (
    DEFAULT_ENV_PATH,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_STEPS,
    DEFAULT_MODEL,
    DEFAULT_PERSTACK_API_BASE_URL,
    DEFAULT_REASONING_BUDGET,
    DEFAULT_TIMEOUT_MS,
)
from sandbox.runtimes import BUILTIN_NAMES, canonical_runtime, runtime_names

from ._issues import Loc, issue, issues_error, show, with_suggestion
from ._net import normalize_domain, parse_add_host, parse_host_port, validate_base_url, validate_endpoint_url
from ._packages import parse_package
from ._providers import PROVIDERS, setting_issues
from ._validators import (
    check_description,
    check_instruction,
    validate_command,
    validate_cpus,
    validate_docker_image,
    validate_env_name,
    validate_expert_key,
    validate_json_object_text,
    validate_path_text,
    validate_semver,
    validate_size,
    validate_skill_name,
    validate_tag,
    validate_tool_name,
)

__all__ = [
    "DEFAULT_ENV_PATH",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MAX_STEPS",
    "DEFAULT_MODEL",
    "DEFAULT_PERSTACK_API_BASE_URL",
    "DEFAULT_REASONING_BUDGET",
    "DEFAULT_TIMEOUT_MS",
    "RUNTIME_NAMES",
    "SKILL_TYPES",
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

RUNTIME_NAMES: tuple[str, ...] = BUILTIN_NAMES
"""The built-in runtimes' names (the registry's); plugins add theirs (`runtime_names()`)."""
SKILL_TYPES: tuple[str, ...] = ("mcpStdioSkill", "mcpSseSkill", "interactiveSkill")
_REASONING_LEVELS = ("none", "minimal", "low", "medium", "high")


def _not_one_of(value: Any, choices: tuple[str, ...], what: str, extra: str = "") -> Exception:
    options = ", ".join(f"`{c}`" for c in choices)
    message = f"{show(value)} is not a valid {what} (expected {options}{extra})"
    return issue(with_suggestion(message, str(value), choices))


def _one_of(choices: tuple[str, ...], what: str, extra: str = "") -> WrapValidator:
    """Replace pydantic's per-branch errors for a Literal (or Literal | int) with one located message."""

    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise _not_one_of(value, choices, what, extra) from None

    return WrapValidator(validate)


def _runtime(value: Any) -> str:
    """A runtime the registry knows (`sandbox.runtimes._registry`): built-in names are data, a plugin's is
    its entry point's, so this imports no adapter; the value is kept as written (`local` stays `local`)."""
    if isinstance(value, str) and canonical_runtime(value) is not None:
        return value
    raise _not_one_of(value, runtime_names(), "runtime")


def _memory(value: str) -> str:
    """Docker refuses containers with less than 6 MiB of memory; say so at load time instead."""
    return validate_size(value, minimum=6 * 1024 * 1024, minimum_text="6m")


ProviderName = Literal[
    "anthropic", "openai", "google", "azure-openai", "amazon-bedrock", "google-vertex", "deepseek", "ollama"
]
ReasoningBudget = Literal["none", "minimal", "low", "medium", "high"] | Annotated[int, Field(ge=0)]

# The same types as fields: one message per bad value instead of one per union branch.
_ProviderNameField = Annotated[ProviderName, _one_of(tuple(PROVIDERS), "providerName")]
_ReasoningBudgetField = Annotated[
    Literal["none", "minimal", "low", "medium", "high"] | Annotated[int, Strict(), Field(ge=0)],
    _one_of(_REASONING_LEVELS, "reasoningBudget", " or a non-negative integer"),
]
RuntimeName = Annotated[str, PlainValidator(_runtime)]
"""A runtime's name: a built-in one (`RUNTIME_NAMES`), an alias or an installed plugin's."""
_RuntimeField = RuntimeName

StrictBool = Annotated[bool, Strict()]
StrictInt = Annotated[int, Strict()]
Domain = Annotated[str, AfterValidator(normalize_domain)]
EnvName = Annotated[str, AfterValidator(validate_env_name)]
ExpertKey = Annotated[str, AfterValidator(validate_expert_key)]
SkillName = Annotated[str, AfterValidator(validate_skill_name)]
ToolName = Annotated[str, AfterValidator(validate_tool_name)]
Tag = Annotated[str, AfterValidator(validate_tag)]
SemVer = Annotated[str, AfterValidator(validate_semver)]
Command = Annotated[str, AfterValidator(validate_command)]
Description = Annotated[str, AfterValidator(check_description)]
Instruction = Annotated[str, AfterValidator(check_instruction)]
JsonObjectText = Annotated[str, AfterValidator(validate_json_object_text)]
EndpointUrl = Annotated[str, AfterValidator(validate_endpoint_url)]
HttpsUrl = Annotated[str, AfterValidator(validate_base_url)]
ImageRef = Annotated[str, AfterValidator(validate_docker_image)]
PathText = Annotated[str, AfterValidator(validate_path_text)]
MemorySize = Annotated[str, AfterValidator(_memory)]
Size = Annotated[str, AfterValidator(validate_size)]
QuotaSize = Annotated[str, AfterValidator(lambda v: validate_size(v, minimum=1 << 20, minimum_text="1m"))]


def _format_host_port(value: str) -> str:
    host, port = parse_host_port(value)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _format_add_host(value: str) -> str:
    name, ip = parse_add_host(value)
    return f"{name}:{ip}"


HostPort = Annotated[str, AfterValidator(_format_host_port)]
AddHost = Annotated[str, AfterValidator(_format_add_host)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class McpStdioSkill(_Model):
    type: Literal["mcpStdioSkill"]
    description: Description | None = None
    rule: Description | None = None
    command: Command
    package_name: str | None = Field(default=None, alias="packageName")
    args: tuple[str, ...] | None = None
    pick: tuple[str, ...] = ()
    omit: tuple[str, ...] = ()
    required_env: tuple[EnvName, ...] = Field(default=(), alias="requiredEnv")
    allowed_domains: tuple[Domain, ...] = Field(default=(), alias="allowedDomains")
    lazy_init: StrictBool = Field(default=False, alias="lazyInit")

    @field_validator("package_name")
    @classmethod
    def _package(cls, value: str | None, info: ValidationInfo) -> str | None:
        """npm rules for npx/node/npm, PyPI rules for uvx/python/pip, either for anything else."""
        if value is None:
            return None
        command = info.data.get("command")
        parse_package(value, command if isinstance(command, str) else None)
        return value

    @model_validator(mode="after")
    def _package_or_args(self) -> McpStdioSkill:
        """Perstack builds the argv from exactly one of them (`skill-manager/command-args.ts`)."""
        if self.package_name is not None and self.args is not None:
            raise issues_error("McpStdioSkill", [(("args",), "set either `packageName` or `args`, not both")])
        if self.package_name is None and self.args is None:
            raise issues_error(
                "McpStdioSkill", [((), "needs `packageName` (a package to run) or `args` (the full argv)")]
            )
        return self


class McpSseSkill(_Model):
    type: Literal["mcpSseSkill"]
    description: Description | None = None
    rule: Description | None = None
    endpoint: EndpointUrl
    pick: tuple[str, ...] = ()
    omit: tuple[str, ...] = ()
    allowed_domains: tuple[Domain, ...] = Field(default=(), alias="allowedDomains")


class InteractiveTool(_Model):
    # Perstack's runtime derives a tool's name from its table key; some configs repeat it as `name`.
    name: ToolName | None = None
    description: Description | None = None
    input_json_schema: JsonObjectText = Field(alias="inputJsonSchema")


class InteractiveSkill(_Model):
    type: Literal["interactiveSkill"]
    description: Description | None = None
    rule: Description | None = None
    tools: dict[ToolName, InteractiveTool] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names_match_keys(self) -> InteractiveSkill:
        """A `name` that differs from the key would be silently replaced by the key at run time."""
        found: list[tuple[Loc, str]] = [
            (("tools", key, "name"), f"{show(tool.name)} does not match the table key {show(key)}")
            for key, tool in self.tools.items()
            if tool.name is not None and tool.name != key
        ]
        if found:
            raise issues_error("InteractiveSkill", found)
        return self


Skill = Annotated[McpStdioSkill | McpSseSkill | InteractiveSkill, Field(discriminator="type")]

# providerToolOptions (Perstack `provider-tools.ts`): option → key → kind.
_TOOL_OPTIONS: dict[str, dict[str, str]] = {
    "webSearch": {"maxUses": "count", "allowedDomains": "domains"},
    "webFetch": {"maxUses": "count"},
    "fileSearch": {"vectorStoreIds": "strings", "maxNumResults": "count"},
}
_BUILTIN_PROVIDER_SKILLS = ("pdf", "docx", "pptx", "xlsx")


def _check_option(loc: Loc, kind: str, value: Any, found: list[tuple[Loc, str]]) -> Any:
    if kind == "count":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            found.append((loc, "must be a positive integer"))
        return value
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        found.append((loc, "must be an array of strings"))
        return value
    if kind == "strings":
        return tuple(value)
    normalised: list[str] = []
    for index, item in enumerate(value):
        try:
            normalised.append(normalize_domain(item))
        except ValueError as exc:
            found.append(((*loc, index), str(exc)))
    return tuple(normalised)


def _check_tool_options(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Check `providerToolOptions` against Perstack's schema; its `allowedDomains` come out normalised."""
    if value is None:
        return None
    found: list[tuple[Loc, str]] = []
    result: dict[str, Any] = {}
    for option, body in value.items():
        keys = _TOOL_OPTIONS.get(option)
        if keys is None:
            found.append(((option,), with_suggestion("unknown provider tool option", option, _TOOL_OPTIONS)))
            continue
        if not isinstance(body, dict):
            found.append(((option,), "must be a table"))
            continue
        checked: dict[str, Any] = {}
        for key, item in body.items():
            kind = keys.get(key)
            if kind is None:
                found.append(((option, key), with_suggestion(f"unknown {option} option", key, keys)))
                continue
            checked[key] = _check_option((option, key), kind, item, found)
        result[option] = checked
    if found:
        raise issues_error("providerToolOptions", found)
    return result


def _check_provider_skills(value: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
    """Anthropic agent skills: `{type="builtin", skillId}` or `{type="custom", name, definition}`."""
    found: list[tuple[Loc, str]] = []
    shapes = {"builtin": ("type", "skillId"), "custom": ("type", "name", "definition")}
    for index, item in enumerate(value):
        kind = item.get("type")
        if kind not in shapes:
            found.append(
                ((index, "type"), f"{show(kind)} is not a provider skill type (`builtin` or `custom`)")
            )
            continue
        allowed = shapes[str(kind)]
        for key in item:
            if key not in allowed:
                found.append(
                    ((index, key), with_suggestion(f"unknown key for a {kind} provider skill", key, allowed))
                )
        for key in allowed[1:]:
            if not isinstance(item.get(key), str) or not item[key]:
                found.append(((index, key), "is required and must be a non-empty string"))
        skill_id = item.get("skillId")
        unknown_builtin = isinstance(skill_id, str) and skill_id and skill_id not in _BUILTIN_PROVIDER_SKILLS
        if kind == "builtin" and unknown_builtin:
            options = ", ".join(f"`{s}`" for s in _BUILTIN_PROVIDER_SKILLS)
            message = f"{show(skill_id)} is not a builtin skill (expected {options})"
            found.append(
                ((index, "skillId"), with_suggestion(message, str(skill_id), _BUILTIN_PROVIDER_SKILLS))
            )
    if found:
        raise issues_error("providerSkills", found)
    return value


class Expert(_Model):
    version: SemVer = "1.0.0"
    min_runtime_version: str | None = Field(default=None, alias="minRuntimeVersion")
    description: Description | None = None
    instruction: Instruction
    skills: dict[SkillName, Skill] | None = None
    delegates: tuple[ExpertKey, ...] = ()
    tags: tuple[Tag, ...] = ()
    provider_tools: tuple[str, ...] = Field(default=(), alias="providerTools")
    provider_skills: Annotated[tuple[dict[str, Any], ...], AfterValidator(_check_provider_skills)] = Field(
        default=(), alias="providerSkills"
    )
    provider_tool_options: Annotated[dict[str, Any] | None, AfterValidator(_check_tool_options)] = Field(
        default=None, alias="providerToolOptions"
    )


class ProviderConfig(_Model):
    provider_name: _ProviderNameField = Field(alias="providerName")
    setting: dict[str, Any] = Field(default_factory=dict)

    @field_validator("setting")
    @classmethod
    def _setting(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """Keys and values per provider (the table in `_providers.py`); skipped if the name is bad."""
        provider_name = info.data.get("provider_name")
        if isinstance(provider_name, str):
            found = setting_issues(provider_name, value)
            if found:
                raise issues_error("setting", found)
        return value


class SandboxSettings(_Model):
    """`[sandbox]`: this tool's own settings. Perstack ignores unknown tables: a file using it stays portable.

    Every key has a CLI twin that wins over it (`--base-image`, `--ca-cert`, `--memory`, ...).
    """

    base_image: ImageRef | None = Field(default=None, alias="baseImage")
    node_image: ImageRef | None = Field(default=None, alias="nodeImage")
    ca_cert: PathText | None = Field(default=None, alias="caCert")
    memory: MemorySize | None = None
    cpus: Annotated[float, Strict(), Field(gt=0), AfterValidator(validate_cpus)] | None = None
    pids: StrictInt | None = Field(default=None, ge=16)
    tmpfs_size: Size | None = Field(default=None, alias="tmpfsSize")
    workspace_quota: QuotaSize | None = Field(default=None, alias="workspaceQuota")
    # Private destinations the proxy may reach although they resolve to private addresses: "host:port".
    allow_private: tuple[HostPort, ...] = Field(default=(), alias="allowPrivate")
    # Static name resolution for the proxy: "name:ip".
    add_hosts: tuple[AddHost, ...] = Field(default=(), alias="addHosts")

    @field_validator("ca_cert")
    @classmethod
    def _resolve_ca_cert(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Relative paths are relative to the config file, like every other path a config names."""
        base_dir = info.context.get("base_dir") if isinstance(info.context, dict) else None
        if value is None or not isinstance(base_dir, Path):
            return value
        return str((base_dir / Path(value).expanduser()).resolve())


class PerstackConfig(_Model):
    runtime: _RuntimeField | None = None
    model: str | None = None
    reasoning_budget: _ReasoningBudgetField | None = Field(default=None, alias="reasoningBudget")
    max_steps: StrictInt | None = Field(default=None, alias="maxSteps", ge=1)
    max_retries: StrictInt | None = Field(default=None, alias="maxRetries", ge=0)
    timeout: StrictInt | None = Field(default=None, ge=1)
    env_path: tuple[PathText, ...] | None = Field(default=None, alias="envPath")
    provider: ProviderConfig | None = None
    perstack_api_base_url: HttpsUrl | None = Field(default=None, alias="perstackApiBaseUrl")
    perstack_base_skill_command: tuple[str, ...] | None = Field(
        default=None, alias="perstackBaseSkillCommand"
    )
    experts: dict[ExpertKey, Expert] = Field(default_factory=dict)
    sandbox: SandboxSettings | None = None
