"""Unit tests for the workspace's hygiene (issue #12, items 4 and 6): who the Expert runs as, the post-run
scan, the nosuid,nodev mount, and the quota's two bounds. Each refusal or finding has its control."""

from __future__ import annotations

import os
import socket
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from sandbox._errors import PlanError, RenderError, UserError
from sandbox.config import parse_config_text
from sandbox.docker import parse_compose
from sandbox.docker._quota import QuotaWatcher, format_size, written_since
from sandbox.docker._user import resolve_user
from sandbox.docker._workspace_mount import (
    MS_BIND,
    _mount,
    can_mount,
    mounts_under,
    nosuid_workspace,
    release_mounts,
)
from sandbox.docker._workspace_scan import report_lines, scan_workspace
from sandbox.render import RunSite, render_context

from .conftest import SECRET, config, plan_for

MIB = 1 << 20

# ------------------------------------------------------------------------------------------ who runs it


def test_an_ordinary_invoker_runs_the_expert_as_itself(tmp_path: Path) -> None:
    choice = resolve_user(None, None, {}, tmp_path, invoker=(1000, 1000), process_env={})
    assert (choice.uid, choice.gid, choice.why) == (1000, 1000, "invoker")


def test_root_runs_the_expert_as_the_workspace_owner(tmp_path: Path) -> None:
    if os.getuid() == 0:
        os.chown(tmp_path, 4242, 4343)
        choice = resolve_user(None, None, {}, tmp_path, invoker=(0, 0), process_env={})
        assert (choice.uid, choice.gid, choice.why) == (4242, 4343, "workspace-owner")
    else:  # the workspace is the caller's: as root on it, the Expert runs as that owner
        choice = resolve_user(None, None, {}, tmp_path, invoker=(0, 0), process_env={})
        assert (choice.uid, choice.why) == (os.getuid(), "workspace-owner")


def test_root_on_a_root_workspace_is_refused_without_an_explicit_opt_in(tmp_path: Path) -> None:
    root_owned = Path("/")  # owned by root on every Linux host
    with pytest.raises(UserError, match="refusing to run the Expert as root") as info:
        resolve_user(None, None, {}, root_owned, invoker=(0, 0), process_env={})
    assert "\n" not in str(info.value)
    # An env file (the Expert may have written .env) is no opt-in ...
    with pytest.raises(UserError, match="comes from an env file"):
        resolve_user(None, None, {"SANDBOX_USER": "0:0"}, root_owned, invoker=(0, 0), process_env={})
    # ... the process environment is (the control: the same value, from where the Expert cannot write).
    choice = resolve_user(
        None, None, {"SANDBOX_USER": "0:0"}, root_owned, invoker=(0, 0), process_env={"SANDBOX_USER": "0:0"}
    )
    assert (choice.uid, choice.gid, choice.why) == (0, 0, "override")
    # Explicit settings (embedders, the audit's tests) win.
    assert resolve_user(0, 0, {}, root_owned, invoker=(0, 0), process_env={}).why == "explicit"


def test_a_non_root_override_and_bad_values(tmp_path: Path) -> None:
    choice = resolve_user(None, None, {"SANDBOX_USER": "1234:5678"}, tmp_path, invoker=(0, 0), process_env={})
    assert (choice.uid, choice.gid) == (1234, 5678)
    assert resolve_user(None, None, {"SANDBOX_USER": "77"}, tmp_path, process_env={}).gid == 77
    with pytest.raises(UserError, match="expected UID or UID:GID"):
        resolve_user(None, None, {"SANDBOX_USER": "root"}, tmp_path, process_env={})


# ------------------------------------------------------------------------------------------ the scan


def _plant(ws: Path) -> None:
    (ws / "sub").mkdir()
    for name in ("suid", "sub/sgid"):
        (ws / name).write_bytes(b"#!/bin/sh\n")
    (ws / "suid").chmod(0o4755)
    (ws / "sub" / "sgid").chmod(0o2755)
    os.mkfifo(ws / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(ws / "sock"))
    sock.close()
    (ws / "abs-link").symlink_to("/etc/passwd")
    (ws / "sub" / "rel-link").symlink_to("../../outside")
    (ws / "ok-link").symlink_to("sub/sgid")
    (ws / "sub" / "ok-rel").symlink_to("../suid")
    (ws / "perstack").mkdir()
    os.mkfifo(ws / "perstack" / "host-fifo")  # the host's job store: skipped


def test_the_scan_reports_each_hazard_once_and_strips_set_id_bits(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    since = time.time_ns()
    _plant(ws)
    plain = ws / "plain.txt"
    plain.write_text("x")
    report = scan_workspace(ws, since, prune=[str(ws / "perstack")])
    kinds = {f.path: f.kind for f in report.findings}
    assert kinds == {
        "suid": "setuid",
        "sub/sgid": "setgid",
        "fifo": "fifo",
        "sock": "socket",
        "abs-link": "symlink-outside",
        "sub/rel-link": "symlink-outside",
    }
    assert report.fixed == 2
    assert stat.S_IMODE((ws / "suid").stat().st_mode) == 0o755
    assert stat.S_IMODE((ws / "sub" / "sgid").stat().st_mode) == 0o755
    assert stat.S_ISFIFO((ws / "fifo").lstat().st_mode)  # reported, left in place
    lines = report_lines(report)
    assert len(lines) == 7 and all(line.startswith("sandbox: ") for line in lines)
    assert "the run left 6 item(s)" in lines[-1] and "set-id bits removed from 2 file(s)" in lines[-1]
    assert any(
        "'abs-link' is a symlink pointing outside the workspace (-> '/etc/passwd')" in x for x in lines
    )
    # Again: nothing left to fix, the rest still reported.
    again = scan_workspace(ws, since, prune=[str(ws / "perstack")])
    assert again.fixed == 0 and len(again.findings) == 4


def test_the_scan_ignores_what_did_not_change_during_the_run_and_is_bounded(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    _plant(ws)
    later = time.time_ns() + 5_000_000_000  # a run that started after all of this
    assert scan_workspace(ws, later).findings == []
    # Control: the same tree, scanned from before it was made, has findings; a chmod makes an old file new.
    assert scan_workspace(ws, 0, fix=False).findings
    report = scan_workspace(ws, 0, fix=False, max_entries=3)
    assert report.truncated and any("stopped after" in line for line in report_lines(report))
    many = scan_workspace(ws, 0, fix=False)
    assert len(report_lines(many, limit=2)) == 2 + 2  # two lines, "... and N more", the summary


def test_the_scan_reports_device_nodes(tmp_path: Path) -> None:
    if os.geteuid() != 0:  # without CAP_MKNOD no device node can be made (the Expert has none either)
        with pytest.raises(PermissionError):
            os.mknod(tmp_path / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        return
    os.mknod(tmp_path / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    (finding,) = scan_workspace(tmp_path, 0).findings
    assert (finding.kind, finding.detail) == ("device", "char 1:3")


# ------------------------------------------------------------------------------------------ the mount


def _flags(point: Path) -> set[str]:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split(" ")
        if fields[4] == str(point):
            return set(fields[5].split(","))
    return set()


def test_the_workspace_mount_is_nosuid_nodev_and_released(tmp_path: Path) -> None:
    ws, run_dir = tmp_path / "my ws", tmp_path / "run"
    ws.mkdir()
    run_dir.mkdir()
    (ws / "keep.txt").write_text("user data")
    mounted = nosuid_workspace(ws, run_dir)
    if not can_mount():
        assert mounted is None and not (run_dir / "workspace").exists()
        return
    assert mounted == run_dir / "workspace"
    try:
        assert {"nosuid", "nodev"} <= _flags(mounted)
        # Control: a plain bind of the same directory (what Docker would make) has neither flag.
        plain = run_dir / "plain"
        plain.mkdir()
        _mount(str(ws), str(plain), MS_BIND)
        assert _flags(plain) and not {"nosuid", "nodev"} & _flags(plain)
        assert (mounted / "keep.txt").read_text() == "user data"
        assert sorted(mounts_under(run_dir)) == sorted([str(mounted), str(plain)])
    finally:
        assert release_mounts(run_dir)
    assert mounts_under(run_dir) == []
    assert (ws / "keep.txt").read_text() == "user data"


def test_gc_never_deletes_through_a_mounted_workspace(tmp_path: Path) -> None:
    from sandbox.docker._gc import collect_leftovers, make_run_dir
    from sandbox.docker._labels import TOOL_LABEL, TOOL_NAME

    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "keep.txt").write_text("user data")
    root = tmp_path / "tmp"
    root.mkdir()
    run_dir = make_run_dir(root, "deadrun", {TOOL_LABEL: TOOL_NAME, "sandbox.run": "deadrun"})
    mounted = nosuid_workspace(ws, run_dir)
    try:
        report = collect_leftovers(None, temp_root=root, everything=True)
    finally:
        release_mounts(run_dir)
    assert (ws / "keep.txt").read_text() == "user data"
    assert not run_dir.exists() and report.temp_dirs  # control: the dead run's dir itself is gone
    assert mounted is None or mounts_under(tmp_path) == []


# ------------------------------------------------------------------------------------------ the quota


def test_written_since_counts_each_changed_file_once(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.write_bytes(b"x" * MIB)
    since = time.time_ns() + 10_000_000_000  # nothing counts ...
    assert written_since(tmp_path, since) == 0
    new = tmp_path / "new"
    new.write_bytes(b"y" * (2 * MIB))
    os.link(new, tmp_path / "hardlink")
    (tmp_path / "perstack").mkdir()
    (tmp_path / "perstack" / "job").write_bytes(b"z" * MIB)
    # ... control: from the past, the new file counts once (not twice for the hard link), the job store not.
    total = written_since(tmp_path, 0, prune=[str(tmp_path / "perstack")])
    assert 3 * MIB <= total < 3 * MIB + 64 * 1024


def test_the_watcher_stops_once_the_run_itself_wrote_more_than_the_limit(tmp_path: Path) -> None:
    used = [10 * MIB]
    fired: list[int] = []
    watcher = QuotaWatcher(
        tmp_path,
        quota=MIB,
        on_exceeded=lambda: fired.append(1),
        since_ns=0,
        usage=lambda _p: (used[0], 1 << 40),
    )
    watcher.start()
    watcher.stop()  # drive it by hand
    # The filesystem grew (someone else wrote) but the workspace did not: no stop.
    used[0] += 50 * MIB
    assert not watcher.check() and not fired
    # Control: the workspace itself grows past the limit: stopped, once.
    watcher._next_walk = 0.0
    (tmp_path / "big").write_bytes(b"x" * (2 * MIB))
    assert watcher.check() and watcher.check() and fired == [1]
    assert "its quota of 1m" in watcher.message() and "--workspace-quota" in watcher.message()


def test_the_watcher_caps_the_limit_at_half_the_free_space(tmp_path: Path) -> None:
    watcher = QuotaWatcher(tmp_path, quota=10 << 30, on_exceeded=lambda: None, usage=lambda _p: (0, 4 << 30))
    watcher.start()
    watcher.stop()
    assert watcher.limit == 2 << 30 and watcher.capped_by_free_space
    assert "half the free space" in watcher.message() and format_size(2 << 30) == "2g"


def test_the_quota_reaches_the_plan_and_the_container_as_rlimit_fsize(tmp_path: Path) -> None:
    cfg = config()
    assert plan_for(cfg, {"ANTHROPIC_API_KEY": SECRET}).limits.workspace_quota == "10g"
    plan = plan_for(cfg, {"ANTHROPIC_API_KEY": SECRET}, workspace_quota="64m")
    assert plan.limits.workspace_quota_bytes == 64 * MIB
    ctx = render_context(plan, cfg, RunSite(project="p", workspace=tmp_path / "ws"))
    ctx.write(tmp_path / "ctx")
    compose = parse_compose((tmp_path / "ctx" / "compose.yaml").read_text(), tmp_path / "ctx")
    assert compose.services["expert"].ulimits == {"core": (0, 0), "fsize": (64 * MIB, 64 * MIB)}
    assert "fsize" not in compose.services["proxy"].ulimits
    with pytest.raises(PlanError, match=r"--workspace-quota: .*too small"):
        plan_for(cfg, {"ANTHROPIC_API_KEY": SECRET}, workspace_quota="1k")
    with pytest.raises(PlanError, match=r"--workspace-quota: .*not a size"):
        plan_for(cfg, {"ANTHROPIC_API_KEY": SECRET}, workspace_quota="lots")
    text = '[sandbox]\nworkspaceQuota = "2g"\n[experts."coord"]\ninstruction = "x"\n'
    parsed, _ = parse_config_text(text, "t.toml")
    assert parsed.sandbox is not None and parsed.sandbox.workspace_quota == "2g"
    with pytest.raises(Exception, match="workspaceQuota"):
        parse_config_text(
            '[sandbox]\nworkspaceQuota = "10"\n[experts."coord"]\ninstruction = "x"\n', "t.toml"
        )


def test_compose_ulimits_are_strict(tmp_path: Path) -> None:
    base = "name: p\nservices:\n  s:\n    image: i\n    ulimits:\n"
    ok = parse_compose(base + "      fsize: {soft: 5, hard: 5}\n", tmp_path)
    assert ok.services["s"].ulimits == {"fsize": (5, 5)}
    for bad in ("      fsize: {soft: 5, hard: -1}\n", "      fsize: '5'\n", "      fsize: -1\n"):
        with pytest.raises(RenderError, match="ulimits"):
            parse_compose(base + bad, tmp_path)


def test_a_user_workspace_with_root_group_does_not_give_the_expert_gid_0(tmp_path: Path) -> None:
    if os.getuid() != 0:  # only root can make such a directory for another uid; the rule is pure otherwise
        choice = resolve_user(None, None, {}, tmp_path, invoker=(0, 0), process_env={})
        assert choice.why == "workspace-owner"
        return
    os.chown(tmp_path, 4242, 0)
    choice = resolve_user(None, None, {}, tmp_path, invoker=(0, 0), process_env={})
    assert (choice.uid, choice.why) == (4242, "workspace-owner") and choice.gid != 0
    os.chown(tmp_path, 4242, 4343)  # control: a non-root group is kept
    assert resolve_user(None, None, {}, tmp_path, invoker=(0, 0), process_env={}).gid == 4343


def test_names_and_link_targets_cannot_write_to_the_terminal(tmp_path: Path) -> None:
    """The Expert picks the names and targets printed on the host's stderr: escapes are quoted, not sent."""
    since = time.time_ns()
    (tmp_path / "evil\x1b[2Jname").symlink_to("/\x1b]0;pwned\x07\nsandbox: all clear")
    lines = report_lines(scan_workspace(tmp_path, since))
    assert lines and all("\x1b" not in line and "\n" not in line and "\x07" not in line for line in lines)
    assert "\\x1b" in lines[0]  # control: the finding is there, quoted


# ------------------------------------------------------------------------------------------ in a run


def _quota_run(world: Any, monkeypatch: pytest.MonkeyPatch, write: int) -> tuple[int, str]:
    """A fake run whose Expert writes `write` bytes and leaves a FIFO, under a 1m quota; the filesystem
    reports 100 MiB of growth (someone else's, too) so only the walk decides."""
    from functools import partial

    from sandbox.docker import _run, run_in_docker

    from .conftest import expert_program

    calls = [0]

    def usage(_path: Path) -> tuple[int, int]:
        calls[0] += 1
        return (0 if calls[0] == 1 else 100 * MIB), 1 << 40

    monkeypatch.setattr(_run, "QuotaWatcher", partial(QuotaWatcher, usage=usage, interval=0.02))

    def before(proc: Any, job: str, run: str) -> None:
        (world.workspace / "out.bin").write_bytes(b"x" * write)
        os.mkfifo(world.workspace / "left.fifo")
        if write > MIB:
            proc.wait_signal(10)  # the host kills it

    world.warm()
    world.backend.programs["expert"] = expert_program(before=before)
    plan = plan_for(world.cfg, world.env, workspace_quota="1m")
    code = run_in_docker(
        world.options(), plan, world.emitted.append, backend=world.backend, settings=world.settings()
    )
    return code, world.err_text()


def test_a_run_that_writes_past_the_quota_is_stopped_with_one_line(
    world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, err = _quota_run(world, monkeypatch, 3 * MIB)
    assert code == 1
    lines = [line for line in err.splitlines() if "workspace grew by more than" in line]
    assert len(lines) == 1 and "its quota of 1m" in lines[0] and "--workspace-quota" in lines[0], err
    assert (world.workspace / "out.bin").stat().st_size == 3 * MIB  # nothing deleted
    assert "'left.fifo' is a FIFO" in err  # the scan ran after the stop too


def test_a_run_under_the_quota_completes(world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    code, err = _quota_run(world, monkeypatch, MIB // 2)
    assert code == 0, err
    assert "workspace grew" not in err and "'left.fifo' is a FIFO" in err
