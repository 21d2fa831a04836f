"""Defence in depth: hostile values never reach squid.conf, whichever policy field carries them."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox._errors import RenderError
from sandbox.render._squid import ProxyPolicy, render_squid

SECURITY = r"^SECURITY: "

HOSTILE_NAMES = [
    "evil.com\nhttp_access allow all",
    "evil.com\rhttp_access allow all",
    "http_access allow all",
    "evil.com http_access",
    "evil.com\thttp_access",
    "evil.com#",
    "# comment",
    "evil.com;ls",
    "evil.com`id`",
    "$(id).evil.com",
    "${X}.evil.com",
    "{{ 7*7 }}.evil.com",
    "{% raw %}",
    '"evil.com"',
    "'evil.com'",
    "evil.com/path",
    "evil.com:443",
    "evil.com\x00",
    "*.evil.com",
    "EVIL.com",
    "evil.com.",
    "..evil.com",
    "-evil.com",
    "evil-.com",
    "evil_x.com",
    "a" * 64 + ".com",
    "é.com",
    "",
    "1.2.3.4",
    "127.1",
    "2130706433",
    "0x7f.0.0.1",
    "::1",
    "[::1]",
]


def _render(**fields: Any) -> dict[str, str]:
    base: dict[str, Any] = {"allowed_domains": ("ok.example",)}
    base.update(fields)
    return render_squid(ProxyPolicy(**base))


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_allowlist_entry_refused(name: str) -> None:
    with pytest.raises(RenderError, match=SECURITY):
        _render(allowed_domains=("ok.example", name))


@pytest.mark.parametrize("name", [*HOSTILE_NAMES, ".com", ".evil.com"])
def test_private_opt_in_host_refused(name: str) -> None:
    with pytest.raises(RenderError, match=SECURITY):
        _render(allow_private=((name, 443),))


@pytest.mark.parametrize("name", [*HOSTILE_NAMES, ".evil.com"])
def test_add_host_name_refused(name: str) -> None:
    with pytest.raises(RenderError, match=SECURITY):
        _render(add_hosts=((name, "10.0.0.1"),))


@pytest.mark.parametrize(
    "ip",
    [
        "10.0.0.1\nhttp_access allow all",
        "10.0.0.1 evil",
        "10.0.0.1#",
        "fe80::1%eth0",
        "10.0.0",
        "1.2.3.4/32",
        "",
        167772161,
    ],
)
def test_add_host_ip_refused(ip: object) -> None:
    with pytest.raises(RenderError, match=SECURITY):
        _render(add_hosts=(("db.example", ip),))


@pytest.mark.parametrize("port", [0, 65536, -1, "443", "443\nhttp_access allow all", True, 443.0, None])
def test_port_refused(port: object) -> None:
    with pytest.raises(RenderError, match=SECURITY):
        _render(allowed_ports=(port,))
    with pytest.raises(RenderError, match=SECURITY):
        _render(allow_private=(("gateway.example", port),))


@pytest.mark.parametrize(
    "net", ["10.0.0.0/8\nhttp_access allow all", "10.0.0.1/8", "all", "0/0 x", "", "fe80::/10%x"]
)
def test_client_network_refused(net: str) -> None:
    with pytest.raises(RenderError, match=SECURITY):
        _render(client_networks=(net,))


def test_a_bare_string_is_not_a_list_of_domains() -> None:
    with pytest.raises(RenderError, match=SECURITY):
        render_squid(ProxyPolicy(allowed_domains="evil.com"))  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_check_sni_must_be_a_bool(bad: object) -> None:
    with pytest.raises(RenderError, match=SECURITY):
        _render(check_sni=bad)


def test_malformed_pairs_refused() -> None:
    with pytest.raises(RenderError, match=SECURITY):
        _render(allow_private=(("gateway.example",),))
    with pytest.raises(RenderError, match=SECURITY):
        _render(add_hosts=(("db.example", "10.0.0.1", "x"),))


def test_nothing_hostile_survives_in_any_file() -> None:
    """A policy of only valid values renders, and the output holds no injected directive."""
    files = _render(
        allowed_domains=(".example.com", "api.openai.com"),
        allow_private=(("gateway.corp", 8443),),
        add_hosts=(("gateway.corp", "10.1.2.3"), ("v6.corp", "fd00::1")),
        allowed_ports=(443, 8443),
    )
    conf = files["squid.conf"]
    assert "http_access allow all" not in conf
    assert "{{" not in conf and "{%" not in conf and "${" not in conf
    assert files["allowed_domains.txt"] == ".example.com\napi.openai.com\n"
    assert files["hosts"].splitlines()[2:] == ["10.1.2.3 gateway.corp", "fd00::1 v6.corp"]
