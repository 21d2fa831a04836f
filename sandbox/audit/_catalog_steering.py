"""Audit probes for the host's steering files, env files, accepted policy and default runtime.

The red-team's holes 1, 2 and 8 as audit rows, each with its control, run against a replica of the user's real
workspace layout (`_layout`): the sandbox cannot read or change the host's steering files, what it creates in
their place is undone after the run, env files cannot configure the host tool, a widened perstack.toml is
refused, and a registry Expert does not leave the sandbox by default.
"""

from __future__ import annotations

from ._catalog_judges import _r, _spec
from ._catalog_model import AuditProbe, Evidence, Judgement, Site

__all__ = ["steering_probes"]


def _short(paths: list[str], limit: int = 4) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f" (+{len(paths) - limit} more)" if len(paths) > limit else "")


def steering_probes(site: Site) -> list[AuditProbe]:
    """The rows, in report order."""
    probes: list[AuditProbe] = []
    masked, marker = list(site.steering_masked), site.marker

    def j_masked(ev: Evidence, pid: str = "fs.steering-masked") -> Judgement:
        results = _r(ev, f"{pid}/tamper")
        leaks: list[str] = []
        for path in masked:
            entry = results.get(path, {})
            if entry.get("read", {}).get("markers"):
                leaks.append(f"{path} readable")
            if entry.get("write", {}).get("ok"):
                leaks.append(f"{path} writable")
            if entry.get("rename", {}).get("ok"):
                leaks.append(f"{path} renamable")
        control = _r(ev, f"{pid}/control").get(site.steering_control, {})
        control_ok = bool(
            control.get("read", {}).get("markers")
            and control.get("write", {}).get("ok")
            and control.get("rename", {}).get("ok")
        )
        layout = ev.host.get("steering_layout", {})
        same = bool(layout.get("same"))
        observed = (
            "; ".join(leaks)
            if leaks
            else (
                f"{len(masked)} steering file(s) read empty, refuse writes, stay put: {_short(masked)}"
                if masked
                else "no steering file of this layout lies inside the workspace"
            )
        )
        return Judgement(
            not leaks,
            observed,
            control_ok and same,
            (
                "an ordinary file in the workspace is readable, writable and renamable: "
                + ("yes" if control_ok else "no")
                + "; the replica is masked exactly as the real workspace: "
                + ("yes" if same else f"no ({layout})")
            ),
        )

    probes.append(
        AuditProbe(
            "fs.steering-masked",
            "The host's steering files in the workspace (perstack.toml, env files, jobs) are unreachable",
            "each reads empty and cannot be opened for writing or renamed away",
            "an ordinary workspace file can be; the masks equal those of the user's real workspace",
            j_masked,
            inside=(
                _spec("fs.steering-masked", "tamper", "tamper", paths=masked, markers=[marker]),
                _spec(
                    "fs.steering-masked", "control", "tamper", paths=[site.steering_control], markers=[marker]
                ),
            ),
        )
    )

    creatable = list(site.steering_creatable)

    def j_undo(ev: Evidence, pid: str = "fs.steering-undo") -> Judgement:
        made = _r(ev, f"{pid}/create")
        created = [p for p in creatable if made.get(p, {}).get("ok")]
        undo = ev.host.get("steering_undo", {})
        undone, left = set(undo.get("undone", ())), list(undo.get("left", ()))
        missed = [p for p in created if p not in undone]
        ok = not missed and not left
        if not creatable:
            observed = "no absent steering path in this layout: nothing the sandbox could create"
        elif ok:
            observed = (
                f"{len(created)} created in the sandbox, all undone by the host after it: {_short(created)}"
            )
        else:
            observed = "left for the host to read: " + _short([*missed, *left])
        control_ok = bool(made.get(site.steering_control_create, {}).get("ok") and undo.get("control_kept"))
        return Judgement(
            ok,
            observed,
            control_ok,
            "an ordinary file the sandbox created stays: " + ("yes" if control_ok else "no"),
        )

    probes.append(
        AuditProbe(
            "fs.steering-undo",
            "A steering file the sandbox creates (a missing .env.local, perstack.toml) is undone",
            "after the run, each is moved to the quarantine and the host reads none of them",
            "an ordinary file the sandbox created is left where it is",
            j_undo,
            inside=(
                _spec(
                    "fs.steering-undo",
                    "create",
                    "create_files",
                    paths=[*creatable, site.steering_control_create],
                    marker=marker,
                ),
            ),
        )
    )

    def j_env(ev: Evidence) -> Judgement:
        check = ev.host.get("env_filter", {})
        loaded = list(check.get("loaded", ()))
        steering = [n for n in loaded if n != "AUDIT_CONTROL_VALUE"]
        real = list(check.get("real_skipped", ()))
        observed = (
            "taken from an env file: " + ", ".join(steering)
            if steering
            else "DOCKER_HOST, SANDBOX_USER, XDG_*, proxy variables in an env file are skipped"
            + (f" (your env files hold {_short(real)}: skipped)" if real else "")
        )
        control_ok = "AUDIT_CONTROL_VALUE" in loaded
        return Judgement(
            not steering,
            observed,
            control_ok,
            "an ordinary variable in the same file is loaded: " + ("yes" if control_ok else "no"),
        )

    probes.append(
        AuditProbe(
            "config.env-host-vars",
            "Env files cannot configure the host tool (DOCKER_HOST, SANDBOX_*, XDG_*, HOME, PATH, proxies)",
            "such names in an env file are skipped with a warning",
            "an ordinary variable in the same file is loaded",
            j_env,
        )
    )

    def j_policy(ev: Evidence) -> Judgement:
        check = ev.host.get("policy", {})
        wider = list(check.get("wider", ()))
        selftest = list(check.get("selftest", ()))
        if wider:
            observed = "this perstack.toml is wider than the last accepted run: " + ", ".join(wider)
        elif check.get("recorded"):
            observed = "the sandbox is within the policy last accepted for this perstack.toml"
        else:
            observed = "no run accepted yet: the first `sandbox run` records this policy"
        return Judgement(
            not wider,
            observed,
            bool(selftest),
            "a widening of this very plan is detected: " + (", ".join(selftest) if selftest else "no"),
        )

    probes.append(
        AuditProbe(
            "config.accepted-policy",
            "A perstack.toml that widens the sandbox since the last accepted run is refused until accepted",
            "the audited sandbox is no wider than the accepted one",
            "a widening of this plan (a new egress name, env name and private opt-in) is reported",
            j_policy,
        )
    )

    def j_runtime(ev: Evidence) -> Judgement:
        check = ev.host.get("registry_default", {})
        registry, runtime = bool(check.get("registry")), str(check.get("runtime"))
        ok = runtime == "docker" if registry else True
        observed = (
            f"the Expert graph holds a registry Expert; `sandbox run` without --runtime uses {runtime!r}"
            if registry
            else f"local Experts only; `sandbox run` without --runtime uses {runtime!r} (the reference's)"
        )
        control_ok = check.get("selftest") == "docker"
        return Judgement(
            ok,
            observed,
            control_ok,
            "with a registry delegate added, it would be 'docker': "
            + ("yes" if control_ok else f"no ({check.get('selftest')})"),
        )

    probes.append(
        AuditProbe(
            "runtime.registry-default",
            "Someone else's Expert never runs outside the sandbox by default",
            "a graph with a registry Expert runs in the docker sandbox unless --runtime says otherwise",
            "the same graph with a registry delegate added is sandboxed",
            j_runtime,
        )
    )
    return probes
