"""The egress proxy's log lines -> `proxyAccess` events.

Squid writes one `sandbox-proxy/1 key=value ...` line per decision to stdout (the `sandbox` logformat in
proxy/squid.conf.j2), and the entrypoint writes `sandbox-proxy/1 event=ready` once Squid answers. This module
turns a line into a `ProxyAccess`, whose `payload()` is Perstack's `proxyAccess` event payload
`{action: "allowed"|"blocked", domain, port, reason?}`.

Pure functions, no Docker: the runner feeds lines from the proxy container's log stream (raw, with a
Compose `proxy-1  | ` prefix, with `docker logs --timestamps` prefixes, with CR/LF from a TTY: all fine).

Which lines are decisions:

* `action=TCP_DENIED...`: refused by an http_access rule -> blocked; `reason=` names the rule.
* `bump=terminate`: the SNI check stage ended the tunnel -> blocked (the SNI did not match the host).
* any other line with a `reason=` and no upstream: refused inside the tunnel (not TLS) -> blocked.
* `action=TCP_TUNNEL...`: a tunnel was opened -> allowed (Squid 5 may log the status of a spliced tunnel
  as 500 even though data flowed; the action is what counts).
* any other action that reached an upstream (`hier=` other than HIER_NONE), e.g. plain HTTP to a private
  opt-in -> allowed.
* everything else (a client that gave up before TLS, the readiness line, Squid's own messages) -> None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

__all__ = [
    "LOG_MARKER",
    "READY_LINE",
    "REASONS",
    "ProxyAccess",
    "is_proxy_ready_line",
    "parse_proxy_log_line",
]

LOG_MARKER = "sandbox-proxy/1 "
"""Every line the proxy writes for machines starts with this (after any prefix Docker/Compose adds)."""

READY_LINE = "sandbox-proxy/1 event=ready"
"""Written once by the proxy's entrypoint when Squid answers: the proxy can take traffic."""

REASONS: dict[str, str] = {
    "not-allowlisted": "Domain not in allowlist",
    "ip-literal": "IP address destinations are not allowed; use a host name",
    "private-address": "Domain resolves to a private, loopback, link-local or metadata address",
    "method": "Only HTTPS (CONNECT) is allowed; plain HTTP is refused",
    "port": "Port not allowed",
    "source": "Client is not on the sandbox network",
    "sni-mismatch": "TLS SNI does not match the CONNECT host",
    "not-tls": "Only TLS may pass through the tunnel",
}
"""Machine reason codes (the proxy's `reason=` field) and the human text put in the event."""

_DEFAULT_REASON = "Denied by proxy policy"


@dataclass(frozen=True)
class ProxyAccess:
    """One allow/deny decision of the egress proxy.

    `action`, `domain`, `port` and `reason` are Perstack's `proxyAccess` payload (`payload()`); `code` is
    the machine reason (`not-allowlisted`, `ip-literal`, `private-address`, `method`, `port`, `source`,
    `sni-mismatch`), `method` and `status` are kept for the audit log.
    """

    action: Literal["allowed", "blocked"]
    domain: str
    port: int
    reason: str | None = None
    code: str | None = None
    method: str = "CONNECT"
    status: int | None = None

    def payload(self) -> dict[str, str | int]:
        """Perstack's `proxyAccess` event payload: `{action, domain, port, reason?}`."""
        out: dict[str, str | int] = {"action": self.action, "domain": self.domain, "port": self.port}
        if self.reason is not None:
            out["reason"] = self.reason
        return out


def _fields(line: str) -> dict[str, str] | None:
    start = line.find(LOG_MARKER)
    if start < 0:
        return None
    fields: dict[str, str] = {}
    for token in line[start + len(LOG_MARKER) :].strip().split():
        key, sep, value = token.partition("=")
        if sep:
            fields[key] = value
    return fields


def is_proxy_ready_line(line: str) -> bool:
    """Whether `line` is the entrypoint's readiness line (prefixes and CR/LF allowed)."""
    fields = _fields(line)
    return fields is not None and fields.get("event") == "ready"


def _value(fields: dict[str, str], key: str) -> str | None:
    value = fields.get(key)
    return None if value in (None, "", "-") else value


def parse_proxy_log_line(line: str) -> ProxyAccess | None:
    """Parse one line of the proxy's output; None when it is not an allow/deny decision."""
    fields = _fields(line)
    if fields is None or "event" in fields:
        return None
    action = _value(fields, "action") or ""
    host = _value(fields, "host")
    port_text = _value(fields, "port") or ""
    if host is None or not port_text.isdigit():
        return None
    domain = unquote(host)
    port = int(port_text)
    method = _value(fields, "method") or "-"
    status_text = _value(fields, "status") or ""
    status = int(status_text) if status_text.isdigit() else None
    code = _value(fields, "reason")
    hier = _value(fields, "hier") or "HIER_NONE"

    refused_in_tunnel = code is not None and hier == "HIER_NONE" and not action.startswith("TCP_TUNNEL")
    if action.startswith("TCP_DENIED") or _value(fields, "bump") == "terminate" or refused_in_tunnel:
        if code is None and _value(fields, "bump") == "terminate":
            code = "sni-mismatch"
        reason = REASONS.get(code or "", _DEFAULT_REASON)
        if code == "sni-mismatch" and (sni := _value(fields, "sni")):
            reason = f"{reason} (SNI {unquote(sni)})"
        return ProxyAccess("blocked", domain, port, reason, code, method, status)
    if action.startswith("TCP_TUNNEL") or hier != "HIER_NONE":
        return ProxyAccess("allowed", domain, port, None, None, method, status)
    return None
