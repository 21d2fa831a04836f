"""Audit probes for the workspace's hygiene and the root invoker (issue #12 items 4 and 6), and the one
plain-HTTP exception of the proxy (item 7). One of the catalogue's threat modules (`_catalog`).

* `fs.workspace-nosuid`: /workspace is mounted nosuid,nodev (mountinfo). Control: `/sandbox/expert`, a bind
  the sandbox does not remount, reads without the flags, and a set-uid bit *can* be set on a workspace file
  (so the flag is what defuses it). When the host process may not mount (an ordinary user), the Expert is
  that user and the row says so: a set-uid bit then grants only the invoker's own uid.
* `fs.workspace-leftovers`: the probe plants a set-uid copy of a binary, a FIFO and a symlink to
  /etc/passwd; the host's post-run scan must report all three and leave the file without its set-uid bit.
  Control: each was really created inside (the same method works where allowed).
* `fs.workspace-quota`: RLIMIT_FSIZE equals the plan's quota, and a one-byte (sparse) write at the limit
  fails with EFBIG. Control: the same write one byte lower works.
* `priv.root-invoker`: the Expert's uid is the one `sandbox run` chooses, and it is root only on an
  explicit opt-in. Control: the same rule, for a root invoker, picks the owner of a user-owned directory
  and refuses on a root-owned one.
* `egress.private-plain-http`: plain HTTP goes through the proxy only to an explicit private opt-in, for
  exactly that name and port (ollama speaks http). Through the control proxy (which opts in the upstream on
  port 80): the opted-in port answers; the same host on another port, and an allowlisted name that is not
  opted in, are refused (403, logged as method). Through the real proxy, each of the plan's own opt-ins is
  let through (not 403).
"""

from __future__ import annotations

from typing import Any

from ._catalog_judges import _errno_name, _logged, _r, _spec, _status_text
from ._catalog_model import AuditProbe, Evidence, Judgement, Site
from ._policy import BLOCKED, UPSTREAM

__all__ = ["workspace_probes"]

_WS = "/workspace"


def _flags(ev: Evidence, point: str) -> set[str] | None:
    for m in _r(ev, "fs.mounts/list")["mounts"]:
        if m["mountPoint"] == point:
            return set(str(m["options"]).split(","))
    return None


def workspace_probes(site: Site) -> list[AuditProbe]:
    """The probes above, in report order."""
    P: list[AuditProbe] = []  # noqa: N806 - reads as the catalogue
    plant = _spec("fs.workspace-leftovers", "plant", "plant_leftovers", dir=_WS)

    pid = "fs.workspace-nosuid"

    def j_nosuid(ev: Evidence, pid: str = pid) -> Judgement:
        ws, expert = _flags(ev, _WS), _flags(ev, "/sandbox/expert")
        host = ev.host.get("workspace_mount") or {}
        planted = _r(ev, "fs.workspace-leftovers/plant").get("suid") or {}
        has = ws is not None and {"nosuid", "nodev"} <= ws
        uid = (ev.host.get("root_invoker") or {}).get("uid")
        invoker = (ev.host.get("root_invoker") or {}).get("invoker")
        # Without the right to mount, the Expert is the invoker itself: a set-uid bit grants nothing more.
        ok = has or (not host.get("can_mount") and uid == invoker and uid != 0)
        observed = f"/workspace mounted {','.join(sorted(ws or ['(not found)']))}"
        if not has and ok:
            observed += " (the host may not mount: the Expert is the invoking user, set-id bits are stripped)"
        c_ok = expert is not None and "nosuid" not in expert and planted.get("mode") == "4755"
        return Judgement(
            ok,
            observed,
            c_ok,
            f"/sandbox/expert (a plain bind): {','.join(sorted(expert or ['(not found)']))}; "
            f"chmod 4755 on a workspace file: {planted.get('mode') or planted.get('error')}",
        )

    P.append(
        AuditProbe(
            pid,
            "The workspace is mounted nosuid,nodev",
            "/workspace's mount options include nosuid and nodev",
            "a bind the sandbox does not remount lacks them; a set-uid bit can be set in the workspace",
            j_nosuid,
            inside=(plant,),
        )
    )

    pid = "fs.workspace-leftovers"

    def j_leftovers(ev: Evidence, pid: str = pid) -> Judgement:
        host = ev.host.get("leftovers") or {}
        found = {f["path"]: f for f in host.get("findings") or []}
        want = {"audit-suid": "setuid", "audit-fifo": "fifo", "audit-symlink": "symlink-outside"}
        missing = [name for name, kind in want.items() if (found.get(name) or {}).get("kind") != kind]
        after = host.get("suid_mode_after")
        stripped = after is not None and not int(after, 8) & 0o6000
        planted = _r(ev, f"{pid}/plant")
        made = [name for name in ("suid", "fifo", "symlink") if (planted.get(name) or {}).get("ok")]
        return Judgement(
            not missing and stripped,
            (
                "the host's scan reported " + ", ".join(sorted(want))
                if not missing
                else "not reported: " + ", ".join(missing)
            )
            + f"; audit-suid is now mode {after}",
            len(made) == 3,
            "planted inside: " + (", ".join(made) or "nothing"),
        )

    P.append(
        AuditProbe(
            pid,
            "What the Expert leaves in the workspace is reported and set-id bits are removed",
            "the post-run scan reports the set-uid file, the FIFO and the outside symlink; set-uid removed",
            "the three were created inside the sandbox",
            j_leftovers,
        )
    )

    pid = "fs.workspace-quota"

    def j_quota(ev: Evidence, pid: str = pid) -> Judgement:
        r = _r(ev, f"{pid}/write")
        at, below = r.get("at_limit") or {}, r.get("below_limit") or {}
        ok = (
            r.get("soft") == site.fsize_bytes
            and r.get("hard") == site.fsize_bytes
            and _errno_name(at.get("error")) == "EFBIG"
        )
        return Judgement(
            ok,
            f"RLIMIT_FSIZE {r.get('soft')}/{r.get('hard')} (plan: {site.fsize_bytes}); "
            f"a write at the limit: {at.get('error') or 'written!'}",
            bool(below.get("ok")),
            f"one byte below the limit: {'written' if below.get('ok') else below.get('error')}",
        )

    P.append(
        AuditProbe(
            pid,
            "No file in the workspace can grow past the workspace quota",
            f"RLIMIT_FSIZE = the quota ({site.fsize_bytes} bytes); a write past it fails with EFBIG",
            "the same write one byte lower works",
            j_quota,
            inside=(_spec(pid, "write", "fsize", dir=_WS, expected=site.fsize_bytes),),
        )
    )

    pid = "priv.root-invoker"

    def j_root(ev: Evidence, pid: str = pid) -> Judgement:
        host: dict[str, Any] = ev.host.get("root_invoker") or {}
        status = _r(ev, "priv.capabilities/status")
        inside_uid = status.get("uid")
        uid, why = host.get("uid"), host.get("why")
        ok = inside_uid == uid and status.get("euid") == uid and (uid != 0 or why in ("explicit", "override"))
        control = host.get("control") or {}
        owned, refused = control.get("user_owned") or {}, control.get("root_owned") or {}
        c_ok = owned.get("uid") == owned.get("owner") != 0 and bool(refused.get("refused"))
        return Judgement(
            ok,
            f"invoker uid {host.get('invoker')}; the Expert runs as uid {inside_uid} ({why})",
            c_ok,
            f"root on a user-owned dir -> uid {owned.get('uid', owned.get('error'))}; "
            f"on a root-owned one -> {'refused' if refused.get('refused') else 'not refused!'}",
        )

    P.append(
        AuditProbe(
            pid,
            "The Expert runs as root only when root asked for it explicitly",
            "uid = the chosen user; 0 only with SANDBOX_USER in the process environment or an explicit uid",
            "for a root invoker the rule picks a user-owned workspace's owner and refuses a root-owned one",
            j_root,
        )
    )

    pid = "egress.private-plain-http"
    B = site.control_proxy  # noqa: N806 - the two proxies, as in the probe specs
    A = site.proxy  # noqa: N806
    opt_ins = [f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in site.plan_opt_ins]

    def j_plain_private(ev: Evidence, pid: str = pid, opt_ins: list[str] = opt_ins) -> Judgement:
        other, named = _r(ev, f"{pid}/other-port"), _r(ev, f"{pid}/not-opted-in")
        ok = (
            other.get("status") == 403
            and named.get("status") == 403
            and _logged(ev, "blocked", UPSTREAM, 8080, "method", proxy="control")
            and _logged(ev, "blocked", BLOCKED, 80, "method", proxy="control")
        )
        parts = []
        for t in opt_ins:
            r = _r(ev, f"{pid}/plan/{t}")
            let_through = r.get("status") != 403
            ok = ok and let_through
            parts.append(f"plan opt-in {t}: {_status_text(r)}" + ("" if let_through else " (refused!)"))
        c = _r(ev, f"{pid}/opted-in")
        c_ok = c.get("status") == 200 and f"nonce={site.nonce}" in (c.get("body") or "")
        return Judgement(
            ok,
            "; ".join(
                [
                    f"same host, port 8080: {_status_text(other)}",
                    f"allowlisted but not opted in: {_status_text(named)}",
                    *parts,
                ]
            ),
            c_ok,
            f"the opted-in {UPSTREAM}:80: {c.get('status') or c.get('error')}",
        )

    P.append(
        AuditProbe(
            pid,
            "Plain HTTP reaches only an explicit private opt-in, at exactly its port",
            "403 (logged as method) for the same host on another port and for a name not opted in; "
            "each of the plan's opt-ins let through",
            "the opted-in name and port answers over plain HTTP",
            j_plain_private,
            inside=(
                _spec(pid, "opted-in", "proxy_http", proxy=B, url=f"http://{UPSTREAM}/audit/{pid}"),
                _spec(pid, "other-port", "proxy_http", proxy=B, url=f"http://{UPSTREAM}:8080/audit/{pid}"),
                _spec(pid, "not-opted-in", "proxy_http", proxy=B, url=f"http://{BLOCKED}/audit/{pid}"),
                *(_spec(pid, f"plan/{t}", "proxy_http", proxy=A, url=f"http://{t}/") for t in opt_ins),
            ),
        )
    )
    return P
