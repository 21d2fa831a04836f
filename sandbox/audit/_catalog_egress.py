"""Audit probes for the proxy itself: the allowlist, names, IP literals, ports, plain HTTP, and tunnels.

Every refusal here is a decision of the sandbox's proxy, so it is checked twice: the 403 the client saw and
the matching line in the proxy's own log (`refused_by_proxy`). Its control is the same request through
the control proxy (where the audit allows it) or the allowed path, `egress.allowlisted`, which is the
first probe for that reason. `proxy_probes` come first in the report; `tunnel_probes` (what may travel
through a tunnel that was allowed) come after the network probes (`_catalog_network`).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ._catalog_judges import (
    ALLOWED,
    _logged,
    _r,
    _refusal,
    _spec,
    _status_text,
    _tls,
    _upstream_answered,
    allowed_path,
    answered_nonce,
    judge,
    real_and_control,
    refused_as,
    refused_by_proxy,
    through_both_proxies,
)
from ._catalog_model import AuditProbe, Evidence, Judgement, Result, Site
from ._policy import AUDIT_ZONE, BLOCKED, UPSTREAM

__all__ = ["proxy_probes", "spellings", "tunnel_probes"]

_CONNECT_TIMEOUT = 15  # the proxy's own DNS timeout is 10 s: allow a 503 for an unresolvable name


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


def proxy_probes(site: Site) -> list[AuditProbe]:
    """The allowed path, the Expert's allowlist, names, IP literals, ports and plain HTTP, in report order."""
    literals = {**spellings(site.upstream_ip), **_FIXED_LITERALS}
    return [
        _allowlisted(site),
        *_plan_allowlist(site),
        refused_by_proxy(
            site,
            "egress.not-allowlisted",
            "A host that is not allowlisted is refused",
            name=BLOCKED,
            code="not-allowlisted",
            expected="403, logged as not-allowlisted",
            control="the same name through the control proxy, where it is allowlisted: 200",
            control_proxy="control proxy (name allowlisted)",
            tls=True,
        ),
        *(
            refused_by_proxy(
                site,
                f"egress.lookalike.{suffix}",
                f"Look-alike name {name} is refused",
                name=name,
                code="not-allowlisted",
                expected="403, logged as not-allowlisted",
                control=f"{UPSTREAM} itself: 200",
            )
            for suffix, name in (
                ("prefix", f"evil-{UPSTREAM}"),
                ("suffix", f"{UPSTREAM}.evil.test"),
                ("subdomain", f"x.{UPSTREAM}"),
            )
        ),
        *(
            _same_name(site, suffix, target)
            for suffix, target in (("case", UPSTREAM.upper()), ("trailing-dot", UPSTREAM + "."))
        ),
        *(_ip_literal(site, suffix, literal, len(literals)) for suffix, literal in literals.items()),
        *(_port(site, port) for port in (22, 80, 8443)),
        _plain_http(site),
    ]


def _allowlisted(site: Site) -> AuditProbe:
    pid, n = "egress.allowlisted", site.nonce

    def j_allowed(ev: Evidence) -> Judgement:
        r, u = _r(ev, f"{pid}/connect"), _r(ev, f"{pid}/urllib")
        ok = _upstream_answered(r, n) and _logged(ev, "allowed", UPSTREAM, 443, None)
        u_ok = u.get("status") == 200 and f"nonce={n}" in (u.get("body") or "")
        return Judgement(
            ok and u_ok,
            f"raw CONNECT: {_status_text(r)}; urllib via proxy: "
            f"{u.get('status') or u.get('error')}; logged allowed: "
            f"{_logged(ev, 'allowed', UPSTREAM, 443, None)}",
        )

    return AuditProbe(
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
                proxy=site.proxy,
                target=f"{UPSTREAM}:443",
                tls=_tls(site, UPSTREAM, pid=pid),
            ),
            _spec(
                pid,
                "urllib",
                "urllib",
                proxy=f"http://{site.proxy}",
                url=f"https://{UPSTREAM}/audit/urllib",
                cadata=site.cadata,
            ),
        ),
    )


def _plan_allowlist(site: Site) -> list[AuditProbe]:
    """The Expert's own allowlist is let through, and names that look like its entries are not."""
    if not (site.plan_domains or site.plan_opt_ins):
        return []
    pid = "egress.plan-allowlist"
    targets = [f"{_apex(d)}:443" for d in site.plan_domains]
    targets += [f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in site.plan_opt_ins]

    def j_plan(ev: Evidence) -> Judgement:
        parts, ok = [], True
        for t in targets:
            r = _r(ev, f"{pid}/{t}")
            host, _, port = t.rpartition(":")
            refused = r.get("status") == 403 and _logged(ev, "blocked", host.strip("[]"), int(port), None)
            ok = ok and not refused
            parts.append(f"{t}: {r.get('status') or r.get('error')}" + (" (refused!)" if refused else ""))
        return Judgement(ok, "; ".join(parts) + " (503 = allowed but not resolvable from this machine)")

    probes = [
        AuditProbe(
            pid,
            "The Expert's own allowlist is what the proxy enforces",
            "every allowlisted name and opt-in is let through (not 403)",
            "-",
            j_plan,
            inside=tuple(
                _spec(pid, t, "proxy_connect", proxy=site.proxy, target=t, timeout=_CONNECT_TIMEOUT)
                for t in targets
            ),
        )
    ]

    looks_pid = "egress.plan-lookalikes"
    looks = [n for d in site.plan_domains[:6] for n in _lookalikes(d)]
    if not looks:
        return probes
    first = targets[0]

    def j_looks(ev: Evidence) -> Judgement:
        bad = []
        for n in looks:
            ok_n, _ = _refusal(ev, _r(ev, f"{looks_pid}/{n}"), n, 443, "not-allowlisted")
            if not ok_n:
                bad.append(n)
        ctrl = _r(ev, f"{pid}/{first}")
        return Judgement(
            not bad,
            "all refused (403, logged not-allowlisted)" if not bad else f"not refused: {', '.join(bad)}",
            ctrl.get("status") != 403,
            f"{first}: {ctrl.get('status') or ctrl.get('error')}",
        )

    probes.append(
        AuditProbe(
            looks_pid,
            "Names that look like the Expert's allowlisted ones are refused",
            "403 for each look-alike (" + ", ".join(looks[:3]) + ", ...)",
            "the allowlisted name itself is let through",
            j_looks,
            inside=tuple(
                _spec(looks_pid, n, "proxy_connect", proxy=site.proxy, target=f"{n}:443") for n in looks
            ),
        )
    )
    return probes


def _same_name(site: Site, suffix: str, target: str) -> AuditProbe:
    pid = f"egress.same-name.{suffix}"

    def j_same(ev: Evidence) -> Judgement:
        r = _r(ev, f"{pid}/real")
        return Judgement(_upstream_answered(r, site.nonce), _status_text(r))

    return AuditProbe(
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
                proxy=site.proxy,
                target=f"{target}:443",
                tls=_tls(site, UPSTREAM, pid=pid),
            ),
        ),
    )


def _ip_literal(site: Site, suffix: str, literal: str, n_literals: int) -> AuditProbe:
    """Refused like a name that is not allowlisted; the log must hold a refusal for every literal tried."""
    pid = f"egress.ip-literal.{suffix}"

    def refused_literal(ev: Evidence, r: Result) -> tuple[bool, str]:
        refused = r.get("status") == 403
        count = sum(1 for a in ev.proxy_log if a.action == "blocked" and a.code == "ip-literal")
        return (
            refused and count >= n_literals,
            f"{_status_text(r)}; proxy logged {count}/{n_literals} ip-literal refusals",
        )

    return AuditProbe(
        pid,
        f"CONNECT to the IP literal {literal}",
        "403, logged as ip-literal",
        "the same upstream by its allowlisted name: 200",
        judge(f"{pid}/real", refused_literal, ALLOWED, allowed_path(site)),
        inside=(_spec(pid, "real", "proxy_connect", proxy=site.proxy, target=f"{literal}:443"),),
    )


def _port(site: Site, port: int) -> AuditProbe:
    """An allowlisted name on another port; the control proxy opens that port, and the upstream answers."""
    pid, n = f"egress.port.{port}", site.nonce
    extra: dict[str, Any]
    if port == 22:
        extra = {"read": True}
    elif port == 80:
        extra = {"send": f"GET /audit/{pid} HTTP/1.1\r\nHost: {UPSTREAM}\r\nConnection: close\r\n\r\n"}
    else:
        extra = {"tls": _tls(site, UPSTREAM, pid=pid)}

    def upstream_answered(ev: Evidence, c: Result) -> tuple[bool, str]:
        after = c.get("after") or ""
        ok = f"nonce={n}" in after or f"sandbox-audit-{n}" in after or _upstream_answered(c, n)
        return ok, "control proxy (port open): " + ("the upstream answered" if ok else _status_text(c))

    target = f"{UPSTREAM}:{port}"
    return real_and_control(
        pid,
        f"CONNECT to an allowlisted host on port {port}",
        "403, logged as port",
        f"port {port} through the control proxy: the upstream answers",
        real={"kind": "proxy_connect", "proxy": site.proxy, "target": target, **extra},
        ctrl={"kind": "proxy_connect", "proxy": site.control_proxy, "target": target, **extra},
        assess=refused_as(UPSTREAM, port, "port"),
        check=upstream_answered,
    )


def _plain_http(site: Site) -> AuditProbe:
    pid, n = "egress.plain-http", site.nonce

    def j_plain(ev: Evidence) -> Judgement:
        r, s = _r(ev, f"{pid}/real"), _r(ev, f"{pid}/secret")
        logged = _logged(ev, "blocked", UPSTREAM, 80, "method")
        ok = r.get("status") == 403 and s.get("status") == 403 and logged
        c = _r(ev, f"{pid}/control")
        c_ok = c.get("status") == 200 and f"nonce={n}" in (c.get("body") or "")
        return Judgement(
            ok,
            f"allowlisted name: {r.get('status') or r.get('error')}; other name with ?q=: "
            f"{s.get('status') or s.get('error')}; proxy log: "
            + ("blocked (method)" if logged else "no matching refusal"),
            c_ok,
            f"control proxy (plain HTTP opted in): {c.get('status') or c.get('error')}",
        )

    return AuditProbe(
        pid,
        "Plain HTTP through the proxy is refused",
        "403 (HTTPS only), logged as method",
        "the same request through the control proxy: 200",
        j_plain,
        inside=(
            _spec(pid, "real", "proxy_http", proxy=site.proxy, url=f"http://{UPSTREAM}/audit/{pid}"),
            _spec(pid, "secret", "proxy_http", proxy=site.proxy, url=f"http://{BLOCKED}/audit?q=secret-{n}"),
            _spec(
                pid, "control", "proxy_http", proxy=site.control_proxy, url=f"http://{UPSTREAM}/audit/{pid}"
            ),
        ),
    )


def tunnel_probes(site: Site) -> list[AuditProbe]:
    """What travels through an allowed tunnel: TLS for the CONNECT's own name, and nothing but TLS."""
    sni, tunnel = "egress.sni-mismatch", "egress.non-tls-tunnel"

    def cut_on_mismatch(ev: Evidence, r: Result) -> tuple[bool, str]:
        got_through = _upstream_answered(r, site.nonce)
        logged = _logged(ev, "blocked", UPSTREAM, 443, "sni-mismatch")
        return (
            not got_through and logged,
            f"{_status_text(r)}; proxy log: "
            + ("terminated (sni-mismatch)" if logged else "no SNI refusal logged"),
        )

    def nothing_back(ev: Evidence, r: Result) -> tuple[bool, str]:
        after = r.get("after") or ""
        return (
            site.nonce not in after,
            f"CONNECT {r.get('status')}; after sending an SSH banner: "
            + (repr(after[:60]) if after else "connection cut, nothing came back"),
        )

    def banner_through_control(ev: Evidence, c: Result) -> tuple[bool, str]:
        ok = f"sandbox-audit-{site.nonce}" in (c.get("after") or "")
        return ok, "SSH banner through the control proxy on port 22: " + (
            "received" if ok else "not received"
        )

    return [
        AuditProbe(
            sni,
            "A TLS ClientHello whose SNI differs from the CONNECT host is cut",
            f"CONNECT {UPSTREAM}, SNI {BLOCKED}: terminated, logged as sni-mismatch",
            "the same tunnel through the control proxy (no SNI check): 200",
            judge(
                f"{sni}/real",
                cut_on_mismatch,
                f"{sni}/control",
                answered_nonce(site, "control proxy (no SNI check)"),
            ),
            inside=through_both_proxies(
                site,
                sni,
                "proxy_connect",
                target=f"{UPSTREAM}:443",
                tls=_tls(site, BLOCKED, verify=False, pid=sni),
            ),
        ),
        AuditProbe(
            tunnel,
            "A non-TLS protocol through an allowed tunnel is cut (SSH over 443)",
            "the tunnel is closed once the first bytes are not TLS",
            "the same protocol where it is allowed (control proxy, port 22): the banner arrives",
            judge(f"{tunnel}/real", nothing_back, "egress.port.22/control", banner_through_control),
            inside=(
                _spec(
                    tunnel,
                    "real",
                    "proxy_connect",
                    proxy=site.proxy,
                    target=f"{UPSTREAM}:443",
                    send="SSH-2.0-OpenSSH_9.6\r\n",
                ),
            ),
        ),
    ]
