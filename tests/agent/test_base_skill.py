"""The built-in base skill: workspace containment, symlink refusal, reserved job storage, exec without a
shell and with a filtered env, todo + attemptCompletion."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from sandbox.agent._env import PROTECTED_ENV_VARS, filtered_env, skill_env
from sandbox.agent.skills.builtin import BaseSkill


def call(skill: BaseSkill, tool: str, **args: Any) -> tuple[str, bool]:
    out = asyncio.run(skill.call(tool, args))
    return "".join(getattr(p, "text", "") for p in out.parts), out.is_error


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.txt").write_text("line1\nline2\nline3\n")
    (root / "sub").mkdir()
    (root / "sub" / "b.py").write_text("def hello():\n    return 'world'\n")
    (tmp_path / "secret.txt").write_text("top secret")
    return root


@pytest.fixture
def skill(ws: Path) -> BaseSkill:
    return BaseSkill(ws, {"PATH": os.environ["PATH"], "HOME": "/tmp", "SECRET": "s3cr3t"})


def test_read_write_edit_list(skill: BaseSkill, ws: Path) -> None:
    assert call(skill, "readTextFile", path="a.txt", **{"from": 2, "to": 2}) == ("line2\n", False)
    assert not call(skill, "writeTextFile", path="new/dir/c.txt", text="hello")[1]
    assert (ws / "new" / "dir" / "c.txt").read_text() == "hello"
    assert not call(skill, "editTextFile", path="new/dir/c.txt", oldText="hello", newText="bye")[1]
    assert (ws / "new" / "dir" / "c.txt").read_text() == "bye"
    text, err = call(skill, "editTextFile", path="a.txt", oldText="line", newText="x")
    assert err and "exactly once" in text
    listing, _ = call(skill, "listDirectory", path=".")
    assert '"name": "a.txt"' in listing and '"type": "directory"' in listing


def test_glob_and_grep(skill: BaseSkill) -> None:
    assert call(skill, "glob", pattern="*.py")[0] == "sub/b.py"
    text, _ = call(skill, "grep", pattern=r"return '\w+'")
    assert text == "sub/b.py:2:     return 'world'"


@pytest.mark.parametrize("path", ["../secret.txt", "/etc/passwd", "sub/../../secret.txt"])
def test_paths_outside_the_workspace_are_refused(skill: BaseSkill, path: str) -> None:
    text, err = call(skill, "readTextFile", path=path)
    assert err and "outside the workspace" in text
    text, err = call(skill, "writeTextFile", path=path, text="x")
    assert err


def test_symlinks_are_refused(skill: BaseSkill, ws: Path, tmp_path: Path) -> None:
    (ws / "link.txt").symlink_to(tmp_path / "secret.txt")
    (ws / "inner.txt").symlink_to(ws / "a.txt")
    (ws / "outdir").symlink_to(tmp_path)
    for path in ("link.txt", "inner.txt"):
        text, err = call(skill, "readTextFile", path=path)
        assert err and "symlink" in text
        assert call(skill, "writeTextFile", path=path, text="pwned")[1]
    text, err = call(skill, "readTextFile", path="outdir/secret.txt")
    assert err and "outside the workspace" in text
    assert call(skill, "writeTextFile", path="outdir/evil.txt", text="x")[1]
    assert not (tmp_path / "evil.txt").exists()
    assert (tmp_path / "secret.txt").read_text() == "top secret"


def test_job_storage_is_reserved(skill: BaseSkill, ws: Path) -> None:
    (ws / "perstack" / "jobs").mkdir(parents=True)
    text, err = call(skill, "writeTextFile", path="perstack/jobs/x.json", text="{}")
    assert err and "reserved" in text
    assert "perstack" not in call(skill, "listDirectory", path=".")[0]


def test_exec_without_shell_and_with_filtered_env(skill: BaseSkill, ws: Path) -> None:
    text, err = call(skill, "exec", command="echo", args=["$HOME", "a;b", "`id`"])
    assert not err and "$HOME a;b `id`" in text
    code = "import os; print(sorted(os.environ))"
    text, err = call(
        skill, "exec", command=sys.executable, args=["-c", code], env={"EXTRA": "1", "LD_PRELOAD": "x"}
    )
    assert not err
    assert "'EXTRA'" in text and "SECRET" not in text and "LD_PRELOAD" not in text
    text, err = call(skill, "exec", command="pwd", cwd="sub")
    assert text.splitlines()[2] == str(ws / "sub")
    assert call(skill, "exec", command="pwd", cwd="..")[1]


def test_exec_timeout_and_failure(skill: BaseSkill) -> None:
    text, err = call(skill, "exec", command="sleep", args=["5"], timeout=200)
    assert err and "timed out" in text
    text, err = call(skill, "exec", command="false")
    assert err and "exit code: 1" in text
    text, err = call(skill, "exec", command="/no/such/program")
    assert err and "Cannot run" in text


def test_todo_gates_attempt_completion(skill: BaseSkill) -> None:
    call(skill, "todo", newTodos=["write tests", "ship"])
    text, err = call(skill, "attemptCompletion")
    assert err and "write tests" in text
    call(skill, "todo", completedTodos=[0, 1])
    assert call(skill, "attemptCompletion") == ("Task marked as complete.", False)


def test_pick_and_omit() -> None:
    skill = BaseSkill(Path("."), {}, pick=("readTextFile", "exec"), omit=("exec",))
    assert [t.name for t in skill.tools()] == ["readTextFile"]


def test_filtered_env_rules() -> None:
    source = {
        "PATH": "/bin",
        "HOME": "/h",
        "AWS_SECRET_ACCESS_KEY": "x",
        "HTTPS_PROXY": "p",
        "BASH_FUNC": "() {",
    }
    assert filtered_env(source) == {"PATH": "/bin", "HOME": "/h", "HTTPS_PROXY": "p"}
    env = filtered_env(source, {"path": "/evil", "Node_Options": "--x", "TOKEN": "t"})
    assert env["PATH"] == "/bin" and "Node_Options" not in env and env["TOKEN"] == "t"
    assert {"LD_PRELOAD", "NODE_OPTIONS", "PYTHONPATH"} <= PROTECTED_ENV_VARS
    with pytest.raises(Exception, match="Skill s requires environment variable MISSING"):
        skill_env("s", source, ["MISSING"])
