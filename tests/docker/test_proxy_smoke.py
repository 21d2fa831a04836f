"""Egress smoke tests against a real engine: the proxy image, the rendered squid.conf and the topology.

Topology (one per module, removed at teardown)::

    internal (internal: true)   egress 198.51.100.x/26 (not private)    lan (internal, private)
      probe ──┬─ proxy A (check_sni) ──┬── upstream (allowed.example,  ──── upstream (same container,
              │                        │   blocked.example :443 :8443       reached as gateway.example
              └─ proxy B (control) ────┤   :8080)                           and rebind.example)
                                       └── dnslog: both proxies' resolver; logs each question, forwards it

No outside name resolves on CI machines, so every "blocked" probe has a control that takes the same path
and succeeds once the policy allows it; otherwise a broken proxy would pass. Decisions are also checked in
the proxy's own log (parsed with sandbox.docker._proxylog), not only from what curl saw.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import trustme
from docker.models.containers import Container

from sandbox.docker._proxylog import ProxyAccess
from sandbox.render._squid import ProxyPolicy, render_squid

from .conftest import (
    EGRESS_SUBNETS,
    EXPERT_DNS,
    ProxyHandle,
    Topology,
    exec_text,
    ip_on,
    run_probes,
    start_proxy,
    wait_for_log,
    write_files,
)

pytestmark = pytest.mark.docker

NAMES = ("allowed.example", "blocked.example", "rebind.example", "gateway.example")
RAND = uuid.uuid4().hex[:12]
# names only DNS could reveal: one refused and one allowlisted (control) per proxy
EXFIL = {p: (f"exfil-{p}-{RAND}.outside.example", f"exfil-{p}-{RAND}.zone.example") for p in ("a", "b")}
PLAIN_GET = "GET / HTTP/1.0\r\nHost: allowed.example\r\n\r\n"


@dataclass
class Site:
    topo: Topology
    upstream_egress_ip: str
    upstream_lan_ip: str
    a: ProxyHandle  # the policy under test
    b: ProxyHandle  # the control policy: more names, port 8443, no SNI check
    dnslog: Container
    probe: Container
    results: dict[str, Any]


def curl(proxy: str | None, url: str, *extra: str) -> dict[str, Any]:
    argv = [
        "curl",
        "-sS",
        "--max-time",
        "15",
        "--cacert",
        "/certs/ca.pem",
        "-w",
        "\n@@%{http_code} %{http_connect}",
    ]
    argv += ["--noproxy", "*"] if proxy is None else ["-x", proxy]
    return {"kind": "cmd", "argv": [*argv, *extra, url], "timeout": 20}


def connect(proxy: str, target: str, send: str | None = None) -> dict[str, Any]:
    return {"kind": "connect", "proxy": proxy, "target": target, "send": send}


def outcome(result: dict[str, Any]) -> tuple[str, str, str]:
    """curl result -> (http_code, connect_code, body)."""
    body, _, codes = result["out"].rpartition("\n@@")
    http_code, _, connect_code = codes.partition(" ")
    return http_code, connect_code.strip(), body


def probes(a: ProxyHandle, b: ProxyHandle, up_egress: str, up_lan: str) -> dict[str, dict[str, Any]]:
    """Every probe of the module, run concurrently in one exec (curl: proxy URL; raw CONNECT: host:port)."""
    site_a, site_b, raw_a, raw_b, a_host = a.url, b.url, a.hostport, b.hostport, a.container.name
    dotted = up_egress.split(".")
    as_int = int.from_bytes(bytes(int(x) for x in dotted), "big")
    return {
        # allowlisted vs not, with the control on B where blocked.example is allowlisted
        "allowed": curl(site_a, "https://allowed.example/"),
        "blocked": curl(site_a, "https://blocked.example/"),
        "blocked_control": curl(site_b, "https://blocked.example/"),
        # no route without the proxy (the proxied path above is the control)
        "direct_allowed": curl(
            None,
            "https://allowed.example/",
            "--resolve",
            f"allowed.example:443:{up_egress}",
            "--connect-timeout",
            "4",
        ),
        "direct_tcp_egress": {"kind": "tcp", "host": up_egress, "port": 443, "timeout": 4},
        "direct_tcp_lan": {"kind": "tcp", "host": up_lan, "port": 443, "timeout": 4},
        # no outside name resolves in the sandbox; Docker's own names still do (control)
        "resolve_outside": {"kind": "resolve", "name": "pypi.org"},
        "resolve_upstream_name": {"kind": "resolve", "name": "allowed.example"},
        "resolve_proxy_name": {"kind": "resolve", "name": a_host},
        # IP literals in every spelling (the upstream's own, public, address), then the name (control)
        "ip_dotted": connect(raw_a, f"{up_egress}:443"),
        "ip_decimal": connect(raw_a, f"{as_int}:443"),
        "ip_hex": connect(raw_a, f"{as_int:#x}:443"),
        "ip_hex_dotted": connect(raw_a, ".".join(f"{int(x):#x}" for x in dotted) + ":443"),
        "ip_octal": connect(raw_a, ".".join(f"0{int(x):o}" for x in dotted) + ":443"),
        "ip_short": connect(raw_a, f"{dotted[0]}.{dotted[1]}.{int(dotted[2]) * 256 + int(dotted[3])}:443"),
        "ip_trailing_dot": connect(raw_a, f"{up_egress}.:443"),
        "ip_loopback_short": connect(raw_a, "127.1:443"),
        "ip_v6_loopback": connect(raw_a, "[::1]:443"),
        "ip_v6_mapped": connect(raw_a, f"[::ffff:{up_egress}]:443"),
        "ip_control": connect(raw_a, "allowed.example:443"),
        # look-alikes are refused; case and a trailing dot are the same name
        "lookalike_prefix": connect(raw_a, "evil-allowed.example:443"),
        "lookalike_suffix": connect(raw_a, "allowed.example.evil.test:443"),
        "same_upper": connect(raw_a, "ALLOWED.EXAMPLE:443"),
        "same_trailing_dot": connect(raw_a, "allowed.example.:443"),
        # plain HTTP refused; plain HTTP to an explicit private opt-in works (ollama-style control)
        "plain_http": curl(site_a, "http://allowed.example:8080/"),
        "plain_http_optin": curl(site_a, "http://gateway.example:8080/"),
        # ports: 8443 refused on A, allowed on B (control)
        "port_8443": curl(site_a, "https://allowed.example:8443/"),
        "port_8443_control": curl(site_b, "https://allowed.example:8443/"),
        # an allowlisted name that resolves to a private address vs. the explicit opt-in for that host:port
        "rebind": curl(site_a, "https://rebind.example/"),
        "optin": curl(site_a, "https://gateway.example/"),
        "optin_other_port": curl(site_a, "https://gateway.example:8443/"),
        # an opt-in can never point at the proxy's own loopback (the SNI stage there trusts 127.0.0.1)
        "optin_loopback": connect(raw_a, "loop.example:3129"),
        # SNI must name the CONNECT host: terminated on A, passes on B (no SNI check) as the control
        "sni_mismatch": curl(
            site_a, "https://blocked.example/", "--connect-to", "blocked.example:443:allowed.example:443"
        ),
        "sni_mismatch_control": curl(
            site_b, "https://blocked.example/", "--connect-to", "blocked.example:443:allowed.example:443"
        ),
        # a non-TLS protocol through an allowed tunnel (SSH-over-443 style) is cut by the SNI stage; without
        # the SNI check (B) the same bytes reach the upstream's plain HTTP port (control)
        "non_tls_tunnel": connect(raw_a, "allowed.example:8080", send=PLAIN_GET),
        "non_tls_tunnel_control": connect(raw_b, "allowed.example:8080", send=PLAIN_GET),
        # DNS exfiltration through the proxy: a refused name is never resolved; an allowed one is (control)
        "dns_exfil_a": connect(raw_a, f"{EXFIL['a'][0]}:443"),
        "dns_exfil_control_a": connect(raw_a, f"{EXFIL['a'][1]}:443"),
        "dns_exfil_b": connect(raw_b, f"{EXFIL['b'][0]}:443"),
        "dns_exfil_control_b": connect(raw_b, f"{EXFIL['b'][1]}:443"),
    }


@pytest.fixture(scope="module")
def site(
    topology_factory: Callable[[], Topology],
    proxy_image: str,
    nettest_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Site:
    topo = topology_factory()
    tmp = tmp_path_factory.mktemp("proxy-smoke")
    ca = trustme.CA()
    certs = tmp / "certs"
    write_files(
        certs,
        {
            "server.pem": ca.issue_cert(*NAMES).private_key_and_cert_chain_pem.bytes().decode(),
            "ca.pem": ca.cert_pem.bytes().decode(),
        },
    )
    certs_bind = {str(certs): {"bind": "/certs", "mode": "ro"}}

    internal = topo.network("internal", internal=True)
    egress = topo.network("egress", subnets=EGRESS_SUBNETS)
    lan = topo.network("lan", internal=True)
    internal_subnet = internal.attrs["IPAM"]["Config"][0]["Subnet"]

    upstream = topo.container(
        nettest_image,
        "upstream",
        ["python3", "/opt/nettest/upstream.py", "--tls", "443", "--tls", "8443", "--plain", "8080"],
        networks=[(egress, ["allowed.example", "blocked.example"]), (lan, [])],
        binds=certs_bind,
    )
    dnslog = topo.container(
        nettest_image, "dnslog", ["python3", "/opt/nettest/dnslog.py", "--forward"], networks=[(egress, [])]
    )
    probe = topo.container(
        nettest_image,
        "probe",
        ["sleep", "infinity"],
        networks=[(internal, [])],
        user="65534:65534",
        binds=certs_bind,
        read_only=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges:true"],
        **EXPERT_DNS,
    )
    wait_for_log(upstream, lambda line: line == "upstream ready")
    wait_for_log(dnslog, lambda line: line == "dnslog ready")
    up_egress, up_lan, dnslog_ip = ip_on(upstream, egress), ip_on(upstream, lan), ip_on(dnslog, egress)

    hosts = (("gateway.example", up_lan), ("rebind.example", up_lan), ("loop.example", "127.0.0.1"))
    policy_a = ProxyPolicy(
        allowed_domains=(".zone.example", "allowed.example", "rebind.example"),
        allow_private=(("gateway.example", 443), ("gateway.example", 8080), ("loop.example", 3129)),
        add_hosts=hosts,
        allowed_ports=(
            443,
            8080,
        ),  # 8080: the non-TLS tunnel probe needs an allowed port with a plain upstream
        client_networks=(internal_subnet,),
    )
    policy_b = ProxyPolicy(
        allowed_domains=(".zone.example", "allowed.example", "blocked.example", "rebind.example"),
        add_hosts=hosts,
        allowed_ports=(443, 8080, 8443),
        check_sni=False,
        client_networks=(internal_subnet,),
    )
    a = start_proxy(
        topo, proxy_image, render_squid(policy_a), tmp / "proxy-a", name="proxy-a", internal=internal,
        others=[(egress, []), (lan, [])], dns=[dnslog_ip],
    )  # fmt: skip
    b = start_proxy(
        topo, proxy_image, render_squid(policy_b), tmp / "proxy-b", name="proxy-b", internal=internal,
        others=[(egress, []), (lan, [])], dns=[dnslog_ip],
    )  # fmt: skip
    batch = probes(a, b, up_egress, up_lan)
    results = run_probes(probe, [{"id": k, **v} for k, v in batch.items()])
    return Site(topo, up_egress, up_lan, a, b, dnslog, probe, results)


def decisions(
    proxy: ProxyHandle, expected: set[tuple[str, str, int, str | None]]
) -> set[tuple[str, str, int, str | None]]:
    """The proxy's logged decisions as (action, domain, port, code); waits briefly for tunnels to close."""
    deadline = time.monotonic() + 10
    while True:
        got: set[tuple[str, str, int, str | None]] = {
            (a.action, a.domain, a.port, a.code) for a in proxy.accesses()
        }
        if expected <= got or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


# ---- allowlist -------------------------------------------------------------------------------------------


def test_allowlisted_upstream_reachable(site: Site) -> None:
    http_code, _, body = outcome(site.results["allowed"])
    assert http_code == "200", site.results["allowed"]
    assert body.strip() == "nettest-upstream host=allowed.example port=443 tls=1"


def test_non_allowlisted_upstream_refused_with_403_and_reachable_when_allowlisted(site: Site) -> None:
    http_code, connect_code, body = outcome(site.results["blocked"])
    assert (http_code, connect_code) == ("000", "403"), site.results["blocked"]
    assert "nettest-upstream" not in body
    http_code, _, body = outcome(site.results["blocked_control"])
    assert http_code == "200", site.results["blocked_control"]
    assert body.strip() == "nettest-upstream host=blocked.example port=443 tls=1"


def test_lookalike_names_refused_case_and_trailing_dot_are_the_same_name(site: Site) -> None:
    r = site.results
    assert r["lookalike_prefix"]["status"] == "HTTP/1.1 403 Forbidden"
    assert r["lookalike_suffix"]["status"] == "HTTP/1.1 403 Forbidden"
    assert r["same_upper"]["status"] == "HTTP/1.1 200 Connection established"
    assert r["same_trailing_dot"]["status"] == "HTTP/1.1 200 Connection established"


# ---- no route, no DNS ------------------------------------------------------------------------------------


def test_no_direct_route_out_of_the_internal_network(site: Site) -> None:
    r = site.results
    assert r["direct_allowed"]["rc"] != 0 and "nettest-upstream" not in r["direct_allowed"]["out"]
    assert r["direct_tcp_egress"]["connected"] is False, r["direct_tcp_egress"]
    assert r["direct_tcp_lan"]["connected"] is False, r["direct_tcp_lan"]
    assert outcome(r["allowed"])[0] == "200"  # the same upstream through the proxy


def test_no_outside_name_resolves_in_the_sandbox(site: Site) -> None:
    r = site.results
    assert r["resolve_outside"]["addresses"] == [], r["resolve_outside"]
    assert r["resolve_upstream_name"]["addresses"] == [], r["resolve_upstream_name"]
    # control: Docker's embedded DNS still answers container names on the internal network...
    assert r["resolve_proxy_name"]["addresses"] == [site.a.address]
    # ...and the proxy itself resolves the same outside name.
    code, out = exec_text(site.a.container, ["getent", "hosts", "pypi.org"])
    assert code == 0 and out.strip(), out


@pytest.mark.parametrize("proxy", ["a", "b"])
def test_proxy_never_resolves_a_name_it_refuses(site: Site, proxy: str) -> None:
    """Both proxies resolve through dnslog: a refused name must never show up there (DNS exfiltration)."""
    refused, allowed = EXFIL[proxy]
    r = site.results
    assert r[f"dns_exfil_{proxy}"]["status"] == "HTTP/1.1 403 Forbidden"
    assert r[f"dns_exfil_control_{proxy}"]["status"] != "HTTP/1.1 403 Forbidden", r[
        f"dns_exfil_control_{proxy}"
    ]
    # the control name (allowlisted by wildcard, unknown to Docker) reached the DNS log...
    wait_for_log(site.dnslog, lambda line: f"qname={allowed}" in line, timeout=10)
    # ...the refused one never did
    assert f"qname={refused}" not in site.dnslog.logs().decode()


# ---- IP literals, ports, plain HTTP ----------------------------------------------------------------------

IP_PROBES = [
    "ip_dotted",
    "ip_decimal",
    "ip_hex",
    "ip_hex_dotted",
    "ip_octal",
    "ip_short",
    "ip_trailing_dot",
    "ip_loopback_short",
    "ip_v6_loopback",
    "ip_v6_mapped",
]


@pytest.mark.parametrize("probe", IP_PROBES)
def test_ip_literal_connect_refused(site: Site, probe: str) -> None:
    assert site.results[probe]["status"] == "HTTP/1.1 403 Forbidden", site.results[probe]
    assert site.results["ip_control"]["status"] == "HTTP/1.1 200 Connection established"


def test_plain_http_refused_but_works_to_a_private_opt_in(site: Site) -> None:
    http_code, _, body = outcome(site.results["plain_http"])
    assert http_code == "403" and "nettest-upstream" not in body, site.results["plain_http"]
    http_code, _, body = outcome(site.results["plain_http_optin"])
    assert http_code == "200", site.results["plain_http_optin"]
    assert body.strip() == "nettest-upstream host=gateway.example:8080 port=8080 tls=0"


def test_other_port_refused_allowed_when_listed(site: Site) -> None:
    assert outcome(site.results["port_8443"])[:2] == ("000", "403"), site.results["port_8443"]
    http_code, _, body = outcome(site.results["port_8443_control"])
    assert http_code == "200" and "port=8443 tls=1" in body, site.results["port_8443_control"]


def test_private_address_refused_unless_opted_in_by_name_and_port(site: Site) -> None:
    assert outcome(site.results["rebind"])[:2] == ("000", "403"), site.results["rebind"]
    http_code, _, body = outcome(site.results["optin"])
    assert http_code == "200", site.results["optin"]
    assert body.strip() == "nettest-upstream host=gateway.example port=443 tls=1"
    assert outcome(site.results["optin_other_port"])[:2] == ("000", "403")
    loopback = site.results["optin_loopback"]
    assert loopback["status"] == "HTTP/1.1 403 Forbidden", loopback


# ---- SNI -------------------------------------------------------------------------------------------------


def test_sni_other_than_the_connect_host_is_terminated(site: Site) -> None:
    r = site.results["sni_mismatch"]
    assert r["rc"] != 0 and "nettest-upstream" not in r["out"], r
    http_code, _, body = outcome(site.results["sni_mismatch_control"])
    assert http_code == "200", site.results["sni_mismatch_control"]
    assert body.strip() == "nettest-upstream host=blocked.example port=443 tls=1"


def test_non_tls_protocol_through_an_allowed_tunnel_is_cut(site: Site) -> None:
    r = site.results["non_tls_tunnel"]
    assert r["status"] == "HTTP/1.1 200 Connection established", r
    assert "nettest-upstream" not in (r["after"] or ""), r
    control = site.results["non_tls_tunnel_control"]
    assert control["status"] == "HTTP/1.1 200 Connection established", control
    assert "nettest-upstream host=allowed.example port=8080 tls=0" in (control["after"] or ""), control


# ---- the proxy's own log ---------------------------------------------------------------------------------


def test_decisions_in_proxy_log(site: Site) -> None:
    expected_a: set[tuple[str, str, int, str | None]] = {
        ("allowed", "allowed.example", 443, None),
        ("blocked", "blocked.example", 443, "not-allowlisted"),
        ("blocked", "allowed.example", 8080, "method"),
        ("allowed", "gateway.example", 8080, None),
        ("blocked", "allowed.example", 8443, "port"),
        ("blocked", "rebind.example", 443, "private-address"),
        ("allowed", "gateway.example", 443, None),
        ("blocked", "gateway.example", 8443, "port"),
        ("blocked", "allowed.example", 443, "sni-mismatch"),
        ("blocked", "allowed.example", 8080, "not-tls"),
        ("blocked", "evil-allowed.example", 443, "not-allowlisted"),
        ("blocked", "allowed.example.evil.test", 443, "not-allowlisted"),
        ("blocked", site.upstream_egress_ip, 443, "ip-literal"),
        ("blocked", "127.0.0.1", 443, "ip-literal"),
        ("blocked", "[::1]", 443, "ip-literal"),
        ("blocked", EXFIL["a"][0], 443, "not-allowlisted"),
    }
    got_a = decisions(site.a, expected_a)
    assert expected_a <= got_a, sorted(expected_a - got_a)
    ip_blocks = [a for a in site.a.accesses() if a.code == "ip-literal"]
    assert len(ip_blocks) == len(IP_PROBES)
    assert not [a for a in site.a.accesses() if a.action == "allowed" and a.domain not in NAMES]

    expected_b: set[tuple[str, str, int, str | None]] = {
        ("allowed", "blocked.example", 443, None),
        ("allowed", "allowed.example", 8443, None),
        ("allowed", "allowed.example", 443, None),  # the SNI-mismatch control: B does not check SNI
        ("allowed", "allowed.example", 8080, None),  # the non-TLS control
        ("blocked", EXFIL["b"][0], 443, "not-allowlisted"),
    }
    got_b = decisions(site.b, expected_b)
    assert expected_b <= got_b, sorted(expected_b - got_b)


def test_event_payload_shape(site: Site) -> None:
    blocked = [a for a in site.a.accesses() if a.domain == "blocked.example"]
    assert blocked and blocked[0].payload() == {
        "action": "blocked",
        "domain": "blocked.example",
        "port": 443,
        "reason": "Domain not in allowlist",
    }
    allowed: list[ProxyAccess] = [a for a in site.a.accesses() if a.action == "allowed"]
    assert allowed and set(allowed[0].payload()) == {"action", "domain", "port"}


# ---- the proxy container itself ----------------------------------------------------------------------------


def test_proxy_runs_unprivileged_on_a_read_only_root(site: Site) -> None:
    c = site.a.container

    def sh(cmd: str) -> tuple[int, str]:
        code, out = exec_text(c, ["sh", "-c", cmd])
        return code, out.strip()

    assert sh("id -u") == (0, "13")
    assert sh("awk '/^CapEff/ {print $2}' /proc/1/status") == (0, "0000000000000000")
    assert sh("awk '/^NoNewPrivs/ {print $2}' /proc/1/status") == (0, "1")
    assert sh("touch /etc/squid/x 2>/dev/null")[0] != 0
    assert sh("touch /etc/squid/sandbox/x 2>/dev/null")[0] != 0
    assert sh("find / -xdev -perm /6000 -type f 2>/dev/null")[1] == ""


def test_proxy_started_quickly(site: Site) -> None:
    # container start -> ready line, including the SNI stage; generous bound for slow CI machines
    assert site.a.ready_s < 10, site.a.ready_s
    assert site.b.ready_s < 10, site.b.ready_s
