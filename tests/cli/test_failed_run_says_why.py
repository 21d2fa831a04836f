"""A failed run says why on stderr in one line, with what to do; stdout stays JSON lines (#17, part 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sandbox.testing import ErrorSpec, ScriptedLLMServer, ToolCall, Turn

TOML = """
[provider]
providerName = "anthropic"

[experts."solo"]
instruction = "answer"
"""


def _run(cwd: Path, server: ScriptedLLMServer, *flags: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_TOKEN"))}
    env = {
        **base,
        "ANTHROPIC_API_KEY": "sk-test",
        "ANTHROPIC_BASE_URL": server.base_url,
        "SSL_CERT_FILE": str(server.ca_pem_path),
    }
    return subprocess.run(
        [sys.executable, "-m", "sandbox", "run", "solo", "hi", "--runtime", "perstack", *flags],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _types(stdout: str) -> list[str]:
    return [json.loads(line)["type"] for line in stdout.splitlines()]  # every stdout line is JSON


def test_an_error_ending_is_one_line_on_stderr(tmp_path: Path) -> None:
    (tmp_path / "perstack.toml").write_text(TOML)
    with ScriptedLLMServer([Turn(error=ErrorSpec(400, message="the model is gone"))], tls=True) as server:
        proc = _run(tmp_path, server, "--max-retries", "0")
    assert proc.returncode == 1
    assert _types(proc.stdout)[-1] == "stopRunByError"
    job = json.loads(proc.stdout.splitlines()[-1])["jobId"]
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: the run stopped on an error: ") and "HTTP 400" in line, line
    assert "the model is gone" in line and f"--continue-job {job}" in line


def test_the_step_limit_is_named_with_the_flag_to_raise(tmp_path: Path) -> None:
    (tmp_path / "perstack.toml").write_text(
        TOML + '[experts."solo".skills."@perstack/base"]\n'
        'type = "mcpStdioSkill"\ncommand = "npx"\n'
        'packageName = "@perstack/base"\npick = ["think"]\n'
    )
    turns = [Turn(tool_calls=[ToolCall("think", {"thought": "hm"})]) for _ in range(3)]
    with ScriptedLLMServer(turns, tls=True) as server:
        proc = _run(tmp_path, server, "--max-steps", "1")
    assert proc.returncode == 1, proc.stderr
    assert _types(proc.stdout)[-1] == "stopRunByExceededMaxSteps"
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: the run reached its step limit (") and "raise --max-steps" in line


def test_control_a_completed_run_adds_nothing_to_stderr(tmp_path: Path) -> None:
    (tmp_path / "perstack.toml").write_text(TOML)
    with ScriptedLLMServer([Turn("done")], tls=True) as server:
        proc = _run(tmp_path, server)
    assert proc.returncode == 0 and _types(proc.stdout)[-1] == "completeRun"
    assert proc.stderr == ""


def test_an_unsafe_job_id_is_refused_before_any_event(tmp_path: Path) -> None:
    (tmp_path / "perstack.toml").write_text(TOML)
    with ScriptedLLMServer([Turn("done")], tls=True) as server:
        refused = _run(tmp_path, server, "--job-id", "../../evil")
        assert refused.returncode == 1 and refused.stdout == ""
        assert refused.stderr.strip() == "error: Invalid job id: '../../evil'"
        assert server.requests == [] and not (tmp_path.parent / "evil").exists()
        # The control: a safe id is the job's id.
        allowed = _run(tmp_path, server, "--job-id", "my-job.1")
    assert allowed.returncode == 0, allowed.stderr
    assert {json.loads(line)["jobId"] for line in allowed.stdout.splitlines()} == {"my-job.1"}
