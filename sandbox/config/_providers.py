"""The provider table: one row per Perstack `providerName`, the only place provider facts live.

Why one table: Perstack keeps three tables that disagree (shared/reference/perstack.md §1.5): the env the
runtime reads (`apps/perstack/src/lib/provider-config.ts`), the env the docker adapter forwards
(`env-resolver.ts`) and the domains it allowlists (`proxy-generator.ts`). Here each row says what the
runtime really reads, and computes the exact API hosts from the settings and env instead of wildcards,
so forwarding, allowlisting and validation cannot drift apart.

Fixes to the reference, per row below: Google forwards GOOGLE_GENERATIVE_AI_API_KEY (not GOOGLE_API_KEY),
Azure AZURE_API_KEY (not AZURE_OPENAI_API_KEY), Bedrock adds the optional AWS_SESSION_TOKEN, Bedrock and
Vertex get their exact regional host (the reference's `bedrock-runtime.*.amazonaws.com` has a mid-label
wildcard Squid cannot express, and `*.aiplatform.googleapis.com` does not match
`us-central1-aiplatform.googleapis.com`), Vertex also gets the OAuth token host, and a custom base URL
(setting or env) *replaces* the default host instead of being silently blocked.

`library_id` is the provider name in pydantic-ai 2.x (the native runtime's model library); 1.x called
Vertex `google-vertex` and the Gemini API `google-gla`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._issues import Loc, show, with_suggestion
from ._net import check_hostname, url_host, validate_base_url
from ._validators import validate_header_name, validate_header_value

__all__ = ["PROVIDERS", "ProviderSpec", "provider_spec", "setting_issues"]

HostsFn = Callable[[Mapping[str, Any], Mapping[str, str]], tuple[str, ...]]
# A setting key's expected value: "str", "bool", "url" (a validated base URL), "label" (one DNS label,
# because it becomes part of a host name) or "headers" (a table of header names to strings).
SettingKind = str

_LOCAL_OLLAMA = "http://localhost:11434"
_DEFAULT_VERTEX_LOCATION = "us-central1"


@dataclass(frozen=True)
class ProviderSpec:
    """What one provider needs from the environment and which hosts the sandbox must reach for it.

    - `required_env`: always needed (API keys).
    - `optional_env`: forwarded when set; includes the conditionally required ones, see `missing_env`.
    - `file_env`: names whose value is a *path* the runtime reads, so the file must be mounted too.
    - `settings`: accepted `[provider.setting]` keys and their kinds.
    - `base_url_env`: the env var holding a custom base URL; `default_base_url`: Ollama's local default.
    - `conditional_env`: env names needed unless one of the listed setting keys or env names is set
      (AZURE_RESOURCE_NAME is unnecessary with `resourceName` or a base URL).
    - `extra_hosts`: hosts needed whatever the base URL (Vertex's OAuth token endpoint).
    - `default_hosts_fn`: computes the API hosts when no base URL overrides them.
    """

    name: str
    library_id: str
    required_env: tuple[str, ...]
    optional_env: tuple[str, ...]
    settings: Mapping[str, SettingKind]
    default_base_url: str | None = None
    base_url_env: str | None = None
    allow_http: bool = False
    file_env: tuple[str, ...] = ()
    conditional_env: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    extra_hosts: tuple[str, ...] = ()
    default_hosts_fn: HostsFn | None = field(default=None, repr=False, compare=False)

    @property
    def setting_keys(self) -> frozenset[str]:
        """The `[provider.setting]` keys Perstack accepts for this provider."""
        return frozenset(self.settings)

    @property
    def forward_env(self) -> tuple[str, ...]:
        """Every env name the runtime may read for this provider: required first, then optional."""
        return self.required_env + tuple(n for n in self.optional_env if n not in self.required_env)

    def base_url(self, setting: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
        """The custom base URL in effect (`setting.baseUrl`, else the provider's BASE_URL env var), validated.

        Falls back to `default_base_url` (only Ollama has one that is not implied by its host).
        Raises ValueError for an env value that is not an acceptable URL.
        """
        configured = setting.get("baseUrl")
        if isinstance(configured, str) and configured:
            return validate_base_url(configured, allow_http=self.allow_http, what="setting.baseUrl")
        if self.base_url_env and env.get(self.base_url_env):
            return validate_base_url(
                env[self.base_url_env], allow_http=self.allow_http, what=self.base_url_env
            )
        return self.default_base_url

    def hosts(self, setting: Mapping[str, Any], env: Mapping[str, str]) -> tuple[str, ...]:
        """The exact API hosts the sandbox must reach, computed from the settings and env.

        A custom base URL replaces the default API host; hosts the client needs whatever the base URL
        (Vertex's OAuth token host) are kept. Returns `()` when the host cannot be known yet (Bedrock
        without a region, Azure without a resource name): `missing_env` reports that. Raises ValueError
        when a setting or env value would make an invalid host (`AWS_REGION="x/y"`). Ollama's host may be
        `localhost` or an address; callers decide whether such a host is reachable.
        """
        custom = self.base_url(setting, env)
        if custom is not None:
            primary: tuple[str, ...] = (url_host(custom),)
        elif self.default_hosts_fn is not None:
            primary = self.default_hosts_fn(setting, env)
        else:  # pragma: no cover - every row has either a default base URL or a hosts function
            primary = ()
        return primary + tuple(h for h in self.extra_hosts if h not in primary)

    def missing_env(self, setting: Mapping[str, Any], env: Mapping[str, str]) -> tuple[str, ...]:
        """Env names that must be set and are not, given what the settings already supply."""
        missing = [n for n in self.required_env if not env.get(n)]
        for name, alternatives in self.conditional_env.items():
            if env.get(name):
                continue
            if any(setting.get(a) or env.get(a) for a in alternatives):
                continue
            missing.append(name)
        return tuple(missing)


def _label(value: object, what: str = "") -> str:
    """A value used as one DNS label of a computed host (a region, a location, a resource name).

    `what` names the source in the message when it is not the located key itself (an env variable).
    """
    prefix = f"{what}: " if what else ""
    if not isinstance(value, str):
        raise ValueError(f"{prefix}must be a string")
    try:
        label = check_hostname(value, min_labels=1)
    except ValueError as exc:
        raise ValueError(f"{prefix}{exc}") from None
    if "." in label:
        raise ValueError(f"{prefix}{show(value)} must be a single DNS label (no dots)")
    return label


def _fixed(host: str) -> HostsFn:
    def hosts(_setting: Mapping[str, Any], _env: Mapping[str, str]) -> tuple[str, ...]:
        return (host,)

    return hosts


def _bedrock_hosts(setting: Mapping[str, Any], env: Mapping[str, str]) -> tuple[str, ...]:
    # @ai-sdk/amazon-bedrock and pydantic-ai's BedrockProvider (boto3) both call
    # https://bedrock-runtime.<region>.amazonaws.com; the region comes from the setting, then AWS_REGION.
    if setting.get("region"):
        region = _label(setting["region"], "setting.region")
    elif env.get("AWS_REGION"):
        region = _label(env["AWS_REGION"], "AWS_REGION")
    else:
        return ()
    return (check_hostname(f"bedrock-runtime.{region}.amazonaws.com"),)


def _vertex_hosts(setting: Mapping[str, Any], env: Mapping[str, str]) -> tuple[str, ...]:
    # @ai-sdk/google-vertex: `<location>-aiplatform.googleapis.com`, or `aiplatform.googleapis.com` for
    # the `global` location. pydantic-ai/google-genai also route the `us` and `eu` multi-regions to
    # `aiplatform.<us|eu>.rep.googleapis.com`. Without a location both default to us-central1.
    if setting.get("location"):
        location = _label(setting["location"], "setting.location")
    elif env.get("GOOGLE_VERTEX_LOCATION"):
        location = _label(env["GOOGLE_VERTEX_LOCATION"], "GOOGLE_VERTEX_LOCATION")
    else:
        location = _DEFAULT_VERTEX_LOCATION
    if location == "global":
        return ("aiplatform.googleapis.com",)
    if location in {"us", "eu"}:
        return (f"aiplatform.{location}.rep.googleapis.com",)
    return (check_hostname(f"{location}-aiplatform.googleapis.com"),)


def _azure_hosts(setting: Mapping[str, Any], env: Mapping[str, str]) -> tuple[str, ...]:
    # @ai-sdk/azure: https://<resourceName>.openai.azure.com/openai (resource from setting, then
    # AZURE_RESOURCE_NAME); a baseUrl replaces it and is handled by ProviderSpec.hosts.
    if setting.get("resourceName"):
        resource = _label(setting["resourceName"], "setting.resourceName")
    elif env.get("AZURE_RESOURCE_NAME"):
        resource = _label(env["AZURE_RESOURCE_NAME"], "AZURE_RESOURCE_NAME")
    else:
        return ()
    return (check_hostname(f"{resource}.openai.azure.com"),)


_COMMON = {"baseUrl": "url", "headers": "headers"}

_ROWS: tuple[ProviderSpec, ...] = (
    # Runtime: ANTHROPIC_API_KEY → ANTHROPIC_BASE_URL (provider-config.ts; @ai-sdk/anthropic reads both).
    ProviderSpec(
        name="anthropic",
        library_id="anthropic",
        required_env=("ANTHROPIC_API_KEY",),
        optional_env=("ANTHROPIC_BASE_URL",),
        settings=_COMMON,
        base_url_env="ANTHROPIC_BASE_URL",
        default_hosts_fn=_fixed("api.anthropic.com"),
    ),
    # Runtime: OPENAI_API_KEY → OPENAI_BASE_URL, OPENAI_ORGANIZATION, OPENAI_PROJECT (provider-config.ts).
    ProviderSpec(
        name="openai",
        library_id="openai",
        required_env=("OPENAI_API_KEY",),
        optional_env=("OPENAI_BASE_URL", "OPENAI_ORGANIZATION", "OPENAI_PROJECT"),
        settings={**_COMMON, "organization": "str", "project": "str", "name": "str"},
        base_url_env="OPENAI_BASE_URL",
        default_hosts_fn=_fixed("api.openai.com"),
    ),
    # Runtime: GOOGLE_GENERATIVE_AI_API_KEY → GOOGLE_GENERATIVE_AI_BASE_URL (@ai-sdk/google's names; the
    # reference docker adapter forwarded GOOGLE_API_KEY instead, which the runtime never reads).
    ProviderSpec(
        name="google",
        library_id="google",
        required_env=("GOOGLE_GENERATIVE_AI_API_KEY",),
        optional_env=("GOOGLE_GENERATIVE_AI_BASE_URL",),
        settings=_COMMON,
        base_url_env="GOOGLE_GENERATIVE_AI_BASE_URL",
        default_hosts_fn=_fixed("generativelanguage.googleapis.com"),
    ),
    # Runtime: AZURE_API_KEY, (AZURE_RESOURCE_NAME or baseUrl) → AZURE_API_VERSION, AZURE_BASE_URL
    # (@ai-sdk/azure's names; the reference forwarded AZURE_OPENAI_API_KEY).
    ProviderSpec(
        name="azure-openai",
        library_id="azure",
        required_env=("AZURE_API_KEY",),
        optional_env=("AZURE_RESOURCE_NAME", "AZURE_API_VERSION", "AZURE_BASE_URL"),
        settings={**_COMMON, "resourceName": "label", "apiVersion": "str", "useDeploymentBasedUrls": "bool"},
        base_url_env="AZURE_BASE_URL",
        conditional_env={"AZURE_RESOURCE_NAME": ("resourceName", "baseUrl", "AZURE_BASE_URL")},
        default_hosts_fn=_azure_hosts,
    ),
    # Runtime: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION → AWS_SESSION_TOKEN (provider-config.ts;
    # the reference adapter dropped the session token, which breaks temporary credentials). Perstack
    # accepts only `region` as a setting: there is no Bedrock base URL.
    ProviderSpec(
        name="amazon-bedrock",
        library_id="bedrock",
        required_env=("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
        optional_env=("AWS_REGION", "AWS_SESSION_TOKEN"),
        settings={"region": "label"},
        conditional_env={"AWS_REGION": ("region",)},
        default_hosts_fn=_bedrock_hosts,
    ),
    # Runtime: GOOGLE_VERTEX_PROJECT, GOOGLE_VERTEX_LOCATION, GOOGLE_VERTEX_BASE_URL, plus Application
    # Default Credentials from GOOGLE_APPLICATION_CREDENTIALS (a path: the file must be mounted, which the
    # reference forgot). Inside a sandbox there is no metadata server or gcloud login, so the credentials
    # file is required; its token exchange goes to oauth2.googleapis.com.
    ProviderSpec(
        name="google-vertex",
        library_id="google-cloud",
        required_env=("GOOGLE_APPLICATION_CREDENTIALS",),
        optional_env=("GOOGLE_VERTEX_PROJECT", "GOOGLE_VERTEX_LOCATION", "GOOGLE_VERTEX_BASE_URL"),
        settings={**_COMMON, "project": "str", "location": "label"},
        base_url_env="GOOGLE_VERTEX_BASE_URL",
        file_env=("GOOGLE_APPLICATION_CREDENTIALS",),
        conditional_env={"GOOGLE_VERTEX_PROJECT": ("project",)},
        extra_hosts=("oauth2.googleapis.com",),
        default_hosts_fn=_vertex_hosts,
    ),
    # Runtime: DEEPSEEK_API_KEY → DEEPSEEK_BASE_URL (provider-config.ts).
    ProviderSpec(
        name="deepseek",
        library_id="deepseek",
        required_env=("DEEPSEEK_API_KEY",),
        optional_env=("DEEPSEEK_BASE_URL",),
        settings=_COMMON,
        base_url_env="DEEPSEEK_BASE_URL",
        default_hosts_fn=_fixed("api.deepseek.com"),
    ),
    # Runtime: → OLLAMA_BASE_URL, default http://localhost:11434; the only provider allowed plain http.
    # Its default host is `localhost`, which the planner reports as private rather than opening.
    ProviderSpec(
        name="ollama",
        library_id="ollama",
        required_env=(),
        optional_env=("OLLAMA_BASE_URL",),
        settings=_COMMON,
        default_base_url=_LOCAL_OLLAMA,
        base_url_env="OLLAMA_BASE_URL",
        allow_http=True,
    ),
)

PROVIDERS: Mapping[str, ProviderSpec] = {row.name: row for row in _ROWS}


def provider_spec(name: str) -> ProviderSpec:
    """The row for `name`; ValueError with the known names (and a "did you mean") otherwise."""
    try:
        return PROVIDERS[name]
    except KeyError:
        known = ", ".join(f"`{n}`" for n in PROVIDERS)
        raise ValueError(
            with_suggestion(f"unknown provider {show(name)} (known: {known})", name, PROVIDERS)
        ) from None


def _check_setting_value(
    spec: ProviderSpec, key: str, kind: SettingKind, value: object
) -> list[tuple[Loc, str]]:
    if kind == "bool":
        return [] if isinstance(value, bool) else [((key,), "must be true or false")]
    if kind == "headers":
        if not isinstance(value, dict):
            return [((key,), "must be a table of header names to strings")]
        found: list[tuple[Loc, str]] = []
        for header, header_value in value.items():
            try:
                validate_header_name(header)
                validate_header_value(header_value)
            except ValueError as exc:
                found.append(((key, header), str(exc)))
        return found
    if not isinstance(value, str):
        return [((key,), "must be a string")]
    try:
        if kind == "url":
            validate_base_url(value, allow_http=spec.allow_http)
        elif kind == "label":
            _label(value)
        elif any(not ch.isprintable() for ch in value):
            raise ValueError("contains a control character")
    except ValueError as exc:
        plain_http = kind == "url" and value.lower().startswith("http://")
        return [((key,), f"{exc} (only ollama may use http://)" if plain_http else str(exc))]
    return []


def setting_issues(provider_name: str, setting: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """Every problem in `[provider.setting]` for `provider_name`, located relative to `setting`."""
    spec = PROVIDERS.get(provider_name)
    if spec is None:
        return []  # the unknown providerName is reported on its own
    found: list[tuple[Loc, str]] = []
    for key, value in setting.items():
        kind = spec.settings.get(key)
        if kind is None:
            accepted = ", ".join(f"`{k}`" for k in spec.settings)
            message = f"unknown setting for {provider_name} (accepted: {accepted})"
            found.append(((key,), with_suggestion(message, key, spec.settings)))
            continue
        found.extend(_check_setting_value(spec, key, kind, value))
    return found
