"""`sandbox.steering_guard`: the records that cover concurrent commands and a host killed before its undo."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from sandbox._errors import UserError
from sandbox._owner import proc_start
from sandbox.steering import steering_paths
from sandbox.steering_guard import SteeringGuard, check_records


def _setup(tmp_path: Path) -> tuple[Path, dict[str, str], SteeringGuard]:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "perstack.toml").write_text("model = 'x'\n")
    (ws / ".env").write_text("K=1\n")
    env = {"HOME": str(tmp_path / "home"), "XDG_STATE_HOME": str(tmp_path / "state")}
    steering = steering_paths(
        cwd=ws,
        config_file=ws / "perstack.toml",
        env_files=[".env", ".env.local"],
        ca_cert=None,
        jobs_dir=ws / "perstack" / "jobs",
        env=env,
    )
    return ws, env, SteeringGuard.for_run(ws, steering, ws / "perstack" / "jobs", env)


def _kill_owner(record: Path) -> None:
    """Make the record's owner a process that has exited (its pid and start time, reaped)."""
    child = subprocess.Popen(["sleep", "0"])
    start = proc_start(child.pid) or "1"
    child.wait()
    data = json.loads(record.read_text())
    data["owner"].update(pid=child.pid, start=start)
    record.write_text(json.dumps(data))


def test_a_live_run_that_changed_a_steering_file_stops_other_commands(tmp_path: Path) -> None:
    ws, env, guard = _setup(tmp_path)
    guard.begin("run1")
    records = list((tmp_path / "state" / "sandbox" / "active").iterdir())
    assert len(records) == 1 and "K=1" not in records[0].read_text()  # digests, never content
    assert check_records(ws, env) == []  # control: nothing changed yet, commands go on
    (ws / ".env.local").write_text("DOCKER_HOST=tcp://x\n")  # what the run's Expert does meanwhile
    with pytest.raises(UserError, match=r"is running in .* wait for it to end"):
        check_records(ws / "sub", env)  # a command from inside the workspace
    assert check_records(tmp_path / "elsewhere", env) == []  # an unrelated directory is not concerned
    changes = guard.end()
    assert [c.what for c in changes] == ["created"]
    assert not records[0].exists() and check_records(ws, env) == []


def test_a_killed_runs_created_files_are_moved_by_the_next_command(tmp_path: Path) -> None:
    ws, env, guard = _setup(tmp_path)
    guard.begin("run2")
    (record,) = (tmp_path / "state" / "sandbox" / "active").iterdir()
    (ws / ".env.local").write_text("DOCKER_HOST=tcp://x\n")
    _kill_owner(record)  # the host was killed before `end`
    lines = check_records(ws, env)
    assert len(lines) == 1 and "moved to" in lines[0]
    assert not (ws / ".env.local").exists()
    assert (ws / "perstack" / "quarantine" / "run2" / ".env.local").read_text().startswith("DOCKER_HOST")
    assert not record.exists()
    assert (ws / ".env").read_text() == "K=1\n"  # control: what it did not touch stays


def test_a_killed_runs_changed_file_refuses_once(tmp_path: Path) -> None:
    ws, env, guard = _setup(tmp_path)
    guard.begin("run3")
    (record,) = (tmp_path / "state" / "sandbox" / "active").iterdir()
    (ws / ".env").write_text("K=attacker\n")  # swapped (a masked file only changes by swapping its dir)
    _kill_owner(record)
    with pytest.raises(UserError, match=r"ended before it could check .*\.env; review them"):
        check_records(ws, env)
    assert (ws / ".env").read_text() == "K=attacker\n"  # nothing guessed: the user reviews it
    assert check_records(ws, env) == []  # said once; the next command goes on
