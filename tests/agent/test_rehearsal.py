"""The standby's offline rehearsal: a real run of the loop against a canned reply, with no trace left."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from sandbox.agent import models
from sandbox.agent.models._rehearsal import REHEARSED_PROVIDERS, rehearse
from sandbox.config import PerstackConfig

from .conftest import Harness

# An address no test machine resolves: a rehearsal that touched the network could not complete.
UNREACHABLE = "https://llm.invalid"


def _config(provider: str, **setting: str) -> PerstackConfig:
    """A config whose Expert has a skill no machine can start: the stand-in Expert must not inherit it."""
    return PerstackConfig.model_validate(
        {
            "model": "claude-test",
            "provider": {"providerName": provider, "setting": setting},
            "experts": {
                "main": {
                    "instruction": "Do things.",
                    "skills": {
                        "t": {
                            "type": "mcpStdioSkill",
                            "command": "npx",
                            "packageName": "@example/never-started",
                        }
                    },
                }
            },
        }
    )


@pytest.mark.parametrize(
    ("provider", "path"),
    [
        ("anthropic", "/v1/messages"),
        ("openai", "/chat/completions"),
        ("deepseek", "/chat/completions"),
        ("ollama", "/v1/chat/completions"),
    ],
)
def test_a_rehearsal_runs_the_whole_loop_offline(provider: str, path: str) -> None:
    done = rehearse(_config(provider, baseUrl=UNREACHABLE), provider)
    assert done.requests == [f"POST {path}"]
    assert done.events == ["initializeRuntime", "startRun", "startGeneration", "completeRun"]


def test_providers_without_a_canned_reply_are_skipped() -> None:
    assert "google" not in REHEARSED_PROVIDERS
    done = rehearse(_config("google"), "google")
    assert (done.requests, done.events) == ([], [])


def test_a_rehearsal_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    done = rehearse(_config("anthropic", baseUrl=UNREACHABLE), "anthropic")
    assert done.events[-1] == "completeRun"
    assert list(scratch.iterdir()) == []  # its workspace is gone
    assert "anthropic" not in models._ready_http_clients  # its mock client was used up, not left for a run
    out, err = capsys.readouterr()
    assert out == "" and "rehearsal" not in err.lower()


def test_the_real_run_after_a_rehearsal_reaches_the_real_server(harness: Harness) -> None:
    """The mock transport is the rehearsal's alone: the run that follows (with the client a standby prepares)
    sends its request, with its key, to the provider."""
    from sandbox.testing import Turn

    options = harness.options('[experts.main]\ninstruction = "x"\n')
    assert rehearse(options.config, "anthropic").events[-1] == "completeRun"
    models.prepare_http_client("anthropic")
    harness.server.enqueue(Turn("real answer"))
    result = harness.run(options)
    assert result.code == 0 and result.last("completeRun").text == "real answer"
    assert len(harness.server.requests) == 1
    assert harness.server.requests[0].view.api_key == "sk-ant-test"
