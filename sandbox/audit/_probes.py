"""The audit's probe program: runs INSIDE a container and reports what it could and could not do.

Why a separate program with no dependencies: it runs in two places. In the Expert's own container (the
real image, user, networks, limits) it is started as `python -m sandbox.audit._probes` with the image's
copy of this package, exactly where the Expert's runtime would run. In the audit's trusted helper image
(`sandbox-audit:<hash>`, plain Debian + python3) it runs the *control* probes from outside the sandbox, as
`python3 /opt/sandbox-audit/_probes.py`. So it imports only the standard library, and it never imports
anything else from `sandbox`.

Protocol: one JSON document on stdin, like the Expert's secret payload::

    {"env": {NAME: value}, "hostSecrets": [sha256, ...], "probes": [{"id": ..., "kind": ..., ...}]}

`env` holds throwaway canary values for the plan's secret variables, delivered the way `sandbox run`
delivers real ones (stdin, never the environment); the `environ` probe checks that no process in the
container carries them, nor any of the host's secret values (`hostSecrets`, compared by hash so no
secret ever crosses the boundary). Output: JSON lines on stdout, one per finished probe
(`{"type": "result", "id", "data", "ms"}`), phase markers around the resource probes (so the host can
watch its own responsiveness meanwhile) and a final `{"type": "done"}`. A probe that raises reports
`{"error": ...}`; the program itself always exits 0 unless killed.

Network probes run concurrently (each one waits on timeouts); resource probes (`fill_tmpfs`,
`memory_bomb`, `fork_bomb`) run afterwards one by one in child processes, in their own session, with
`oom_score_adj` 1000, so the limits they hit kill the child and never this program.

This module deliberately observes and reports; it does not judge. Verdicts are made on the host
(`sandbox.audit._catalog`), which also knows the proxy's log and the controls' results.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import random
import resource
import signal
import socket
import ssl
import stat
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = [
    "KINDS",
    "SEQUENTIAL_KINDS",
    "build_dns_query",
    "icmp_checksum",
    "in_container",
    "main",
    "parse_dns_reply",
    "parse_mountinfo",
    "run_batch",
]

Result = dict[str, Any]
Probe = dict[str, Any]

_MAX_BODY = 600
_SKIP_WALK = ("/proc", "/sys", "/dev")


def _err(exc: BaseException) -> str:
    """`ECONNREFUSED: Connection refused`-style text: the errno name is what verdicts look at."""
    code = getattr(exc, "errno", None)
    name = errno.errorcode.get(code, "") if isinstance(code, int) else ""
    text = str(exc) or type(exc).__name__
    return f"{name}: {text}" if name else f"{type(exc).__name__}: {text}"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------------------------


def _split_hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def _read_head(sock: socket.socket, limit: int = 65536) -> tuple[bytes, bytes]:
    """The response head and whatever arrived after it in the same reads (a server that speaks first,
    like SSH, may have sent its banner already)."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < limit:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    head, sep, rest = data.partition(b"\r\n\r\n")
    return head + sep, rest


def _read_all(sock: socket.socket | ssl.SSLSocket, limit: int = 65536) -> bytes:
    data = b""
    try:
        while len(data) < limit:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (OSError, ssl.SSLError):
        pass
    return data


def _status_code(line: str) -> int | None:
    parts = line.split(" ", 2)
    if len(parts) >= 2 and parts[1].isdigit():
        return int(parts[1])
    return None


def _https_get(sock: socket.socket, tls: Probe, out: Result) -> None:
    """TLS over an established socket (a tunnel or a direct connection), then one GET; fills `out`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if tls.get("cadata"):
        ctx.load_verify_locations(cadata=tls["cadata"])
    verify = bool(tls.get("verify")) and bool(tls.get("cadata"))
    ctx.check_hostname = verify
    ctx.verify_mode = ssl.CERT_REQUIRED if verify else ssl.CERT_NONE
    sni = tls.get("sni")
    out["tls"] = {"ok": False, "error": None}
    try:
        tsock = ctx.wrap_socket(sock, server_hostname=sni) if sni else ctx.wrap_socket(sock)
    except (OSError, ssl.SSLError) as exc:
        out["tls"]["error"] = _err(exc)
        return
    out["tls"] = {"ok": True, "error": None, "version": tsock.version()}
    host = tls.get("hostHeader") or sni or "localhost"
    path = tls.get("path") or "/"
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: sandbox-audit\r\n\r\n"
    try:
        tsock.sendall(request.encode())
        raw = _read_all(tsock)
    except (OSError, ssl.SSLError) as exc:
        out["http"] = {"status": None, "body": "", "error": _err(exc)}
        return
    head, _, body = raw.partition(b"\r\n\r\n")
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    out["http"] = {"status": _status_code(line), "body": body[:_MAX_BODY].decode("latin-1"), "error": None}
    with contextlib.suppress(OSError):
        tsock.close()


def probe_proxy_connect(p: Probe) -> Result:
    """A raw CONNECT exactly as given (a client library would normalise `127.1`), then TLS or bytes.

    `p`: proxy "ip:port", target "host:port" (sent verbatim), optional `tls` {sni, verify, cadata,
    hostHeader, path} or `send` (text written into the tunnel, then whatever comes back is read).
    """
    out: Result = {"status": None, "statusLine": None, "error": None}
    host, port = _split_hostport(p["proxy"])
    timeout = float(p.get("timeout", 10))
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        out["error"] = _err(exc)
        return out
    with sock:
        target = p["target"]
        try:
            sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
            head, early = _read_head(sock)
        except OSError as exc:
            out["error"] = _err(exc)
            return out
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        out["statusLine"] = line
        out["status"] = _status_code(line)
        if out["status"] != 200:
            return out
        if p.get("tls"):
            _https_get(sock, p["tls"], out)
        elif p.get("send") is not None:
            try:
                sock.sendall(str(p["send"]).encode())
                sock.settimeout(float(p.get("readTimeout", 3)))
                out["after"] = (early + _read_all(sock, 4096)).decode("latin-1")
            except OSError as exc:
                out["after"] = early.decode("latin-1")
                out["error"] = _err(exc)
        elif p.get("read"):
            sock.settimeout(float(p.get("readTimeout", 3)))
            out["after"] = (early + _read_all(sock, 4096)).decode("latin-1")
    return out


def probe_proxy_http(p: Probe) -> Result:
    """A plain-HTTP proxy request (`GET http://host/path`), as a proxy-aware HTTP client sends it."""
    out: Result = {"status": None, "body": "", "error": None}
    host, port = _split_hostport(p["proxy"])
    url = p["url"]
    authority = url.split("://", 1)[1].split("/", 1)[0]
    headers = "".join(f"{k}: {v}\r\n" for k, v in (p.get("headers") or {}).items())
    try:
        with socket.create_connection((host, port), timeout=float(p.get("timeout", 10))) as sock:
            sock.sendall(
                f"GET {url} HTTP/1.1\r\nHost: {authority}\r\n{headers}Connection: close\r\n\r\n".encode()
            )
            raw = _read_all(sock)
    except OSError as exc:
        out["error"] = _err(exc)
        return out
    head, _, body = raw.partition(b"\r\n\r\n")
    out["status"] = _status_code(head.split(b"\r\n", 1)[0].decode("latin-1"))
    out["body"] = body[:_MAX_BODY].decode("latin-1")
    return out


def probe_tcp(p: Probe) -> Result:
    """A direct TCP connection (no proxy); optionally TLS + GET, or read a banner."""
    out: Result = {"connected": False, "error": None}
    family = socket.AF_INET6 if ":" in p["host"] else socket.AF_INET
    timeout = float(p.get("timeout", 3))
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        out["error"] = _err(exc)
        return out
    with sock:
        sock.settimeout(timeout)
        try:
            sock.connect((p["host"], int(p["port"])))
        except OSError as exc:
            out["error"] = _err(exc)
            return out
        out["connected"] = True
        if p.get("tls"):
            _https_get(sock, p["tls"], out)
        elif p.get("read"):
            out["after"] = _read_all(sock, 4096).decode("latin-1")
    return out


def probe_tcp_many(p: Probe) -> Result:
    """Direct TCP to every (host, port) pair in `targets`; which ones connected (pairs as "host:port")."""
    targets = [(str(h), int(port)) for h, port in p["targets"]]
    timeout = float(p.get("timeout", 2))

    def one(target: tuple[str, int]) -> tuple[str, Result]:
        host, port = target
        name = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return name, probe_tcp({"host": host, "port": port, "timeout": timeout})

    with ThreadPoolExecutor(max_workers=min(32, max(1, len(targets)))) as pool:
        results = dict(pool.map(one, targets))
    return {
        "connected": sorted(k for k, v in results.items() if v["connected"]),
        "errors": {k: v["error"] for k, v in results.items() if not v["connected"]},
        "count": len(results),
    }


def probe_udp(p: Probe) -> Result:
    """Send one datagram and wait for any reply (QUIC-style UDP/443, or anything else)."""
    out: Result = {"sent": False, "reply": None, "error": None}
    family = socket.AF_INET6 if ":" in p["host"] else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.settimeout(float(p.get("timeout", 2)))
            sock.sendto(bytes.fromhex(p.get("payloadHex", "00")), (p["host"], int(p["port"])))
            out["sent"] = True
            data, _ = sock.recvfrom(4096)
            out["reply"] = data[:256].hex()
    except OSError as exc:
        out["error"] = _err(exc)
    return out


def build_dns_query(qname: str, qtype: int = 1, qid: int | None = None) -> bytes:
    """A standard recursive query for `qname` (A by default) in wire format."""
    ident = random.randrange(1 << 16) if qid is None else qid  # noqa: S311 - an id, not a secret
    header = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    labels = b"".join(
        bytes([len(part)]) + part.encode("ascii") for part in qname.strip(".").split(".") if part
    )
    return header + labels + b"\0" + struct.pack("!HH", qtype, 1)


def parse_dns_reply(data: bytes, qid: int) -> Result:
    """The id check, rcode and answer count of a DNS reply."""
    if len(data) < 12:
        return {"valid": False}
    ident, flags, _qd, an, _ns, _ar = struct.unpack("!HHHHHH", data[:12])
    return {"valid": ident == qid and bool(flags & 0x8000), "rcode": flags & 0xF, "answers": an}


def probe_dns(p: Probe) -> Result:
    """A DNS query to `server` over UDP or TCP (DNS to any resolver is an exfiltration channel)."""
    out: Result = {"answered": False, "error": None}
    qid = random.randrange(1 << 16)  # noqa: S311
    query = build_dns_query(p["qname"], int(p.get("qtype", 1)), qid)
    server, port = p["server"], int(p.get("port", 53))
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    timeout = float(p.get("timeout", 2))
    try:
        if p.get("proto", "udp") == "tcp":
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect((server, port))
                sock.sendall(struct.pack("!H", len(query)) + query)
                size = struct.unpack("!H", sock.recv(2))[0]
                data = sock.recv(size)
        else:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.settimeout(timeout)
                sock.sendto(query, (server, port))
                data, _ = sock.recvfrom(4096)
    except (OSError, struct.error) as exc:
        out["error"] = _err(exc)
        return out
    reply = parse_dns_reply(data, qid)
    out.update(reply)
    out["answered"] = bool(reply.get("valid"))
    return out


def icmp_checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _ping(host: str, kind: int, timeout: float) -> Result:
    out: Result = {"socket": False, "sent": False, "reply": False, "error": None}
    try:
        sock = socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP)
    except OSError as exc:
        out["error"] = _err(exc)
        return out
    out["socket"] = True
    with sock:
        sock.settimeout(timeout)
        body = b"sandbox-audit"
        header = struct.pack("!BBHHH", 8, 0, 0, os.getpid() & 0xFFFF, 1)
        packet = struct.pack("!BBHHH", 8, 0, icmp_checksum(header + body), os.getpid() & 0xFFFF, 1) + body
        try:
            sock.sendto(packet, (host, 0))
            out["sent"] = True
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                data, addr = sock.recvfrom(2048)
                # Raw sockets deliver the IP header too; datagram sockets only the ICMP message.
                icmp = data[(data[0] & 0x0F) * 4 :] if kind == socket.SOCK_RAW else data
                if addr[0] == host and icmp[:1] == b"\0":
                    out["reply"] = True
                    break
        except OSError as exc:
            out["error"] = _err(exc)
    return out


def probe_icmp(p: Probe) -> Result:
    """Echo requests with an unprivileged ICMP socket and with a raw socket (needs CAP_NET_RAW)."""
    timeout = float(p.get("timeout", 2))
    return {
        "dgram": _ping(p["host"], socket.SOCK_DGRAM, timeout),
        "raw": _ping(p["host"], socket.SOCK_RAW, timeout),
    }


def probe_resolve(p: Probe) -> Result:
    """getaddrinfo, as any program in the sandbox would resolve a name."""
    try:
        infos = socket.getaddrinfo(p["name"], 443, type=socket.SOCK_STREAM)
    except OSError as exc:
        return {"addresses": [], "error": _err(exc)}
    return {"addresses": sorted({str(i[4][0]) for i in infos}), "error": None}


def probe_urllib(p: Probe) -> Result:
    """A stock HTTP client (urllib) with or without the proxy: a proxy-unaware client must go nowhere."""
    handlers: list[urllib.request.BaseHandler] = []
    if p.get("proxy"):
        handlers.append(urllib.request.ProxyHandler({"https": p["proxy"], "http": p["proxy"]}))
    else:
        handlers.append(urllib.request.ProxyHandler({}))
    ctx = ssl.create_default_context(cadata=p["cadata"]) if p.get("cadata") else ssl.create_default_context()
    handlers.append(urllib.request.HTTPSHandler(context=ctx))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(p["url"], timeout=float(p.get("timeout", 10))) as resp:
            return {"status": resp.status, "body": resp.read(_MAX_BODY).decode("latin-1"), "error": None}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "body": "", "error": _err(exc)}
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return {
            "status": None,
            "body": "",
            "error": _err(reason if isinstance(reason, BaseException) else exc),
        }


def _if_inet6() -> list[dict[str, str]]:
    rows = []
    try:
        with open("/proc/net/if_inet6") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 6:
                    addr = ":".join(parts[0][i : i + 4] for i in range(0, 32, 4))
                    rows.append({"address": addr, "scope": parts[3], "iface": parts[5]})
    except OSError:
        pass
    return rows


def probe_ipv6(p: Probe) -> Result:
    """IPv6 state: addresses, the disable switch, connections to outside v6 targets, v6 loopback."""
    out: Result = {"addresses": _if_inet6()}
    try:
        with open("/proc/sys/net/ipv6/conf/all/disable_ipv6") as fh:
            out["disabled"] = fh.read().strip() == "1"
    except OSError:
        out["disabled"] = None
    out["global"] = [a["address"] for a in out["addresses"] if a["scope"] == "00" and a["iface"] != "lo"]
    out["targets"] = probe_tcp_many({"targets": p.get("targets", []), "timeout": p.get("timeout", 2)})
    # Loopback: does the v6 stack work at all inside (if so, only the route out is missing)?
    loop: Result = {"ok": False, "error": None}
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as srv:
            srv.bind(("::1", 0))
            srv.listen(1)
            with socket.create_connection(("::1", srv.getsockname()[1]), timeout=2):
                loop["ok"] = True
    except OSError as exc:
        loop["error"] = _err(exc)
    out["loopback"] = loop
    return out


def _routes() -> list[dict[str, str]]:
    rows = []
    try:
        with open("/proc/net/route") as fh:
            next(fh, None)
            for line in fh:
                f = line.split()
                if len(f) >= 8:
                    dest = socket.inet_ntoa(struct.pack("<L", int(f[1], 16)))
                    gw = socket.inet_ntoa(struct.pack("<L", int(f[2], 16)))
                    mask = socket.inet_ntoa(struct.pack("<L", int(f[7], 16)))
                    rows.append({"iface": f[0], "destination": dest, "gateway": gw, "mask": mask})
    except OSError:
        pass
    return rows


def probe_routes(p: Probe) -> Result:
    """The routing table and interfaces: a sandbox on an internal network should have nowhere to go."""
    return {"routes": _routes(), "ipv6": _if_inet6()}


# ---------------------------------------------------------------------------------------------------------
# Filesystem
# ---------------------------------------------------------------------------------------------------------


def probe_stat_paths(p: Probe) -> Result:
    """(device, inode) of each path: equal to the host's pair means the very same host file is visible."""
    out: Result = {}
    for path in p["paths"]:
        try:
            st = os.stat(path)
            out[path] = {"dev": st.st_dev, "ino": st.st_ino, "dir": stat.S_ISDIR(st.st_mode)}
        except OSError as exc:
            out[path] = {"error": _err(exc)}
    return out


def probe_read_files(p: Probe) -> Result:
    """Read each file; report size and hash (never content), or the error."""
    out: Result = {}
    markers = [str(m) for m in p.get("markers", [])]
    for path in p["paths"]:
        try:
            if os.path.isdir(path):
                names = sorted(os.listdir(path))
                out[path] = {
                    "ok": True,
                    "dir": True,
                    "entries": len(names),
                    "markers": [m for m in markers if any(m in n for n in names)],
                }
                continue
            with open(path, "rb") as fh:
                data = fh.read(1 << 20)
            out[path] = {
                "ok": True,
                "size": len(data),
                "sha256": _sha(data),
                "markers": [m for m in markers if m.encode() in data],
            }
        except OSError as exc:
            out[path] = {"ok": False, "error": _err(exc)}
    return out


def probe_write_paths(p: Probe) -> Result:
    """Try to create (then remove) a file in each directory."""
    out: Result = {}
    for directory in p["dirs"]:
        path = os.path.join(directory, f".sandbox-audit-{os.getpid()}-{random.randrange(1 << 30)}")  # noqa: S311
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, b"x")
            os.close(fd)
            os.unlink(path)
            out[directory] = {"ok": True, "error": None}
        except OSError as exc:
            out[directory] = {"ok": False, "error": _err(exc)}
    return out


def probe_tamper(p: Probe) -> Result:
    """What the red-team did to the host's steering files: open each for writing (nothing is written),
    rename it away (and back, if that worked), and read it (markers only, never content)."""
    out: Result = {}
    markers = [str(m) for m in p.get("markers", [])]
    for path in p["paths"]:
        entry: Result = {}
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            os.close(fd)
            entry["write"] = {"ok": True, "error": None}
        except OSError as exc:
            entry["write"] = {"ok": False, "error": _err(exc)}
        moved = f"{path}.sandbox-audit-moved"
        try:
            os.rename(path, moved)
            os.rename(moved, path)
            entry["rename"] = {"ok": True, "error": None}
        except OSError as exc:
            entry["rename"] = {"ok": False, "error": _err(exc)}
        try:
            with open(path, "rb") as fh:
                data = fh.read(1 << 20)
            found = [m for m in markers if m.encode() in data]
            entry["read"] = {"ok": True, "size": len(data), "markers": found}
        except OSError as exc:
            entry["read"] = {"ok": False, "error": _err(exc)}
        out[path] = entry
    return out


def probe_create_files(p: Probe) -> Result:
    """Create each file (it must not exist) holding the marker: a steering file the host would read next."""
    out: Result = {}
    for path in p["paths"]:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, f"{p.get('marker', '')}\n".encode())
            os.close(fd)
            out[path] = {"ok": True, "error": None}
        except OSError as exc:
            out[path] = {"ok": False, "error": _err(exc)}
    return out


def probe_plant_leftovers(p: Probe) -> Result:
    """Leave in `dir` what a host process could trip on: a set-uid copy of a binary, a FIFO, a symlink to a
    host path. The mode after `chmod` is the control: the bit can be set (the host must remove it)."""
    out: Result = {}
    directory = p["dir"]
    suid = os.path.join(directory, "audit-suid")
    try:
        with open(p.get("binary", "/bin/true"), "rb") as src, open(suid, "wb") as dst:
            dst.write(src.read())
        os.chmod(suid, 0o4755)  # noqa: S103 - the attack being probed, in the sandbox's own workspace
        out["suid"] = {"ok": True, "mode": f"{stat.S_IMODE(os.stat(suid).st_mode):04o}"}
    except OSError as exc:
        out["suid"] = {"ok": False, "error": _err(exc)}
    for name in ("fifo", "symlink"):
        path = os.path.join(directory, f"audit-{name}")
        try:
            if name == "fifo":
                os.mkfifo(path)
            else:
                os.symlink(p.get("link_target", "/etc/passwd"), path)
            out[name] = {"ok": True}
        except OSError as exc:
            out[name] = {"ok": False, "error": _err(exc)}
    return out


def probe_fsize(p: Probe) -> Result:
    """RLIMIT_FSIZE, and a one-byte write at the limit (must fail, EFBIG) and just below it (the control).
    Sparse: no data block is written before the offset, so probing a 10 GiB limit costs nothing."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    out: Result = {"soft": soft, "hard": hard}
    path = os.path.join(p["dir"], f".sandbox-audit-fsize-{os.getpid()}")
    limit = soft if soft != resource.RLIM_INFINITY else int(p.get("expected") or 1 << 30)
    for part, offset in (("at_limit", limit), ("below_limit", limit - 1)):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.pwrite(fd, b"x", offset)
                out[part] = {"ok": True, "error": None}
            finally:
                os.close(fd)
        except OSError as exc:
            out[part] = {"ok": False, "error": _err(exc)}
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
    return out


def parse_mountinfo(text: str) -> list[dict[str, str]]:
    """/proc/self/mountinfo -> [{mountPoint, root, fstype, source, options}] (octal escapes decoded)."""

    def unescape(s: str) -> str:
        return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")

    rows = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        lf, rf = left.split(), right.split()
        if len(lf) < 6 or len(rf) < 2:
            continue
        rows.append(
            {
                "mountPoint": unescape(lf[4]),
                "root": unescape(lf[3]),
                "options": lf[5],
                "fstype": rf[0],
                "source": unescape(rf[1]),
                "superOptions": rf[2] if len(rf) > 2 else "",
            }
        )
    return rows


def probe_mounts(p: Probe) -> Result:
    """Every mount in the container (what of the host is visible, what is writable)."""
    try:
        with open("/proc/self/mountinfo") as fh:
            return {"mounts": parse_mountinfo(fh.read())}
    except OSError as exc:
        return {"mounts": [], "error": _err(exc)}


def probe_sockets(p: Probe) -> Result:
    """Unix sockets anywhere outside /proc and /sys; a connect attempt to each well-known engine socket."""
    found: list[str] = []
    for root in p.get("roots", ["/"]):
        for dirpath, dirnames, filenames in os.walk(root):
            if dirpath.startswith(_SKIP_WALK) or dirpath.startswith("/workspace"):
                dirnames[:] = []
                continue
            for name in filenames:
                path = os.path.join(dirpath, name)
                try:
                    if stat.S_ISSOCK(os.lstat(path).st_mode):
                        found.append(path)
                except OSError:
                    continue
    attempts: Result = {}
    for path in p.get("connect", []):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(2)
                sock.connect(path)
                attempts[path] = {"connected": True, "error": None}
        except OSError as exc:
            attempts[path] = {"connected": False, "error": _err(exc)}
    # Control: a socket this program makes in /tmp is found and connectable by the same method.
    control: Result = {"ok": False, "error": None}
    path = f"/tmp/.sandbox-audit-sock-{os.getpid()}"  # noqa: S108 - inside the container's own tmpfs
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as srv:
            srv.bind(path)
            srv.listen(1)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as cli:
                cli.connect(path)
                control["ok"] = True
    except OSError as exc:
        control["error"] = _err(exc)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return {"sockets": sorted(found), "connect": attempts, "control": control}


def _proc_pids() -> list[int]:
    return sorted(int(n) for n in os.listdir("/proc") if n.isdigit())


def probe_environ(p: Probe, payload_env: dict[str, str], host_secrets: list[str]) -> Result:
    """This process's environment (names, value hashes), and every visible process's environ and argv
    searched for the canary secrets (sent on stdin) and for the host's secret values (compared by hash).

    Hits name where they were found and which canary (by variable name) or host value (by hash) it was;
    never the value itself.
    """
    names = {k: _sha(v.encode()) for k, v in os.environ.items()}
    canaries = [(k, v.encode()) for k, v in payload_env.items() if v]
    secret_hashes = set(host_secrets)
    hits: set[str] = set()
    scanned = 0
    for pid in _proc_pids():
        for what in ("environ", "cmdline"):
            try:
                with open(f"/proc/{pid}/{what}", "rb") as fh:
                    data = fh.read()
            except OSError:
                continue
            scanned += 1
            parts = data.split(b"\0")
            values = [part.partition(b"=")[2] for part in parts] if what == "environ" else parts
            for name, canary in canaries:
                if canary in data:
                    hits.add(f"canary {name} in /proc/{pid}/{what}")
            for value in values:
                digest = _sha(value) if value else ""
                if digest in secret_hashes:
                    hits.add(f"host value in /proc/{pid}/{what}: {digest}")
    return {"names": names, "hits": sorted(hits), "scanned": scanned}


# ---------------------------------------------------------------------------------------------------------
# Privilege
# ---------------------------------------------------------------------------------------------------------


def probe_proc_status(p: Probe) -> Result:
    """uid/gid, capability sets, no_new_privs and seccomp mode of this process."""
    out: Result = {"uid": os.getuid(), "gid": os.getgid(), "euid": os.geteuid(), "groups": os.getgroups()}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"):
                    out[key] = value.strip()
    except OSError as exc:
        out["error"] = _err(exc)
    return out


def probe_setuid_files(p: Probe) -> Result:
    """Set-uid/set-gid files on the container's filesystems (not /proc, /sys, /dev, /workspace)."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk("/"):
        if dirpath.startswith(_SKIP_WALK) or dirpath.startswith("/workspace"):
            dirnames[:] = []
            continue
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue
            if stat.S_ISREG(mode) and mode & (stat.S_ISUID | stat.S_ISGID):
                found.append(path)
    return {"files": sorted(found)}


_LIBC: ctypes.CDLL | None = None


def _libc() -> ctypes.CDLL:
    global _LIBC  # noqa: PLW0603 - loaded once, lazily (the helper image may lack nothing, but be lazy)
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC


def _syscall_result(rc: int) -> Result:
    if rc == 0:
        return {"ok": True, "error": None}
    code = ctypes.get_errno()
    return {"ok": False, "error": f"{errno.errorcode.get(code, code)}: {os.strerror(code)}"}


def _op(fn: Callable[[], Result]) -> Result:
    try:
        return fn()
    except OSError as exc:
        return {"ok": False, "error": _err(exc)}


def _in_child(fn: Callable[[], Result]) -> Result:
    """Run `fn` in a forked child (namespace changes must not affect this program); its result via a pipe."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(rfd)
            data = json.dumps(_op(fn)).encode()
        except BaseException as exc:
            data = json.dumps({"ok": False, "error": repr(exc)}).encode()
        os.write(wfd, data)
        os._exit(0)
    os.close(wfd)
    chunks = []
    while True:
        chunk = os.read(rfd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(rfd)
    os.waitpid(pid, 0)
    try:
        result: Result = json.loads(b"".join(chunks) or b"{}")
    except ValueError:
        result = {"ok": False, "error": "no result from child"}
    return result


_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_PTRACE_ATTACH = 16
_PTRACE_DETACH = 17


def _ptrace_attach(pid: int) -> Result:
    libc = _libc()
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    libc.ptrace.restype = ctypes.c_long
    rc = libc.ptrace(_PTRACE_ATTACH, pid, None, None)
    result = _syscall_result(0 if rc == 0 else -1)
    if rc == 0:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0) if _is_child(pid) else time.sleep(0.05)
        libc.ptrace(_PTRACE_DETACH, pid, None, None)
    return result


def _is_child(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1]) == os.getpid()
    except (OSError, ValueError, IndexError):
        return False


def _ptrace_child() -> Result:
    """Control: tracing a process this program started works (so a refusal elsewhere is a real refusal)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        time.sleep(10)
        os._exit(0)
    try:
        return _ptrace_attach(pid)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _mount_tmpfs() -> Result:
    libc = _libc()
    target = b"/tmp/.sandbox-audit-mnt"
    with contextlib.suppress(FileExistsError):
        os.mkdir(target)
    try:
        return _syscall_result(libc.mount(b"none", target, b"tmpfs", 0, None))
    finally:
        libc.umount2(target, 2)
        with contextlib.suppress(OSError):
            os.rmdir(target)


def _chown_other() -> Result:
    path = f"/tmp/.sandbox-audit-chown-{os.getpid()}"  # noqa: S108
    with open(path, "w"):
        pass
    try:
        other = 0 if os.getuid() != 0 else 1
        os.chown(path, other, other)
        return {"ok": True, "error": None}
    finally:
        os.unlink(path)


def _setuid_other() -> Result:
    os.setuid(os.getuid() + 1 if os.getuid() != 0 else 1)
    return {"ok": True, "error": None}


def _open(path: str, flags: int) -> Result:
    fd = os.open(path, flags)
    try:
        if flags == os.O_RDONLY:
            os.read(fd, 1)
        # Opening for writing is the test; nothing is ever written (sysrq would act on the kernel).
    finally:
        os.close(fd)
    return {"ok": True, "error": None}


def _raw_socket(family: int, kind: int, proto: int) -> Result:
    with socket.socket(family, kind, proto):
        return {"ok": True, "error": None}


def _hostname() -> Result:
    # The current name: only the permission is tested, nothing changes even where it is allowed.
    name = socket.gethostname().encode()
    return _syscall_result(_libc().sethostname(name, len(name)))


def _clock() -> Result:
    time.clock_settime(time.CLOCK_REALTIME, time.clock_gettime(time.CLOCK_REALTIME))
    return {"ok": True, "error": None}


def _mknod() -> Result:
    path = f"/tmp/.sandbox-audit-null-{os.getpid()}"  # noqa: S108
    try:
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        return {"ok": True, "error": None}
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _chroot() -> Result:
    os.chroot("/tmp")  # noqa: S108
    return {"ok": True, "error": None}


PRIV_OPS: dict[str, Callable[[], Result]] = {
    "setuid_other": lambda: _in_child(_setuid_other),
    "chown_other": lambda: _op(_chown_other),
    "mount_tmpfs": lambda: _in_child(_mount_tmpfs),
    "unshare_user": lambda: _in_child(lambda: _syscall_result(_libc().unshare(_CLONE_NEWUSER))),
    "unshare_user_mount": lambda: _in_child(
        lambda: _syscall_result(_libc().unshare(_CLONE_NEWUSER | _CLONE_NEWNS))
    ),
    "unshare_net": lambda: _in_child(lambda: _syscall_result(_libc().unshare(_CLONE_NEWNET))),
    "raw_socket": lambda: _op(lambda: _raw_socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)),
    "packet_socket": lambda: _op(lambda: _raw_socket(socket.AF_PACKET, socket.SOCK_RAW, 0x0300)),
    "ptrace_init": lambda: _op(lambda: _ptrace_attach(1)),
    "ptrace_child": lambda: _op(_ptrace_child),
    "open_dev_mem": lambda: _op(lambda: _open("/dev/mem", os.O_RDONLY)),
    "read_kmsg": lambda: _op(lambda: _open("/dev/kmsg", os.O_RDONLY)),
    "read_kcore": lambda: _op(lambda: _open("/proc/kcore", os.O_RDONLY)),
    "write_sysrq": lambda: _op(lambda: _open("/proc/sysrq-trigger", os.O_WRONLY)),
    "sethostname": lambda: _in_child(_hostname),
    "settime": lambda: _op(_clock),
    "mknod": lambda: _op(_mknod),
    "chroot": lambda: _in_child(_chroot),
}


def probe_priv_ops(p: Probe) -> Result:
    """Privileged operations, each attempted for real (in a child where it could change this process)."""
    return {name: PRIV_OPS[name]() for name in p.get("ops", list(PRIV_OPS))}


def _stat_field(pid: int, index: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[index]
    except (OSError, IndexError):
        return None


def _status_fields(pid: int) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                out[key] = value.strip()
    except OSError:
        pass
    return out


def probe_processes(p: Probe) -> Result:
    """What processes this one can see, as whom they run and with which capabilities: a shared PID
    namespace would show the host's init and kernel threads."""
    procs = []
    for pid in _proc_pids():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                argv0 = fh.read().split(b"\0", 1)[0].decode("latin-1")
        except OSError:
            argv0 = "?"
        status = _status_fields(pid)
        procs.append(
            {
                "pid": pid,
                "ppid": _stat_field(pid, 1),
                "argv0": os.path.basename(argv0),
                "uid": (status.get("Uid") or "?").split()[0],
                "capEff": status.get("CapEff"),
            }
        )
    return {"processes": procs}


# ---------------------------------------------------------------------------------------------------------
# Resources (each in a child process, one at a time, after the concurrent probes)
# ---------------------------------------------------------------------------------------------------------


def _read_first(*paths: str) -> str | None:
    for path in paths:
        try:
            with open(path) as fh:
                return fh.read().strip()
        except OSError:
            continue
    return None


def probe_cgroup_limits(p: Probe) -> Result:
    """The limits the kernel enforces on this container (cgroup v1 or v2), as the kernel reports them."""
    v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    if v2:
        cpu = (_read_first("/sys/fs/cgroup/cpu.max") or "max 100000").split()
        return {
            "version": 2,
            "memory": _read_first("/sys/fs/cgroup/memory.max"),
            "memsw": _read_first("/sys/fs/cgroup/memory.swap.max"),
            "pids": _read_first("/sys/fs/cgroup/pids.max"),
            "cpuQuota": cpu[0],
            "cpuPeriod": cpu[1] if len(cpu) > 1 else None,
        }
    return {
        "version": 1,
        "memory": _read_first("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
        "memsw": _read_first("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"),
        "pids": _read_first("/sys/fs/cgroup/pids/pids.max"),
        "cpuQuota": _read_first(
            "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us"
        ),
        "cpuPeriod": _read_first(
            "/sys/fs/cgroup/cpu/cpu.cfs_period_us", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us"
        ),
    }


_CHILD_PRELUDE = """
import os, sys, time
try:
    with open('/proc/self/oom_score_adj', 'w') as fh:
        fh.write('1000')
except OSError:
    pass
"""

_FILL_CODE = (
    _CHILD_PRELUDE
    + """
path, cap = sys.argv[1], int(sys.argv[2])
chunk = b'\\0' * (1 << 20)
written = 0
with open(path, 'wb', buffering=0) as fh:
    try:
        while written < cap:
            written += fh.write(chunk)
            if written % (16 << 20) == 0:
                print(written, flush=True)
    except OSError as exc:
        print(written, flush=True)
        print('errno', exc.errno, flush=True)
        sys.exit(0)
print(written, flush=True)
print('cap', flush=True)
"""
)

_MEMORY_CODE = (
    _CHILD_PRELUDE
    + """
cap, step = int(sys.argv[1]), 16 << 20
held = []
total = 0
while total < cap:
    held.append(b'\\1' * step)
    total += step
    print(total, flush=True)
print('cap', flush=True)
"""
)

_FORK_CODE = (
    _CHILD_PRELUDE
    + """
import signal
cap = int(sys.argv[1])
children = 0
stopped = None
while children < cap:
    try:
        pid = os.fork()
    except OSError as exc:
        stopped = exc.errno
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    children += 1
print(children, stopped, flush=True)
os.killpg(0, signal.SIGKILL)
"""
)


def _child(code: str, args: list[str], timeout: float) -> tuple[list[str], int | None]:
    """Run a resource child in its own session; its stdout lines and return code (negative = signal)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    return out.splitlines(), proc.returncode


def probe_fill_tmpfs(p: Probe) -> Result:
    """Write zeros to a file in `path` until the filesystem says no (or the child is killed)."""
    path = p["path"]
    try:
        vfs = os.statvfs(path)
        size = vfs.f_blocks * vfs.f_frsize
    except OSError as exc:
        return {"error": _err(exc)}
    target = os.path.join(path, f".sandbox-audit-fill-{os.getpid()}")
    cap = int(p.get("maxBytes", size + (64 << 20)))
    try:
        lines, rc = _child(_FILL_CODE, [target, str(cap)], float(p.get("timeout", 120)))
    finally:
        with contextlib.suppress(OSError):
            os.unlink(target)
    numbers = [int(x) for x in lines if x.isdigit()]
    stopped = None
    for line in lines:
        if line.startswith("errno "):
            code = int(line.split()[1])
            stopped = errno.errorcode.get(code, str(code))
        elif line == "cap":
            stopped = "cap"
    return {"size": size, "written": max(numbers, default=0), "stoppedBy": stopped, "returncode": rc}


def probe_memory_bomb(p: Probe) -> Result:
    """Allocate and touch memory in 16 MiB steps until killed (the memory limit) or `maxBytes`."""
    lines, rc = _child(_MEMORY_CODE, [str(int(p["maxBytes"]))], float(p.get("timeout", 120)))
    numbers = [int(x) for x in lines if x.isdigit()]
    return {"allocated": max(numbers, default=0), "returncode": rc, "reachedCap": "cap" in lines}


def probe_fork_bomb(p: Probe) -> Result:
    """Fork sleeping children until fork() fails (the pids limit) or `maxProcs`; then kill them all."""
    lines, rc = _child(_FORK_CODE, [str(int(p["maxProcs"]))], float(p.get("timeout", 120)))
    forked, stopped = 0, None
    if lines:
        first = lines[0].split()
        forked = int(first[0]) if first and first[0].isdigit() else 0
        if len(first) > 1 and first[1].isdigit():
            stopped = errno.errorcode.get(int(first[1]), first[1])
    # Wait for the killed children to be reaped (by the container's init) before the next probe.
    pids_current = "/sys/fs/cgroup/pids/pids.current"
    if not os.path.exists(pids_current):
        pids_current = "/sys/fs/cgroup/pids.current"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        current = _read_first(pids_current)
        if current is None or int(current) < 50:
            break
        time.sleep(0.05)
    return {"forked": forked, "stoppedBy": stopped, "returncode": rc, "pidsAfter": _read_first(pids_current)}


# ---------------------------------------------------------------------------------------------------------
# The runner
# ---------------------------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------------------------
# Same-uid peers: the runtime's memory, the skills' environ, core dumps, forged events (issue #12)
# ---------------------------------------------------------------------------------------------------------

# A stand-in for the runtime (or a skill): holds a canary read from a pipe (memory only, like the stdin
# payload) and one in its environ, optionally hardened by the runtime's own function, and owns a pipe whose
# write end stands for the container's stdout.
_STANDIN = r"""
import os, sys, time
canary = sys.stdin.readline().strip() + ""
if sys.argv[1] == "harden":
    from sandbox._hardening import harden_runtime
    harden_runtime()
r, w = os.pipe()
print("ready", w, flush=True)
time.sleep(120)
"""

# The attacker, a separate process (a sibling of the stand-in, like a tool process next to the runtime).
_ATTACKER = r"""
import ctypes, json, os, resource, sys
pid, fd, canary, env_canary = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode(), sys.argv[4].encode()
out = {}
def attempt(name, fn):
    try:
        out[name] = {"ok": True, "value": fn()}
    except OSError as e:
        out[name] = {"ok": False, "error": "%s: %s" % (__import__("errno").errorcode.get(e.errno, e.errno),
                                                         os.strerror(e.errno) if e.errno else e)}
def scan():
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            span, perms = line.split()[:2]
            a, b = (int(x, 16) for x in span.split("-"))
            if "r" not in perms or b - a > 1 << 28:
                continue
            try:
                mem.seek(a)
                if canary and canary in mem.read(b - a):
                    return "canary found"
            except OSError:
                continue
    return "read, canary not found"
def environ():
    data = open("/proc/%d/environ" % pid, "rb").read()
    return "canary found" if env_canary and env_canary in data else "read"
def fd_open():
    os.close(os.open("/proc/%d/fd/%s" % (pid, fd), os.O_WRONLY))
    return "opened for writing"
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
def seize():
    if libc.ptrace(0x4206, pid, None, None) != 0:
        raise OSError(ctypes.get_errno(), "ptrace")
    libc.ptrace(17, pid, None, None)
    return "seized"
def prlimit():
    resource.prlimit(pid, resource.RLIMIT_CORE, (1 << 30, 1 << 30))
    return "raised"
def prlimit_lower():
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft - 1, hard))
    return "lowered"
for name, fn in (("mem", scan), ("environ", environ), ("fd", fd_open), ("ptrace", seize),
                 ("prlimit", prlimit), ("prlimit_lower", prlimit_lower)):
    if name in sys.argv[5].split(","):
        attempt(name, fn)
print(json.dumps(out))
"""


def _standin(hardened: bool, canary: str, env_canary: str) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _STANDIN, "harden" if hardened else "plain"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "AUDIT_STANDIN_CANARY": env_canary},
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(canary.encode() + b"\n")
    proc.stdin.flush()
    word, fd = proc.stdout.readline().decode().split()
    if word != "ready":
        raise RuntimeError("stand-in did not start")
    return proc, fd


def _attack(pid: int, fd: str, canary: str, env_canary: str, methods: str, *, confined: bool) -> Result:
    argv = [sys.executable, "-c", _ATTACKER, str(pid), fd, canary, env_canary, methods]
    if confined:  # exactly how the runtime starts a skill or an `exec` program
        from sandbox._hardening import confined_command

        command, args = confined_command(argv[0], argv[1:])
        argv = [command, *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    try:
        result: Result = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        result = {"error": f"attacker failed (exit {done.returncode}): {done.stderr[-300:]}"}
    return result


def probe_peer_memory(p: Probe) -> Result:
    """What a same-uid process can take from a hardened runtime stand-in, an un-hardened one (control), a
    skill stand-in when the attacker is confined like a skill or tool program, and the container's init.

    Only inside the Expert's image: it uses the runtime's own hardening module (`sandbox._hardening`).
    """
    from sandbox._hardening import LAUNCHER, landlock_abi

    canary, env_canary = f"audit-mem-{os.urandom(8).hex()}", f"audit-env-{os.urandom(8).hex()}"
    all_methods = "mem,environ,fd,ptrace,prlimit,prlimit_lower"
    out: Result = {"landlock_abi": landlock_abi(), "launcher": os.path.isfile(LAUNCHER)}
    hardened, fd_h = _standin(True, canary, env_canary)
    plain, fd_p = _standin(False, canary, env_canary)
    try:
        out["hardened"] = _attack(hardened.pid, fd_h, canary, env_canary, all_methods, confined=False)
        out["plain"] = _attack(plain.pid, fd_p, canary, env_canary, all_methods, confined=False)
        methods = "mem,environ,fd,ptrace"
        out["confined_vs_skill"] = _attack(plain.pid, fd_p, canary, env_canary, methods, confined=True)
        out["confined_vs_init"] = _attack(1, "1", "", "", "environ,fd,ptrace", confined=True)
        out["unconfined_vs_init"] = _attack(1, "1", "", "", "environ,fd", confined=False)
    finally:
        for proc in (hardened, plain):
            proc.kill()
            proc.wait()
    return out


def probe_core_limit(p: Probe) -> Result:
    """This process's RLIMIT_CORE, whether a child can raise it (soft up to hard, or hard), and the control:
    lowering a soft limit works. Standard library only: the control runner runs it outside the sandbox."""
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)

    def set_core(limits: tuple[int, int]) -> Callable[[], Result]:
        def go() -> Result:
            try:
                resource.setrlimit(resource.RLIMIT_CORE, limits)
            except (ValueError, OSError) as exc:
                return {"ok": False, "error": _err(exc)}
            return {"ok": True, "error": None}

        return go

    def lower_nofile() -> Result:
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(64, nofile[0]), nofile[1]))
        return {"ok": True, "error": None}

    unlimited = resource.RLIM_INFINITY
    return {
        "soft": soft,
        "hard": hard,
        "raise_hard": _in_child(set_core((1 << 20, 1 << 20) if hard != unlimited else (unlimited,) * 2)),
        "raise_soft": _in_child(set_core((1 << 20, hard) if hard != 0 else (1, 1))),
        "lower_soft": _in_child(lower_nofile),
    }


def probe_forge_events(p: Probe, event_key: str) -> Result:
    """Write forged and signed event lines onto the container's stdout through /proc/1/fd/1 (the init's
    descriptor, as a tool process did in the red-team pass). The host's pump code judges them (`_run`)."""
    from sandbox._wire import new_key, sign_line

    lines = dict(p["lines"])
    out = [
        lines["proxy_unsigned"],
        sign_line(new_key(), 0, lines["proxy_signed"]),
        lines["runtime_unsigned"],
        sign_line(new_key(), 0, lines["runtime_wrong_key"]),
        sign_line(event_key, 0, lines["proxy_signed"]),  # signed, but an infrastructure event
        sign_line(event_key, 1, lines["control"]) if event_key else lines["control"],
        sign_line(event_key, 1, lines["control"]) if event_key else lines["control"],  # a replay
    ]
    data = ("".join(line + "\n" for line in out)).encode()
    if not in_container():  # never write into a host's init
        fd, via = os.dup(1), "own stdout (not in a container)"
    else:
        try:
            fd = os.open("/proc/1/fd/1", os.O_WRONLY)
            via = "/proc/1/fd/1"
        except OSError as exc:
            fd, via = os.dup(1), f"own stdout (/proc/1/fd/1: {_err(exc)})"
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return {"written": len(out), "via": via}


KINDS: dict[str, Callable[[Probe], Result]] = {
    "proxy_connect": probe_proxy_connect,
    "proxy_http": probe_proxy_http,
    "tcp": probe_tcp,
    "tcp_many": probe_tcp_many,
    "udp": probe_udp,
    "dns": probe_dns,
    "icmp": probe_icmp,
    "resolve": probe_resolve,
    "urllib": probe_urllib,
    "ipv6": probe_ipv6,
    "routes": probe_routes,
    "stat_paths": probe_stat_paths,
    "read_files": probe_read_files,
    "write_paths": probe_write_paths,
    "tamper": probe_tamper,
    "create_files": probe_create_files,
    "plant_leftovers": probe_plant_leftovers,
    "fsize": probe_fsize,
    "mounts": probe_mounts,
    "sockets": probe_sockets,
    "proc_status": probe_proc_status,
    "setuid_files": probe_setuid_files,
    "priv_ops": probe_priv_ops,
    "processes": probe_processes,
    "cgroup_limits": probe_cgroup_limits,
    "fill_tmpfs": probe_fill_tmpfs,
    "memory_bomb": probe_memory_bomb,
    "fork_bomb": probe_fork_bomb,
    "peer_memory": probe_peer_memory,
    "core_limit": probe_core_limit,
}
"""Probe kinds by name. `environ` and `forge_events` are special-cased (they need the stdin payload)."""

SEQUENTIAL_KINDS = ("priv_ops", "fill_tmpfs", "memory_bomb", "fork_bomb")
"""Kinds that fork or exhaust a limit: run one at a time, after everything else, in this order."""


def _emit(obj: Result, lock: threading.Lock) -> None:
    line = json.dumps(obj, separators=(",", ":"), default=str)
    with lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _run_one(probe: Probe, payload: Result) -> Result:
    started = time.monotonic()
    try:
        if probe["kind"] == "environ":
            data = probe_environ(
                probe, dict(payload.get("env") or {}), list(payload.get("hostSecrets") or [])
            )
        elif probe["kind"] == "forge_events":
            data = probe_forge_events(probe, str(payload.get("eventKey") or ""))
        else:
            data = KINDS[probe["kind"]](probe)
    except Exception as exc:
        data = {"error": f"probe crashed: {_err(exc)}"}
    return {
        "type": "result",
        "id": probe["id"],
        "data": data,
        "ms": round((time.monotonic() - started) * 1000),
    }


def in_container() -> bool:
    """Whether this runs as a container's main process (PID 1, or the child of Docker's init).

    The resource and privilege probes exhaust limits and attempt privileged calls, which must never happen
    on a host by accident. `/.dockerenv` is no proof (VM images built from Docker images carry it), so the
    test is the process tree: in the sandbox PID 1 is `docker-init`, in the helper image it is this program.
    """
    if os.getpid() == 1:
        return True
    try:
        with open("/proc/1/cmdline", "rb") as fh:
            init = os.path.basename(fh.read().split(b"\0", 1)[0].decode("latin-1"))
    except OSError:
        return False
    return init in ("docker-init", "tini") and os.getppid() == 1


def run_batch(payload: Result, emit: Callable[[Result], None]) -> None:
    """Run every probe of `payload`: concurrent ones first, then the sequential ones in their fixed order.

    Outside a container the sequential kinds (bombs, privileged calls) are refused and reported as such.
    """
    probes: list[Probe] = list(payload.get("probes") or [])
    if not in_container():
        for probe in [p for p in probes if p["kind"] in SEQUENTIAL_KINDS]:
            emit(
                {
                    "type": "result",
                    "id": probe["id"],
                    "ms": 0,
                    "data": {"error": "refused: resource and privilege probes run only inside a container"},
                }
            )
        probes = [p for p in probes if p["kind"] not in SEQUENTIAL_KINDS]
    concurrent = [p for p in probes if p["kind"] not in SEQUENTIAL_KINDS]
    sequential = sorted(
        (p for p in probes if p["kind"] in SEQUENTIAL_KINDS), key=lambda p: SEQUENTIAL_KINDS.index(p["kind"])
    )
    with ThreadPoolExecutor(max_workers=int(payload.get("workers", 24))) as pool:
        for result in pool.map(lambda p: _run_one(p, payload), concurrent):
            emit(result)
    resources = [p for p in sequential if p["kind"] != "priv_ops"]
    for probe in sequential:
        if probe is (resources[0] if resources else None):
            emit({"type": "phase", "phase": "resources", "state": "start"})
        emit(_run_one(probe, payload))
    if resources:
        emit({"type": "phase", "phase": "resources", "state": "end"})


def main() -> None:
    """Entry point: one JSON document on stdin, JSON lines on stdout."""
    raw = sys.stdin.read()
    lock = threading.Lock()
    try:
        payload = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        _emit({"type": "fatal", "error": f"bad payload: {exc}"}, lock)
        return
    _emit({"type": "hello", "pid": os.getpid(), "uid": os.getuid(), "python": sys.version.split()[0]}, lock)
    run_batch(payload, lambda obj: _emit(obj, lock))
    _emit({"type": "done"}, lock)


if __name__ == "__main__":
    main()
