"""The judges of the workspace, root-invoker and private plain-HTTP probes (`_catalog_workspace`), replayed
on the recorded evidence (all passing) and then broken one observation at a time: each break must turn the
row to `fail` (the sandbox did not hold) or `unproven` (the control failed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sandbox.audit._catalog import Evidence, Site, build_catalog, judge_all

from .test_catalog import load, verdicts

Mutation = Callable[[Site, Evidence], None]


def mount_options(point: str, options: str) -> Mutation:
    def mutate(site: Site, ev: Evidence) -> None:
        for m in ev.inside["fs.mounts/list"]["mounts"]:
            if m["mountPoint"] == point:
                m["options"] = options

    return mutate


def inside(key: str, **changes: Any) -> Mutation:
    def mutate(site: Site, ev: Evidence) -> None:
        ev.inside[key].update(changes)

    return mutate


def host(key: str, **changes: Any) -> Mutation:
    def mutate(site: Site, ev: Evidence) -> None:
        ev.host[key] = {**ev.host[key], **changes}

    return mutate


def drop_finding(path: str) -> Mutation:
    def mutate(site: Site, ev: Evidence) -> None:
        leftovers = ev.host["leftovers"]
        leftovers["findings"] = [f for f in leftovers["findings"] if f["path"] != path]

    return mutate


def fsize(**changes: Any) -> Mutation:
    return inside("fs.workspace-quota/write", **changes)


def ran_as(uid: int) -> Mutation:
    def mutate(site: Site, ev: Evidence) -> None:
        ev.inside["priv.capabilities/status"].update(uid=uid, euid=uid)

    return mutate


def root_by_default(site: Site, ev: Evidence) -> None:
    ev.inside["priv.capabilities/status"].update(uid=0, euid=0)
    ev.host["root_invoker"] = {**ev.host["root_invoker"], "uid": 0, "why": "invoker"}


def control(**changes: Any) -> Mutation:
    def mutate(site: Site, ev: Evidence) -> None:
        ctrl = dict(ev.host["root_invoker"]["control"])
        ctrl.update(changes)
        ev.host["root_invoker"] = {**ev.host["root_invoker"], "control": ctrl}

    return mutate


PLAIN = "egress.private-plain-http"
EFBIG_NONE = {"ok": True, "error": None}
MUTATIONS: list[tuple[str, Mutation, str, str]] = [
    ("workspace not nosuid", mount_options("/workspace", "rw,relatime"), "fs.workspace-nosuid", "fail"),
    ("workspace not nodev", mount_options("/workspace", "rw,nosuid,relatime"), "fs.workspace-nosuid", "fail"),
    (
        "reader blind",
        mount_options("/sandbox/expert", "ro,nosuid,relatime"),
        "fs.workspace-nosuid",
        "unproven",
    ),
    (
        "set-uid bit could not be set",
        inside("fs.workspace-leftovers/plant", suid={"ok": False, "error": "EPERM: x"}),
        "fs.workspace-nosuid",
        "unproven",
    ),
    ("FIFO not reported", drop_finding("audit-fifo"), "fs.workspace-leftovers", "fail"),
    ("outside link not reported", drop_finding("audit-symlink"), "fs.workspace-leftovers", "fail"),
    ("set-uid not stripped", host("leftovers", suid_mode_after="4755"), "fs.workspace-leftovers", "fail"),
    (
        "nothing planted",
        inside("fs.workspace-leftovers/plant", fifo={"ok": False, "error": "EACCES: x"}),
        "fs.workspace-leftovers",
        "unproven",
    ),
    ("no RLIMIT_FSIZE", fsize(soft=-1, hard=-1), "fs.workspace-quota", "fail"),
    ("write past the limit", fsize(at_limit=EFBIG_NONE), "fs.workspace-quota", "fail"),
    (
        "nothing writable",
        fsize(below_limit={"ok": False, "error": "EROFS: x"}),
        "fs.workspace-quota",
        "unproven",
    ),
    ("root by default", root_by_default, "priv.root-invoker", "fail"),
    ("another uid inside", ran_as(4321), "priv.root-invoker", "fail"),
    ("rule does not refuse", control(root_owned={"refused": False}), "priv.root-invoker", "unproven"),
    ("rule picks root", control(user_owned={"uid": 0, "owner": 0}), "priv.root-invoker", "unproven"),
    ("other port answered", inside(f"{PLAIN}/other-port", status=200), PLAIN, "fail"),
    ("not-opted-in answered", inside(f"{PLAIN}/not-opted-in", status=200), PLAIN, "fail"),
    ("opt-in refused", inside(f"{PLAIN}/opted-in", status=403), PLAIN, "unproven"),
]


@pytest.mark.parametrize(("why", "mutate", "probe", "verdict"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_a_broken_workspace_guarantee_is_caught(why: str, mutate: Mutation, probe: str, verdict: str) -> None:
    site, evidence = load()
    catalog = build_catalog(site)
    assert verdicts(catalog, evidence)[probe] == "pass"
    mutate(site, evidence)
    assert verdicts(catalog, evidence)[probe] == verdict, why


def test_an_ordinary_invoker_without_the_mount_is_stated_not_failed() -> None:
    """As an ordinary user the host cannot mount: the row passes only because the Expert is that user."""
    site, evidence = load()
    catalog = build_catalog(site)
    mount_options("/workspace", "rw,relatime")(site, evidence)
    evidence.host["workspace_mount"] = {"can_mount": False, "nosuid_mount": False}
    evidence.host["root_invoker"] = {**evidence.host["root_invoker"], "invoker": 1000, "uid": 1000}
    outcome = {o.id: o for o in judge_all(catalog, evidence)}["fs.workspace-nosuid"]
    assert outcome.verdict == "pass" and "may not mount" in outcome.observed
    # Control: the same observation with the Expert as root (or as someone else) fails.
    evidence.host["root_invoker"] = {**evidence.host["root_invoker"], "uid": 0}
    assert verdicts(catalog, evidence)["fs.workspace-nosuid"] == "fail"


def test_a_plan_opt_in_refused_for_plain_http_fails() -> None:
    site, evidence = load()
    site = Site(**{**site.__dict__, "plan_opt_ins": (("ollama.lan", 11434),)})
    catalog = build_catalog(site)
    evidence.inside[f"{PLAIN}/plan/ollama.lan:11434"] = {"status": 503}
    assert verdicts(catalog, evidence)[PLAIN] == "pass"  # let through (not reachable from here)
    evidence.inside[f"{PLAIN}/plan/ollama.lan:11434"] = {"status": 403}
    assert verdicts(catalog, evidence)[PLAIN] == "fail"
