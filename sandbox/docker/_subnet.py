"""Pick a free /24 for a run's internal network.

Why choose at all instead of letting Docker allocate: the proxy needs a fixed address (.2) that the Expert's
proxy variables name before the containers exist, and the proxy's client ACL names the subnet. Why at random
from 10.200-254.x.0/24: concurrent runs rarely collide (and when they do, network creation fails with a pool
overlap and the caller retries with another), and the range avoids Docker's default pools (172.17-31/16,
192.168/20). Host routes are avoided too: a bridge on a subnet a VPN routes would break that route.
"""

from __future__ import annotations

import ipaddress
import random
import struct
from collections.abc import Iterable
from pathlib import Path

__all__ = ["host_routes", "pick_subnet"]

_FIRST, _LAST = 200, 254


def host_routes(route_file: Path = Path("/proc/net/route")) -> list[ipaddress.IPv4Network]:
    """IPv4 routes of this host (Linux); the default route is ignored. Empty elsewhere."""
    try:
        lines = route_file.read_text().splitlines()[1:]
    except OSError:
        return []
    routes = []
    for line in lines:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            dest = struct.pack("<L", int(fields[1], 16))
            mask = struct.pack("<L", int(fields[7], 16))
        except ValueError:
            continue
        if mask == b"\0\0\0\0":
            continue
        prefix = bin(int.from_bytes(mask, "big")).count("1")
        try:
            routes.append(ipaddress.IPv4Network((int.from_bytes(dest, "big"), prefix), strict=False))
        except ValueError:
            continue
    return routes


def pick_subnet(
    used: Iterable[str],
    *,
    rng: random.Random | None = None,
    routes: Iterable[ipaddress.IPv4Network] | None = None,
    attempts: int = 500,
) -> str:
    """A random 10.x.y.0/24 (x in 200..254) overlapping neither `used` subnets nor host routes."""
    chooser = rng or random.SystemRandom()
    taken: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for text in used:
        try:
            taken.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            continue
    taken += list(host_routes() if routes is None else routes)
    for _ in range(attempts):
        second, third = chooser.randint(_FIRST, _LAST), chooser.randint(0, 255)
        candidate = ipaddress.IPv4Network(f"10.{second}.{third}.0/24")
        if not any(candidate.version == t.version and candidate.overlaps(t) for t in taken):
            return str(candidate)
    raise RuntimeError("no free /24 left in 10.200.0.0-10.254.255.255 for the sandbox's internal network")
