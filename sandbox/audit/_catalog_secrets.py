"""Audit probes for the Expert's environment and for secret values where they must not be.

Secrets reach the Expert on stdin, never in its environment, argv or the container's configuration. Each
scan's control is a known value that the same scan must find (`Site.control_hash`, `inspect_control`).
Same-uid peers reading secrets out of memory are `_catalog_peers`.
"""

from __future__ import annotations

from ._catalog_judges import reading, rereading
from ._catalog_model import AuditProbe, Evidence, Judgement, Result, Site

__all__ = ["secrets_probes"]


def secrets_probes(site: Site) -> list[AuditProbe]:
    P: list[AuditProbe] = []  # noqa: N806
    pid = "secrets.environ"

    def j_env(r: Result) -> Judgement:
        names = set(r["names"])
        expected = site.expected_env
        if expected is None:
            return Judgement(True, f"{len(names)} variables (expected set unknown)")
        extra, missing = sorted(names - expected), sorted(expected - names)
        ok = not extra and not missing
        text = (
            f"exactly the plan's {len(names)} variables"
            if ok
            else f"unexpected: {', '.join(extra) or '-'}; missing: {', '.join(missing) or '-'}"
        )
        return Judgement(ok, text, details={"names": sorted(names)})

    P.append(
        reading(
            pid,
            "The Expert's environment holds exactly the plan's variables",
            "proxy settings, HOME, the sandbox's own and the image's variables; nothing from the host",
            "-",
            part="env",
            kind="environ",
            verdict=j_env,
        )
    )

    pid = "secrets.not-in-processes"

    def j_proc(r: Result) -> Judgement:
        hits = [h for h in r["hits"] if not h.endswith(site.control_hash)]
        control = [h for h in r["hits"] if h.endswith(site.control_hash)]
        return Judgement(
            not hits,
            ("found: " + ", ".join(hits))
            if hits
            else f"no secret value in the environment or argv of any of {r['scanned']} process files",
            bool(control),
            "a known variable's value is found by the same scan: " + ("yes" if control else "no"),
        )

    P.append(
        rereading(
            pid,
            "Secret values are in no process's environment or argv",
            "the stdin-delivered values and the host's secret values appear in no /proc/*/environ or cmdline",
            "the value of a variable that is set is found by the same scan",
            of="secrets.environ/env",
            verdict=j_proc,
        )
    )

    pid = "secrets.not-in-inspect"

    def j_inspect(ev: Evidence) -> Judgement:
        found = ev.host.get("inspect_hits")
        control = ev.host.get("inspect_control")
        if found is None:
            return Judgement(False, "the container could not be inspected", False)
        return Judgement(
            not found,
            ("found in docker inspect: " + ", ".join(found))
            if found
            else "no secret value in `docker inspect` of the Expert's container",
            bool(control),
            "a known variable's value is found in the same output: " + ("yes" if control else "no"),
        )

    P.append(
        AuditProbe(
            pid,
            "Secret values are not in `docker inspect`",
            "neither the stdin-delivered values nor the host's",
            "a non-secret value set on the container is found the same way",
            j_inspect,
        )
    )
    return P
