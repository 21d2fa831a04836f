"""parse_proxy_log_line: real lines from Squid 5.7 with the `sandbox` logformat (no Docker needed)."""

from __future__ import annotations

import pytest

from sandbox.docker._proxylog import (
    READY_LINE,
    REASONS,
    ProxyAccess,
    is_proxy_ready_line,
    parse_proxy_log_line,
)

L = (
    "sandbox-proxy/1 ts=1795266743.{ms} client={client} local_port={lp} action={action} status={status} "
    "method={method} host={host} port={port} upstream={up} hier={hier} reason={reason} sni={sni} bump={bump}"
)


def line(**kw: str) -> str:
    fields = {
        "ms": "864",
        "client": "172.29.0.3",
        "lp": "3128",
        "action": "TCP_DENIED",
        "status": "403",
        "method": "CONNECT",
        "host": "evil.example",
        "port": "443",
        "up": "-",
        "hier": "HIER_NONE",
        "reason": "not-allowlisted",
        "sni": "-",
        "bump": "-",
    }
    fields.update(kw)
    return L.format(**fields)


TUNNEL = line(
    client="127.0.0.1", lp="3129", action="TCP_TUNNEL", status="500", host="allowed.example",
    up="198.51.100.2", hier="HIER_DIRECT", reason="-", sni="allowed.example", bump="splice",
)  # fmt: skip
TERMINATED = line(
    client="127.0.0.1", lp="3129", action="NONE_NONE", status="200", host="allowed.example",
    reason="sni-mismatch", sni="evil.example", bump="terminate",
)  # fmt: skip


def test_denied_connect() -> None:
    got = parse_proxy_log_line(line())
    assert got == ProxyAccess(
        "blocked", "evil.example", 443, "Domain not in allowlist", "not-allowlisted", "CONNECT", 403
    )
    assert got.payload() == {
        "action": "blocked",
        "domain": "evil.example",
        "port": 443,
        "reason": "Domain not in allowlist",
    }


def test_spliced_tunnel_is_allowed_whatever_status_squid_logs() -> None:
    got = parse_proxy_log_line(TUNNEL)
    assert got is not None
    assert got.payload() == {"action": "allowed", "domain": "allowed.example", "port": 443}
    assert got.status == 500


def test_terminated_by_sni_check() -> None:
    got = parse_proxy_log_line(TERMINATED)
    assert got is not None
    assert (got.action, got.domain, got.port, got.code) == ("blocked", "allowed.example", 443, "sni-mismatch")
    assert got.reason == f"{REASONS['sni-mismatch']} (SNI evil.example)"


@pytest.mark.parametrize("code", sorted(REASONS))
def test_every_reason_code_has_text(code: str) -> None:
    got = parse_proxy_log_line(line(reason=code))
    assert got is not None and got.reason is not None
    assert got.reason.startswith(REASONS[code])
    assert got.code == code


def test_denied_without_reason_note() -> None:
    got = parse_proxy_log_line(line(reason="-"))
    assert got is not None and got.action == "blocked" and got.reason == "Denied by proxy policy"


def test_plain_http_denied_and_forwarded() -> None:
    denied = parse_proxy_log_line(line(method="GET", host="allowed.example", port="80", reason="method"))
    assert denied is not None and (denied.action, denied.method, denied.port) == ("blocked", "GET", 80)
    forwarded = parse_proxy_log_line(
        line(
            action="TCP_MISS",
            status="200",
            method="GET",
            host="gateway.corp",
            port="11434",
            up="10.0.0.5",
            hier="HIER_DIRECT",
            reason="-",
        )
    )
    assert forwarded is not None and forwarded.payload() == {
        "action": "allowed",
        "domain": "gateway.corp",
        "port": 11434,
    }


def test_ipv6_literal_host_is_unescaped() -> None:
    got = parse_proxy_log_line(line(host="%5B::1%5D", reason="ip-literal"))
    assert got is not None and got.domain == "[::1]" and got.code == "ip-literal"


@pytest.mark.parametrize(
    "prefix",
    [
        "",
        "proxy-1  | ",
        "sandbox-abc-proxy-1 | ",
        "2026-11-21T13:12:19.123456789Z ",
        "\x1b[36mproxy-1  |\x1b[0m ",
    ],
)
@pytest.mark.parametrize("suffix", ["", "\n", "\r\n", "\r", "  "])
def test_prefixes_and_line_endings(prefix: str, suffix: str) -> None:
    got = parse_proxy_log_line(prefix + line() + suffix)
    assert got is not None and got.payload()["domain"] == "evil.example" and got.port == 443


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n",
        "2026/11/21 13:12:19| Accepting HTTP Socket connections at conn2 local=0.0.0.0:3128",
        "sandbox-proxy: FATAL: no configuration at /etc/squid/sandbox/squid.conf",
        READY_LINE,
        # a client that went away before sending TLS: no decision
        line(
            client="127.0.0.1",
            lp="3129",
            action="NONE_NONE_ABORTED",
            status="200",
            host="allowed.example",
            reason="-",
            bump="peek",
        ),
        # no request at all
        line(action="NONE_NONE", status="0", method="-", host="-", port="-", reason="-"),
        line(port="x"),
        "sandbox-proxy/1 garbage without fields",
        "1795266743.864 3 172.29.0.3 TCP_DENIED/403 0 CONNECT evil.example:443 - HIER_NONE/- -",
    ],
)
def test_non_decisions_are_none(text: str) -> None:
    assert parse_proxy_log_line(text) is None


def test_ready_line() -> None:
    assert is_proxy_ready_line(READY_LINE)
    assert is_proxy_ready_line("proxy-1  | " + READY_LINE + "\r\n")
    assert not is_proxy_ready_line(line())
    assert not is_proxy_ready_line("sandbox-proxy: event=ready")
