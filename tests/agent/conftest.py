"""Helpers for runtime tests: build RunOptions from TOML text and run the native runtime against the
scripted LLM server (real Anthropic/OpenAI wire protocols)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sandbox.agent import run_native
from sandbox.agent._job import RuntimeTuning
from sandbox.config import PerstackConfig
from sandbox.events import EventBase
from sandbox.jobs import JobStore
from sandbox.options import RunOptions
from sandbox.testing import ScriptedLLMServer

FAST = RuntimeTuning(backoff_base_s=0.01, backoff_max_s=0.05)


def host_env(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS"}
    }
    env.update(extra)
    return env


@dataclass
class Result:
    code: int
    events: list[EventBase] = field(default_factory=list)

    def types(self) -> list[str]:
        return [e.type for e in self.events]

    def of(self, kind: str) -> list[Any]:
        return [e for e in self.events if e.type == kind]

    def last(self, kind: str) -> Any:
        found = self.of(kind)
        assert found, f"no {kind} event in {self.types()}"
        return found[-1]


@dataclass
class Harness:
    tmp: Path
    server: ScriptedLLMServer

    @property
    def workspace(self) -> Path:
        ws = self.tmp / "ws"
        ws.mkdir(exist_ok=True)
        return ws

    @property
    def jobs_dir(self) -> Path:
        return self.workspace / "perstack" / "jobs"

    def store(self) -> JobStore:
        return JobStore(self.jobs_dir, durable=False)

    def options(self, toml: str, expert: str = "main", query: str | None = "hello", **kw: Any) -> RunOptions:
        provider = kw.pop("provider_name", "anthropic")
        head = f'model = "claude-test"\n[provider]\nproviderName = "{provider}"\n'
        if provider in ("anthropic", "openai"):
            # The config layer requires https:// for setting.baseUrl; the plain-http test server is reached
            # through the provider's BASE_URL variable in the private env map instead.
            head += '[provider.setting]\nheaders = { "X-Test-Header" = "yes" }\n'
        data = tomllib.loads(head + toml)
        config = PerstackConfig.model_validate(data)
        env = kw.pop("env", None) or host_env(
            ANTHROPIC_API_KEY="sk-ant-test",
            OPENAI_API_KEY="sk-oai-test",
            ANTHROPIC_BASE_URL=self.server.base_url,
            OPENAI_BASE_URL=self.server.openai_base_url,
        )
        defaults: dict[str, Any] = {"reasoning_budget": "none", "timeout_ms": 20_000, "max_retries": 2}
        defaults.update(kw)
        return RunOptions(
            config=config,
            config_path=self.tmp / "perstack.toml",
            expert_key=expert,
            query=query,
            env=env,
            workspace=self.workspace,
            jobs_dir=self.jobs_dir,
            **defaults,
        )

    def run(
        self, options: RunOptions, *, store: Any = "default", tuning: RuntimeTuning = FAST, **kw: Any
    ) -> Result:
        events: list[EventBase] = []
        chosen = self.store() if store == "default" else store
        code = run_native(options, events.append, store=chosen, tuning=tuning, **kw)
        return Result(code, events)


@pytest.fixture
def llm() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer() as server:
        yield server


@pytest.fixture
def harness(tmp_path: Path, llm: ScriptedLLMServer) -> Harness:
    return Harness(tmp_path, llm)
