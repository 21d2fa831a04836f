"""Provider name + `[provider.setting]` + private env map -> a pydantic-ai `Model` and its `ModelSettings`.

Why pydantic-ai-slim's model classes (docs/runtime.md has the full comparison): one message/tool/stream
abstraction over all eight Perstack providers, maintained mappings of each wire protocol (thinking blocks
and their signatures, tool-call deltas, usage, error categories), while the official SDK clients still do
the HTTP. We build each SDK client ourselves so that:

* keys come from the run's private env map, never from `os.environ` (pydantic-ai providers would read it);
* `baseUrl`, `headers`, `organization`, `project`, `region`, `location`... from `[provider.setting]` apply;
* SDK-level retries are off (`max_retries=0`): the runtime retries itself so every retry is a `retry` event.

Heavy imports (SDKs, pydantic_ai) happen inside the functions: this module is imported lazily by the loop.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sandbox._errors import UserError

if TYPE_CHECKING:
    from pydantic_ai.models import Model
    from pydantic_ai.settings import ModelSettings

__all__ = [
    "aclose_model",
    "build_model",
    "build_model_settings",
    "offer_http_client",
    "prepare_http_client",
    "prewarm",
    "rehearse",
    "thinking_budget_tokens",
    "wait_for_prewarm",
]

_EFFORTS = ("minimal", "low", "medium", "high")
# Token budgets for providers that take a number (Anthropic, Gemini); Perstack's named levels map here.
_BUDGET_BY_LEVEL = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384}


def _setting(setting: Mapping[str, Any], key: str) -> Any:
    value = setting.get(key)
    return value if value not in ("", None) else None


def _require(env: Mapping[str, str], name: str, provider: str) -> str:
    value = env.get(name)
    if not value:
        raise UserError(f"Provider {provider} requires environment variable {name}")
    return value


def _headers(setting: Mapping[str, Any]) -> dict[str, str] | None:
    headers = setting.get("headers")
    return {str(k): str(v) for k, v in headers.items()} if isinstance(headers, Mapping) else None


# The modules each provider's model needs, for `prewarm`: the same ones its builder below imports.
_PREWARM_MODULES: dict[str, tuple[str, ...]] = {
    "anthropic": ("anthropic", "pydantic_ai.models.anthropic", "pydantic_ai.providers.anthropic"),
    "openai": ("openai", "pydantic_ai.models.openai", "pydantic_ai.providers.openai"),
    "deepseek": ("openai", "pydantic_ai.models.openai", "pydantic_ai.providers.deepseek"),
    "ollama": ("openai", "pydantic_ai.models.openai", "pydantic_ai.providers.ollama"),
    "azure-openai": ("openai", "pydantic_ai.models.openai", "pydantic_ai.providers.azure"),
    "google": ("google.genai", "pydantic_ai.models.google", "pydantic_ai.providers.google"),
    "google-vertex": ("google.genai", "pydantic_ai.models.google", "pydantic_ai.providers.google"),
    "amazon-bedrock": ("pydantic_ai.models.bedrock", "pydantic_ai.providers.bedrock"),
}


_prewarm_thread: threading.Thread | None = None


def _import_all(provider: str) -> None:
    for name in _PREWARM_MODULES.get(provider, ()):
        try:
            importlib.import_module(name)
        except ImportError:
            return
    # pydantic-ai loads genai-prices' price table when a model is constructed (~0.17 s here): load it now.
    with contextlib.suppress(Exception):
        from genai_prices.data_snapshot import get_snapshot

        get_snapshot()


def prewarm(provider: str) -> None:
    """Start importing the provider's SDK and model modules on a thread; `build_model` waits for it.

    Importing an SDK plus pydantic-ai's model module costs about a second. The sandbox's entry point calls
    this first thing, so the imports overlap the proxy wait and skill start-up instead of delaying the first
    generation. The libraries both threads need (pydantic, httpx, anyio) are imported here, before the
    thread starts, so the two threads never import the same package at once. Failures are ignored: the
    real import in `build_model` reports them.
    """
    global _prewarm_thread  # noqa: PLW0603 - one process-wide warm-up
    if _prewarm_thread is not None:
        return
    import anyio  # noqa: F401
    import httpx  # noqa: F401
    import pydantic  # noqa: F401

    _prewarm_thread = threading.Thread(
        target=_import_all, args=(provider,), name="sandbox-prewarm", daemon=True
    )
    _prewarm_thread.start()


_ready_http_clients: dict[str, Any] = {}


_OPENAI_WIRE = frozenset({"openai", "deepseek", "ollama", "azure-openai"})


def prepare_http_client(provider: str) -> None:
    """Build the provider SDK's default HTTP client ahead of the run (a standby sandbox does this).

    With the sandbox's proxy variables set, the SDK's client makes an SSL context per proxy mount, each
    loading the CA bundle: ~0.1 s of a run's start, with nothing secret in it. The next `build_model` for
    `provider` takes this client (once) instead of having the SDK make one.
    """
    with contextlib.suppress(Exception):
        if provider == "anthropic":
            from anthropic import DefaultAsyncHttpxClient as AnthropicHttp

            offer_http_client(provider, AnthropicHttp())
        elif provider in _OPENAI_WIRE:
            from openai import DefaultAsyncHttpxClient as OpenAIHttp

            offer_http_client(provider, OpenAIHttp())


def offer_http_client(provider: str, client: Any) -> None:
    """Have the next `build_model` for `provider` use `client` (an `httpx.AsyncClient`) for its SDK.

    Used by `prepare_http_client` and by the standby's offline rehearsal, whose client is a mock transport.
    """
    _ready_http_clients[provider] = client


def _take_http_client(provider: str) -> Any:
    return _ready_http_clients.pop(provider, None)


def wait_for_prewarm() -> None:
    """Block until `prewarm`'s imports are done (returns at once when it was never called)."""
    if _prewarm_thread is not None:
        _prewarm_thread.join()


def build_model(
    provider: str, model_name: str, setting: Mapping[str, Any], env: Mapping[str, str], *, timeout_s: float
) -> Model:
    """Construct the model for one provider; raises `UserError` naming what is missing.

    Which env names a provider needs comes from the config layer's provider table (`PROVIDERS`), the same
    table the docker executor forwards env from, so "missing key" messages and forwarding cannot drift.
    """
    from sandbox.config import provider_spec

    wait_for_prewarm()
    try:
        spec = provider_spec(provider)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    missing = spec.missing_env(setting, env)
    if missing:
        raise UserError(f"Provider {provider} requires environment variables: {', '.join(missing)}")
    builder = _BUILDERS[provider]
    return builder(model_name, setting, env, timeout_s)


def _anthropic(
    model_name: str, setting: Mapping[str, Any], env: Mapping[str, str], timeout_s: float
) -> Model:
    from anthropic import AsyncAnthropic
    from pydantic_ai.models.anthropic import AnthropicModel
    from pydantic_ai.providers.anthropic import AnthropicProvider

    client = AsyncAnthropic(
        api_key=_require(env, "ANTHROPIC_API_KEY", "anthropic"),
        base_url=_setting(setting, "baseUrl") or env.get("ANTHROPIC_BASE_URL") or None,
        default_headers=_headers(setting),
        max_retries=0,
        timeout=timeout_s,
        http_client=_take_http_client("anthropic"),
    )
    return AnthropicModel(model_name, provider=AnthropicProvider(anthropic_client=client))


def _openai_client(
    api_key: str, base_url: str | None, setting: Mapping[str, Any], timeout_s: float, **extra: Any
) -> Any:
    from openai import AsyncOpenAI

    return AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        default_headers=_headers(setting),
        max_retries=0,
        timeout=timeout_s,
        **extra,
    )


def _openai(model_name: str, setting: Mapping[str, Any], env: Mapping[str, str], timeout_s: float) -> Model:
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    client = _openai_client(
        _require(env, "OPENAI_API_KEY", "openai"),
        _setting(setting, "baseUrl") or env.get("OPENAI_BASE_URL") or None,
        setting,
        timeout_s,
        organization=_setting(setting, "organization") or env.get("OPENAI_ORGANIZATION") or None,
        project=_setting(setting, "project") or env.get("OPENAI_PROJECT") or None,
        http_client=_take_http_client("openai"),
    )
    return OpenAIChatModel(model_name, provider=OpenAIProvider(openai_client=client))


def _deepseek(model_name: str, setting: Mapping[str, Any], env: Mapping[str, str], timeout_s: float) -> Model:
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.deepseek import DeepSeekProvider

    client = _openai_client(
        _require(env, "DEEPSEEK_API_KEY", "deepseek"),
        _setting(setting, "baseUrl") or env.get("DEEPSEEK_BASE_URL") or "https://api.deepseek.com",
        setting,
        timeout_s,
        http_client=_take_http_client("deepseek"),
    )
    return OpenAIChatModel(model_name, provider=DeepSeekProvider(openai_client=client))


def _ollama(model_name: str, setting: Mapping[str, Any], env: Mapping[str, str], timeout_s: float) -> Model:
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.ollama import OllamaProvider

    base = str(_setting(setting, "baseUrl") or env.get("OLLAMA_BASE_URL") or "http://localhost:11434")
    base = base.rstrip("/")
    client = _openai_client(
        "ollama",
        base if base.endswith("/v1") else f"{base}/v1",
        setting,
        timeout_s,
        http_client=_take_http_client("ollama"),
    )
    return OpenAIChatModel(model_name, provider=OllamaProvider(openai_client=client))


def _azure(model_name: str, setting: Mapping[str, Any], env: Mapping[str, str], timeout_s: float) -> Model:
    from openai import AsyncAzureOpenAI
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.azure import AzureProvider

    api_key = _require(env, "AZURE_API_KEY", "azure-openai")
    base_url = _setting(setting, "baseUrl") or env.get("AZURE_BASE_URL")
    resource = _setting(setting, "resourceName") or env.get("AZURE_RESOURCE_NAME")
    if not base_url and not resource:
        raise UserError("Provider azure-openai requires resourceName (or AZURE_RESOURCE_NAME) or baseUrl")
    endpoint = str(base_url or f"https://{resource}.openai.azure.com")
    client = AsyncAzureOpenAI(
        api_key=api_key,
        azure_endpoint=endpoint,
        api_version=str(_setting(setting, "apiVersion") or env.get("AZURE_API_VERSION") or "2024-10-21"),
        default_headers=_headers(setting),
        max_retries=0,
        timeout=timeout_s,
        http_client=_take_http_client("azure-openai"),
    )
    return OpenAIChatModel(model_name, provider=AzureProvider(openai_client=client))


def _google_http_options(setting: Mapping[str, Any], base_url: str | None, timeout_s: float) -> Any:
    from google.genai.types import HttpOptions

    return HttpOptions(base_url=base_url, headers=_headers(setting), timeout=int(timeout_s * 1000))


def _google(model_name: str, setting: Mapping[str, Any], env: Mapping[str, str], timeout_s: float) -> Model:
    from google.genai import Client
    from pydantic_ai.models.google import GoogleModel
    from pydantic_ai.providers.google import GoogleProvider

    base_url = _setting(setting, "baseUrl") or env.get("GOOGLE_GENERATIVE_AI_BASE_URL") or None
    client = Client(
        vertexai=False,
        api_key=_require(env, "GOOGLE_GENERATIVE_AI_API_KEY", "google"),
        http_options=_google_http_options(setting, base_url, timeout_s),
    )
    return GoogleModel(model_name, provider=GoogleProvider(client=client))


def _vertex(model_name: str, setting: Mapping[str, Any], env: Mapping[str, str], timeout_s: float) -> Model:
    from google.genai import Client
    from pydantic_ai.models.google import GoogleModel
    from pydantic_ai.providers.google import GoogleProvider

    project = _setting(setting, "project") or env.get("GOOGLE_VERTEX_PROJECT")
    location = _setting(setting, "location") or env.get("GOOGLE_VERTEX_LOCATION")
    if not project or not location:
        raise UserError(
            "Provider google-vertex requires project and location "
            "([provider.setting] or GOOGLE_VERTEX_PROJECT / GOOGLE_VERTEX_LOCATION)"
        )
    base_url = _setting(setting, "baseUrl") or env.get("GOOGLE_VERTEX_BASE_URL") or None
    client = Client(
        vertexai=True,
        project=str(project),
        location=str(location),
        http_options=_google_http_options(setting, base_url, timeout_s),
    )
    return GoogleModel(model_name, provider=GoogleProvider(client=client))


def _bedrock(model_name: str, setting: Mapping[str, Any], env: Mapping[str, str], timeout_s: float) -> Model:
    from pydantic_ai.models.bedrock import BedrockConverseModel
    from pydantic_ai.providers.bedrock import BedrockProvider

    region = _setting(setting, "region") or env.get("AWS_REGION")
    if not region:
        raise UserError("Provider amazon-bedrock requires region ([provider.setting] or AWS_REGION)")
    provider = BedrockProvider(
        region_name=str(region),
        aws_access_key_id=_require(env, "AWS_ACCESS_KEY_ID", "amazon-bedrock"),
        aws_secret_access_key=_require(env, "AWS_SECRET_ACCESS_KEY", "amazon-bedrock"),
        aws_session_token=env.get("AWS_SESSION_TOKEN") or None,
        aws_read_timeout=timeout_s,
    )
    return BedrockConverseModel(model_name, provider=provider)


_BUILDERS = {
    "anthropic": _anthropic,
    "openai": _openai,
    "deepseek": _deepseek,
    "ollama": _ollama,
    "azure-openai": _azure,
    "google": _google,
    "google-vertex": _vertex,
    "amazon-bedrock": _bedrock,
}


def thinking_budget_tokens(budget: str | int | None) -> int:
    """Perstack's `reasoningBudget` as a token count (0 = no thinking)."""
    if budget is None or budget == "none":
        return 0
    if isinstance(budget, int):
        return max(budget, 0)
    return _BUDGET_BY_LEVEL.get(budget, 0)


def _effort_for_tokens(tokens: int) -> str:
    for level in reversed(_EFFORTS):
        if tokens >= _BUDGET_BY_LEVEL[level]:
            return level
    return "minimal"


def build_model_settings(
    provider: str, *, reasoning_budget: str | int | None, temperature: float | None, timeout_s: float
) -> ModelSettings:
    """Map `reasoningBudget` to each provider's thinking setting, plus temperature and timeout.

    Named levels use pydantic-ai's unified `thinking` (it adapts per model and drops it where a model cannot
    think). A numeric budget goes to the providers that take a token count (Anthropic `budget_tokens`,
    Gemini `thinking_budget`) and becomes the nearest effort level elsewhere.
    """
    settings: dict[str, Any] = {"timeout": timeout_s}
    tokens = thinking_budget_tokens(reasoning_budget)
    if tokens > 0:
        if isinstance(reasoning_budget, int):
            if provider == "anthropic":
                tokens = max(tokens, 1024)
                settings["anthropic_thinking"] = {"type": "enabled", "budget_tokens": tokens}
                settings["max_tokens"] = tokens + 8192
            elif provider in ("google", "google-vertex"):
                settings["google_thinking_config"] = {"thinking_budget": tokens, "include_thoughts": True}
            else:
                settings["thinking"] = _effort_for_tokens(tokens)
        else:
            settings["thinking"] = reasoning_budget
    if temperature is not None and not (tokens > 0 and provider in ("anthropic", "amazon-bedrock")):
        # Claude rejects a temperature other than 1 while extended thinking is on.
        settings["temperature"] = temperature
    return settings  # type: ignore[return-value]


async def aclose_model(model: Any) -> None:
    """Close the SDK client's HTTP connections inside the running loop (else they are closed at garbage
    collection, after the loop is gone, which raises)."""
    import inspect

    client = getattr(model, "client", None)
    for target in (client, getattr(client, "aio", None)):
        close = getattr(target, "aclose", None) or getattr(target, "close", None)
        if close is None:
            continue
        try:
            result = close()
            if inspect.isawaitable(result):
                await result
        except Exception:  # noqa: S112 - best effort at shutdown
            continue


def __getattr__(name: str) -> Any:
    """`rehearse` (a standby's offline rehearsal) loads on first use: a run never needs it."""
    if name == "rehearse":
        from ._rehearsal import rehearse

        return rehearse
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
