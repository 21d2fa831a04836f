"""The audit's replica of the user's real layout (`sandbox.audit._layout`): the real workspace's masks,
markers in place of content, the user's files never touched, and the host's undo as a run does it."""

from __future__ import annotations

from pathlib import Path

from sandbox.audit._layout import build_replica, settle_replica
from sandbox.steering import SteeringPaths, steering_paths


def _real(tmp_path: Path) -> tuple[Path, SteeringPaths]:
    ws = tmp_path / "project"
    (ws / "conf").mkdir(parents=True)
    (ws / "perstack.toml").write_text("model = 'x'\n")
    (ws / ".env").write_text("ANTHROPIC_API_KEY=sk-real-key\n")
    (ws / "conf" / "extra.env").write_text("A=1\n")
    steering = steering_paths(
        cwd=ws,
        config_file=ws / "perstack.toml",
        env_files=[".env", ".env.local", "conf/extra.env"],
        ca_cert=None,
        jobs_dir=ws / "perstack" / "jobs",
        env={"HOME": str(tmp_path / "home")},
    )
    return ws, steering


def test_the_replica_is_masked_like_the_real_workspace_and_holds_no_real_content(tmp_path: Path) -> None:
    ws, steering = _real(tmp_path)
    before = {p: p.read_bytes() for p in ws.rglob("*") if p.is_file()}
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    replica = build_replica(scratch, ws, steering, "marker-123", None)
    assert (
        replica.files
        == replica.real_files
        == ("/workspace/.env", "/workspace/conf/extra.env", "/workspace/perstack.toml")
    )
    assert "/workspace/perstack" in replica.dirs  # the job store a run creates first
    assert (
        "/workspace/.env.local" in replica.creatable and "/workspace/perstack.toml" not in replica.creatable
    )
    assert (scratch / ".env").read_text() == "marker-123\n"
    assert "sk-real-key" not in "".join(p.read_text() for p in scratch.rglob("*") if p.is_file())
    assert {p: p.read_bytes() for p in ws.rglob("*") if p.is_file()} == before  # the user's files untouched
    assert not (ws / "perstack").exists()


def test_the_undo_reports_what_the_probes_created_and_keeps_the_control(tmp_path: Path) -> None:
    ws, steering = _real(tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    replica = build_replica(scratch, ws, steering, "m", None)
    (scratch / ".env.local").write_text("DOCKER_HOST=tcp://x\n")  # what the probe does inside
    assert replica.host_control_create is not None
    replica.host_control_create.write_text("m\n")
    result = settle_replica(replica, tmp_path / "q")
    assert result == {"undone": ["/workspace/.env.local"], "left": [], "control_kept": True}
    assert not (scratch / ".env.local").exists()
