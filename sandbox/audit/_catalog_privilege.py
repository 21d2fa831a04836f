"""Audit probes for privilege: capabilities, no_new_privs, privileged calls, ptrace and the PID namespace.

The privileged calls (`priv.ops/all`) run once inside and once in a control container granted the matching
capabilities, so each refusal is shown to be the missing privilege: the call works with the capability,
and the kernel's answer inside is a permission error (EPERM/EACCES), not a call made wrongly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ._catalog_judges import _denied_errno, _errno_name, _r, _spec, mirrored, reading
from ._catalog_model import AuditProbe, Evidence, Judgement, Result, Site

__all__ = ["privilege_probes"]


def _zero(mask: str | None) -> bool:
    return mask is not None and int(mask, 16) == 0


def _ops(ev: Evidence, where: str = "inside") -> Result:
    return _r(ev, "priv.ops/all", where)


def _op_text(results: Mapping[str, Result], names: Sequence[str]) -> str:
    return "; ".join(
        f"{n}: {'ALLOWED' if results[n]['ok'] else _errno_name(results[n]['error'])}" for n in names
    )


def _refused_ops(
    pid: str,
    title: str,
    names: Sequence[str],
    expected: str,
    control: str,
    control_ops: Sequence[str] = (),
    inside_control: str | None = None,
) -> AuditProbe:
    """The privileged calls `names`, read from the one `priv.ops/all` run: every one refused.

    The control is that each refusal is a permission error (EPERM/EACCES, or ENOENT/EROFS where the target
    is absent or read-only), and, for `control_ops`, that the same calls work in the control runner granted
    the capability: so the call was made right and only the privilege was missing.
    """

    def judge(ev: Evidence) -> Judgement:
        r = _ops(ev)
        allowed = [n for n in names if r[n]["ok"]]
        ok = not allowed
        # The kernel must have *refused* (EPERM/EACCES), not failed for another reason (EINVAL, ENOSYS):
        # that is what shows the call was made correctly and only the privilege was missing.
        proper = all(
            _denied_errno(r[n]) or r[n]["ok"] or _errno_name(r[n]["error"]) in ("ENOENT", "EROFS")
            for n in names
        )
        c_parts: list[str] = []
        c_ok = proper
        if control_ops:
            c = _ops(ev, "outside")
            c_ok = c_ok and all(c[n]["ok"] for n in control_ops)
            c_parts.append("with the capability: " + _op_text(c, control_ops))
        if inside_control:
            ic = r[inside_control]
            c_ok = c_ok and bool(ic["ok"])
            c_parts.append(f"{inside_control}: {'works' if ic['ok'] else ic['error']}")
        c_parts.append("refusals are EPERM/EACCES" if proper else "some refusals are not permission errors")
        return Judgement(ok, _op_text(r, names), c_ok, "; ".join(c_parts))

    return AuditProbe(pid, title, expected, control, judge)


def privilege_probes(site: Site) -> list[AuditProbe]:
    P: list[AuditProbe] = []  # noqa: N806
    ops_spec = _spec("priv.ops", "all", "priv_ops")
    ops_outside = _spec(
        "priv.ops", "all", "priv_ops", ops=["setuid_other", "chown_other", "raw_socket", "chroot", "mknod"]
    )

    pid = "priv.capabilities"

    def j_caps(r: Result, c: Result) -> Judgement:
        sets = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")
        nonzero = [s for s in sets if not _zero(r.get(s))]
        return Judgement(
            not nonzero,
            ("non-empty: " + ", ".join(f"{s}={r.get(s)}" for s in nonzero))
            if nonzero
            else f"all capability sets empty (uid {r.get('uid')})",
            not _zero(c.get("CapEff")),
            f"a container granted capabilities reports them: CapEff={c.get('CapEff')}",
        )

    P.append(
        mirrored(
            pid,
            "The Expert holds no capabilities",
            "CapEff, CapPrm, CapBnd, CapAmb, CapInh all 0 (cap_drop ALL)",
            "the same reading in a container with capabilities shows them",
            part="status",
            kind="proc_status",
            verdict=j_caps,
        )
    )

    pid = "priv.no-new-privileges"

    def j_nnp(ev: Evidence, pid: str = pid) -> Judgement:
        r, c = _r(ev, "priv.capabilities/status"), _r(ev, "priv.capabilities/status", "outside")
        files = _r(ev, f"{pid}/setuid")["files"]
        ok = r.get("NoNewPrivs") == "1" and _zero(r.get("CapBnd"))
        return Judgement(
            ok,
            f"no_new_privs={r.get('NoNewPrivs')}, bounding set "
            f"{'empty' if _zero(r.get('CapBnd')) else r.get('CapBnd')}: "
            f"{len(files)} set-uid/set-gid files cannot raise privileges",
            c.get("NoNewPrivs") == "0",
            f"a container without the flag reports no_new_privs={c.get('NoNewPrivs')}",
            details={"setuidFiles": files},
        )

    P.append(
        AuditProbe(
            pid,
            "Set-uid binaries cannot raise privileges",
            "no_new_privs=1 and an empty bounding set",
            "the flag reads 0 in a container without it",
            j_nnp,
            inside=(_spec(pid, "setuid", "setuid_files"), ops_spec),
            outside=(ops_outside,),
        )
    )

    P.append(
        _refused_ops(
            "priv.setuid",
            "The Expert cannot change its uid or give files away",
            ("setuid_other", "chown_other"),
            "setuid() and chown() to another user: EPERM",
            "both work in a container granted CAP_SETUID/CAP_CHOWN",
            control_ops=("setuid_other", "chown_other"),
        )
    )
    P.append(
        _refused_ops(
            "priv.mount",
            "The Expert cannot mount or chroot",
            ("mount_tmpfs", "chroot"),
            "mount(2) and chroot(2): EPERM",
            "chroot works with CAP_SYS_CHROOT; the kernel answers "
            "EPERM (a permission refusal, not a failed call)",
            control_ops=("chroot",),
        )
    )
    P.append(
        _refused_ops(
            "priv.user-namespace",
            "The Expert cannot create namespaces (user, mount, network)",
            ("unshare_user", "unshare_user_mount", "unshare_net"),
            "unshare(2): EPERM",
            "the kernel answers EPERM (a permission refusal, not a failed call)",
        )
    )
    P.append(
        _refused_ops(
            "priv.raw-sockets",
            "The Expert cannot open raw or packet sockets",
            ("raw_socket", "packet_socket"),
            "socket(SOCK_RAW), socket(AF_PACKET): EPERM",
            "a raw socket opens in a container granted CAP_NET_RAW",
            control_ops=("raw_socket",),
        )
    )
    pid = "priv.ptrace"

    def j_ptrace(ev: Evidence, pid: str = pid) -> Judgement:
        r = _ops(ev)
        procs = _r(ev, "priv.pid-namespace/list")["processes"]
        me = _r(ev, "priv.capabilities/status")
        # Tracing is only dangerous towards a process with more rights or outside the sandbox. Inside, every
        # visible process must be the Expert's own identity without capabilities; outside ones are invisible
        # (priv.pid-namespace), and a PID that is not visible cannot be traced.
        stronger = [
            f"{p['pid']} ({p['argv0']}, uid {p.get('uid')}, CapEff {p.get('capEff')})"
            for p in procs
            if str(p.get("uid")) != str(me.get("uid")) or not _zero(p.get("capEff"))
        ]
        init = r["ptrace_init"]
        text = (
            "PTRACE_ATTACH to the container's init: "
            f"{'allowed' if init['ok'] else _errno_name(init['error'])}; "
            + (
                ("processes with other rights: " + ", ".join(stronger))
                if stronger
                else f"all {len(procs)} visible processes run as uid {me.get('uid')} with no capabilities"
            )
        )
        child = r["ptrace_child"]
        return Judgement(
            not stronger,
            text,
            bool(child["ok"]),
            "tracing its own child works: " + ("yes" if child["ok"] else str(child["error"])),
        )

    P.append(
        AuditProbe(
            pid,
            "The Expert cannot trace any process with more rights than itself",
            "every traceable process is the sandbox's own (same uid, no capabilities); "
            "nothing else is visible",
            "tracing its own child works",
            j_ptrace,
        )
    )
    P.append(
        _refused_ops(
            "priv.kernel-interfaces",
            "Kernel interfaces are closed",
            ("open_dev_mem", "read_kmsg", "read_kcore", "write_sysrq", "settime", "sethostname", "mknod"),
            "/dev/mem, /dev/kmsg, /proc/kcore, sysrq, the clock, the host name and device nodes: refused",
            "mknod works in a container granted CAP_MKNOD",
            control_ops=("mknod",),
        )
    )

    pid = "priv.pid-namespace"

    def j_pids(r: Result) -> Judgement:
        procs = r["processes"]
        roots = [p for p in procs if p["ppid"] == "0"]
        kthreads = [p for p in procs if p["pid"] == 2 and p["argv0"] in ("", "?")]
        init = next((p for p in procs if p["pid"] == 1), {"argv0": "?"})
        ok = len(roots) == 1 and not kthreads and len(procs) < 100
        return Judgement(
            ok,
            f"{len(procs)} processes visible, PID 1 is {init['argv0'] or '?'}, {len(roots)} without a parent",
            bool(procs),
            "the listing sees the probe's own processes",
        )

    P.append(
        reading(
            pid,
            "No process outside the sandbox is visible",
            "a private PID namespace: PID 1 is the container's "
            "init, no kernel threads, only the sandbox's processes",
            "the same listing sees the probe itself",
            part="list",
            kind="processes",
            verdict=j_pids,
        )
    )
    return P
