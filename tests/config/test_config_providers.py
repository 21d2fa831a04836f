"""The provider table: env names, exact API hosts with and without settings, missing env, lookups."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.config import PROVIDERS, provider_spec

NAMES = [
    "anthropic",
    "openai",
    "google",
    "azure-openai",
    "amazon-bedrock",
    "google-vertex",
    "deepseek",
    "ollama",
]


def test_every_perstack_provider_has_a_row() -> None:
    assert list(PROVIDERS) == NAMES


@pytest.mark.parametrize(
    ("name", "setting", "env", "hosts"),
    [
        ("anthropic", {}, {}, ("api.anthropic.com",)),
        ("anthropic", {"baseUrl": "https://gw.example.com/v1"}, {}, ("gw.example.com",)),
        ("anthropic", {}, {"ANTHROPIC_BASE_URL": "https://Env.Example.com/"}, ("env.example.com",)),
        (
            "anthropic",
            {"baseUrl": "https://setting.example.com"},
            {"ANTHROPIC_BASE_URL": "https://env.example.com"},
            ("setting.example.com",),
        ),
        ("openai", {}, {}, ("api.openai.com",)),
        ("openai", {"baseUrl": "https://llm.corp.example:8443/v1"}, {}, ("llm.corp.example",)),
        ("google", {}, {}, ("generativelanguage.googleapis.com",)),
        ("google", {}, {"GOOGLE_GENERATIVE_AI_BASE_URL": "https://g.example.com"}, ("g.example.com",)),
        ("azure-openai", {}, {}, ()),
        ("azure-openai", {"resourceName": "myres"}, {}, ("myres.openai.azure.com",)),
        ("azure-openai", {}, {"AZURE_RESOURCE_NAME": "envres"}, ("envres.openai.azure.com",)),
        ("azure-openai", {"resourceName": "a"}, {"AZURE_RESOURCE_NAME": "b"}, ("a.openai.azure.com",)),
        (
            "azure-openai",
            {"baseUrl": "https://proxy.example.com/openai"},
            {"AZURE_RESOURCE_NAME": "r"},
            ("proxy.example.com",),
        ),
        ("amazon-bedrock", {}, {}, ()),
        ("amazon-bedrock", {}, {"AWS_REGION": "us-east-1"}, ("bedrock-runtime.us-east-1.amazonaws.com",)),
        (
            "amazon-bedrock",
            {"region": "eu-west-1"},
            {"AWS_REGION": "us-east-1"},
            ("bedrock-runtime.eu-west-1.amazonaws.com",),
        ),
        ("google-vertex", {}, {}, ("us-central1-aiplatform.googleapis.com", "oauth2.googleapis.com")),
        (
            "google-vertex",
            {"location": "europe-west4"},
            {"GOOGLE_VERTEX_LOCATION": "asia-east1"},
            ("europe-west4-aiplatform.googleapis.com", "oauth2.googleapis.com"),
        ),
        (
            "google-vertex",
            {},
            {"GOOGLE_VERTEX_LOCATION": "asia-east1"},
            ("asia-east1-aiplatform.googleapis.com", "oauth2.googleapis.com"),
        ),
        ("google-vertex", {"location": "global"}, {}, ("aiplatform.googleapis.com", "oauth2.googleapis.com")),
        (
            "google-vertex",
            {"location": "eu"},
            {},
            ("aiplatform.eu.rep.googleapis.com", "oauth2.googleapis.com"),
        ),
        (
            "google-vertex",
            {},
            {"GOOGLE_VERTEX_BASE_URL": "https://vertex-proxy.example.com"},
            ("vertex-proxy.example.com", "oauth2.googleapis.com"),
        ),
        ("deepseek", {}, {}, ("api.deepseek.com",)),
        ("deepseek", {"baseUrl": "https://ds.example.com"}, {}, ("ds.example.com",)),
        ("ollama", {}, {}, ("localhost",)),
        ("ollama", {"baseUrl": "http://10.0.0.5:11434"}, {}, ("10.0.0.5",)),
        ("ollama", {}, {"OLLAMA_BASE_URL": "http://[fd00::5]:11434"}, ("fd00::5",)),
        ("ollama", {}, {"OLLAMA_BASE_URL": "https://ollama.example.com"}, ("ollama.example.com",)),
    ],
)
def test_hosts(name: str, setting: dict[str, Any], env: dict[str, str], hosts: tuple[str, ...]) -> None:
    assert provider_spec(name).hosts(setting, env) == hosts


@pytest.mark.parametrize(
    ("name", "env", "message"),
    [
        ("amazon-bedrock", {"AWS_REGION": "x/y"}, "AWS_REGION: `x/y` is not a valid host name: contains `/`"),
        (
            "google-vertex",
            {"GOOGLE_VERTEX_LOCATION": "us.evil.com"},
            "GOOGLE_VERTEX_LOCATION: `us.evil.com` must be a single DNS label (no dots)",
        ),
        (
            "azure-openai",
            {"AZURE_RESOURCE_NAME": "a b"},
            "AZURE_RESOURCE_NAME: `a b` is not a valid host name: contains a space",
        ),
        (
            "anthropic",
            {"ANTHROPIC_BASE_URL": "http://x.example.com"},
            "ANTHROPIC_BASE_URL `http://x.example.com` must start with https://",
        ),
        (
            "ollama",
            {"OLLAMA_BASE_URL": "ftp://x.example.com"},
            "OLLAMA_BASE_URL `ftp://x.example.com` must start with https:// or http://",
        ),
    ],
)
def test_bad_env_values_raise(name: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as info:
        provider_spec(name).hosts({}, env)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("name", "required", "optional"),
    [
        ("anthropic", ("ANTHROPIC_API_KEY",), ("ANTHROPIC_BASE_URL",)),
        ("openai", ("OPENAI_API_KEY",), ("OPENAI_BASE_URL", "OPENAI_ORGANIZATION", "OPENAI_PROJECT")),
        ("google", ("GOOGLE_GENERATIVE_AI_API_KEY",), ("GOOGLE_GENERATIVE_AI_BASE_URL",)),
        ("azure-openai", ("AZURE_API_KEY",), ("AZURE_RESOURCE_NAME", "AZURE_API_VERSION", "AZURE_BASE_URL")),
        (
            "amazon-bedrock",
            ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
            ("AWS_REGION", "AWS_SESSION_TOKEN"),
        ),
        (
            "google-vertex",
            ("GOOGLE_APPLICATION_CREDENTIALS",),
            ("GOOGLE_VERTEX_PROJECT", "GOOGLE_VERTEX_LOCATION", "GOOGLE_VERTEX_BASE_URL"),
        ),
        ("deepseek", ("DEEPSEEK_API_KEY",), ("DEEPSEEK_BASE_URL",)),
        ("ollama", (), ("OLLAMA_BASE_URL",)),
    ],
)
def test_env_names_are_what_the_runtime_reads(
    name: str, required: tuple[str, ...], optional: tuple[str, ...]
) -> None:
    spec = provider_spec(name)
    assert spec.required_env == required
    assert spec.optional_env == optional
    assert spec.forward_env == required + optional


def test_reference_mismatches_are_fixed() -> None:
    # perstack.md §1.5: the reference forwarded GOOGLE_API_KEY / AZURE_OPENAI_API_KEY and no session token.
    forwarded = {n for spec in PROVIDERS.values() for n in spec.forward_env}
    assert "GOOGLE_API_KEY" not in forwarded
    assert "AZURE_OPENAI_API_KEY" not in forwarded
    assert "AWS_SESSION_TOKEN" in PROVIDERS["amazon-bedrock"].forward_env
    assert PROVIDERS["google-vertex"].file_env == ("GOOGLE_APPLICATION_CREDENTIALS",)


@pytest.mark.parametrize(
    ("name", "setting", "env", "missing"),
    [
        ("anthropic", {}, {}, ("ANTHROPIC_API_KEY",)),
        ("anthropic", {}, {"ANTHROPIC_API_KEY": "k"}, ()),
        ("anthropic", {}, {"ANTHROPIC_API_KEY": ""}, ("ANTHROPIC_API_KEY",)),
        ("azure-openai", {}, {"AZURE_API_KEY": "k"}, ("AZURE_RESOURCE_NAME",)),
        ("azure-openai", {"resourceName": "r"}, {"AZURE_API_KEY": "k"}, ()),
        ("azure-openai", {"baseUrl": "https://x.example.com"}, {"AZURE_API_KEY": "k"}, ()),
        ("azure-openai", {}, {"AZURE_API_KEY": "k", "AZURE_BASE_URL": "https://x.example.com"}, ()),
        ("amazon-bedrock", {}, {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s"}, ("AWS_REGION",)),
        (
            "amazon-bedrock",
            {"region": "us-east-1"},
            {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s"},
            (),
        ),
        ("google-vertex", {}, {}, ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_VERTEX_PROJECT")),
        ("google-vertex", {"project": "p"}, {"GOOGLE_APPLICATION_CREDENTIALS": "/k.json"}, ()),
        ("ollama", {}, {}, ()),
    ],
)
def test_missing_env(
    name: str, setting: dict[str, Any], env: dict[str, str], missing: tuple[str, ...]
) -> None:
    assert provider_spec(name).missing_env(setting, env) == missing


def test_library_ids() -> None:
    assert {n: s.library_id for n, s in PROVIDERS.items()} == {
        "anthropic": "anthropic",
        "openai": "openai",
        "google": "google",
        "azure-openai": "azure",
        "amazon-bedrock": "bedrock",
        "google-vertex": "google-cloud",
        "deepseek": "deepseek",
        "ollama": "ollama",
    }


def test_setting_keys_follow_perstack() -> None:
    assert PROVIDERS["amazon-bedrock"].setting_keys == {"region"}
    assert PROVIDERS["azure-openai"].setting_keys == {
        "baseUrl",
        "headers",
        "resourceName",
        "apiVersion",
        "useDeploymentBasedUrls",
    }
    assert PROVIDERS["ollama"].allow_http
    assert not any(spec.allow_http for name, spec in PROVIDERS.items() if name != "ollama")


def test_unknown_provider_did_you_mean() -> None:
    with pytest.raises(ValueError) as info:
        provider_spec("antropic")
    assert str(info.value) == (
        "unknown provider `antropic` (known: `anthropic`, `openai`, `google`, `azure-openai`, "
        "`amazon-bedrock`, `google-vertex`, `deepseek`, `ollama`); did you mean `anthropic`?"
    )
