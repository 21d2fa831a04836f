"""The http_access order is the egress policy: assert it by index, in every mode (gh-aw style)."""

from __future__ import annotations

import pytest

from sandbox.render._squid import ProxyPolicy, render_squid

FULL = ProxyPolicy(
    allowed_domains=(".example.com", "api.openai.com"),
    allow_private=(("gateway.corp", 8443), ("host.docker.internal", 11434)),
    add_hosts=(("gateway.corp", "10.1.2.3"),),
)


def rules(conf: str) -> list[str]:
    """The directives that decide something, in file order, without comments."""
    keep = ("http_access ", "ssl_bump ", "never_direct ", "cache_peer_access ")
    return [line for line in conf.splitlines() if line.startswith(keep)]


def index(lines: list[str], wanted: str) -> int:
    matches = [i for i, line in enumerate(lines) if line == wanted]
    assert len(matches) == 1, f"{wanted!r} appears {len(matches)} times in {lines}"
    return matches[0]


@pytest.mark.parametrize("check_sni", [True, False])
def test_http_access_order(check_sni: bool) -> None:
    policy = ProxyPolicy(**{**FULL.__dict__, "check_sni": check_sni})
    lines = rules(render_squid(policy)["squid.conf"])
    source = index(lines, "http_access deny !sandbox_clients why_source")
    ip_v4 = index(lines, "http_access deny ip_literal_v4 why_ip_literal")
    ip_v6 = index(lines, "http_access deny ip_literal_v6 why_ip_literal")
    optin_1 = index(lines, "http_access allow optin_1_host optin_1_port !resolves_self")
    optin_2 = index(lines, "http_access allow optin_2_host optin_2_port !resolves_self")
    private = index(lines, "http_access deny allowlisted resolves_private why_private")
    method = index(lines, "http_access deny !CONNECT why_method")
    port = index(lines, "http_access deny !allowed_ports why_port")
    allow = index(lines, "http_access allow CONNECT allowlisted")
    deny_all = index(lines, "http_access deny all why_not_allowlisted")
    assert source < ip_v4 < ip_v6 < optin_1 < optin_2 < private < method < port < allow < deny_all
    http_access = [line for line in lines if line.startswith("http_access ")]
    assert http_access[-1] == "http_access deny all why_not_allowlisted"


def test_every_allow_before_the_ip_literal_deny_is_loopback_only() -> None:
    """Rules ahead of the IP-literal deny may only ever match the proxy's own loopback traffic."""
    lines = [line for line in rules(render_squid(FULL)["squid.conf"]) if line.startswith("http_access ")]
    head = lines[: index(lines, "http_access deny ip_literal_v4 why_ip_literal")]
    for line in head:
        if line.startswith("http_access allow "):
            assert "proxy_itself" in line.split(), line


def test_private_guard_is_evaluated_only_for_allowlisted_names() -> None:
    """`dst` resolves the name; guarding it with `allowlisted` first means no DNS for refused names."""
    conf = render_squid(FULL)["squid.conf"]
    guard = [
        line for line in conf.splitlines() if "resolves_private" in line and line.startswith("http_access")
    ]
    assert guard == ["http_access deny allowlisted resolves_private why_private"]
    words = guard[0].split()
    assert words.index("allowlisted") < words.index("resolves_private")


def test_ssl_bump_order() -> None:
    lines = rules(render_squid(FULL)["squid.conf"])
    peek = index(lines, "ssl_bump peek sni_step1")
    splices = [i for i, line in enumerate(lines) if line.startswith("ssl_bump splice ")]
    terminate = index(lines, "ssl_bump terminate all why_sni")
    # one pair per allowlisted name and per opt-in host
    assert len(splices) == 4
    assert peek < min(splices) and max(splices) < terminate
    assert [line for line in lines if line.startswith("ssl_bump ")][-1] == "ssl_bump terminate all why_sni"


def test_sni_stage_only_for_connect_from_the_sandbox_port() -> None:
    lines = rules(render_squid(FULL)["squid.conf"])
    allow = index(lines, "cache_peer_access sni_check allow sandbox_port CONNECT")
    deny = index(lines, "cache_peer_access sni_check deny all")
    assert allow < deny
    assert "never_direct allow sandbox_port CONNECT" in lines


def test_no_sni_stage_without_check_sni() -> None:
    conf = render_squid(ProxyPolicy(**{**FULL.__dict__, "check_sni": False}))["squid.conf"]
    for word in ("ssl_bump", "ssl-bump", "cache_peer", "never_direct", "sni_check", "tls-cert"):
        assert not [line for line in conf.splitlines() if word in line and not line.startswith("#")], word


def test_empty_allowlist_allows_nothing() -> None:
    lines = rules(render_squid(ProxyPolicy(allowed_domains=()))["squid.conf"])
    http_access = [line for line in lines if line.startswith("http_access ")]
    allows = [line for line in http_access if line.startswith("http_access allow ")]
    assert all("proxy_itself" in line for line in allows), allows
    assert http_access[-1] == "http_access deny all why_not_allowlisted"
