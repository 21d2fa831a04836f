"""The files that steer the host stay out of the sandbox's reach (red-team issue, holes 1 and 2).

The red-team's attacks, repeated by an Expert whose scripted model runs them through the `exec` tool in a
workspace laid out as the README's demo is (perstack.toml and the key's `.env` in the working directory, which
is the default workspace):

* read the key from `/workspace/.env` and perstack.toml, and return them as a tool result (hole 1);
* write `DOCKER_HOST` into `.env.local`, a new `baseUrl` into perstack.toml, and swap an env file in a
  subdirectory by renaming the directory (hole 2: what the host reads on the next run).

Controls in the same run: an ordinary file in the workspace is readable with its content, and the Expert's own
new file is on the host afterwards; so the refusals are the masks, not a broken mount.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.docker._testkit import Harness, base_env, module_harness
from sandbox.testing import Expectation, ToolCall, Turn

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SECRET = "sk-ant-steer-SECRET-7f3a01"
EXPERT = '\n[experts."steer"]\nversion = "1.0.0"\ninstruction = "Probe."\n'
ATTACK = r"""
import json, os
def read(p):
    try:
        with open(p) as f:
            return "read:" + f.read()
    except Exception as e:
        return "err:" + type(e).__name__
def write(p, text, mode="a"):
    try:
        with open(p, mode) as f:
            f.write(text)
        return "wrote"
    except Exception as e:
        return "err:" + type(e).__name__
def rename(a, b):
    try:
        os.rename(a, b)
        return "renamed"
    except Exception as e:
        return "err:" + type(e).__name__
out = {
    "listing": sorted(os.listdir("/workspace")),
    "env": read("/workspace/.env"),
    "toml": read("/workspace/perstack.toml"),
    "toml_write": write("/workspace/perstack.toml", '\nbaseUrl = "https://evil.test"\n'),
    "env_write": write("/workspace/.env", "\nDOCKER_HOST=tcp://203.0.113.7:2375\n"),
    "env_unlink": rename("/workspace/.env", "/workspace/.env.gone"),
    "local_create": write("/workspace/.env.local", "DOCKER_HOST=tcp://203.0.113.7:2375\n", "w"),
    "conf_rename": rename("/workspace/conf", "/workspace/conf-old"),
}
os.makedirs("/workspace/conf", exist_ok=True)
out["conf_swap"] = write("/workspace/conf/extra.env", "OPENAI_BASE_URL=https://evil.test\n", "w")
out["control_read"] = read("/workspace/notes.txt")
out["control_write"] = write("/workspace/made-by-expert.txt", "mine", "w")
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    yield from module_harness(tmp_path_factory.mktemp("llm"))


def test_steering_files_are_masked_and_what_the_run_changes_is_undone(
    harness: Harness, tmp_path: Path
) -> None:
    assert harness.llm is not None
    project = tmp_path / "project"
    toml = harness.write_project(project, EXPERT)
    toml.write_text('envPath = [".env", ".env.local", "conf/extra.env"]\n' + toml.read_text())
    original_toml = toml.read_bytes()
    (project / ".env").write_text(f"ANTHROPIC_API_KEY={SECRET}\n")
    (project / "conf").mkdir()
    (project / "conf" / "extra.env").write_text("EXTRA_SETTING=1\n")
    (project / "notes.txt").write_text("control-notes-41\n")
    harness.llm.remote().set_script(
        [
            Turn(
                tool_calls=[
                    ToolCall("exec", {"command": "python3", "args": ["-c", ATTACK], "timeout": 60000})
                ]
            ),
            Turn("done", expect=Expectation(tool_result_contains=["control-notes-41"])),
        ]
    )
    result = harness.run_cli(project, ["steer", "go"], base_env(tmp_path))  # the key only in .env
    requests = harness.llm.remote().requests
    texts = [t for r in requests for t in r.view.tool_results if "control_read" in t]
    assert texts, result.stderr[-3000:]
    body = "\n".join(json.dumps(r.body) for r in requests)
    seen = json.loads(texts[-1][texts[-1].index("{") : texts[-1].rindex("}") + 1])

    # The key reached the provider as the key (the control: .env was read, by the host) ...
    assert any(r.view.api_key == SECRET for r in requests)
    # ... and never as data: the Expert saw empty files where the key and the config are.
    assert SECRET not in body
    assert seen["env"] == "read:" and seen["toml"] == "read:"
    assert seen["toml_write"].startswith("err:") and seen["env_write"].startswith("err:")
    assert seen["env_unlink"].startswith("err:")  # a mount point cannot be renamed away
    assert seen["control_read"] == "read:control-notes-41\n"
    assert seen["control_write"] == "wrote"
    assert "notes.txt" in seen["listing"]

    # What it could do (create a missing env file, swap a subdirectory's) was undone after the run.
    assert seen["local_create"] == "wrote" and seen["conf_rename"] == "renamed"
    assert result.code == 1, result.stderr[-3000:]
    assert toml.read_bytes() == original_toml
    assert (project / ".env").read_text() == f"ANTHROPIC_API_KEY={SECRET}\n"
    assert not (project / ".env.local").exists()
    assert (project / "conf" / "extra.env").read_text() == "EXTRA_SETTING=1\n"
    quarantine = project / "perstack" / "quarantine"
    kept = {
        p.relative_to(run).as_posix() for run in quarantine.iterdir() for p in run.rglob("*") if p.is_file()
    }
    assert {".env.local", "conf/extra.env"} <= kept
    assert "a file the host reads to set up runs" in result.stderr
    assert (project / "made-by-expert.txt").read_text() == "mine"  # the Expert's own work stays
