"""`compare`: one Expert, several runtimes, one row each (stand-in CLIs)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from sandbox._errors import UserError
from sandbox.runtimes import compare
from sandbox.runtimes._commands import compare_command, format_compare_table

from .conftest import Collected, FakeCli, make_options, stream_path


@pytest.fixture
def two_clis(fake_cli: Callable[[str], FakeCli]) -> dict[str, str]:
    claude = fake_cli("claude")
    claude.configure(stream=str(stream_path("claude-code", "reference-2.1.59-write.jsonl")), delay=0.2)
    cursor = fake_cli("cursor-agent")
    cursor.configure(
        stream=str(stream_path("cursor", "failure-no-result.jsonl")), stderr="not logged in", exit=1
    )
    return claude.env(ANTHROPIC_API_KEY="k", CURSOR_API_KEY="c")


def test_rows_per_runtime(tmp_path: Path, two_clis: dict[str, str]) -> None:
    options = make_options(tmp_path, runtime="perstack", env=two_clis)
    forwarded = Collected()
    rows = compare(options, ["claude-code", "cursor", "codex"], emit=forwarded)
    claude, cursor, codex = rows
    assert (claude.runtime, claude.outcome, claude.steps, claude.turns) == ("claude-code", "completed", 2, 2)
    assert (claude.input_tokens, claude.output_tokens) == (4 + 1774 + 38897, 107)
    assert claude.cost_usd == pytest.approx(0.033231) and claude.wall_s > 0.2
    assert claude.job_id and (options.jobs_dir / claude.job_id / "job.json").is_file()
    assert cursor.outcome == "error" and cursor.error == "Cursor Agent exited with code 1: not logged in"
    assert cursor.input_tokens is None and cursor.cost_usd is None
    assert codex.outcome == "unavailable" and "`codex` was not found on PATH" in (codex.error or "")
    assert codex.job_id is None
    assert {e.job_id for e in forwarded.events} == {claude.job_id, cursor.job_id}  # type: ignore[attr-defined]


def test_parallel_gives_the_same_rows_in_order(tmp_path: Path, two_clis: dict[str, str]) -> None:
    options = make_options(tmp_path, runtime="perstack", env=two_clis)
    rows = compare(options, ["cursor", "claude-code"], parallel=True)
    assert [(r.runtime, r.outcome) for r in rows] == [("cursor", "error"), ("claude-code", "completed")]
    assert rows[0].job_id != rows[1].job_id


def test_unknown_runtime_fails_before_anything_runs(tmp_path: Path, two_clis: dict[str, str]) -> None:
    options = make_options(tmp_path, runtime="perstack", env=two_clis)
    with pytest.raises(UserError, match="unknown runtime 'gemeni'"):
        compare(options, ["claude-code", "gemeni"])
    assert not options.jobs_dir.exists()


def test_compare_command_table_and_json(tmp_path: Path, two_clis: dict[str, str]) -> None:
    options = make_options(tmp_path, runtime="perstack", env=two_clis)
    code, text = compare_command(options, ["claude-code", "cursor"], as_json=True)
    assert code == 1  # not every runtime completed
    data = json.loads(text)
    assert [d["runtime"] for d in data] == ["claude-code", "cursor"]
    assert set(data[0]) == {
        "runtime",
        "outcome",
        "steps",
        "turns",
        "inputTokens",
        "outputTokens",
        "costUsd",
        "wallSeconds",
        "jobId",
        "error",
    }
    code, text = compare_command(options, ["claude-code"])
    assert code == 0
    header, row = text.splitlines()[:2]
    assert header.split() == [
        "RUNTIME",
        "OUTCOME",
        "STEPS/TURNS",
        "INPUT",
        "TOK",
        "OUTPUT",
        "TOK",
        "COST",
        "USD",
        "WALL",
        "JOB",
    ]
    assert row.split()[:6] == ["claude-code", "completed", "2/2", "40,675", "107", "0.0332"]


def test_table_shows_unknown_as_dash() -> None:
    from sandbox.runtimes import CompareRow

    text = format_compare_table([CompareRow(runtime="x", outcome="error", error="boom")])
    assert text.splitlines()[1].split() == ["x", "error", "-/-", "-", "-", "-", "0.0s", "-"]
    assert text.endswith("x: boom")
