"""ProxyPolicy -> the egress proxy's configuration files (squid.conf, allowlist, hosts).

The Expert's container sits on an `internal: true` network; the only way out is this Squid. So the text
rendered here *is* the sandbox's network policy, and it is built like gh-aw-firewall's generator:

* `render_squid()` is a pure function: the same policy gives byte-identical files (no clock, no
  randomness, no environment), so the files can be content-hashed and reviewed.
* One small builder per section of squid.conf (`_listen_section`, `_client_section`, ...). Each returns
  plain data for the template `proxy/squid.conf.j2`, which lays the sections out in a fixed order with a
  comment above every directive saying why it is there.
* Validation happens where a value is interpolated: the template's filters (`squid_domain`, `squid_host`,
  `squid_port`, `squid_ip`, `squid_cidr`) re-check every value even though the planner validated it
  already, and refuse anything that is not a plain hostname, port or address with a `SECURITY:`
  RenderError. A newline in a domain would otherwise add an `http_access allow all` line.

The rule order is the policy, so it is fixed and tested (tests/render/test_squid_order.py)::

    deny IP literals -> allow private opt-ins -> deny resolved-private -> deny non-CONNECT / other ports
    -> allow allowlisted CONNECT -> deny all

The files are mounted read-only at `PROXY_CONFIG_DIR` in a container of the one proxy image built from
`proxy/` (see proxy/Dockerfile and proxy/entrypoint.sh).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import jinja2

from sandbox._assets import jinja_env
from sandbox._errors import RenderError

__all__ = [
    "ALLOWLIST_FILE",
    "DEFAULT_CLIENT_NETWORKS",
    "HOSTS_FILE",
    "IPV4_LITERAL_REGEX",
    "IPV6_LITERAL_REGEX",
    "PRIVATE_DESTINATIONS",
    "PROXY_CONFIG_DIR",
    "PROXY_PORT",
    "PROXY_WRITABLE_DIR",
    "READY_CHECK_HOST",
    "SQUID_CONF",
    "ProxyPolicy",
    "render_squid",
]

PROXY_PORT = 3128
"""The one port the sandbox talks to (HTTP_PROXY=http://<proxy>:3128)."""

SNI_CHECK_PORT = 3129
"""Loopback-only second stage that peeks at the TLS ClientHello (only with `check_sni`)."""

PROXY_CONFIG_DIR = "/etc/squid/sandbox"
"""Where the rendered files are mounted (read-only) in the proxy container."""

PROXY_WRITABLE_DIR = "/run/squid"
"""The only path the proxy writes (a tmpfs): the throwaway TLS key the SNI check stage needs."""

SQUID_CONF = "squid.conf"
ALLOWLIST_FILE = "allowed_domains.txt"
HOSTS_FILE = "hosts"

READY_CHECK_HOST = "sandbox-proxy-ready.invalid"
"""The name the entrypoint CONNECTs to from 127.0.0.1 to learn that Squid is ready (never resolved)."""

DEFAULT_CLIENT_NETWORKS: tuple[str, ...] = ("10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16")
"""Who may use the proxy when the caller does not know the internal subnet: private IPv4 ranges.

Pass the internal network's exact subnet as `ProxyPolicy.client_networks` when it is known."""

# Squid matches dstdom_regex against the request's host. inet_aton() accepts 1 to 4 parts, each decimal,
# octal (leading 0) or hex (0x), so `127.1`, `2130706433`, `0x7f.0.0.1` and `0177.0.0.1` all mean
# 127.0.0.1: every part must be digits or 0x-hex, which no real hostname is (`bad.cafe` has no digits-only
# or 0x part and so does not match). A trailing dot is allowed (`127.0.0.1.`).
IPV4_LITERAL_REGEX = r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$"
# Hostnames never contain ':', IPv6 literals always do (bracketed or not, with or without an embedded
# IPv4 or a zone): one colon anywhere is enough and can never catch a real hostname.
IPV6_LITERAL_REGEX = r":"

PRIVATE_DESTINATIONS: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "'this' network; 0.0.0.0 reaches the proxy's own host"),
    ("10.0.0.0/8", "RFC 1918 private"),
    ("100.64.0.0/10", "RFC 6598 carrier-grade NAT (also Alibaba Cloud metadata 100.100.100.200)"),
    ("127.0.0.0/8", "loopback: the proxy itself"),
    ("169.254.0.0/16", "link-local, including cloud metadata 169.254.169.254"),
    ("172.16.0.0/12", "RFC 1918 private, including Docker's default address pools"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.168.0.0/16", "RFC 1918 private"),
    ("198.18.0.0/15", "benchmarking networks"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved, including broadcast 255.255.255.255"),
    ("::/128", "IPv6 unspecified"),
    ("::1/128", "IPv6 loopback"),
    ("64:ff9b::/96", "NAT64 (embeds an IPv4 address)"),
    ("64:ff9b:1::/48", "local-use NAT64 (embeds an IPv4 address)"),
    ("100::/64", "IPv6 discard-only"),
    ("2001::/32", "Teredo (embeds an IPv4 address)"),
    ("2002::/16", "6to4 (embeds an IPv4 address)"),
    ("fc00::/7", "IPv6 unique-local, including AWS metadata fd00:ec2::254"),
    ("fe80::/10", "IPv6 link-local"),
    ("fec0::/10", "IPv6 site-local (deprecated)"),
    ("ff00::/8", "IPv6 multicast"),
)
"""Destinations a name may not resolve to (CIDR, why). IPv4-mapped IPv6 (::ffff:0:0/96) is deliberately
absent: Squid stores every IPv4 address in that form, so the entry would match all IPv4 destinations;
a mapped answer such as ::ffff:127.0.0.1 is caught by the IPv4 entries instead."""


@dataclass(frozen=True)
class ProxyPolicy:
    """What the sandbox may reach, in the proxy's terms. The planner builds it; `render_squid` renders it.

    **Parameters:**

    * `allowed_domains`: proxy form, normalised: `api.example.com` (exactly that host) or `.example.com`
      (the apex and every subdomain). HTTPS (CONNECT) to these names on `allowed_ports` is allowed.
    * `allow_private`: explicit `(host, port)` opt-ins that may be reached although the host resolves to
      a private address (a corporate LLM gateway, ollama on the host). Exactly that name and port; both
      CONNECT and plain HTTP (ollama speaks http); plain HTTP has no TLS, so it skips the SNI stage: a
      deliberate exception, pinned by the audit's `egress.private-plain-http`. The name need not be in
      `allowed_domains`.
    * `add_hosts`: `(name, ip)` pairs: the proxy's static resolution of a name, like `--add-host`.
    * `allowed_ports`: CONNECT ports for allowlisted names; 443 by default.
    * `check_sni`: also require the TLS ClientHello's SNI to name the CONNECT host (peek and splice, no
      decryption). Blocks "CONNECT allowed:443, then SNI=elsewhere" on shared front ends.
    * `client_networks`: CIDRs that may use the proxy; pass the internal network's subnet when known.
    """

    allowed_domains: tuple[str, ...]
    allow_private: tuple[tuple[str, int], ...] = ()
    add_hosts: tuple[tuple[str, str], ...] = ()
    allowed_ports: tuple[int, ...] = (443,)
    check_sni: bool = True
    client_networks: tuple[str, ...] = DEFAULT_CLIENT_NETWORKS


# ---------------------------------------------------------------------------------------------------------
# Validation at the point of interpolation. Each function returns the exact text that goes into the file.
# ---------------------------------------------------------------------------------------------------------

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_IPV4_LITERAL = re.compile(IPV4_LITERAL_REGEX, re.IGNORECASE)
_MAX_HOSTNAME = 253


def _refuse(what: str, value: object, why: str) -> RenderError:
    return RenderError(f"SECURITY: refusing to render {what} {value!r} into the proxy config: {why}")


def squid_host(value: object, what: str = "host name") -> str:
    """An exact hostname (`api.example.com`): lower-case LDH labels, no IP literal, nothing else."""
    if not isinstance(value, str):
        raise _refuse(what, value, f"expected a string, got {type(value).__name__}")
    if not value or len(value) > _MAX_HOSTNAME:
        raise _refuse(what, value, f"length must be 1 to {_MAX_HOSTNAME}")
    if not _HOSTNAME.fullmatch(value):
        raise _refuse(what, value, "only lower-case letters, digits, '-' and '.' between labels are allowed")
    if _IPV4_LITERAL.fullmatch(value):
        raise _refuse(what, value, "IP literals are not host names")
    return value


def squid_domain(value: object) -> str:
    """An allowlist entry: an exact hostname, or `.example.com` for the apex and all its subdomains."""
    if isinstance(value, str) and value.startswith("."):
        host = squid_host(value[1:], "allowlist wildcard")
        if "." not in host:
            raise _refuse("allowlist wildcard", value, "a wildcard needs at least two labels")
        return value
    return squid_host(value, "allowlist entry")


def squid_port(value: object) -> str:
    """A TCP port: an int from 1 to 65535 (a bool or a numeric string is refused)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise _refuse("port", value, "expected an integer from 1 to 65535")
    return str(value)


def squid_ip(value: object) -> str:
    """An IPv4 or IPv6 address in canonical form (no zone, no prefix)."""
    if not isinstance(value, str) or "%" in value:
        raise _refuse("IP address", value, "expected a plain IPv4 or IPv6 address")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise _refuse("IP address", value, "not an IP address") from None


def squid_cidr(value: object) -> str:
    """A network in CIDR form (`10.213.0.0/24`), host bits zero."""
    if not isinstance(value, str) or "%" in value:
        raise _refuse("network", value, "expected CIDR text such as 10.0.0.0/8")
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError:
        raise _refuse("network", value, "not a network in CIDR form") from None


_FILTERS: dict[str, Callable[..., str]] = {
    "squid_host": squid_host,
    "squid_domain": squid_domain,
    "squid_port": squid_port,
    "squid_ip": squid_ip,
    "squid_cidr": squid_cidr,
}


# ---------------------------------------------------------------------------------------------------------
# Section builders: pure functions from the policy to the data one section of squid.conf needs.
# ---------------------------------------------------------------------------------------------------------


def _allowlist(policy: ProxyPolicy) -> tuple[str, ...]:
    """Validated, sorted, de-duplicated allowlist without names a listed wildcard already covers.

    The planner already does this; doing it again keeps the output deterministic for any valid input and
    keeps Squid quiet (it warns about, and drops, a subdomain of a listed wildcard in one dstdomain ACL).
    """
    if isinstance(policy.allowed_domains, str):
        raise _refuse("allowlist", policy.allowed_domains, "expected a tuple of names, got one string")
    entries = sorted({squid_domain(d) for d in policy.allowed_domains})
    wildcards = {d for d in entries if d.startswith(".")}

    def covered(entry: str) -> bool:
        # `.example.com` covers `example.com`, `api.example.com` and `.api.example.com`.
        labels = entry.lstrip(".").split(".")
        first = 1 if entry.startswith(".") else 0
        parents = {"." + ".".join(labels[i:]) for i in range(first, len(labels))}
        return bool(parents & wildcards)

    return tuple(d for d in entries if not covered(d))


def _opt_ins(policy: ProxyPolicy) -> tuple[tuple[str, int], ...]:
    pairs = set()
    for pair in policy.allow_private:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise _refuse("private opt-in", pair, "expected a (host, port) pair")
        host, port = pair
        squid_host(host, "private opt-in host")
        squid_port(port)
        pairs.add((host, port))
    return tuple(sorted(pairs))


def _listen_section(policy: ProxyPolicy) -> dict[str, Any]:
    if not isinstance(policy.check_sni, bool):
        raise _refuse("check_sni", policy.check_sni, "expected True or False")
    return {
        "port": PROXY_PORT,
        "sni": policy.check_sni,
        "sni_port": SNI_CHECK_PORT,
        "sni_cert": f"{PROXY_WRITABLE_DIR}/sni-dummy.pem",
    }


def _client_section(policy: ProxyPolicy) -> dict[str, Any]:
    networks = sorted({squid_cidr(n) for n in policy.client_networks})
    if not networks:
        raise RenderError("the proxy needs at least one client network (the sandbox's internal subnet)")
    return {"networks": networks}


def _destination_section(policy: ProxyPolicy) -> dict[str, Any]:
    ports = sorted({int(squid_port(p)) for p in policy.allowed_ports})
    if not ports:
        raise RenderError("the proxy needs at least one allowed port (443)")
    opt_ins = [
        {"acl": f"optin_{i}", "host": host, "port": port}
        for i, (host, port) in enumerate(_opt_ins(policy), start=1)
    ]
    return {
        "allowlist_file": f"{PROXY_CONFIG_DIR}/{ALLOWLIST_FILE}",
        "allowlist_empty": not _allowlist(policy),
        "ports": ports,
        "ipv4_regex": IPV4_LITERAL_REGEX,
        "ipv6_regex": IPV6_LITERAL_REGEX,
        "private": [{"cidr": cidr, "why": why} for cidr, why in PRIVATE_DESTINATIONS],
        "opt_ins": opt_ins,
        "ready_host": READY_CHECK_HOST,
    }


def _sni_section(policy: ProxyPolicy) -> dict[str, Any]:
    """One (CONNECT host, SNI) ACL pair per reachable name: splice only when both name the same entry."""
    names = list(_allowlist(policy))
    names += sorted({host for host, _ in _opt_ins(policy)} - set(names))
    return {"pairs": [{"acl": f"sni_{i}", "name": name} for i, name in enumerate(names, start=1)]}


def _dns_section(policy: ProxyPolicy) -> dict[str, Any]:
    return {"hosts_file": f"{PROXY_CONFIG_DIR}/{HOSTS_FILE}"}


# ---------------------------------------------------------------------------------------------------------
# The facade.
# ---------------------------------------------------------------------------------------------------------


_RESERVED_NAMES = ("localhost", READY_CHECK_HOST)


def _hosts_file(add_hosts: Iterable[tuple[str, str]]) -> str:
    """Squid's hosts_file: the --add-host names, plus the proxy's own names so they never reach DNS.

    Squid loads this file into its forward *and* reverse caches. `127.0.0.1 localhost` answers the
    reverse lookup Squid makes of each client address (the SNI stage's client is 127.0.0.1), and the
    readiness check's name resolves here instead of being sent to a resolver.
    """
    lines = [
        "# Static names for the sandbox's egress proxy (hosts_file in squid.conf). Generated.",
        f"127.0.0.1 {' '.join(_RESERVED_NAMES)}",
    ]
    seen: dict[str, str] = {}
    for pair in add_hosts:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise _refuse("add-host entry", pair, "expected a (name, ip) pair")
        name, ip = squid_host(pair[0], "add-host name"), squid_ip(pair[1])
        if name in _RESERVED_NAMES:
            raise RenderError(f"add-host {name!r}: the name is reserved for the proxy itself")
        if seen.setdefault(name, ip) != ip:
            raise RenderError(f"add-host {name!r} is given two addresses: {seen[name]} and {ip}")
    lines += [f"{ip} {name}" for name, ip in sorted(seen.items())]
    return "\n".join(lines) + "\n"


def _environment() -> jinja2.Environment:
    """The shared environment plus the squid filters, as an overlay so the shared one is not mutated."""
    env = jinja_env().overlay()
    env.filters.update(_FILTERS)
    return env


def render_squid(policy: ProxyPolicy) -> dict[str, str]:
    """Render the proxy's files: `{"squid.conf": ..., "allowed_domains.txt": ..., "hosts": ...}`.

    Deterministic. Raises RenderError (`SECURITY: ...`) if any value is not a plain hostname, port, IP
    address or network.
    """
    allowlist = _allowlist(policy)
    conf = (
        _environment()
        .get_template("proxy/squid.conf.j2")
        .render(
            listen=_listen_section(policy),
            clients=_client_section(policy),
            dest=_destination_section(policy),
            sni=_sni_section(policy),
            dns=_dns_section(policy),
            config_dir=PROXY_CONFIG_DIR,
        )
    )
    return {
        SQUID_CONF: conf,
        ALLOWLIST_FILE: "".join(f"{squid_domain(d)}\n" for d in allowlist),
        HOSTS_FILE: _hosts_file(policy.add_hosts),
    }
