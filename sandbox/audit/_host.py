"""Host-side facts and helpers for the audit: the host's addresses, secrets (as hashes), file identities,
a throwaway listener, and a responsiveness monitor.

Everything here reads the host; nothing changes it except the listener, which the audit opens on an
ephemeral port for the duration of the probes so the "host services are unreachable" probe has a service
that certainly exists (and a control that reaches it from an ordinary container).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

__all__ = [
    "HostListener",
    "ResponsivenessMonitor",
    "file_id",
    "host_ipv4",
    "host_ipv6",
    "secret_hashes",
    "secret_values",
]

_SIOCGIFADDR = 0x8915
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|COOKIE|SESSION)", re.IGNORECASE)
_SKIP_IFACES = ("veth", "br-", "lo")


def host_ipv4() -> list[str]:
    """IPv4 addresses of the host's own interfaces, plus docker0; other bridges (other runs) are skipped."""
    out: list[str] = []
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return out
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for name in names:
            if name.startswith(_SKIP_IFACES):
                continue
            try:
                packed = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue
            out.append(socket.inet_ntoa(packed[20:24]))
    return sorted(set(out))


def host_ipv6() -> list[str]:
    """The host's global-scope IPv6 addresses (where an IPv6 side door would lead)."""
    out = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 6 and parts[3] == "00" and not parts[5].startswith(_SKIP_IFACES):
                raw = parts[0]
                out.append(socket.inet_ntop(socket.AF_INET6, bytes.fromhex(raw)))
    return sorted(set(out))


def secret_values(env: Mapping[str, str], names: tuple[str, ...] = ()) -> list[str]:
    """Values on the host that must never reach the sandbox: the plan's secret names and anything named
    like a key/token/password. Short values (< 8 chars) are skipped: they would match by chance."""
    picked = {v for k, v in env.items() if (k in names or _SECRET_NAME.search(k)) and len(v) >= 8}
    return sorted(picked)


def secret_hashes(values: list[str]) -> list[str]:
    return [hashlib.sha256(v.encode()).hexdigest() for v in values]


def file_id(path: str | Path) -> tuple[int, int] | None:
    """(st_dev, st_ino) of a host path, or None if it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class HostListener:
    """A TCP listener on all host addresses (IPv4 and, where possible, IPv6) on one ephemeral port."""

    def __init__(self) -> None:
        self.v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.v4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.v4.bind(("0.0.0.0", 0))  # noqa: S104 - the point: a service on every host address
        self.v4.listen(64)
        self.port: int = self.v4.getsockname()[1]
        self.v6: socket.socket | None = None
        with contextlib.suppress(OSError):
            v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            v6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            v6.bind(("::", self.port))
            v6.listen(64)
            self.v6 = v6
        self.peers: list[str] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._serve, args=(s,), daemon=True)
            for s in (self.v4, self.v6)
            if s is not None
        ]
        for t in self._threads:
            t.start()

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, addr = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.peers.append(str(addr[0]))
            conn.close()

    def reachable_from_host(self, addresses: list[str]) -> bool:
        """Whether the listener accepts on every one of `addresses` from the host itself."""
        for address in addresses:
            try:
                with socket.create_connection((address, self.port), timeout=2):
                    pass
            except OSError:
                return False
        return bool(addresses)

    def close(self) -> None:
        self._stop.set()
        for s in (self.v4, self.v6):
            if s is not None:
                with contextlib.suppress(OSError):
                    s.close()
        for t in self._threads:
            t.join(timeout=1)


class ResponsivenessMonitor:
    """Measures how long the host takes to spawn a process and answer `ping` while limits are being hit.

    `baseline()` samples before; `start()`/`stop()` bracket the resource probes (the probe program prints
    phase markers); the worst sample is what the `res.host-responsive` probe judges.
    """

    def __init__(self, ping: Callable[[], None], interval: float = 0.1) -> None:
        self._ping = ping
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.samples: list[float] = []
        self.baseline_s: float | None = None

    def _sample(self) -> float:
        started = time.monotonic()
        subprocess.run(["true"], check=False)
        with contextlib.suppress(Exception):
            self._ping()
        return time.monotonic() - started

    def baseline(self, count: int = 5) -> None:
        values = [self._sample() for _ in range(count)]
        self.baseline_s = max(values)

    def start(self) -> None:
        if self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.is_set():
                self.samples.append(self._sample())
                self._stop.wait(self._interval)

        self._thread = threading.Thread(target=loop, name="sandbox-audit-responsiveness", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def summary(self) -> dict[str, float | int | None]:
        return {
            "max_s": max(self.samples) if self.samples else None,
            "samples": len(self.samples),
            "baseline_s": self.baseline_s,
        }
