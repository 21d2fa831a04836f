"""render_squid: files, determinism, normalisation, and the constants squid.conf is built from."""

from __future__ import annotations

import ipaddress
import re

import pytest

from sandbox._errors import RenderError
from sandbox.render._squid import (
    ALLOWLIST_FILE,
    DEFAULT_CLIENT_NETWORKS,
    HOSTS_FILE,
    IPV4_LITERAL_REGEX,
    IPV6_LITERAL_REGEX,
    PRIVATE_DESTINATIONS,
    PROXY_CONFIG_DIR,
    READY_CHECK_HOST,
    SQUID_CONF,
    ProxyPolicy,
    render_squid,
)

POLICY = ProxyPolicy(
    allowed_domains=(".example.com", "api.openai.com"),
    allow_private=(("gateway.corp", 8443),),
    add_hosts=(("gateway.corp", "10.1.2.3"),),
)


def directives(conf: str) -> list[str]:
    return [line for line in conf.splitlines() if line and not line.startswith("#")]


def test_files_and_determinism() -> None:
    first = render_squid(POLICY)
    assert set(first) == {SQUID_CONF, ALLOWLIST_FILE, HOSTS_FILE}
    assert first == render_squid(ProxyPolicy(**POLICY.__dict__))
    for content in first.values():
        assert content.endswith("\n")
        assert "\r" not in content


def test_allowlist_file_is_sorted_deduplicated_and_without_covered_subdomains() -> None:
    files = render_squid(
        ProxyPolicy(
            allowed_domains=(
                "b.example.org",
                ".example.com",
                "api.example.com",
                "example.com",
                "a.io",
                "a.io",
            )
        )
    )
    # api.example.com and example.com are covered by .example.com; a look-alike parent is not.
    assert files[ALLOWLIST_FILE] == ".example.com\na.io\nb.example.org\n"


def test_lookalike_is_not_treated_as_covered() -> None:
    files = render_squid(
        ProxyPolicy(allowed_domains=(".example.com", "api.notexample.com", "example.com.evil.io"))
    )
    assert files[ALLOWLIST_FILE] == ".example.com\napi.notexample.com\nexample.com.evil.io\n"


def test_conf_references_the_mounted_files() -> None:
    conf = render_squid(POLICY)[SQUID_CONF]
    assert f'acl allowlisted dstdomain -n "{PROXY_CONFIG_DIR}/{ALLOWLIST_FILE}"' in conf
    assert f"hosts_file {PROXY_CONFIG_DIR}/{HOSTS_FILE}" in conf


def test_hosts_file() -> None:
    files = render_squid(
        ProxyPolicy(
            allowed_domains=(),
            add_hosts=(("z.corp", "10.0.0.9"), ("a.corp", "fd00:0::1"), ("a.corp", "fd00::1")),
        )
    )
    lines = files[HOSTS_FILE].splitlines()
    assert lines[0].startswith("#")
    assert lines[1:] == [f"127.0.0.1 localhost {READY_CHECK_HOST}", "fd00::1 a.corp", "10.0.0.9 z.corp"]


@pytest.mark.parametrize("name", ["localhost", READY_CHECK_HOST])
def test_add_host_cannot_take_the_proxys_own_names(name: str) -> None:
    with pytest.raises(RenderError, match="reserved"):
        render_squid(ProxyPolicy(allowed_domains=(), add_hosts=((name, "10.0.0.1"),)))


def test_add_host_with_two_addresses_is_an_error() -> None:
    with pytest.raises(RenderError, match="two addresses"):
        render_squid(
            ProxyPolicy(allowed_domains=(), add_hosts=(("a.corp", "10.0.0.1"), ("a.corp", "10.0.0.2")))
        )


def test_opt_ins_are_exact_name_and_port() -> None:
    conf = render_squid(POLICY)[SQUID_CONF]
    assert "acl optin_1_host dstdomain -n gateway.corp" in conf
    assert "acl optin_1_port port 8443" in conf
    assert "http_access allow optin_1_host optin_1_port !resolves_self" in conf
    # an opt-in can never reach the proxy's own loopback (where the SNI stage trusts 127.0.0.1)
    assert "acl resolves_self dst 0.0.0.0/8 127.0.0.0/8 ::/128 ::1/128" in conf


def test_ports_and_clients() -> None:
    conf = render_squid(
        ProxyPolicy(
            allowed_domains=("a.io",), allowed_ports=(8443, 443, 443), client_networks=("10.213.0.0/24",)
        )
    )[SQUID_CONF]
    assert "acl allowed_ports port 443 8443" in directives(conf)
    assert "acl sandbox_clients src 10.213.0.0/24" in directives(conf)
    default = render_squid(ProxyPolicy(allowed_domains=("a.io",)))[SQUID_CONF]
    assert f"acl sandbox_clients src {' '.join(sorted(DEFAULT_CLIENT_NETWORKS))}" in directives(default)


def test_sni_pairs_cover_allowlist_and_opt_ins() -> None:
    conf = render_squid(POLICY)[SQUID_CONF]
    names = re.findall(r"^acl sni_\d+_sni ssl::server_name (\S+)$", conf, re.MULTILINE)
    assert names == [".example.com", "api.openai.com", "gateway.corp"]
    connects = re.findall(r"^acl sni_\d+_connect dstdomain -n (\S+)$", conf, re.MULTILINE)
    assert connects == names


def test_hardening_directives_present() -> None:
    found = set(directives(render_squid(POLICY)[SQUID_CONF]))
    for line in [
        "cache deny all",
        "via off",
        "forwarded_for delete",
        "httpd_suppress_version_string on",
        "pinger_enable off",
        "shutdown_lifetime 0 seconds",
        "read_timeout 30 minutes",
        "connect_timeout 10 seconds",
        "pid_filename none",
        "http_access deny manager",
        "logfile_rotate 0",
    ]:
        assert line in found, line


def test_one_log_line_per_decision_to_stdout() -> None:
    conf = directives(render_squid(POLICY)[SQUID_CONF])
    (logformat,) = [line for line in conf if line.startswith("logformat ")]
    for key in ("action=%Ss", "status=%>Hs", "method=%rm", "host=%>rd", "port=%>rP", "client=%>a", "reason="):
        assert key in logformat
    assert logformat.split()[2] == "sandbox-proxy/1"
    (access_log,) = [line for line in conf if line.startswith("access_log ")]
    assert access_log.startswith("access_log stdio:/dev/stdout sandbox ")
    assert "!ready_check" in access_log


def test_ready_check_host_is_never_resolvable() -> None:
    assert READY_CHECK_HOST.endswith(".invalid")  # RFC 6761: never resolves


IP_SPELLINGS = [
    "127.0.0.1",
    "127.1",
    "127.0.1",
    "2130706433",
    "0x7f000001",
    "0x7f.0.0.1",
    "0x7F.0x0.0x0.0x1",
    "0177.0.0.1",
    "017700000001",
    "1.2.3.4.",
    "0",
]
HOSTNAMES = [
    "bad.cafe",
    "cafe.babe",
    "example.com",
    "1password.com",
    "123.example",
    "a1.b2",
    "0x.example",
    "dead.beef",
]


@pytest.mark.parametrize("spelling", IP_SPELLINGS)
def test_ipv4_regex_catches_every_inet_aton_spelling(spelling: str) -> None:
    assert re.search(IPV4_LITERAL_REGEX, spelling, re.IGNORECASE)


@pytest.mark.parametrize("name", HOSTNAMES)
def test_ip_regexes_leave_hostnames_alone(name: str) -> None:
    assert not re.search(IPV4_LITERAL_REGEX, name, re.IGNORECASE)
    assert not re.search(IPV6_LITERAL_REGEX, name)


@pytest.mark.parametrize(
    "spelling", ["::1", "[::1]", "[::ffff:127.0.0.1]", "fe80::1%25eth0", "[2606:4700::1111]"]
)
def test_ipv6_regex_catches_literals(spelling: str) -> None:
    assert re.search(IPV6_LITERAL_REGEX, spelling)


@pytest.mark.parametrize(
    "address",
    [
        "0.0.0.0",
        "10.1.2.3",
        "100.100.100.200",
        "127.0.0.1",
        "169.254.169.254",
        "172.17.0.1",
        "192.168.1.1",
        "224.0.0.251",
        "255.255.255.255",
        "::",
        "::1",
        "fd00:ec2::254",
        "fe80::1",
        "ff02::1",
        "64:ff9b::7f00:1",
        "2002:7f00:1::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    ],
)
def test_private_destinations_cover(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert any(ip in ipaddress.ip_network(cidr) for cidr, _ in PRIVATE_DESTINATIONS)


@pytest.mark.parametrize("address", ["198.51.100.7", "203.0.113.80", "8.8.8.8", "2606:4700::1111"])
def test_private_destinations_leave_public_addresses_alone(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert not any(ip in ipaddress.ip_network(cidr) for cidr, _ in PRIVATE_DESTINATIONS)


def test_no_ipv4_mapped_range() -> None:
    """Squid keeps IPv4 as ::ffff:a.b.c.d internally: a ::ffff:0:0/96 entry would deny every IPv4 host."""
    mapped = ipaddress.ip_network("::ffff:0:0/96")
    for cidr, _ in PRIVATE_DESTINATIONS:
        net = ipaddress.ip_network(cidr)
        assert not (net.version == 6 and net.overlaps(mapped)), cidr


def test_every_private_range_is_rendered() -> None:
    conf = directives(render_squid(POLICY)[SQUID_CONF])
    rendered = [line.split()[-1] for line in conf if line.startswith("acl resolves_private dst ")]
    assert rendered == [cidr for cidr, _ in PRIVATE_DESTINATIONS]
