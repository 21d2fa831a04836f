"""The audit's probes as data: what runs inside, what the control is, and how the verdict is reached.

Each `AuditProbe` names one guarantee (`egress.not-allowlisted`, `fs.read-only`, ...). It contributes
probe specs to three batches (the Expert's container, the control runner outside the sandbox, and the
host itself) and judges the combined `Evidence`:

* `ok`: what was observed is what the sandbox promises (a refusal, a limit that held, ...);
* `control_ok`: the control showed that the same path works when it is allowed. Without that, a refusal
  proves nothing (on a machine where no outside name resolves, a broken proxy refuses everything too).

Verdict: `fail` when not ok; `unproven` when ok but the control failed; `pass` otherwise. The audit exits
1 unless every probe passes. Refusals that the proxy makes are also checked in the proxy's own log
(`toBlockDomain`-style): a 403 the client saw must be a decision the proxy logged with the expected
reason. The catalogue is pure: no Docker, no I/O; `_run` gathers the evidence, this module judges it.
"""

# ruff: noqa: S108 - every /tmp, /var/tmp and /dev/shm here is a path inside the container, never the host's
from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sandbox.docker import ProxyAccess

from ._policy import AUDIT_ZONE, BLOCKED, METADATA_REBIND, REBIND, UPSTREAM

__all__ = [
    "HOST_PORTS",
    "AuditProbe",
    "Evidence",
    "Judgement",
    "Outcome",
    "Site",
    "Verdict",
    "build_catalog",
    "evidence_from_json",
    "evidence_to_json",
    "judge_all",
    "site_from_json",
    "site_to_json",
    "spellings",
]

Verdict = Literal["pass", "fail", "unproven"]
Result = dict[str, Any]
Spec = dict[str, Any]

HOST_PORTS = (22, 53, 80, 443, 2375, 2376, 3000, 3306, 5000, 5432, 6379, 8000, 8080, 8443, 9000, 11434)
"""Common service ports tried on the host's and the gateway's addresses (databases, Docker, ollama...)."""

_CONNECT_TIMEOUT = 15  # the proxy's own DNS timeout is 10 s: allow a 503 for an unresolvable name


@dataclass(frozen=True)
class Site:
    """Everything the probes need to know about the running audit topology (addresses, names, limits)."""

    nonce: str
    proxy: str
    control_proxy: str
    proxy_name: str
    proxy_ip: str
    gateway: str
    upstream_ip: str
    upstream_private_ip: str
    control_gateway: str
    listener_port: int
    cadata: str
    uid: int
    memory_bytes: int
    pids: int
    tmpfs_bytes: int
    cpus: float
    host_ipv4: tuple[str, ...] = ()
    host_ipv6: tuple[str, ...] = ()
    plan_domains: tuple[str, ...] = ()
    plan_opt_ins: tuple[tuple[str, int], ...] = ()
    host_paths: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    """(st_dev, st_ino) on the host of: "workspace", "home", "shadow", "rundir", "canary"."""
    home: str = "/root"
    rundir: str = "/tmp"
    marker: str = ""
    symlinks: Mapping[str, str] = field(default_factory=dict)
    expected_env: frozenset[str] | None = None
    control_hash: str = ""
    steering_masked: tuple[str, ...] = ()
    """Container paths of the host's steering files masked in the replica of the user's layout (`_layout`)."""
    steering_creatable: tuple[str, ...] = ()
    """Container paths of absent steering files the sandbox could create (the host must undo them)."""
    steering_control: str = ""
    steering_control_create: str = ""
    fsize_bytes: int = 0
    """The plan's workspace quota in bytes: the Expert's RLIMIT_FSIZE."""


@dataclass
class Evidence:
    """What the batches observed. Keys of `inside`/`control` are probe spec ids (`<probe>/<part>`)."""

    inside: dict[str, Result] = field(default_factory=dict)
    control: dict[str, Result] = field(default_factory=dict)
    proxy_log: list[ProxyAccess] = field(default_factory=list)
    control_proxy_log: list[ProxyAccess] = field(default_factory=list)
    upstream_log: list[str] = field(default_factory=list)
    host: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Judgement:
    ok: bool
    observed: str
    control_ok: bool = True
    control_observed: str = "-"
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """One row of the report."""

    id: str
    group: str
    title: str
    expected: str
    observed: str
    control: str
    control_observed: str
    verdict: Verdict
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "group": self.group,
            "title": self.title,
            "expected": self.expected,
            "observed": self.observed,
            "control": self.control,
            "controlObserved": self.control_observed,
            "verdict": self.verdict,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class AuditProbe:
    """One guarantee: its specs for each batch, its expectation and control in words, and its judge."""

    id: str
    title: str
    expected: str
    control: str
    judge: Callable[[Evidence], Judgement]
    inside: tuple[Spec, ...] = ()
    outside: tuple[Spec, ...] = ()

    @property
    def group(self) -> str:
        return self.id.split(".", 1)[0]


def site_to_json(site: Site) -> dict[str, Any]:
    """A Site as JSON (for `--evidence` dumps and the replayed fixtures of the unit tests)."""
    out = dataclasses.asdict(site)
    out["expected_env"] = sorted(site.expected_env) if site.expected_env is not None else None
    return out


def site_from_json(data: Mapping[str, Any]) -> Site:
    values = dict(data)
    for name in ("host_ipv4", "host_ipv6", "plan_domains", "steering_masked", "steering_creatable"):
        values[name] = tuple(values.get(name) or ())
    values["plan_opt_ins"] = tuple((h, int(p)) for h, p in values.get("plan_opt_ins") or ())
    values["host_paths"] = {k: (int(v[0]), int(v[1])) for k, v in (values.get("host_paths") or {}).items()}
    env = values.get("expected_env")
    values["expected_env"] = frozenset(env) if env is not None else None
    return Site(**values)


def evidence_to_json(ev: Evidence) -> dict[str, Any]:
    return {
        "inside": ev.inside,
        "control": ev.control,
        "proxyLog": [dataclasses.asdict(a) for a in ev.proxy_log],
        "controlProxyLog": [dataclasses.asdict(a) for a in ev.control_proxy_log],
        "upstreamLog": ev.upstream_log,
        "host": ev.host,
    }


def evidence_from_json(data: Mapping[str, Any]) -> Evidence:
    return Evidence(
        inside=dict(data["inside"]),
        control=dict(data["control"]),
        proxy_log=[ProxyAccess(**a) for a in data["proxyLog"]],
        control_proxy_log=[ProxyAccess(**a) for a in data["controlProxyLog"]],
        upstream_log=list(data["upstreamLog"]),
        host=dict(data["host"]),
    )


def judge_all(catalog: Sequence[AuditProbe], evidence: Evidence) -> list[Outcome]:
    """Judge every probe; a judge that raises (missing evidence) is a failure, never a crash.

    A probe that does not pass carries its raw results in `details["raw"]`, to debug from the JSON report.
    """
    outcomes = []
    for probe in catalog:
        try:
            j = probe.judge(evidence)
        except Exception as exc:
            j = Judgement(False, f"no evidence ({type(exc).__name__}: {exc})", False, "-")
        verdict: Verdict = "fail" if not j.ok else ("pass" if j.control_ok else "unproven")
        details = dict(j.details)
        if verdict != "pass":
            raw = {s["id"]: evidence.inside.get(s["id"]) for s in probe.inside}
            raw.update({f"outside:{s['id']}": evidence.control.get(s["id"]) for s in probe.outside})
            details["raw"] = raw
        outcomes.append(
            Outcome(
                probe.id,
                probe.group,
                probe.title,
                probe.expected,
                j.observed,
                probe.control,
                j.control_observed,
                verdict,
                details,
            )
        )
    return outcomes


# ---------------------------------------------------------------------------------------------------------
# Small helpers for judges
# ---------------------------------------------------------------------------------------------------------


def _spec(pid: str, part: str, kind: str, **params: Any) -> Spec:
    return {"id": f"{pid}/{part}", "kind": kind, **params}


def _real_and_control(site: Site, pid: str, kind: str, **params: Any) -> tuple[Spec, Spec]:
    """The same probe twice: through the sandbox's proxy ("real") and the control proxy ("control")."""
    return (
        _spec(pid, "real", kind, proxy=site.proxy, **params),
        _spec(pid, "control", kind, proxy=site.control_proxy, **params),
    )


def _tls(site: Site, sni: str | None, *, verify: bool = True, host: str | None = None, pid: str = "") -> Spec:
    return {
        "sni": sni,
        "verify": verify,
        "cadata": site.cadata,
        "hostHeader": host or sni or UPSTREAM,
        "path": f"/audit/{pid}",
    }


def _r(ev: Evidence, key: str, where: str = "inside") -> Result:
    batch = ev.inside if where == "inside" else ev.control
    if key not in batch:
        raise KeyError(f"no result for {key} ({where})")
    return batch[key]


def _upstream_answered(r: Result, site_nonce: str) -> bool:
    http = r.get("http") or {}
    return http.get("status") == 200 and f"nonce={site_nonce}" in (http.get("body") or "")


def _status_text(r: Result) -> str:
    if r.get("status") is not None:
        text = str(r["status"])
        http = r.get("http") or {}
        tls = r.get("tls") or {}
        if tls and not tls.get("ok"):
            text += f", TLS failed ({tls.get('error')})"
        elif http.get("status") is not None:
            text += f", then HTTP {http['status']}"
        return text
    return r.get("error") or "no answer"


def _errno_name(text: str | None) -> str:
    return (text or "").split(":", 1)[0]


def _logged(
    ev: Evidence, action: str, domain: str | None, port: int | None, code: str | None, proxy: str = "real"
) -> bool:
    log = ev.proxy_log if proxy == "real" else ev.control_proxy_log
    for a in log:
        if a.action != action:
            continue
        if domain is not None and a.domain.lower().rstrip(".") != domain.lower().rstrip("."):
            continue
        if port is not None and a.port != port:
            continue
        if code is not None and a.code != code:
            continue
        return True
    return False


def _refusal(ev: Evidence, r: Result, domain: str | None, port: int, code: str) -> tuple[bool, str]:
    """A 403 the client saw AND the matching decision in the proxy's log."""
    seen = r.get("status") == 403
    logged = _logged(ev, "blocked", domain, port, code)
    text = f"{_status_text(r)}; proxy log: " + (f"blocked ({code})" if logged else "no matching refusal")
    return seen and logged, text


def _control_nonce(site: Site, r: Result, what: str) -> tuple[bool, str]:
    ok = _upstream_answered(r, site.nonce)
    return ok, (f"{what}: 200 from the audit upstream" if ok else f"{what}: {_status_text(r)}")


def _denied_errno(r: Result) -> bool:
    return _errno_name(r.get("error")) in ("EPERM", "EACCES")


def spellings(ip: str) -> dict[str, str]:
    """Every way inet_aton() (and IPv6) can write the IPv4 address `ip`."""
    a, b, c, d = (int(x) for x in ip.split("."))
    value = int(ipaddress.IPv4Address(ip))
    return {
        "dotted": ip,
        "decimal": str(value),
        "hex": f"{value:#x}",
        "hex-dotted": ".".join(f"{x:#x}" for x in (a, b, c, d)),
        "octal": ".".join(f"0{x:o}" for x in (a, b, c, d)),
        "short": f"{a}.{b}.{c * 256 + d}",
        "trailing-dot": ip + ".",
        "v4-mapped-v6": f"[::ffff:{ip}]",
    }


_FIXED_LITERALS = {
    "loopback-short": "127.1",
    "loopback-decimal": "2130706433",
    "loopback-hex": "0x7f.0.0.1",
    "loopback-octal": "0177.0.0.1",
    "v6-loopback": "[::1]",
    "v6-mapped-loopback": "[::ffff:127.0.0.1]",
    "public-v4": "1.1.1.1",
    "public-v6": "[2606:4700:4700::1111]",
}


def _apex(entry: str) -> str:
    return entry.lstrip(".")


def _lookalikes(entry: str) -> list[str]:
    """Names that must not match allowlist `entry` although they look like it."""
    apex = _apex(entry)
    first, _, rest = apex.partition(".")
    names = [
        f"{apex}.{AUDIT_ZONE}",
        f"evil{apex}" if entry.startswith(".") else f"{first}-evil.{rest}" if rest else f"evil-{apex}",
    ]
    if not entry.startswith("."):
        names.append(f"x.{apex}")
    return names


# ---------------------------------------------------------------------------------------------------------
# The catalogue
# ---------------------------------------------------------------------------------------------------------


def build_catalog(site: Site) -> list[AuditProbe]:
    """Every probe for this site, in report order."""
    P: list[AuditProbe] = []  # noqa: N806 - reads as the catalogue
    A, B, N = site.proxy, site.control_proxy, site.nonce  # noqa: N806
    allowed_ref = "egress.allowlisted/connect"

    def allowed_control(ev: Evidence) -> tuple[bool, str]:
        return _control_nonce(site, _r(ev, allowed_ref), f"{UPSTREAM}:443 through the same proxy")

    # ---- egress: the allowed path (the control every proxy refusal builds on) --------------------------
    pid = "egress.allowlisted"

    def j_allowed(ev: Evidence, pid: str = pid) -> Judgement:
        r, u = _r(ev, f"{pid}/connect"), _r(ev, f"{pid}/urllib")
        ok = _upstream_answered(r, N) and _logged(ev, "allowed", UPSTREAM, 443, None)
        u_ok = u.get("status") == 200 and f"nonce={N}" in (u.get("body") or "")
        return Judgement(
            ok and u_ok,
            f"raw CONNECT: {_status_text(r)}; urllib via proxy: "
            f"{u.get('status') or u.get('error')}; logged allowed: "
            f"{_logged(ev, 'allowed', UPSTREAM, 443, None)}",
        )

    P.append(
        AuditProbe(
            pid,
            "An allowlisted host is reachable through the proxy",
            "HTTPS 200 from the audit's upstream (TLS verified), logged as allowed",
            "- (this is the control the other egress probes use)",
            j_allowed,
            inside=(
                _spec(
                    pid,
                    "connect",
                    "proxy_connect",
                    proxy=A,
                    target=f"{UPSTREAM}:443",
                    tls=_tls(site, UPSTREAM, pid=pid),
                ),
                _spec(
                    pid,
                    "urllib",
                    "urllib",
                    proxy=f"http://{A}",
                    url=f"https://{UPSTREAM}/audit/urllib",
                    cadata=site.cadata,
                ),
            ),
        )
    )

    # ---- egress: the Expert's own allowlist -----------------------------------------------------------
    if site.plan_domains or site.plan_opt_ins:
        pid = "egress.plan-allowlist"
        targets = [f"{_apex(d)}:443" for d in site.plan_domains]
        targets += [f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in site.plan_opt_ins]
        specs = tuple(
            _spec(pid, t, "proxy_connect", proxy=A, target=t, timeout=_CONNECT_TIMEOUT) for t in targets
        )

        def j_plan(ev: Evidence, pid: str = pid, targets: list[str] = targets) -> Judgement:
            parts, ok = [], True
            for t in targets:
                r = _r(ev, f"{pid}/{t}")
                host, _, port = t.rpartition(":")
                refused = r.get("status") == 403 and _logged(ev, "blocked", host.strip("[]"), int(port), None)
                ok = ok and not refused
                parts.append(f"{t}: {r.get('status') or r.get('error')}" + (" (refused!)" if refused else ""))
            return Judgement(ok, "; ".join(parts) + " (503 = allowed but not resolvable from this machine)")

        P.append(
            AuditProbe(
                pid,
                "The Expert's own allowlist is what the proxy enforces",
                "every allowlisted name and opt-in is let through (not 403)",
                "-",
                j_plan,
                inside=specs,
            )
        )

        pid = "egress.plan-lookalikes"
        looks = [n for d in site.plan_domains[:6] for n in _lookalikes(d)]
        if looks:
            specs = tuple(_spec(pid, n, "proxy_connect", proxy=A, target=f"{n}:443") for n in looks)

            def j_looks(
                ev: Evidence, pid: str = pid, looks: list[str] = looks, first: str = targets[0]
            ) -> Judgement:
                bad = []
                for n in looks:
                    ok_n, _ = _refusal(ev, _r(ev, f"{pid}/{n}"), n, 443, "not-allowlisted")
                    if not ok_n:
                        bad.append(n)
                ctrl = _r(ev, f"egress.plan-allowlist/{first}")
                return Judgement(
                    not bad,
                    "all refused (403, logged not-allowlisted)"
                    if not bad
                    else f"not refused: {', '.join(bad)}",
                    ctrl.get("status") != 403,
                    f"{first}: {ctrl.get('status') or ctrl.get('error')}",
                )

            P.append(
                AuditProbe(
                    pid,
                    "Names that look like the Expert's allowlisted ones are refused",
                    "403 for each look-alike (" + ", ".join(looks[:3]) + ", ...)",
                    "the allowlisted name itself is let through",
                    j_looks,
                    inside=specs,
                )
            )

    # ---- egress: names ------------------------------------------------------------------------------
    pid = "egress.not-allowlisted"

    def j_blocked(ev: Evidence, pid: str = pid) -> Judgement:
        ok, text = _refusal(ev, _r(ev, f"{pid}/real"), BLOCKED, 443, "not-allowlisted")
        c_ok, c_text = _control_nonce(site, _r(ev, f"{pid}/control"), "control proxy (name allowlisted)")
        return Judgement(ok, text, c_ok, c_text)

    P.append(
        AuditProbe(
            pid,
            "A host that is not allowlisted is refused",
            "403, logged as not-allowlisted",
            "the same name through the control proxy, where it is allowlisted: 200",
            j_blocked,
            inside=_real_and_control(
                site, pid, "proxy_connect", target=f"{BLOCKED}:443", tls=_tls(site, BLOCKED, pid=pid)
            ),
        )
    )

    for suffix, name in (
        ("prefix", f"evil-{UPSTREAM}"),
        ("suffix", f"{UPSTREAM}.evil.test"),
        ("subdomain", f"x.{UPSTREAM}"),
    ):
        pid = f"egress.lookalike.{suffix}"

        def j_look(ev: Evidence, pid: str = pid, name: str = name) -> Judgement:
            ok, text = _refusal(ev, _r(ev, f"{pid}/real"), name, 443, "not-allowlisted")
            return Judgement(ok, text, *allowed_control(ev))

        P.append(
            AuditProbe(
                pid,
                f"Look-alike name {name} is refused",
                "403, logged as not-allowlisted",
                f"{UPSTREAM} itself: 200",
                j_look,
                inside=(_spec(pid, "real", "proxy_connect", proxy=A, target=f"{name}:443"),),
            )
        )

    for suffix, target in (("case", UPSTREAM.upper()), ("trailing-dot", UPSTREAM + ".")):
        pid = f"egress.same-name.{suffix}"

        def j_same(ev: Evidence, pid: str = pid) -> Judgement:
            r = _r(ev, f"{pid}/real")
            return Judgement(_upstream_answered(r, N), _status_text(r))

        P.append(
            AuditProbe(
                pid,
                f"{target} is the same name as {UPSTREAM}",
                "200: matched like the allowlisted name",
                "-",
                j_same,
                inside=(
                    _spec(
                        pid,
                        "real",
                        "proxy_connect",
                        proxy=A,
                        target=f"{target}:443",
                        tls=_tls(site, UPSTREAM, pid=pid),
                    ),
                ),
            )
        )

    # ---- egress: IP literals -------------------------------------------------------------------------
    literals = {**spellings(site.upstream_ip), **_FIXED_LITERALS}
    n_literals = len(literals)
    for suffix, literal in literals.items():
        pid = f"egress.ip-literal.{suffix}"

        def j_ip(ev: Evidence, pid: str = pid) -> Judgement:
            r = _r(ev, f"{pid}/real")
            refused = r.get("status") == 403
            count = sum(1 for a in ev.proxy_log if a.action == "blocked" and a.code == "ip-literal")
            ok = refused and count >= n_literals
            return Judgement(
                ok,
                f"{_status_text(r)}; proxy logged {count}/{n_literals} ip-literal refusals",
                *allowed_control(ev),
            )

        P.append(
            AuditProbe(
                pid,
                f"CONNECT to the IP literal {literal}",
                "403, logged as ip-literal",
                "the same upstream by its allowlisted name: 200",
                j_ip,
                inside=(_spec(pid, "real", "proxy_connect", proxy=A, target=f"{literal}:443"),),
            )
        )

    # ---- egress: ports -------------------------------------------------------------------------------
    for port in (22, 80, 8443):
        pid = f"egress.port.{port}"
        if port == 22:
            extra_real: dict[str, Any] = {"read": True}
            extra_ctrl: dict[str, Any] = {"read": True}
        elif port == 80:
            req = f"GET /audit/{pid} HTTP/1.1\r\nHost: {UPSTREAM}\r\nConnection: close\r\n\r\n"
            extra_real = extra_ctrl = {"send": req}
        else:
            extra_real = extra_ctrl = {"tls": _tls(site, UPSTREAM, pid=pid)}

        def j_port(ev: Evidence, pid: str = pid, port: int = port) -> Judgement:
            ok, text = _refusal(ev, _r(ev, f"{pid}/real"), UPSTREAM, port, "port")
            c = _r(ev, f"{pid}/control")
            c_ok = (
                f"nonce={N}" in (c.get("after") or "")
                or f"sandbox-audit-{N}" in (c.get("after") or "")
                or _upstream_answered(c, N)
            )
            return Judgement(
                ok,
                text,
                c_ok,
                "control proxy (port open): " + ("the upstream answered" if c_ok else _status_text(c)),
            )

        P.append(
            AuditProbe(
                pid,
                f"CONNECT to an allowlisted host on port {port}",
                "403, logged as port",
                f"port {port} through the control proxy: the upstream answers",
                j_port,
                inside=(
                    _spec(pid, "real", "proxy_connect", proxy=A, target=f"{UPSTREAM}:{port}", **extra_real),
                    _spec(
                        pid, "control", "proxy_connect", proxy=B, target=f"{UPSTREAM}:{port}", **extra_ctrl
                    ),
                ),
            )
        )

    pid = "egress.plain-http"

    def j_plain(ev: Evidence, pid: str = pid) -> Judgement:
        r, s = _r(ev, f"{pid}/real"), _r(ev, f"{pid}/secret")
        logged = _logged(ev, "blocked", UPSTREAM, 80, "method")
        ok = r.get("status") == 403 and s.get("status") == 403 and logged
        c = _r(ev, f"{pid}/control")
        c_ok = c.get("status") == 200 and f"nonce={N}" in (c.get("body") or "")
        return Judgement(
            ok,
            f"allowlisted name: {r.get('status') or r.get('error')}; other name with ?q=: "
            f"{s.get('status') or s.get('error')}; proxy log: "
            + ("blocked (method)" if logged else "no matching refusal"),
            c_ok,
            f"control proxy (plain HTTP opted in): {c.get('status') or c.get('error')}",
        )

    P.append(
        AuditProbe(
            pid,
            "Plain HTTP through the proxy is refused",
            "403 (HTTPS only), logged as method",
            "the same request through the control proxy: 200",
            j_plain,
            inside=(
                _spec(pid, "real", "proxy_http", proxy=A, url=f"http://{UPSTREAM}/audit/{pid}"),
                _spec(pid, "secret", "proxy_http", proxy=A, url=f"http://{BLOCKED}/audit?q=secret-{N}"),
                _spec(pid, "control", "proxy_http", proxy=B, url=f"http://{UPSTREAM}/audit/{pid}"),
            ),
        )
    )

    # ---- egress: rebinding and metadata -------------------------------------------------------------
    pid = "egress.rebinding.private"

    def j_rebind(ev: Evidence, pid: str = pid) -> Judgement:
        ok, text = _refusal(ev, _r(ev, f"{pid}/real"), REBIND, 443, "private-address")
        c_ok, c_text = _control_nonce(site, _r(ev, f"{pid}/control"), "control proxy (opted in by name)")
        return Judgement(ok, text, c_ok, c_text)

    P.append(
        AuditProbe(
            pid,
            "An allowlisted name that resolves to a private address is refused",
            f"403, logged as private-address ({REBIND} -> {site.upstream_private_ip})",
            "the same name through the control proxy with a private opt-in: 200",
            j_rebind,
            inside=_real_and_control(
                site, pid, "proxy_connect", target=f"{REBIND}:443", tls=_tls(site, REBIND, pid=pid)
            ),
        )
    )

    pid = "egress.rebinding.metadata"

    def j_rebind_md(ev: Evidence, pid: str = pid) -> Judgement:
        ok, text = _refusal(ev, _r(ev, f"{pid}/real"), METADATA_REBIND, 443, "private-address")
        c_ok, c_text = _control_nonce(
            site,
            _r(ev, "egress.rebinding.private/control"),
            "a private name through the control proxy's opt-in",
        )
        return Judgement(ok, text, c_ok, c_text)

    P.append(
        AuditProbe(
            pid,
            "An allowlisted name that resolves to the metadata address is refused",
            f"403, logged as private-address ({METADATA_REBIND} -> 169.254.169.254)",
            "the private-address guard lets an opted-in name through (control proxy): 200",
            j_rebind_md,
            inside=(_spec(pid, "real", "proxy_connect", proxy=A, target=f"{METADATA_REBIND}:443"),),
        )
    )

    pid = "egress.metadata.direct"
    md_targets = [
        ["169.254.169.254", 80],
        ["169.254.169.254", 443],
        ["100.100.100.200", 80],
        ["fd00:ec2::254", 80],
    ]

    def j_md_direct(ev: Evidence, pid: str = pid) -> Judgement:
        r = _r(ev, f"{pid}/real")
        c = _r(ev, f"{pid}/control", "outside")
        return Judgement(
            not r["connected"],
            "connected: " + ", ".join(r["connected"])
            if r["connected"]
            else "no connection (" + "; ".join(sorted(set(map(_errno_name, r["errors"].values())))) + ")",
            bool(c.get("connected")),
            "control runner to the upstream: " + ("connected" if c.get("connected") else str(c.get("error"))),
        )

    P.append(
        AuditProbe(
            pid,
            "Cloud metadata endpoints are unreachable directly",
            "no connection to 169.254.169.254, 100.100.100.200, fd00:ec2::254",
            "the same direct connect from outside the sandbox reaches the upstream",
            j_md_direct,
            inside=(_spec(pid, "real", "tcp_many", targets=md_targets),),
            outside=(_spec(pid, "control", "tcp", host=site.upstream_ip, port=443),),
        )
    )

    pid = "egress.metadata.proxy"
    md_proxy: dict[str, tuple[str, dict[str, Any]]] = {
        "aws-connect": ("proxy_connect", {"target": "169.254.169.254:80"}),
        "aws-http": (
            "proxy_http",
            {"url": "http://169.254.169.254/latest/meta-data/", "headers": {"Metadata": "true"}},
        ),
        "gcp-connect": ("proxy_connect", {"target": "metadata.google.internal:80"}),
        "gcp-http": (
            "proxy_http",
            {
                "url": "http://metadata.google.internal/computeMetadata/v1/",
                "headers": {"Metadata-Flavor": "Google"},
            },
        ),
        "aws-v6": ("proxy_connect", {"target": "[fd00:ec2::254]:80"}),
        "alibaba": ("proxy_http", {"url": "http://100.100.100.200/latest/meta-data/"}),
    }

    def j_md_proxy(ev: Evidence, pid: str = pid) -> Judgement:
        parts = {k: _r(ev, f"{pid}/{k}") for k in md_proxy}
        bad = [k for k, r in parts.items() if r.get("status") != 403]
        return Judgement(
            not bad,
            "all 403"
            if not bad
            else "not refused: "
            + ", ".join(f"{k} ({parts[k].get('status') or parts[k].get('error')})" for k in bad),
            *allowed_control(ev),
        )

    P.append(
        AuditProbe(
            pid,
            "Cloud metadata endpoints are refused by the proxy",
            "403 for AWS/GCP/Azure/Alibaba metadata (with their headers), by IP and by name",
            f"{UPSTREAM}: 200",
            j_md_proxy,
            inside=tuple(_spec(pid, k, kind, proxy=A, **params) for k, (kind, params) in md_proxy.items()),
        )
    )

    # ---- egress: no route without the proxy --------------------------------------------------------
    pid = "egress.direct.allowlisted"

    def j_direct_allowed(ev: Evidence, pid: str = pid) -> Judgement:
        r, c = _r(ev, f"{pid}/real"), _r(ev, f"{pid}/control", "outside")
        c_ok = _upstream_answered(c, N)
        return Judgement(
            not r["connected"],
            "connected!" if r["connected"] else f"no route ({_errno_name(r.get('error'))})",
            c_ok,
            "from outside the sandbox: " + ("200 from the upstream" if c_ok else _status_text(c)),
        )

    P.append(
        AuditProbe(
            pid,
            "The allowlisted upstream is unreachable without the proxy",
            f"no connection to {site.upstream_ip}:443 (no route out of the internal network)",
            "the same HTTPS request from outside the sandbox: 200",
            j_direct_allowed,
            inside=(
                _spec(pid, "real", "tcp", host=site.upstream_ip, port=443, tls=_tls(site, UPSTREAM, pid=pid)),
            ),
            outside=(
                _spec(
                    pid, "control", "tcp", host=site.upstream_ip, port=443, tls=_tls(site, UPSTREAM, pid=pid)
                ),
            ),
        )
    )

    pid = "egress.direct.private"

    def j_direct_private(ev: Evidence, pid: str = pid) -> Judgement:
        r, c = _r(ev, f"{pid}/real"), _r(ev, f"{pid}/control", "outside")
        return Judgement(
            not r["connected"],
            "connected!" if r["connected"] else f"no route ({_errno_name(r.get('error'))})",
            bool(c.get("connected")),
            "from outside the sandbox: " + ("connected" if c.get("connected") else str(c.get("error"))),
        )

    P.append(
        AuditProbe(
            pid,
            "A private-network host is unreachable without the proxy",
            f"no connection to {site.upstream_private_ip}:443",
            "the same connect from outside the sandbox works",
            j_direct_private,
            inside=(_spec(pid, "real", "tcp", host=site.upstream_private_ip, port=443),),
            outside=(_spec(pid, "control", "tcp", host=site.upstream_private_ip, port=443),),
        )
    )

    pid = "egress.direct.public"
    public = [[ip, port] for ip in ("1.1.1.1", "8.8.8.8", "9.9.9.9") for port in (53, 80, 443, 853)]

    def j_direct_public(ev: Evidence, pid: str = pid) -> Judgement:
        r, c = _r(ev, f"{pid}/real"), _r(ev, f"{pid}/control", "outside")
        return Judgement(
            not r["connected"],
            "connected: " + ", ".join(r["connected"])
            if r["connected"]
            else f"none of {r['count']} connected",
            bool(c.get("connected")),
            "outside to the (public-looking) upstream: "
            + ("connected" if c.get("connected") else str(c.get("error"))),
        )

    P.append(
        AuditProbe(
            pid,
            "Public addresses are unreachable without the proxy (TCP 53/80/443/853)",
            "no connection to 1.1.1.1, 8.8.8.8, 9.9.9.9 on DNS, HTTP, HTTPS, DoT ports",
            f"a TEST-NET address ({site.upstream_ip}) from outside the sandbox: connected",
            j_direct_public,
            inside=(_spec(pid, "real", "tcp_many", targets=public),),
            outside=(_spec(pid, "control", "tcp", host=site.upstream_ip, port=443),),
        )
    )

    pid = "egress.proxy-unaware-client"

    def j_unaware(ev: Evidence, pid: str = pid) -> Judgement:
        r, s = _r(ev, f"{pid}/name"), _r(ev, f"{pid}/ip")
        ok = r.get("status") is None and s.get("status") is None
        u = _r(ev, "egress.allowlisted/urllib")
        c_ok = u.get("status") == 200
        return Judgement(
            ok,
            f"by name: {r.get('error')}; by address: {s.get('error')}",
            c_ok,
            f"the same client with the proxy: {u.get('status') or u.get('error')}",
        )

    P.append(
        AuditProbe(
            pid,
            "A client that ignores the proxy settings gets nowhere",
            "fails (no DNS, no route)",
            "the same client configured with the proxy: 200",
            j_unaware,
            inside=(
                _spec(pid, "name", "urllib", url=f"https://{UPSTREAM}/audit/unaware", timeout=5),
                _spec(pid, "ip", "urllib", url=f"https://{site.upstream_ip}/audit/unaware", timeout=5),
            ),
        )
    )

    # ---- egress: host and gateway -------------------------------------------------------------------
    pid = "egress.host-services"
    host_addrs = [site.gateway, *[a for a in site.host_ipv4 if not a.startswith("127.")]]
    host_addrs = list(dict.fromkeys(host_addrs))
    ports = sorted({*HOST_PORTS, site.listener_port})
    host_targets = [[a, p] for a in host_addrs for p in ports]
    ctrl_targets = [[a, site.listener_port] for a in dict.fromkeys([site.control_gateway, *host_addrs[1:]])]

    def j_host(ev: Evidence, pid: str = pid) -> Judgement:
        r, c = _r(ev, f"{pid}/real"), _r(ev, f"{pid}/control", "outside")
        host_ok = bool(ev.host.get("listener_from_host"))
        c_ok = bool(c.get("connected")) and host_ok
        return Judgement(
            not r["connected"],
            ("connected to host services: " + ", ".join(r["connected"]))
            if r["connected"]
            else f"none of {r['count']} connected",
            c_ok,
            f"a listener the audit opened on the host (port {site.listener_port}): "
            f"reached from an ordinary container: {', '.join(c.get('connected') or []) or 'no'}; "
            f"from the host: {'yes' if host_ok else 'no'}",
        )

    P.append(
        AuditProbe(
            pid,
            "Services on the host and the network gateway are unreachable",
            f"no connection to {', '.join(host_addrs)} on {len(ports)} common ports",
            "a listener the audit opens on the host is reachable from an ordinary container",
            j_host,
            inside=(_spec(pid, "real", "tcp_many", targets=host_targets, timeout=3),),
            outside=(_spec(pid, "control", "tcp_many", targets=ctrl_targets, timeout=3),),
        )
    )

    pid = "egress.proxy-other-ports"

    def j_proxy_ports(ev: Evidence, pid: str = pid) -> Judgement:
        r, c = _r(ev, f"{pid}/real"), _r(ev, f"{pid}/control")
        return Judgement(
            not r["connected"],
            "connected: " + ", ".join(r["connected"]) if r["connected"] else "only the proxy port answers",
            bool(c.get("connected")),
            f"{site.proxy_ip}:3128: " + ("connected" if c.get("connected") else str(c.get("error"))),
        )

    P.append(
        AuditProbe(
            pid,
            "The proxy container exposes nothing but the proxy port",
            "no connection to the proxy on 22, 80, 443, 3129 (its internal SNI stage), 8080",
            "the proxy port 3128 on the same address: connected",
            j_proxy_ports,
            inside=(
                _spec(
                    pid, "real", "tcp_many", targets=[[site.proxy_ip, p] for p in (22, 80, 443, 3129, 8080)]
                ),
                _spec(pid, "control", "tcp", host=site.proxy_ip, port=3128),
            ),
        )
    )

    # ---- egress: UDP, ICMP, IPv6 -------------------------------------------------------------------
    pid = "egress.udp.quic"

    def j_quic(ev: Evidence, pid: str = pid) -> Judgement:
        r, c = _r(ev, f"{pid}/real"), _r(ev, f"{pid}/control", "outside")
        c_ok = bool(c.get("reply")) and bytes.fromhex(c["reply"]).decode("latin-1").endswith(N)
        return Judgement(
            r.get("reply") is None,
            "reply received!" if r.get("reply") else f"no reply ({_errno_name(r.get('error')) or 'silence'})",
            c_ok,
            "from outside the sandbox: " + ("the upstream echoed" if c_ok else str(c.get("error"))),
        )

    P.append(
        AuditProbe(
            pid,
            "UDP (QUIC, HTTP/3) leaves no way out",
            f"no reply from {site.upstream_ip} UDP 443",
            "the same datagram from outside the sandbox: echoed",
            j_quic,
            inside=(_spec(pid, "real", "udp", host=site.upstream_ip, port=443),),
            outside=(_spec(pid, "control", "udp", host=site.upstream_ip, port=443),),
        )
    )

    pid = "egress.udp.dns"
    dns_servers = list(dict.fromkeys([site.upstream_ip, "1.1.1.1", "8.8.8.8", "9.9.9.9", *host_addrs]))
    inside_q = f"inside-{N}.{AUDIT_ZONE}"
    control_q = f"control-{N}.{AUDIT_ZONE}"

    def j_dns(ev: Evidence, pid: str = pid) -> Judgement:
        answered = [s for s in dns_servers if _r(ev, f"{pid}/{s}").get("answered")]
        leaked = any(inside_q in line for line in ev.upstream_log)
        c = _r(ev, f"{pid}/control", "outside")
        c_logged = any(control_q in line for line in ev.upstream_log)
        ok = not answered and not leaked
        observed = ("answered by: " + ", ".join(answered)) if answered else "no resolver answered"
        observed += "; the upstream's DNS log " + (
            "SAW the sandbox's query" if leaked else "never saw the query"
        )
        return Judgement(
            ok,
            observed,
            bool(c.get("answered")) and c_logged,
            f"the same query from outside: answered={c.get('answered')}, logged={c_logged}",
        )

    P.append(
        AuditProbe(
            pid,
            "DNS queries to any resolver go nowhere (no DNS exfiltration)",
            "no answer from the upstream's resolver, public resolvers, the gateway or the host; "
            "the query never arrives",
            "the same query from outside the sandbox is answered and logged",
            j_dns,
            inside=tuple(_spec(pid, s, "dns", server=s, qname=inside_q) for s in dns_servers),
            outside=(_spec(pid, "control", "dns", server=site.upstream_ip, qname=control_q),),
        )
    )

    pid = "egress.icmp"
    icmp_hosts = list(dict.fromkeys([site.upstream_ip, site.gateway, "1.1.1.1"]))

    def j_icmp(ev: Evidence, pid: str = pid) -> Judgement:
        replies = [
            h for h in icmp_hosts if (r := _r(ev, f"{pid}/{h}"))["dgram"]["reply"] or r["raw"]["reply"]
        ]
        c = _r(ev, f"{pid}/control", "outside")
        c_ok = bool(c["dgram"]["reply"] or c["raw"]["reply"])
        sample = _r(ev, f"{pid}/{icmp_hosts[0]}")
        return Judgement(
            not replies,
            ("echo replies from: " + ", ".join(replies))
            if replies
            else f"no replies (datagram socket: {_errno_name(sample['dgram']['error']) or 'silence'}; "
            f"raw socket: {_errno_name(sample['raw']['error']) or 'silence'})",
            c_ok,
            "ping from outside the sandbox: " + ("reply" if c_ok else "no reply"),
        )

    P.append(
        AuditProbe(
            pid,
            "ICMP leaves no way out (no ping tunnels)",
            "no echo reply from the upstream, gateway or 1.1.1.1",
            "ping to the upstream from outside the sandbox: reply",
            j_icmp,
            inside=tuple(_spec(pid, h, "icmp", host=h) for h in icmp_hosts),
            outside=(_spec(pid, "control", "icmp", host=site.upstream_ip),),
        )
    )

    pid = "egress.ipv6"
    v6_targets = [["2606:4700:4700::1111", 443], ["2001:4860:4860::8888", 443], ["2001:db8::1", 443]]
    v6_targets += [[a, p] for a in site.host_ipv6 for p in (22, 80, 443, site.listener_port)]

    def j_v6(ev: Evidence, pid: str = pid) -> Judgement:
        r = _r(ev, f"{pid}/real")
        ok = not r["global"] and not r["targets"]["connected"]
        observed = (
            f"global addresses: {', '.join(r['global'])}; " if r["global"] else "no global IPv6 address; "
        )
        observed += (
            ("connected: " + ", ".join(r["targets"]["connected"]))
            if r["targets"]["connected"]
            else f"none of {r['targets']['count']} connected"
        )
        if r.get("disabled"):
            return Judgement(
                ok,
                observed + " (IPv6 disabled in the container)",
                True,
                "IPv6 is switched off in the container, so there is nothing to control",
            )
        loop = r.get("loopback") or {}
        return Judgement(
            ok,
            observed,
            bool(loop.get("ok")),
            "IPv6 loopback inside: " + ("works" if loop.get("ok") else str(loop.get("error"))),
        )

    P.append(
        AuditProbe(
            pid,
            "IPv6 is no side door",
            "no global IPv6 address; no IPv6 connection out (public, host)",
            "the IPv6 stack itself works inside (loopback), or is switched off",
            j_v6,
            inside=(_spec(pid, "real", "ipv6", targets=v6_targets),),
        )
    )

    # ---- DNS in the sandbox ------------------------------------------------------------------------
    pid = "dns.outside-names"
    names = list(
        dict.fromkeys(
            [
                "pypi.org",
                "registry.npmjs.org",
                UPSTREAM,
                f"exfil-{N}.example.com",
                *[_apex(d) for d in site.plan_domains[:3]],
            ]
        )
    )

    def j_names(ev: Evidence, pid: str = pid) -> Judgement:
        resolved = {n: _r(ev, f"{pid}/{n}")["addresses"] for n in names}
        bad = {n: a for n, a in resolved.items() if a}
        c = _r(ev, f"{pid}/control")
        c_ok = site.proxy_ip in c.get("addresses", [])
        return Judgement(
            not bad,
            ("resolved: " + ", ".join(f"{n} -> {a}" for n, a in bad.items()))
            if bad
            else f"none of {len(names)} names resolved",
            c_ok,
            f"the proxy's container name: {', '.join(c.get('addresses') or []) or c.get('error')}",
        )

    P.append(
        AuditProbe(
            pid,
            "No outside name resolves inside the sandbox",
            "getaddrinfo fails for registries, the allowlisted names and a random name",
            "Docker's own names still resolve (the proxy's container name)",
            j_names,
            inside=(
                *(_spec(pid, n, "resolve", name=n) for n in names),
                _spec(pid, "control", "resolve", name=site.proxy_name),
            ),
        )
    )

    pid = "dns.metadata-names"

    def j_md_names(ev: Evidence, pid: str = pid) -> Judgement:
        got = {n: _r(ev, f"{pid}/{n}")["addresses"] for n in ("metadata.google.internal", "metadata")}
        bad = {n: a for n, a in got.items() if a}
        c = _r(ev, "dns.outside-names/control")
        return Judgement(
            not bad,
            "resolved: " + str(bad) if bad else "neither resolves",
            site.proxy_ip in c.get("addresses", []),
            "the proxy's container name resolves",
        )

    P.append(
        AuditProbe(
            pid,
            "Metadata host names do not resolve",
            "metadata.google.internal and metadata do not resolve",
            "Docker's own names still resolve",
            j_md_names,
            inside=tuple(_spec(pid, n, "resolve", name=n) for n in ("metadata.google.internal", "metadata")),
        )
    )

    # ---- egress: TLS -----------------------------------------------------------------------------------
    pid = "egress.sni-mismatch"

    def j_sni(ev: Evidence, pid: str = pid) -> Judgement:
        r = _r(ev, f"{pid}/real")
        got_through = _upstream_answered(r, N)
        logged = _logged(ev, "blocked", UPSTREAM, 443, "sni-mismatch")
        c_ok, c_text = _control_nonce(site, _r(ev, f"{pid}/control"), "control proxy (no SNI check)")
        return Judgement(
            not got_through and logged,
            f"{_status_text(r)}; proxy log: "
            + ("terminated (sni-mismatch)" if logged else "no SNI refusal logged"),
            c_ok,
            c_text,
        )

    P.append(
        AuditProbe(
            pid,
            "A TLS ClientHello whose SNI differs from the CONNECT host is cut",
            f"CONNECT {UPSTREAM}, SNI {BLOCKED}: terminated, logged as sni-mismatch",
            "the same tunnel through the control proxy (no SNI check): 200",
            j_sni,
            inside=_real_and_control(
                site,
                pid,
                "proxy_connect",
                target=f"{UPSTREAM}:443",
                tls=_tls(site, BLOCKED, verify=False, pid=pid),
            ),
        )
    )

    pid = "egress.non-tls-tunnel"

    def j_non_tls(ev: Evidence, pid: str = pid) -> Judgement:
        r = _r(ev, f"{pid}/real")
        after = r.get("after") or ""
        leaked = N in after
        c = _r(ev, "egress.port.22/control")
        c_ok = f"sandbox-audit-{N}" in (c.get("after") or "")
        return Judgement(
            not leaked,
            f"CONNECT {r.get('status')}; after sending an SSH banner: "
            + (repr(after[:60]) if after else "connection cut, nothing came back"),
            c_ok,
            "SSH banner through the control proxy on port 22: " + ("received" if c_ok else "not received"),
        )

    P.append(
        AuditProbe(
            pid,
            "A non-TLS protocol through an allowed tunnel is cut (SSH over 443)",
            "the tunnel is closed once the first bytes are not TLS",
            "the same protocol where it is allowed (control proxy, port 22): the banner arrives",
            j_non_tls,
            inside=(
                _spec(
                    pid,
                    "real",
                    "proxy_connect",
                    proxy=A,
                    target=f"{UPSTREAM}:443",
                    send="SSH-2.0-OpenSSH_9.6\r\n",
                ),
            ),
        )
    )

    P.extend(_filesystem(site))
    from ._catalog_steering import steering_probes  # it builds on this module's pieces

    P.extend(steering_probes(site))
    P.extend(_secrets(site))
    from ._catalog_peers import peer_probes  # imports this module

    P.extend(peer_probes(site))
    P.extend(_privilege(site))
    from ._catalog_workspace import workspace_probes  # it builds on this module's helpers

    P.extend(workspace_probes(site))
    P.extend(_resources(site))
    P.append(_self_check())
    return P


# ---------------------------------------------------------------------------------------------------------
# Filesystem
# ---------------------------------------------------------------------------------------------------------

_HOST_FS_TYPES = frozenset(
    {
        "ext2",
        "ext3",
        "ext4",
        "xfs",
        "btrfs",
        "zfs",
        "f2fs",
        "vfat",
        "ntfs",
        "ntfs3",
        "exfat",
        "9p",
        "virtiofs",
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "fuse",
        "fuseblk",
        "fuse.sshfs",
        "fakeowner",
        "grpcfuse",
        "fuse.grpcfuse",
        "overlay2",
    }
)
_DOCKER_BINDS = frozenset(
    {
        "/etc/resolv.conf",
        "/etc/hostname",
        "/etc/hosts",
        "/sbin/docker-init",
        "/usr/sbin/docker-init",
        "/dev/init",
    }
)
_DOCKER_MASKS = frozenset(
    {
        # Docker hides these kernel files by mounting an empty tmpfs or /dev/null over them: writes go
        # nowhere.
        "/proc/asound",
        "/proc/acpi",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
        "/sys/devices/virtual/powercap",
    }
)
_EXPECTED_BINDS = frozenset({"/workspace", "/sandbox/expert"})
_EXPECTED_RW = frozenset(
    {
        "/workspace",
        "/tmp",
        "/home/sandbox",
        "/dev/shm",
        "/dev/mqueue",
        "/dev",
        "/dev/pts",
        "/proc",
        "/etc/resolv.conf",
        "/etc/hostname",
        "/etc/hosts",
        # Docker's cgroup tmpfs is a read-write mount of a 0555 directory holding read-only cgroup mounts;
        # fs.read-only writes there for real.
        "/sys/fs/cgroup",
        *_DOCKER_MASKS,
    }
)
_READ_ONLY_DIRS = (
    "/",
    "/etc",
    "/usr",
    "/usr/local/bin",
    "/opt",
    "/opt/sandbox",
    "/opt/sandbox/venv",
    "/var",
    "/var/tmp",
    "/root",
    "/srv",
    "/run",
    "/sandbox/expert",
    "/sys/fs/cgroup",
)
_WRITABLE_DIRS = ("/workspace", "/tmp", "/home/sandbox")


def _same_file(r: Result, pair: tuple[int, int] | None) -> bool:
    return pair is not None and "dev" in r and (r["dev"], r["ino"]) == tuple(pair)


def _workspace_control(ev: Evidence, site: Site) -> tuple[bool, str]:
    r = _r(ev, "fs.host-files/workspace")["/workspace"]
    ok = _same_file(r, site.host_paths.get("workspace"))
    return (
        ok,
        "/workspace is recognised as the host's workspace directory (same device and inode)"
        if ok
        else f"/workspace not recognised ({r})",
    )


def _filesystem(site: Site) -> list[AuditProbe]:
    P: list[AuditProbe] = []  # noqa: N806
    pid = "fs.host-files"
    paths = {"shadow": "/etc/shadow", "home": site.home, "rundir": site.rundir, "root": "/"}

    def j_host_files(ev: Evidence, pid: str = pid) -> Judgement:
        exposed = [
            f"{label} ({path})"
            for label, path in paths.items()
            if _same_file(_r(ev, f"{pid}/{label}")[path], site.host_paths.get(label))
        ]
        canary = _r(ev, f"{pid}/canary")[site.rundir + "/host-canary.txt"]
        if canary.get("ok"):
            exposed.append("the audit's host-side canary file")
        return Judgement(
            not exposed,
            ("host files visible: " + ", ".join(exposed))
            if exposed
            else f"none of the host's {', '.join(paths.values())} is visible (only same-named image "
            "files, if any)",
            *_workspace_control(ev, site),
        )

    P.append(
        AuditProbe(
            pid,
            "The host's files are not visible (/etc/shadow, home, temp files)",
            "no path inside is the host's file (compared by device and inode)",
            "the one host directory that is mounted (/workspace) is recognised",
            j_host_files,
            inside=(
                *(_spec(pid, k, "stat_paths", paths=[v]) for k, v in paths.items()),
                _spec(pid, "canary", "read_files", paths=[site.rundir + "/host-canary.txt"]),
                _spec(pid, "workspace", "stat_paths", paths=["/workspace"]),
            ),
        )
    )

    pid = "fs.etc-shadow"

    def j_shadow(ev: Evidence, pid: str = pid) -> Judgement:
        r = _r(ev, f"{pid}/read")
        shadow, passwd = r["/etc/shadow"], r["/etc/passwd"]
        if site.uid == 0:
            ok = True
            text = (
                (
                    "readable: the Expert runs as uid 0 (the invoking user is root); it is the image's "
                    "own file, the host's is not visible (fs.host-files)"
                )
                if shadow.get("ok")
                else f"unreadable ({_errno_name(shadow.get('error'))})"
            )
        else:
            ok = not shadow.get("ok")
            text = f"unreadable ({_errno_name(shadow.get('error'))})" if ok else "READABLE as a non-root user"
        return Judgement(
            ok,
            text,
            bool(passwd.get("ok")),
            "/etc/passwd, same directory and method: "
            + ("readable" if passwd.get("ok") else str(passwd.get("error"))),
        )

    P.append(
        AuditProbe(
            pid,
            "/etc/shadow cannot be read",
            "unreadable (EACCES) unless the invoking user is root; never the host's",
            "/etc/passwd is readable the same way",
            j_shadow,
            inside=(_spec(pid, "read", "read_files", paths=["/etc/shadow", "/etc/passwd"]),),
        )
    )

    pid = "fs.docker-socket"
    engine_sockets = [
        "/var/run/docker.sock",
        "/run/docker.sock",
        "/run/containerd/containerd.sock",
        "/var/run/docker/containerd/containerd.sock",
        "/run/podman/podman.sock",
        "/run/user/0/docker.sock",
        f"/run/user/{site.uid}/docker.sock",
    ]

    def j_sock(ev: Evidence, pid: str = pid) -> Judgement:
        r = _r(ev, f"{pid}/scan")
        found = [s for s in r["sockets"] if not s.startswith(("/tmp/", "/home/sandbox/"))]
        connected = [p for p, a in r["connect"].items() if a["connected"]]
        ok = not found and not connected
        c = r["control"]
        return Judgement(
            ok,
            ("sockets: " + ", ".join(found + connected))
            if not ok
            else "no engine socket, no Unix socket outside the sandbox's own tmpfs",
            bool(c.get("ok")),
            "a socket made in /tmp is found and connectable: "
            + ("yes" if c.get("ok") else str(c.get("error"))),
        )

    P.append(
        AuditProbe(
            pid,
            "The Docker socket (or any engine socket) is not reachable",
            "no docker.sock/containerd.sock/podman.sock; no Unix socket from the host",
            "a socket the probe creates itself is found and connectable",
            j_sock,
            inside=(_spec(pid, "scan", "sockets", roots=["/"], connect=engine_sockets),),
        )
    )

    pid = "fs.mounts"

    def j_mounts(ev: Evidence, pid: str = pid) -> Judgement:
        mounts = _r(ev, f"{pid}/list")["mounts"]
        binds = {m["mountPoint"] for m in mounts if m["fstype"] in _HOST_FS_TYPES}
        # The masks over the host's steering files: an empty file of the rendered context, read-only.
        masks = {
            m["mountPoint"]
            for m in mounts
            if m["mountPoint"] in site.steering_masked and "ro" in m["options"].split(",")
        }
        unexpected = sorted(binds - _EXPECTED_BINDS - _DOCKER_BINDS - masks)
        found = sorted(binds & _EXPECTED_BINDS)
        return Judgement(
            not unexpected,
            ("unexpected host mounts: " + ", ".join(unexpected))
            if unexpected
            else "host mounts: " + ", ".join(sorted(binds)),
            "/workspace" in found,
            "/workspace is detected as a host mount by the same method"
            if "/workspace" in found
            else "/workspace not detected",
        )

    P.append(
        AuditProbe(
            pid,
            "Only the workspace (and the read-only Expert config) come from the host",
            "host filesystems mounted only at /workspace, /sandbox/expert "
            "(+ Docker's hosts/resolv.conf/hostname, + read-only masks over steering files)",
            "the workspace mount is detected by the same method",
            j_mounts,
            inside=(_spec(pid, "list", "mounts"),),
        )
    )

    pid = "fs.read-only"

    def j_ro(ev: Evidence, pid: str = pid) -> Judgement:
        r, c = _r(ev, f"{pid}/real"), _r(ev, f"{pid}/control")
        written = [d for d, x in r.items() if x["ok"]]
        c_bad = [d for d, x in c.items() if not x["ok"]]
        errs = sorted({_errno_name(x["error"]) for x in r.values() if not x["ok"]})
        return Judgement(
            not written,
            ("written: " + ", ".join(written)) if written else f"all {len(r)} refused ({', '.join(errs)})",
            not c_bad,
            (
                "/workspace, /tmp, /home/sandbox: writable"
                if not c_bad
                else "not writable: " + ", ".join(c_bad)
            ),
        )

    P.append(
        AuditProbe(
            pid,
            "Nothing outside /workspace and the tmpfs is writable",
            "creating a file fails in /, /etc, /usr, /opt/sandbox, /var, /root, /sandbox/expert, ...",
            "the same write works in /workspace, /tmp and /home/sandbox",
            j_ro,
            inside=(
                _spec(pid, "real", "write_paths", dirs=list(_READ_ONLY_DIRS)),
                _spec(pid, "control", "write_paths", dirs=list(_WRITABLE_DIRS)),
            ),
        )
    )

    pid = "fs.writable-mounts"

    def j_rw(ev: Evidence, pid: str = pid) -> Judgement:
        mounts = _r(ev, "fs.mounts/list")["mounts"]
        rw = {m["mountPoint"] for m in mounts if m["options"].split(",")[0] == "rw"}
        unexpected = sorted(rw - _EXPECTED_RW)
        return Judgement(
            not unexpected,
            ("also writable: " + ", ".join(unexpected))
            if unexpected
            else "writable mounts: " + ", ".join(sorted(rw)),
            "/workspace" in rw and "/tmp" in rw,
            "the workspace and /tmp show up as writable",
        )

    P.append(
        AuditProbe(
            pid,
            "The only writable mounts are the workspace and the tmpfs",
            "read-write mounts limited to /workspace, /tmp, /home/sandbox, /dev/shm and Docker's own",
            "the known writable mounts are reported as such",
            j_rw,
        )
    )

    pid = "fs.workspace-symlink"

    def j_links(ev: Evidence, pid: str = pid) -> Judgement:
        reads = _r(ev, f"{pid}/read")
        stats = _r(ev, f"{pid}/stat")
        leaked = [name for name, r in reads.items() if r.get("markers")]
        home = stats.get("/workspace/escape-home", {})
        if _same_file(home, site.host_paths.get("home")):
            leaked.append("/workspace/escape-home is the host's home")
        host_ok = bool(ev.host.get("symlink_host_read"))
        return Judgement(
            not leaked,
            ("leaked: " + ", ".join(leaked))
            if leaked
            else "the links resolve inside the container: no host file behind them",
            host_ok,
            "on the host the same links lead to the host files: " + ("yes" if host_ok else "no"),
        )

    links = [f"/workspace/{name}" for name in site.symlinks]
    P.append(
        AuditProbe(
            pid,
            "A symlink in the workspace pointing outside exposes nothing",
            "links to the host's files resolve to nothing (or the image's own files) inside",
            "on the host, the same links reach the host's files",
            j_links,
            inside=(
                _spec(pid, "read", "read_files", paths=links, markers=[site.marker]),
                _spec(pid, "stat", "stat_paths", paths=links),
            ),
        )
    )
    return P


# ---------------------------------------------------------------------------------------------------------
# Secrets and environment
# ---------------------------------------------------------------------------------------------------------


def _secrets(site: Site) -> list[AuditProbe]:
    P: list[AuditProbe] = []  # noqa: N806
    pid = "secrets.environ"

    def j_env(ev: Evidence, pid: str = pid) -> Judgement:
        names = set(_r(ev, f"{pid}/env")["names"])
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
        AuditProbe(
            pid,
            "The Expert's environment holds exactly the plan's variables",
            "proxy settings, HOME, the sandbox's own and the image's variables; nothing from the host",
            "-",
            j_env,
            inside=(_spec(pid, "env", "environ"),),
        )
    )

    pid = "secrets.not-in-processes"

    def j_proc(ev: Evidence, pid: str = pid) -> Judgement:
        r = _r(ev, "secrets.environ/env")
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
        AuditProbe(
            pid,
            "Secret values are in no process's environment or argv",
            "the stdin-delivered values and the host's secret values appear in no /proc/*/environ or cmdline",
            "the value of a variable that is set is found by the same scan",
            j_proc,
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


# ---------------------------------------------------------------------------------------------------------
# Privilege
# ---------------------------------------------------------------------------------------------------------


def _zero(mask: str | None) -> bool:
    return mask is not None and int(mask, 16) == 0


def _ops(ev: Evidence, where: str = "inside") -> Result:
    return _r(ev, "priv.ops/all", where)


def _op_text(results: Mapping[str, Result], names: Sequence[str]) -> str:
    return "; ".join(
        f"{n}: {'ALLOWED' if results[n]['ok'] else _errno_name(results[n]['error'])}" for n in names
    )


def _privilege(site: Site) -> list[AuditProbe]:
    P: list[AuditProbe] = []  # noqa: N806
    ops_spec = _spec("priv.ops", "all", "priv_ops")
    ops_outside = _spec(
        "priv.ops", "all", "priv_ops", ops=["setuid_other", "chown_other", "raw_socket", "chroot", "mknod"]
    )

    pid = "priv.capabilities"

    def j_caps(ev: Evidence, pid: str = pid) -> Judgement:
        r, c = _r(ev, f"{pid}/status"), _r(ev, f"{pid}/status", "outside")
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
        AuditProbe(
            pid,
            "The Expert holds no capabilities",
            "CapEff, CapPrm, CapBnd, CapAmb, CapInh all 0 (cap_drop ALL)",
            "the same reading in a container with capabilities shows them",
            j_caps,
            inside=(_spec(pid, "status", "proc_status"),),
            outside=(_spec(pid, "status", "proc_status"),),
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

    def ops_probe(
        pid: str,
        title: str,
        names: Sequence[str],
        expected: str,
        control: str,
        control_ops: Sequence[str] = (),
        inside_control: str | None = None,
    ) -> AuditProbe:
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
            c_parts.append(
                "refusals are EPERM/EACCES" if proper else "some refusals are not permission errors"
            )
            return Judgement(ok, _op_text(r, names), c_ok, "; ".join(c_parts))

        return AuditProbe(pid, title, expected, control, judge)

    P.append(
        ops_probe(
            "priv.setuid",
            "The Expert cannot change its uid or give files away",
            ("setuid_other", "chown_other"),
            "setuid() and chown() to another user: EPERM",
            "both work in a container granted CAP_SETUID/CAP_CHOWN",
            control_ops=("setuid_other", "chown_other"),
        )
    )
    P.append(
        ops_probe(
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
        ops_probe(
            "priv.user-namespace",
            "The Expert cannot create namespaces (user, mount, network)",
            ("unshare_user", "unshare_user_mount", "unshare_net"),
            "unshare(2): EPERM",
            "the kernel answers EPERM (a permission refusal, not a failed call)",
        )
    )
    P.append(
        ops_probe(
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
        ops_probe(
            "priv.kernel-interfaces",
            "Kernel interfaces are closed",
            ("open_dev_mem", "read_kmsg", "read_kcore", "write_sysrq", "settime", "sethostname", "mknod"),
            "/dev/mem, /dev/kmsg, /proc/kcore, sysrq, the clock, the host name and device nodes: refused",
            "mknod works in a container granted CAP_MKNOD",
            control_ops=("mknod",),
        )
    )

    pid = "priv.pid-namespace"

    def j_pids(ev: Evidence, pid: str = pid) -> Judgement:
        procs = _r(ev, f"{pid}/list")["processes"]
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
        AuditProbe(
            pid,
            "No process outside the sandbox is visible",
            "a private PID namespace: PID 1 is the container's "
            "init, no kernel threads, only the sandbox's processes",
            "the same listing sees the probe itself",
            j_pids,
            inside=(_spec(pid, "list", "processes"),),
        )
    )
    return P


# ---------------------------------------------------------------------------------------------------------
# Resources
# ---------------------------------------------------------------------------------------------------------


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.lstrip("-").isdigit() else None


def _resources(site: Site) -> list[AuditProbe]:
    P: list[AuditProbe] = []  # noqa: N806
    mib = 1 << 20

    pid = "res.limits"

    def j_limits(ev: Evidence, pid: str = pid) -> Judgement:
        r = _r(ev, f"{pid}/cgroup")
        mem, pids = _int(r.get("memory")), _int(r.get("pids"))
        quota, period = _int(r.get("cpuQuota")), _int(r.get("cpuPeriod"))
        cpus = quota / period if quota and period and quota > 0 else None
        ok = (
            mem == site.memory_bytes
            and pids == site.pids
            and cpus is not None
            and abs(cpus - site.cpus) < 0.01
        )
        return Judgement(
            ok,
            f"memory {mem // mib if mem else mem} MiB, pids {pids}, cpus {cpus} (cgroup v{r.get('version')})",
        )

    P.append(
        AuditProbe(
            pid,
            "The kernel enforces the plan's limits",
            f"memory {site.memory_bytes // mib} MiB, pids {site.pids}, cpus {site.cpus}",
            "-",
            j_limits,
            inside=(_spec(pid, "cgroup", "cgroup_limits"),),
        )
    )

    pid = "res.fork-bomb"

    def j_fork(ev: Evidence, pid: str = pid) -> Judgement:
        r = _r(ev, f"{pid}/bomb")
        forked = int(r.get("forked") or 0)
        ok = r.get("stoppedBy") == "EAGAIN" and forked < site.pids
        return Judgement(
            ok,
            f"fork() failed with {r.get('stoppedBy')} after {forked} processes",
            forked >= site.pids // 2,
            f"the bomb really forked ({forked} of a {site.pids} limit)",
        )

    P.append(
        AuditProbe(
            pid,
            "A fork bomb stops at the pids limit",
            f"fork() fails (EAGAIN) before {site.pids} processes",
            "the bomb forked up to the limit",
            j_fork,
            inside=(_spec(pid, "bomb", "fork_bomb", maxProcs=site.pids + 64),),
        )
    )

    pid = "res.memory-bomb"

    def j_mem(ev: Evidence, pid: str = pid) -> Judgement:
        r = _r(ev, f"{pid}/bomb")
        got = int(r.get("allocated") or 0)
        killed = r.get("returncode") == -9
        ok = killed and got <= site.memory_bytes and not r.get("reachedCap")
        how = "killed (SIGKILL, out of memory)" if killed else f"exit {r.get('returncode')}"
        return Judgement(
            ok,
            f"{how} after {got // mib} MiB",
            got >= site.memory_bytes // 2,
            f"the bomb really allocated ({got // mib} of {site.memory_bytes // mib} MiB)",
        )

    P.append(
        AuditProbe(
            pid,
            "A memory bomb is killed at the memory limit",
            f"killed by the OOM killer at no more than {site.memory_bytes // mib} MiB (no swap)",
            "the bomb allocated a large part of the limit first",
            j_mem,
            inside=(_spec(pid, "bomb", "memory_bomb", maxBytes=site.memory_bytes * 3 // 2 + 256 * mib),),
        )
    )

    pid = "res.tmpfs-fill"
    bounded_by_memory = site.tmpfs_bytes >= site.memory_bytes

    def j_fill(ev: Evidence, pid: str = pid) -> Judgement:
        r = _r(ev, f"{pid}/fill")
        size, written = int(r.get("size") or 0), int(r.get("written") or 0)
        if bounded_by_memory:
            ok = r.get("returncode") == -9 or r.get("stoppedBy") == "ENOSPC"
        else:
            ok = r.get("stoppedBy") == "ENOSPC" and written <= size and abs(size - site.tmpfs_bytes) <= mib
        return Judgement(
            ok,
            f"stopped by {r.get('stoppedBy') or r.get('returncode')} after {written // mib} MiB "
            f"(tmpfs size {size // mib} MiB)",
            written >= size * 9 // 10,
            f"the writes filled it ({written // mib} of {size // mib} MiB)",
        )

    P.append(
        AuditProbe(
            pid,
            "Filling the tmpfs stops at its size",
            f"ENOSPC at {site.tmpfs_bytes // mib} MiB"
            + (" (or the memory limit, which is smaller)" if bounded_by_memory else ""),
            "the writes did fill it",
            j_fill,
            inside=(_spec(pid, "fill", "fill_tmpfs", path="/tmp", maxBytes=site.tmpfs_bytes + 64 * mib),),
        )
    )

    pid = "res.host-responsive"

    def j_host(ev: Evidence) -> Judgement:
        h = ev.host.get("responsiveness") or {}
        worst, base = h.get("max_s"), h.get("baseline_s")
        if worst is None:
            return Judgement(False, "not measured", False)
        ok = worst < 5.0
        return Judgement(
            ok,
            f"worst host response {worst * 1000:.0f} ms over {h.get('samples')} samples during the bombs",
            base is not None,
            f"baseline before: {base * 1000:.0f} ms" if base is not None else "-",
        )

    P.append(
        AuditProbe(
            pid,
            "The host stays responsive while the limits are hit",
            "a process spawn and a Docker API call on the host answer within 5 s throughout",
            "the same measurement before the bombs",
            j_host,
        )
    )
    return P


def _self_check() -> AuditProbe:
    def judge(ev: Evidence) -> Judgement:
        s = ev.host.get("same_sandbox") or {}
        ok = bool(s.get("images")) and bool(s.get("compose")) and bool(s.get("additions_only"))
        return Judgement(
            ok,
            f"same images: {s.get('images')}; same compose.yaml: {s.get('compose')}; proxy policy "
            f"additions: {', '.join(s.get('additions') or []) or '-'}",
        )

    return AuditProbe(
        "audit.same-sandbox",
        "The audit tests the sandbox `sandbox run` would start",
        "the same images and compose.yaml; the proxy policy differs only by the audit's own test names",
        "-",
        judge,
    )
