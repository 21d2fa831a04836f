"""`run_cli` end to end with stand-in CLIs: events, job storage, env hygiene and the documented errors."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sandbox._errors import AdapterError
from sandbox.events import CompleteRun, StopRunByError
from sandbox.jobs import JobStore
from sandbox.runtimes import get_runtime, run_with_runtime
from sandbox.runtimes._run import run_cli

from .conftest import Collected, FakeCli, make_options, stream_path
from .test_process import wait_dead

CURSOR_AUTH = {"CURSOR_API_KEY": "cur-test"}


def run(options: object, collected: Collected, notes: list[str]) -> int:
    runtime = get_runtime(options.runtime)  # type: ignore[attr-defined]
    return run_cli(runtime, options, collected, note=notes.append)  # type: ignore[arg-type]


def test_cursor_stand_in_success_events_jobs_and_usage(
    tmp_path: Path, fake_cli: Callable[[str], FakeCli], collected: Collected, notes: list[str]
) -> None:
    cli = fake_cli("cursor-agent")
    cli.configure(stream=str(stream_path("cursor", "reference-2026.03.20.jsonl")))
    env = cli.env(**CURSOR_AUTH, CLAUDECODE="1", UNRELATED_SECRET="s3cr3t", OPENAI_API_KEY="sk-other")
    options = make_options(tmp_path, runtime="cursor", env=env, expert="writer")

    assert run(options, collected, notes) == 0

    assert collected.types == [
        "initializeRuntime",
        "startRun",
        "callTools",
        "resolveToolResults",
        "completeRun",
    ]
    init = collected.init()
    assert init.runtime == "cursor" and init.runtime_version == "1.2.3" and init.model == "cursor:default"
    assert init.query == "create hello.txt" and init.expert_name == "writer"
    assert {s["name"]: s["applied"] for s in init.model_dump()["skills"]} == {
        "@perstack/base": True,
        "time": False,
        "search": False,
        "ask": False,
    }
    call = collected.of("callTools")[0]
    assert call.tool_calls[0].tool_name == "edit" and call.tool_calls[0].skill_name == "cursor"
    assert call.new_message.contents[0].text == "Je vais créer ce fichier maintenant."
    done: CompleteRun = collected.of("completeRun")[0]
    assert done.text == "Le fichier `stream-test.txt` a été créé."
    assert done.checkpoint.status == "completed" and done.step_number == 2
    assert done.usage.input_tokens == 4 + 13535 + 15844 and done.usage.output_tokens == 122
    meta = done.checkpoint.metadata or {}
    assert meta["runtime"] == "cursor" and meta["sessionId"] == "644c7cde-a660-4224-a26b-0b0a7e279293"
    assert meta["usage"]["costUsd"] is None and meta["usage"]["turns"] is None  # not reported: null, not 0

    # the job store has what the native runtime writes
    store = JobStore(options.jobs_dir)
    job = store.retrieve_job(init.job_id)
    assert job is not None and job.status == "completed" and job.total_steps == 2
    assert job.usage.output_tokens == 122
    assert [c.status for c in store.list_checkpoints(init.job_id)] == ["proceeding", "completed"]
    stored = [e.type for e in store.list_events(init.job_id, init.run_id)]
    assert stored == ["startRun", "callTools", "resolveToolResults", "completeRun"]
    setting = store.retrieve_run_setting(init.job_id, init.run_id)
    assert (
        setting is not None and "CURSOR_API_KEY" in setting.env and "cur-test" not in json.dumps(setting.env)
    )

    # the child: workspace as cwd, closed stdin, filtered env, instructions ahead of the query
    seen = cli.recorded
    assert seen["cwd"] == str(options.workspace) and seen["stdin_empty"]
    assert seen["env"]["CURSOR_API_KEY"] == "cur-test"
    for stripped in ("CLAUDECODE", "UNRELATED_SECRET", "OPENAI_API_KEY"):
        assert stripped not in seen["env"]
    assert seen["argv"][-1].startswith("## Instructions\nYou write files.")
    assert any("skill 'ask' (interactiveSkill) NOT applied" in n for n in notes)


def test_events_stream_while_the_cli_runs(
    tmp_path: Path, fake_cli: Callable[[str], FakeCli], collected: Collected, notes: list[str]
) -> None:
    cli = fake_cli("cursor-agent")
    cli.configure(stream=str(stream_path("cursor", "reference-2026.03.20.jsonl")), delay=0.4)
    arrivals: dict[str, float] = {}

    def emit(event: object) -> None:
        collected(event)  # type: ignore[arg-type]
        arrivals.setdefault(event.type, time.monotonic())  # type: ignore[attr-defined]

    options = make_options(tmp_path, runtime="cursor", env=cli.env(**CURSOR_AUTH))
    assert run_cli(get_runtime("cursor"), options, emit, note=notes.append) == 0  # type: ignore[arg-type]
    assert arrivals["completeRun"] - arrivals["callTools"] >= 0.6  # not buffered until exit


def test_missing_binary_gives_the_install_hint(
    tmp_path: Path, collected: Collected, notes: list[str]
) -> None:
    options = make_options(tmp_path, runtime="codex", env={"PATH": str(tmp_path), "OPENAI_API_KEY": "x"})
    with pytest.raises(AdapterError) as err:
        run(options, collected, notes)
    assert "`codex` was not found on PATH" in str(err.value)
    assert "npm install -g @openai/codex" in str(err.value)
    assert collected.events == []


def test_missing_auth_names_the_variable(
    tmp_path: Path, fake_cli: Callable[[str], FakeCli], collected: Collected, notes: list[str]
) -> None:
    cli = fake_cli("claude")
    options = make_options(tmp_path, runtime="claude-code", env=cli.env())
    with pytest.raises(AdapterError) as err:
        run(options, collected, notes)
    assert "no credentials" in str(err.value) and "ANTHROPIC_API_KEY" in str(err.value)
    assert collected.events == []


def test_stored_login_counts_as_auth(
    tmp_path: Path, fake_cli: Callable[[str], FakeCli], collected: Collected, notes: list[str]
) -> None:
    cli = fake_cli("codex")
    cli.configure(stream=str(stream_path("codex", "reference-0.101.0.jsonl")))
    env = cli.env()
    (Path(env["HOME"]) / ".codex").mkdir(parents=True)
    (Path(env["HOME"]) / ".codex" / "auth.json").write_text("{}")
    assert run(make_options(tmp_path, runtime="codex", env=env), collected, notes) == 0


def test_nonzero_exit_without_result_is_stop_run_by_error_with_the_cli_message(
    tmp_path: Path, fake_cli: Callable[[str], FakeCli], collected: Collected, notes: list[str]
) -> None:
    cli = fake_cli("cursor-agent")
    cli.configure(
        stream=str(stream_path("cursor", "failure-no-result.jsonl")),
        stderr="Error: You've hit your usage limit for Auto. Upgrade to continue.",
        exit=1,
    )
    options = make_options(tmp_path, runtime="cursor", env=cli.env(**CURSOR_AUTH))
    assert run(options, collected, notes) == 1
    assert collected.types == ["initializeRuntime", "startRun", "stopRunByError"]
    stop: StopRunByError = collected.of("stopRunByError")[0]
    assert stop.error.message == (
        "Cursor Agent exited with code 1: Error: You've hit your usage limit for Auto. Upgrade to continue."
    )
    assert stop.checkpoint.status == "stoppedByError" and stop.checkpoint.error == stop.error
    job = JobStore(options.jobs_dir).retrieve_job(stop.job_id)
    assert job is not None and job.status == "stoppedByError"


def test_error_result_is_stop_run_by_error_even_with_exit_zero(
    tmp_path: Path, fake_cli: Callable[[str], FakeCli], collected: Collected, notes: list[str]
) -> None:
    cli = fake_cli("claude")
    cli.configure(stream=str(stream_path("claude-code", "api-error-403.jsonl")), exit=0)
    options = make_options(tmp_path, runtime="claude-code", env=cli.env(ANTHROPIC_API_KEY="k"))
    assert run(options, collected, notes) == 1
    stop = collected.of("stopRunByError")[0]
    assert stop.error.message.startswith("api_error: API Error: 403")
    assert any("API retry 1/10" in n for n in notes)


def test_partial_output_then_crash(
    tmp_path: Path, fake_cli: Callable[[str], FakeCli], collected: Collected, notes: list[str]
) -> None:
    cli = fake_cli("claude")
    cli.configure(
        stream=str(stream_path("claude-code", "partial-killed.jsonl")), stderr="Segmentation fault", exit=139
    )
    options = make_options(tmp_path, runtime="claude-code", env=cli.env(ANTHROPIC_API_KEY="k"))
    assert run(options, collected, notes) == 1
    assert collected.types == ["initializeRuntime", "startRun", "callTools", "stopRunByError"]
    stop = collected.of("stopRunByError")[0]
    assert stop.error.message == "Claude Code exited with code 139: Segmentation fault"
    assert [c.id for c in stop.checkpoint.pending_tool_calls or []] == ["toolu_9"]


def test_clean_exit_without_terminal_event_is_an_error(
    tmp_path: Path, fake_cli: Callable[[str], FakeCli], collected: Collected, notes: list[str]
) -> None:
    cli = fake_cli("cursor-agent")
    cli.configure(stream=str(stream_path("cursor", "failure-no-result.jsonl")), exit=0)
    options = make_options(tmp_path, runtime="cursor", env=cli.env(**CURSOR_AUTH))
    assert run(options, collected, notes) == 1
    assert collected.of("stopRunByError")[0].error.message == "Cursor Agent ended without a final result"


def test_timeout_kills_the_cli_and_its_grandchild(
    tmp_path: Path, fake_cli: Callable[[str], FakeCli], collected: Collected, notes: list[str]
) -> None:
    cli = fake_cli("gemini")
    grandchild = tmp_path / "grandchild.pid"
    cli.configure(
        stream=str(stream_path("gemini", "real-0.61.0-partial-no-network.jsonl")),
        sleep=60,
        grandchild=str(grandchild),
    )
    options = make_options(tmp_path, runtime="gemini", env=cli.env(GEMINI_API_KEY="g"), timeout_ms=1500)
    started = time.monotonic()
    assert run(options, collected, notes) == 1
    assert time.monotonic() - started < 10
    stop = collected.of("stopRunByError")[0]
    assert stop.error.name == "TimeoutError"
    assert stop.error.message == "Gemini CLI did not finish within 1.5s; its process group was killed"
    assert wait_dead(int(grandchild.read_text()))


def test_model_from_perstack_toml_only_reaches_a_cli_that_understands_it(
    tmp_path: Path, fake_cli: Callable[[str], FakeCli], collected: Collected, notes: list[str]
) -> None:
    claude = fake_cli("claude")
    claude.configure(stream=str(stream_path("claude-code", "reference-2.1.59-write.jsonl")))
    env = claude.env(ANTHROPIC_API_KEY="k")
    assert run(make_options(tmp_path, runtime="claude-code", env=env), collected, notes) == 0
    assert claude.recorded["argv"][claude.recorded["argv"].index("--model") + 1] == "claude-sonnet-4-5"
    assert collected.init().model == "claude-sonnet-4-5"

    codex = fake_cli("codex")
    codex.configure(stream=str(stream_path("codex", "reference-0.101.0.jsonl")))
    again = Collected()
    assert run(make_options(tmp_path, runtime="codex", env=codex.env(OPENAI_API_KEY="k")), again, notes) == 0
    assert "--model" not in codex.recorded["argv"] and again.init().model == "codex:default"
    assert any("'claude-sonnet-4-5' from perstack.toml is not a Codex model" in n for n in notes)


def test_resume_flags_are_refused(
    tmp_path: Path, fake_cli: Callable[[str], FakeCli], collected: Collected
) -> None:
    cli = fake_cli("cursor-agent")
    options = make_options(tmp_path, runtime="cursor", env=cli.env(**CURSOR_AUTH), continue_latest=True)
    with pytest.raises(AdapterError, match="not supported by CLI runtimes"):
        run_with_runtime(options, collected)


def test_run_with_runtime_dispatches_by_id_and_stores_under_the_given_job_id(
    tmp_path: Path, fake_cli: Callable[[str], FakeCli], collected: Collected
) -> None:
    cli = fake_cli("opencode")
    cli.configure(stream=str(stream_path("opencode", "reference-1.18.21-read.jsonl")))
    options = make_options(tmp_path, runtime="opencode", env=cli.env(ANTHROPIC_API_KEY="k"), job_id="job-123")
    assert run_with_runtime(options, collected) == 0
    assert {e.job_id for e in collected.events} == {"job-123"}  # type: ignore[attr-defined]
    done = collected.of("completeRun")[0]
    assert done.checkpoint.metadata["usage"]["costUsd"] == pytest.approx(0.0042)
    assert done.checkpoint.metadata["usage"]["turns"] == 2
    assert (options.jobs_dir / "job-123" / "job.json").is_file()
    assert json.loads(cli.recorded["env"]["OPENCODE_PERMISSION"]) == {"*": "allow"}


def test_copilot_usage_file_is_read_after_exit(
    tmp_path: Path, fake_cli: Callable[[str], FakeCli], collected: Collected, notes: list[str]
) -> None:
    """The stand-in writes the usage file where `--usage-output-file` says, as Copilot does at exit."""
    cli = fake_cli("copilot")
    usage = stream_path("copilot", "real-1.0.102-usage-output-file.json")
    cli.configure(
        stream=str(stream_path("copilot", "real-1.0.102-byok-bash.jsonl")),
        help="--usage-output-file <file>  --no-ask-user",
        copy_usage=str(usage),
    )
    options = make_options(tmp_path, runtime="copilot", env=cli.env(GH_TOKEN="t"))
    assert run(options, collected, notes) == 0
    assert "--usage-output-file" in cli.recorded["argv"]
    done = collected.of("completeRun")[0]
    assert (done.usage.input_tokens, done.usage.output_tokens, done.usage.cached_input_tokens) == (
        350,
        30,
        50,
    )
    assert done.checkpoint.metadata["usage"]["turns"] == 2


@pytest.mark.parametrize("where", ["flag", "perstack.toml"])
def test_max_retries_zero_is_recorded_as_zero_by_a_cli_runtime(
    tmp_path: Path, fake_cli: Callable[[str], FakeCli], collected: Collected, notes: list[str], where: str
) -> None:
    """Zero retries is a setting, not "unset": it once fell through a falsy `or` to the default of 5."""
    import dataclasses

    cli = fake_cli("cursor-agent")
    cli.configure(stream=str(stream_path("cursor", "reference-2026.03.20.jsonl")))
    options = make_options(tmp_path, runtime="cursor", env=cli.env(**CURSOR_AUTH))
    if where == "flag":
        options = dataclasses.replace(options, max_retries=0)
    else:
        options = dataclasses.replace(options, config=options.config.model_copy(update={"max_retries": 0}))
    assert run(options, collected, notes) == 0
    init = collected.init()
    assert init.max_retries == 0
    setting = JobStore(options.jobs_dir).retrieve_run_setting(init.job_id, init.run_id)
    assert setting is not None and setting.max_retries == 0


def test_a_cli_run_records_what_its_resolved_request_and_the_cli_ran_with(
    tmp_path: Path, fake_cli: Callable[[str], FakeCli], collected: Collected, notes: list[str]
) -> None:
    """The run setting comes from `sandbox.request.build_run_setting` and the request passed in: its job id
    and retries, not a second resolution of the options; the model and limits are those the CLI was given."""
    import dataclasses

    from sandbox.request import resolve_run

    cli = fake_cli("cursor-agent")
    cli.configure(stream=str(stream_path("cursor", "reference-2026.03.20.jsonl")))
    options = make_options(tmp_path, runtime="cursor", env=cli.env(**CURSOR_AUTH), expert="writer")
    resolved = resolve_run(dataclasses.replace(options, max_retries=2, job_id="job-given"), None)
    code = run_cli(get_runtime("cursor"), options, collected, note=notes.append, request=resolved)  # type: ignore[arg-type]
    assert code == 0
    init = collected.init()
    assert init.job_id == "job-given" and init.max_retries == 2
    setting = JobStore(options.jobs_dir).retrieve_run_setting("job-given", init.run_id)
    assert setting is not None and setting.job_id == "job-given" and setting.max_retries == 2
    assert setting.model == "cursor:default" and setting.provider_config == {"runtime": "cursor"}
    assert setting.max_steps is None and setting.timeout == init.timeout
    assert setting.reasoning_budget is None and setting.temperature is None  # a CLI takes neither
    assert sorted(setting.experts) == ["reviewer", "writer"]  # the Expert and the delegates its prompt names
    assert setting.input.text == "create hello.txt" and "CURSOR_API_KEY" in setting.env
