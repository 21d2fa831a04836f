"""Audit probes for every way around the proxy: rebinding, metadata, direct TCP, UDP, DNS, ICMP and IPv6.

The sandbox's network is internal: the proxy is its only way out, and it refuses private and metadata
addresses however a name resolves. Each probe tries a path from inside, and its control tries the same path
from the control runner outside the sandbox (or the same method on a target that must work), so that
"no connection" means the sandbox stopped it, not that the path is dead on this machine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ._catalog_judges import (
    ALLOWED,
    _errno_name,
    _r,
    _spec,
    _status_text,
    _tls,
    _upstream_answered,
    allowed_path,
    connected_from,
    no_route,
    none_connected,
    real_and_control,
    refused_by_proxy,
    tried,
)
from ._catalog_model import AuditProbe, Evidence, Judgement, Result, Site
from ._policy import AUDIT_ZONE, METADATA_REBIND, REBIND, UPSTREAM

__all__ = ["HOST_PORTS", "network_probes"]

HOST_PORTS = (22, 53, 80, 443, 2375, 2376, 3000, 3306, 5000, 5432, 6379, 8000, 8080, 8443, 9000, 11434)
"""Common service ports tried on the host's and the gateway's addresses (databases, Docker, ollama...)."""

_MD_TARGETS = [
    ["169.254.169.254", 80],
    ["169.254.169.254", 443],
    ["100.100.100.200", 80],
    ["fd00:ec2::254", 80],
]
_MD_PROXY: dict[str, tuple[str, dict[str, Any]]] = {
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
_PUBLIC = [[ip, port] for ip in ("1.1.1.1", "8.8.8.8", "9.9.9.9") for port in (53, 80, 443, 853)]
_MD_NAMES = ("metadata.google.internal", "metadata")


def _host_addrs(site: Site) -> list[str]:
    """The host's and the gateway's addresses, as the sandbox could address them (not loopback)."""
    return list(dict.fromkeys([site.gateway, *[a for a in site.host_ipv4 if not a.startswith("127.")]]))


def network_probes(site: Site) -> list[AuditProbe]:
    """In report order."""
    ip, private = site.upstream_ip, site.upstream_private_ip
    tls = _tls(site, UPSTREAM, pid="egress.direct.allowlisted")
    return [
        refused_by_proxy(
            site,
            "egress.rebinding.private",
            "An allowlisted name that resolves to a private address is refused",
            name=REBIND,
            code="private-address",
            expected=f"403, logged as private-address ({REBIND} -> {private})",
            control="the same name through the control proxy with a private opt-in: 200",
            control_proxy="control proxy (opted in by name)",
            tls=True,
        ),
        refused_by_proxy(
            site,
            "egress.rebinding.metadata",
            "An allowlisted name that resolves to the metadata address is refused",
            name=METADATA_REBIND,
            code="private-address",
            expected=f"403, logged as private-address ({METADATA_REBIND} -> 169.254.169.254)",
            control="the private-address guard lets an opted-in name through (control proxy): 200",
            control_ref=(
                "egress.rebinding.private/control",
                "a private name through the control proxy's opt-in",
            ),
        ),
        real_and_control(
            "egress.metadata.direct",
            "Cloud metadata endpoints are unreachable directly",
            "no connection to 169.254.169.254, 100.100.100.200, fd00:ec2::254",
            "the same direct connect from outside the sandbox reaches the upstream",
            real={"kind": "tcp_many", "targets": _MD_TARGETS},
            ctrl={"kind": "tcp", "host": ip, "port": 443},
            where="outside",
            assess=none_connected(
                none=lambda r: (
                    "no connection (" + "; ".join(sorted(set(map(_errno_name, r["errors"].values())))) + ")"
                )
            ),
            check=connected_from("control runner to the upstream: "),
        ),
        _metadata_proxy(site),
        real_and_control(
            "egress.direct.allowlisted",
            "The allowlisted upstream is unreachable without the proxy",
            f"no connection to {ip}:443 (no route out of the internal network)",
            "the same HTTPS request from outside the sandbox: 200",
            real={"kind": "tcp", "host": ip, "port": 443, "tls": tls},
            ctrl={"kind": "tcp", "host": ip, "port": 443, "tls": tls},
            where="outside",
            assess=no_route,
            check=lambda ev, c: (
                ok := _upstream_answered(c, site.nonce),
                "from outside the sandbox: " + ("200 from the upstream" if ok else _status_text(c)),
            ),
        ),
        real_and_control(
            "egress.direct.private",
            "A private-network host is unreachable without the proxy",
            f"no connection to {private}:443",
            "the same connect from outside the sandbox works",
            real={"kind": "tcp", "host": private, "port": 443},
            ctrl={"kind": "tcp", "host": private, "port": 443},
            where="outside",
            assess=no_route,
            check=connected_from("from outside the sandbox: "),
        ),
        real_and_control(
            "egress.direct.public",
            "Public addresses are unreachable without the proxy (TCP 53/80/443/853)",
            "no connection to 1.1.1.1, 8.8.8.8, 9.9.9.9 on DNS, HTTP, HTTPS, DoT ports",
            f"a TEST-NET address ({ip}) from outside the sandbox: connected",
            real={"kind": "tcp_many", "targets": _PUBLIC},
            ctrl={"kind": "tcp", "host": ip, "port": 443},
            where="outside",
            assess=none_connected(),
            check=connected_from("outside to the (public-looking) upstream: "),
        ),
        _proxy_unaware(site),
        _host_services(site),
        real_and_control(
            "egress.proxy-other-ports",
            "The proxy container exposes nothing but the proxy port",
            "no connection to the proxy on 22, 80, 443, 3129 (its internal SNI stage), 8080",
            "the proxy port 3128 on the same address: connected",
            real={"kind": "tcp_many", "targets": [[site.proxy_ip, p] for p in (22, 80, 443, 3129, 8080)]},
            ctrl={"kind": "tcp", "host": site.proxy_ip, "port": 3128},
            assess=none_connected(none=lambda r: "only the proxy port answers"),
            check=connected_from(f"{site.proxy_ip}:3128: "),
        ),
        real_and_control(
            "egress.udp.quic",
            "UDP (QUIC, HTTP/3) leaves no way out",
            f"no reply from {ip} UDP 443",
            "the same datagram from outside the sandbox: echoed",
            real={"kind": "udp", "host": ip, "port": 443},
            ctrl={"kind": "udp", "host": ip, "port": 443},
            where="outside",
            assess=lambda ev, r: (
                r.get("reply") is None,
                "reply received!"
                if r.get("reply")
                else f"no reply ({_errno_name(r.get('error')) or 'silence'})",
            ),
            check=lambda ev, c: (
                ok := bool(c.get("reply"))
                and bytes.fromhex(c["reply"]).decode("latin-1").endswith(site.nonce),
                "from outside the sandbox: " + ("the upstream echoed" if ok else str(c.get("error"))),
            ),
        ),
        _dns(site),
        _icmp(site),
        _ipv6(site),
        *_sandbox_dns(site),
    ]


def _metadata_proxy(site: Site) -> AuditProbe:
    pid = "egress.metadata.proxy"
    control = allowed_path(site)

    def j_md_proxy(ev: Evidence) -> Judgement:
        parts = {k: _r(ev, f"{pid}/{k}") for k in _MD_PROXY}
        bad = [k for k, r in parts.items() if r.get("status") != 403]
        return Judgement(
            not bad,
            "all 403"
            if not bad
            else "not refused: "
            + ", ".join(f"{k} ({parts[k].get('status') or parts[k].get('error')})" for k in bad),
            *control(ev, _r(ev, ALLOWED)),
        )

    return AuditProbe(
        pid,
        "Cloud metadata endpoints are refused by the proxy",
        "403 for AWS/GCP/Azure/Alibaba metadata (with their headers), by IP and by name",
        f"{UPSTREAM}: 200",
        j_md_proxy,
        inside=tuple(
            _spec(pid, k, kind, proxy=site.proxy, **params) for k, (kind, params) in _MD_PROXY.items()
        ),
    )


def _proxy_unaware(site: Site) -> AuditProbe:
    pid = "egress.proxy-unaware-client"

    def j_unaware(ev: Evidence) -> Judgement:
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

    return AuditProbe(
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


def _host_services(site: Site) -> AuditProbe:
    """The control is a listener the audit opened on the host: reachable from an ordinary container."""
    host_addrs = _host_addrs(site)
    ports = sorted({*HOST_PORTS, site.listener_port})
    ctrl_targets = [[a, site.listener_port] for a in dict.fromkeys([site.control_gateway, *host_addrs[1:]])]

    def listener_reached(ev: Evidence, c: Result) -> tuple[bool, str]:
        host_ok = bool(ev.host.get("listener_from_host"))
        return (
            bool(c.get("connected")) and host_ok,
            f"a listener the audit opened on the host (port {site.listener_port}): "
            f"reached from an ordinary container: {', '.join(c.get('connected') or []) or 'no'}; "
            f"from the host: {'yes' if host_ok else 'no'}",
        )

    return real_and_control(
        "egress.host-services",
        "Services on the host and the network gateway are unreachable",
        f"no connection to {', '.join(host_addrs)} on {len(ports)} common ports",
        "a listener the audit opens on the host is reachable from an ordinary container",
        real={"kind": "tcp_many", "targets": [[a, p] for a in host_addrs for p in ports], "timeout": 3},
        ctrl={"kind": "tcp_many", "targets": ctrl_targets, "timeout": 3},
        where="outside",
        assess=none_connected("connected to host services"),
        check=listener_reached,
    )


def _dns(site: Site) -> AuditProbe:
    pid = "egress.udp.dns"
    servers = list(dict.fromkeys([site.upstream_ip, "1.1.1.1", "8.8.8.8", "9.9.9.9", *_host_addrs(site)]))
    inside_q, control_q = f"inside-{site.nonce}.{AUDIT_ZONE}", f"control-{site.nonce}.{AUDIT_ZONE}"

    def j_dns(ev: Evidence) -> Judgement:
        answered = [s for s in servers if _r(ev, f"{pid}/{s}").get("answered")]
        leaked = any(inside_q in line for line in ev.upstream_log)
        c = _r(ev, f"{pid}/control", "outside")
        c_logged = any(control_q in line for line in ev.upstream_log)
        observed = ("answered by: " + ", ".join(answered)) if answered else "no resolver answered"
        observed += "; the upstream's DNS log " + (
            "SAW the sandbox's query" if leaked else "never saw the query"
        )
        return Judgement(
            not answered and not leaked,
            observed,
            bool(c.get("answered")) and c_logged,
            f"the same query from outside: answered={c.get('answered')}, logged={c_logged}",
        )

    return AuditProbe(
        pid,
        "DNS queries to any resolver go nowhere (no DNS exfiltration)",
        "no answer from the upstream's resolver, public resolvers, the gateway or the host; "
        "the query never arrives",
        "the same query from outside the sandbox is answered and logged",
        j_dns,
        inside=tuple(_spec(pid, s, "dns", server=s, qname=inside_q) for s in servers),
        outside=(_spec(pid, "control", "dns", server=site.upstream_ip, qname=control_q),),
    )


def _icmp(site: Site) -> AuditProbe:
    pid = "egress.icmp"
    hosts = list(dict.fromkeys([site.upstream_ip, site.gateway, "1.1.1.1"]))

    def j_icmp(ev: Evidence) -> Judgement:
        replies = [h for h in hosts if (r := _r(ev, f"{pid}/{h}"))["dgram"]["reply"] or r["raw"]["reply"]]
        c = _r(ev, f"{pid}/control", "outside")
        c_ok = bool(c["dgram"]["reply"] or c["raw"]["reply"])
        sample = _r(ev, f"{pid}/{hosts[0]}")
        return Judgement(
            not replies,
            ("echo replies from: " + ", ".join(replies))
            if replies
            else f"no replies (datagram socket: {_errno_name(sample['dgram']['error']) or 'silence'}; "
            f"raw socket: {_errno_name(sample['raw']['error']) or 'silence'})",
            c_ok,
            "ping from outside the sandbox: " + ("reply" if c_ok else "no reply"),
        )

    return AuditProbe(
        pid,
        "ICMP leaves no way out (no ping tunnels)",
        "no echo reply from the upstream, gateway or 1.1.1.1",
        "ping to the upstream from outside the sandbox: reply",
        j_icmp,
        inside=tuple(_spec(pid, h, "icmp", host=h) for h in hosts),
        outside=(_spec(pid, "control", "icmp", host=site.upstream_ip),),
    )


def _ipv6(site: Site) -> AuditProbe:
    pid = "egress.ipv6"
    targets = [["2606:4700:4700::1111", 443], ["2001:4860:4860::8888", 443], ["2001:db8::1", 443]]
    targets += [[a, p] for a in site.host_ipv6 for p in (22, 80, 443, site.listener_port)]

    def j_v6(ev: Evidence) -> Judgement:
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
            *tried(loop, "IPv6 loopback inside", worked="works"),
        )

    return AuditProbe(
        pid,
        "IPv6 is no side door",
        "no global IPv6 address; no IPv6 connection out (public, host)",
        "the IPv6 stack itself works inside (loopback), or is switched off",
        j_v6,
        inside=(_spec(pid, "real", "ipv6", targets=targets),),
    )


def _none_resolved(
    site: Site,
    pid: str,
    names: Sequence[str],
    *,
    none: str,
    listed: Callable[[dict[str, list[str]]], str],
    proxy: Callable[[Result], str],
) -> Callable[[Evidence], Judgement]:
    """The judge of a DNS probe: none of `names` (a `resolve` spec `{pid}/{name}` each) resolved.

    Both DNS probes share one control, the proxy's container name (`dns.outside-names/control`), which must
    still resolve to the proxy: without it, a resolver that answers nothing would pass them. `none` and
    `listed` word the clean and the failing result; `proxy` words the control. The names are read before the
    control, so a missing result is named the same way whichever is missing.
    """

    def judged(ev: Evidence) -> Judgement:
        got = {n: _r(ev, f"{pid}/{n}")["addresses"] for n in names}
        c = _r(ev, "dns.outside-names/control")
        bad = {n: a for n, a in got.items() if a}
        return Judgement(
            not bad, listed(bad) if bad else none, site.proxy_ip in c.get("addresses", []), proxy(c)
        )

    return judged


def _sandbox_dns(site: Site) -> list[AuditProbe]:
    """Names inside the sandbox: no outside name resolves, Docker's own names (the proxy's) still do."""
    pid, md_pid = "dns.outside-names", "dns.metadata-names"
    names = list(
        dict.fromkeys(
            [
                "pypi.org",
                "registry.npmjs.org",
                UPSTREAM,
                f"exfil-{site.nonce}.example.com",
                *[d.lstrip(".") for d in site.plan_domains[:3]],
            ]
        )
    )

    j_names = _none_resolved(
        site,
        pid,
        names,
        none=f"none of {len(names)} names resolved",
        listed=lambda bad: "resolved: " + ", ".join(f"{n} -> {a}" for n, a in bad.items()),
        proxy=lambda c: (
            f"the proxy's container name: {', '.join(c.get('addresses') or []) or c.get('error')}"
        ),
    )
    j_md_names = _none_resolved(
        site,
        md_pid,
        _MD_NAMES,
        none="neither resolves",
        listed=lambda bad: "resolved: " + str(bad),
        proxy=lambda c: "the proxy's container name resolves",
    )

    return [
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
        ),
        AuditProbe(
            md_pid,
            "Metadata host names do not resolve",
            "metadata.google.internal and metadata do not resolve",
            "Docker's own names still resolve",
            j_md_names,
            inside=tuple(_spec(md_pid, n, "resolve", name=n) for n in _MD_NAMES),
        ),
    ]
