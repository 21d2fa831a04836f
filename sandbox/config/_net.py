"""Hosts, IP literals, URLs and `host:port` strings: the values that end up in the egress policy.

Why so strict: every domain accepted here is later written into squid.conf, a compose file or an
`--add-host` flag. A value that smuggles whitespace, a newline, `#` or `;` could add a proxy rule, and an
IP literal written in an unusual spelling (`127.1`, `2130706433`, `0x7f.0.0.1`) is still loopback to every
HTTP client. So names are checked against an explicit character set, not a blacklist, and anything whose
last label is numeric is treated as an address (that is how the WHATWG URL parser that Node uses decides
it too). Everything raises ValueError with a one-line message; callers add the location.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, urlsplit, urlunsplit

from ._issues import show

__all__ = [
    "IPAddress",
    "check_hostname",
    "ip_range_name",
    "normalize_domain",
    "parse_add_host",
    "parse_host_port",
    "parse_ip_literal",
    "url_host",
    "validate_base_url",
    "validate_endpoint_url",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_DOMAIN_LENGTH = 253
MAX_LABEL_LENGTH = 63
MAX_URL_LENGTH = 2048

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?", re.ASCII)
# A label the WHATWG host parser reads as a number: decimal, octal (leading 0) or hex (0x...).
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)", re.ASCII | re.IGNORECASE)
_HOST_CHARS = re.compile(r"[A-Za-z0-9.*-]+", re.ASCII)
_PORT = re.compile(r"[0-9]{1,5}", re.ASCII)
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")

# Characters worth naming in a message, because they are the ones injection attempts use.
_NAMED_CHARS = {
    "\n": "a newline",
    "\r": "a carriage return",
    "\t": "a tab",
    " ": "a space",
    '"': "a quote",
    "'": "a quote",
    "`": "a backtick",
    "#": "`#`",
    ";": "`;`",
    "/": "`/`",
    "\\": "a backslash",
    ":": "`:`",
    "@": "`@`",
    "_": "`_`",
}


def _bad_char_reason(value: str) -> str:
    # Named characters first, in the order above, so `a b_c` reports the space (the injection) not `_`.
    for ch, name in _NAMED_CHARS.items():
        if ch in value:
            return f"contains {name}"
    for ch in value:
        if not ch.isascii():
            return "contains a non-ASCII character (write the name as ASCII; punycode is not accepted either)"
        if not (ch.isalnum() or ch in ".*-"):
            return f"contains {show(ch)}"
    return "contains an invalid character"  # pragma: no cover - only called when the charset check failed


def parse_ip_literal(value: str) -> IPAddress | None:
    """The address `value` spells, in any spelling an HTTP client accepts, or None if it is not one.

    IPv4 follows the WHATWG URL / inet_aton rules: 1 to 4 parts, each decimal, octal (`0177`) or hex
    (`0x7f`), the last part filling the remaining bytes, so `127.1` and `2130706433` are 127.0.0.1.
    IPv6 may be bracketed (`[::1]`) and may carry a zone (`fe80::1%eth0`, zone ignored).
    """
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text.split("%", 1)[0])
        except ValueError:
            return None
    parts = text.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # a trailing dot is allowed by the WHATWG parser
    if not 1 <= len(parts) <= 4 or not all(_NUMERIC_LABEL.fullmatch(p) for p in parts):
        return None
    numbers: list[int] = []
    for part in parts:
        lowered = part.lower()
        try:
            if lowered.startswith("0x"):
                numbers.append(int(lowered[2:] or "0", 16))
            elif len(part) > 1 and part.startswith("0"):
                numbers.append(int(part, 8))
            else:
                numbers.append(int(part, 10))
        except ValueError:  # "08": not octal, not an address either
            return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    total = last
    for index, n in enumerate(head):
        total += n << (8 * (3 - index))
    return ipaddress.IPv4Address(total)


def ip_range_name(ip: IPAddress) -> str | None:
    """Why `ip` is not a public destination ("loopback", "private", "CGNAT"...), or None if it is public.

    IPv4-mapped IPv6 (`::ffff:10.0.0.1`) is judged by the IPv4 address it maps to.
    """
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip_range_name(ip.ipv4_mapped)
    checks: tuple[tuple[bool, str], ...] = (
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT, "CGNAT (100.64.0.0/10)"),
        (
            isinstance(ip, ipaddress.IPv6Address) and ip in ipaddress.IPv6Network("fc00::/7"),
            "IPv6 unique-local",
        ),
        (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local, "IPv6 site-local"),
        (ip.is_multicast, "multicast"),
        (ip.is_private, "private"),
        (not ip.is_global, "reserved"),
    )
    for matched, name in checks:
        if matched:
            return name
    return None


def check_hostname(value: str, *, min_labels: int = 2, wildcard: bool = False) -> str:
    """Validate a DNS host name and return it normalised: lower-case, one trailing dot removed.

    `min_labels=2` keeps bare TLDs and single-label names out of allowlists; `wildcard=True` allows one
    leading `*.`, whose base must itself have `min_labels` labels (`*.com` would open a whole TLD).
    """
    if not isinstance(value, str):
        raise ValueError(f"{show(value)} is not a string")
    if value == "":
        raise ValueError("empty host name")
    if parse_ip_literal(value) is not None:
        raise ValueError(f"{show(value)} is an IP address, not a host name")
    if not _HOST_CHARS.fullmatch(value):
        raise ValueError(f"{show(value)} is not a valid host name: {_bad_char_reason(value)}")
    name = value[:-1] if value.endswith(".") else value
    name = name.lower()
    if len(name) > MAX_DOMAIN_LENGTH:
        raise ValueError(f"{show(value)} is longer than {MAX_DOMAIN_LENGTH} characters")
    base = name
    if wildcard and name.startswith("*."):
        base = name[2:]
    if "*" in base:
        hint = (
            "only a single leading `*.` wildcard is allowed" if wildcard else "wildcards are not allowed here"
        )
        raise ValueError(f"{show(value)} is not a valid host name: {hint}")
    labels = base.split(".")
    if any(label == "" for label in labels):
        raise ValueError(f"{show(value)} is not a valid host name: empty label")
    for label in labels:
        if len(label) > MAX_LABEL_LENGTH:
            raise ValueError(f"{show(value)} has a label longer than {MAX_LABEL_LENGTH} characters")
        if label.startswith("xn--"):
            raise ValueError(
                f"{show(value)} is a punycode (xn--) name; internationalised names are not accepted"
            )
        if not _LABEL.fullmatch(label):
            raise ValueError(
                f"{show(value)} is not a valid host name: label {show(label)} must be letters, digits and "
                "inner hyphens"
            )
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        raise ValueError(
            f"{show(value)} looks like an IP address (its last label is numeric), not a host name"
        )
    if len(labels) < min_labels:
        if min_labels == 2:
            raise ValueError(f"{show(value)} needs at least two labels (like example.com)")
        raise ValueError(f"{show(value)} needs at least {min_labels} labels")  # pragma: no cover - unused
    return name


def normalize_domain(value: str) -> str:
    """An allowlist domain: `example.com` or `*.example.com`, lower-cased, without trailing dot.

    Rejected: IP literals in any spelling, punycode labels, any `*` except one leading `*.`, fewer than two
    labels, labels over 63 and names over 253 characters, and every character outside `[a-z0-9.-]`
    (whitespace, quotes, `#`, `;`, `/`, `:`...). Raises ValueError saying which rule failed.
    """
    return check_hostname(value, min_labels=2, wildcard=True)


def _lead(what: str, value: str) -> str:
    """How a message names the URL: "`https://…`" or, when the caller labels it, "baseUrl `https://…`"."""
    return f"{what} {show(value)}" if what else show(value)


def _check_url_text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what or 'URL'} must be a string")
    if len(value) > MAX_URL_LENGTH:
        raise ValueError(f"{_lead(what, value)} is longer than {MAX_URL_LENGTH} characters")
    # urlsplit silently deletes tabs and newlines, and WHATWG parsers read `\` as `/`; both let the host
    # this code checks differ from the host a client connects to, so refuse them outright.
    for ch in value:
        if ch.isspace() or not ch.isprintable():
            raise ValueError(f"{_lead(what, value)} contains whitespace or a control character")
        if ch == "\\":
            raise ValueError(f"{_lead(what, value)} contains a backslash")
    return value


def _split(value: str, what: str, schemes: tuple[str, ...]) -> tuple[SplitResult, str, int | None]:
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        raise ValueError(f"{_lead(what, value)} is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        allowed = " or ".join(f"{s}://" for s in schemes)
        raise ValueError(f"{_lead(what, value)} must start with {allowed}")
    if "@" in parts.netloc:
        raise ValueError(f"{_lead(what, value)} must not contain credentials (user@host)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{_lead(what, value)} has an invalid port") from None
    host = parts.hostname or ""
    if not host:
        raise ValueError(f"{_lead(what, value)} has no host")
    if port == 0:
        raise ValueError(f"{_lead(what, value)} has an invalid port")
    return parts, host, port


def _canonical_host(host: str, what: str, url: str) -> str:
    """A URL host as a name or a canonical IP; odd IPv4 spellings are refused, not guessed at."""
    ip = parse_ip_literal(host)
    if ip is not None:
        if isinstance(ip, ipaddress.IPv4Address) and host.rstrip(".") != str(ip):
            raise ValueError(f"{_lead(what, url)} spells the address {ip} unusually; write it as {ip}")
        return str(ip)
    try:
        return check_hostname(host, min_labels=1)
    except ValueError as exc:
        raise ValueError(f"{_lead(what, url)}: {exc}") from None


def url_host(url: str) -> str:
    """The normalised host of an already validated URL: lower-case, no trailing dot, IPv6 unbracketed."""
    host = urlsplit(url).hostname or ""
    ip = parse_ip_literal(host)
    return str(ip) if ip is not None else host.rstrip(".").lower()


def validate_base_url(value: str, *, allow_http: bool = False, what: str = "") -> str:
    """A provider or API base URL: https (http only when `allow_http`), a host name or IP, no credentials.

    Private addresses are allowed here on purpose (a self-hosted gateway or Ollama); the planner decides
    whether the sandbox may reach them.
    """
    text = _check_url_text(value, what)
    _parts, host, _port = _split(text, what, ("https", "http") if allow_http else ("https",))
    _canonical_host(host, what, text)
    return text


def validate_endpoint_url(value: str, *, what: str = "") -> str:
    """An MCP SSE endpoint: https, a public host *name*, no credentials. Returns it with the host normalised.

    IP literals are refused whatever their range: private, loopback, link-local, CGNAT, unspecified and
    IPv6-local ones would be SSRF, and public ones cannot pass the egress proxy, which allows names only.
    `localhost` and `*.localhost` (RFC 6761) are refused as well.
    """
    text = _check_url_text(value, what)
    parts, host, port = _split(text, what, ("https",))
    ip = parse_ip_literal(host)
    if ip is not None:
        kind = ip_range_name(ip)
        if kind is not None:
            raise ValueError(f"{_lead(what, text)} points at a {kind} address")
        raise ValueError(
            f"{_lead(what, text)} uses an IP address; use a host name (the proxy allows names only)"
        )
    name = _canonical_host(host, what, text)
    if name == "localhost" or name.endswith(".localhost"):
        raise ValueError(f"{_lead(what, text)} points at localhost")
    if "." not in name:
        raise ValueError(f"{_lead(what, text)} needs a fully qualified host name")
    netloc = name if port is None else f"{name}:{port}"
    return urlunsplit(("https", netloc, parts.path, parts.query, parts.fragment))


def _parse_port(text: str, whole: str) -> int:
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise ValueError(f"{show(whole)}: port must be a number from 1 to 65535")
    return int(text)


def _host_or_ip(text: str, whole: str) -> str:
    ip = parse_ip_literal(text)
    if ip is not None:
        if isinstance(ip, ipaddress.IPv4Address) and text != str(ip):
            raise ValueError(f"{show(whole)}: write the address as {ip}")
        return str(ip)
    try:
        return check_hostname(text, min_labels=1)
    except ValueError as exc:
        raise ValueError(f"{show(whole)}: {exc}") from None


def parse_host_port(value: str) -> tuple[str, int]:
    """`host:port` → (normalised host name, port), for `allowPrivate` and `--allow-private`.

    The host must be a name (a single label, like a compose service, is fine): the proxy matches
    destinations by name and refuses every IP literal, so an address here could never be reached. To open
    a private address, give it a name with `--add-host NAME:IP` and open that name.
    """
    if not isinstance(value, str) or not value:
        raise ValueError("expected host:port")
    host_text, sep, port_text = value.rpartition(":")
    if value.startswith("[") or (sep and ":" in host_text):
        raise ValueError(
            f"{show(value)}: the proxy opens names, not addresses; name it with --add-host NAME:IP "
            "(or [sandbox] addHosts) and open NAME:PORT"
        )
    if not sep or not host_text:
        raise ValueError(f"{show(value)}: expected host:port")
    if parse_ip_literal(host_text) is not None:
        raise ValueError(
            f"{show(value)}: the proxy opens names, not addresses; name it with --add-host NAME:IP "
            "(or [sandbox] addHosts) and open NAME:PORT"
        )
    try:
        host = check_hostname(host_text, min_labels=1)
    except ValueError as exc:
        raise ValueError(f"{show(value)}: {exc}") from None
    return host, _parse_port(port_text, value)


def parse_add_host(value: str) -> tuple[str, str]:
    """`name:ip` (Docker's `--add-host` form) → (normalised name, canonical IP). The IP may be IPv6."""
    if not isinstance(value, str) or ":" not in value:
        raise ValueError(f"{show(value)}: expected name:ip")
    name_text, _, ip_text = value.partition(":")
    try:
        name = check_hostname(name_text, min_labels=1)
    except ValueError as exc:
        raise ValueError(f"{show(value)}: {exc}") from None
    ip = parse_ip_literal(ip_text)
    if ip is None:
        raise ValueError(f"{show(value)}: {show(ip_text)} is not an IP address")
    if isinstance(ip, ipaddress.IPv4Address) and ip_text != str(ip):
        raise ValueError(f"{show(value)}: write the address as {ip}")
    return name, str(ip)
