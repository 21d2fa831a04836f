"""`sandbox.steering`: which host files steer the next run, what is masked, how a run's changes are undone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandbox._errors import UserError
from sandbox.steering import Snapshot, SteeringPaths, check_workspace, mask_targets, steering_paths


def _layout(tmp_path: Path) -> tuple[Path, SteeringPaths]:
    ws = tmp_path / "ws"
    (ws / "sub").mkdir(parents=True)
    (ws / "perstack.toml").write_text("model = 'x'\n")
    (ws / ".env").write_text("ANTHROPIC_API_KEY=k\n")
    (ws / ".env.production").write_text("OTHER=1\n")
    (ws / "conf").mkdir()
    (ws / "conf" / "extra.env").write_text("A=1\n")
    (ws / "ca.pem").write_text("pem")
    steering = steering_paths(
        cwd=ws / "sub",
        config_file=ws / "perstack.toml",
        env_files=["../.env", "../conf/extra.env", "x.env"],
        ca_cert=str(ws / "ca.pem"),
        jobs_dir=ws / "sub" / "perstack" / "jobs",
        env={"HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(ws / ".cache")},
    )
    return ws, steering


def test_steering_paths_cover_discovery_env_files_dotenv_siblings_ca_and_state(tmp_path: Path) -> None:
    ws, steering = _layout(tmp_path)
    files = {p.absolute() for p in steering.files}
    # Discovery from sub/ finds ws/perstack.toml; a sub/perstack.toml would be read first next time.
    assert ws / "sub" / "perstack.toml" in files and ws / "perstack.toml" in files
    assert ws.parent / "perstack.toml" not in files  # above the file found: never read before it
    assert {ws / ".env", ws / "conf" / "extra.env", ws / "sub" / "x.env"} <= files
    assert ws / ".env.production" in files  # `.env*` next to the config
    assert ws / "ca.pem" in files
    assert set(steering.dirs) == {
        ws / "sub" / "perstack",
        ws / ".cache" / "sandbox",
        tmp_path / "home" / ".docker",
    }


def test_only_existing_paths_inside_the_workspace_are_masked(tmp_path: Path) -> None:
    ws, steering = _layout(tmp_path)
    (ws / "sub" / "perstack" / "jobs").mkdir(parents=True)
    (ws / ".cache" / "sandbox").mkdir(parents=True)
    outside = tmp_path / "outside.env"
    outside.write_text("X=1\n")
    (ws / "link.env").symlink_to(ws / "conf" / "extra.env")
    extra = SteeringPaths(files=(*steering.files, outside, ws / "link.env"), dirs=steering.dirs)
    dirs, files = mask_targets(ws, extra)
    assert dirs == ("/workspace/.cache/sandbox", "/workspace/sub/perstack")
    assert files == (
        "/workspace/.env",
        "/workspace/.env.production",
        "/workspace/ca.pem",
        "/workspace/conf/extra.env",
        "/workspace/perstack.toml",
    )  # not sub/perstack.toml nor sub/x.env (absent), not outside.env; the link masked at its target


def test_settle_undoes_created_changed_removed_and_swapped_files(tmp_path: Path) -> None:
    ws, steering = _layout(tmp_path)
    snapshot = Snapshot.take(ws, steering)
    # What a run inside could do without touching a masked file: create a missing one, swap a directory.
    (ws / "sub" / "perstack.toml").write_text("[sandbox]\nallowPrivate = ['10.0.0.1:22']\n")
    (ws / "conf").rename(ws / "conf-old")
    (ws / "conf").mkdir()
    (ws / "conf" / "extra.env").write_text("OPENAI_BASE_URL=https://evil.test\n")
    (ws / ".env").unlink()
    (ws / "sub" / "x.env").symlink_to("/etc/passwd")
    untouched = (ws / "perstack.toml").stat().st_mtime_ns

    changes = snapshot.settle(tmp_path / "q")
    by_path = {c.path: c for c in changes}
    assert set(by_path) == {
        ws / "sub" / "perstack.toml",
        ws / "conf" / "extra.env",
        ws / ".env",
        ws / "sub" / "x.env",
    }
    assert not (ws / "sub" / "perstack.toml").exists()
    assert (tmp_path / "q" / "sub" / "perstack.toml").read_text().startswith("[sandbox]")
    assert (ws / "conf" / "extra.env").read_text() == "A=1\n"
    assert (tmp_path / "q" / "conf" / "extra.env").read_text().startswith("OPENAI_BASE_URL")
    assert (ws / ".env").read_text() == "ANTHROPIC_API_KEY=k\n"
    assert not os.path.lexists(ws / "sub" / "x.env")
    assert (tmp_path / "q" / "sub" / "x.env").is_symlink()
    assert by_path[ws / ".env"].what == "removed" and by_path[ws / ".env"].restored
    assert by_path[ws / "sub" / "perstack.toml"].what == "created"
    assert (
        by_path[ws / "conf" / "extra.env"].what == "changed" and by_path[ws / "conf" / "extra.env"].restored
    )
    assert "the original is restored" in by_path[ws / "conf" / "extra.env"].describe()
    assert (ws / "perstack.toml").stat().st_mtime_ns == untouched  # control: untouched files stay as they are
    assert Snapshot.take(ws, steering).settle(tmp_path / "q2") == []  # and a clean run changes nothing


def test_a_workspace_holding_the_home_directory_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home" / "me"
    home.mkdir(parents=True)
    for workspace in (home, tmp_path / "home", tmp_path):
        with pytest.raises(UserError, match="contains your home directory"):
            check_workspace(workspace, {"HOME": str(home)})
    project = home / "project"
    project.mkdir()
    check_workspace(project, {"HOME": str(home)})  # control: a project directory is fine
