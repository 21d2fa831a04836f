"""The reference implementation's docker flow, replayed with our images (shared/reference/perstack.md §2).

What Perstack's `--runtime docker` does per run, kept as it is where it costs time:

* a fresh temp dir `perstack-docker-XXXXXX` with `docker-compose.yml`, `proxy/squid.conf` and the allowlist
  (the compose project is named after the dir, so every run makes new networks);
* the proxy service with `healthcheck: interval: 2s` and the runtime's `depends_on: condition:
  service_healthy`, so the runtime cannot start before the first health check passes (~2 s);
* Squid's default shutdown: the reference's squid.conf has no `shutdown_lifetime`, so Squid waits up to
  30 s for clients on SIGTERM and `compose down` waits its 10 s stop timeout before killing it;
* `docker compose run --rm runtime ...`, then `docker compose down --volumes --remove-orphans`, then
  `rm -rf` of the dir.

Replayed "with the same image": the runtime service uses the image `docker run --rm IMAGE true` measures,
running a trivial command (`echo ready`, so the time to its first output is measurable), and the proxy
service uses our proxy image running the reference's squid.conf as root (the reference's proxy image is
Debian's squid as root). Differences, all in the reference's favour, so its numbers are a lower bound:
no `docker compose build` step (the reference runs one every time; with a warm cache it still costs
seconds), no dnsmasq, no model call (the reference could not reach the scripted server anyway: its Squid
refuses every private address), and the health check is bash's `/dev/tcp` instead of `nc -z` (our proxy
image has no netcat; both are one TCP connect).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .harness import BenchError, timed

__all__ = ["REFERENCE_SQUID_CONF", "ReferenceFlow", "ReferenceRun", "compose_file"]

# §2.7, non-verbose, with the allowlist path moved to where it is mounted.
REFERENCE_SQUID_CONF = """\
http_port 3128

acl SSL_ports port 443
acl Safe_ports port 443
acl CONNECT method CONNECT

acl internal_nets dst 10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 127.0.0.0/8
acl link_local dst 169.254.0.0/16
acl internal_nets_v6 dst ::1/128 fe80::/10 fc00::/7
http_access deny internal_nets
http_access deny link_local
http_access deny internal_nets_v6

http_access deny !Safe_ports
http_access deny CONNECT !SSL_ports
http_access deny !CONNECT

acl allowed_domains dstdomain "/etc/squid/reference/allowed_domains.txt"

http_access allow CONNECT SSL_ports allowed_domains
http_access deny all

access_log none
cache_log /dev/null
"""

REFERENCE_ALLOWLIST = "registry.npmjs.org\napi.perstack.ai\napi.anthropic.com\n"


def compose_file(runtime_image: str, proxy_image: str) -> str:
    """The reference's docker-compose.yml (§2.5) with `image:` instead of `build:` and a trivial command."""
    return f"""\
services:
  runtime:
    image: "{runtime_image}"
    entrypoint: ["echo", "ready"]
    environment:
      - ANTHROPIC_API_KEY
      - PERSTACK_API_KEY
      - HTTP_PROXY=http://proxy:3128
      - HTTPS_PROXY=http://proxy:3128
      - http_proxy=http://proxy:3128
      - https_proxy=http://proxy:3128
      - NO_PROXY=localhost,127.0.0.1
      - no_proxy=localhost,127.0.0.1
    volumes:
      - ./workspace:/workspace:rw
    stdin_open: true
    tty: true
    cap_drop:
      - ALL
    security_opt:
      - no-new-privileges:true
    read_only: true
    tmpfs:
      - /tmp:size=256M,mode=1777,exec
      - /home/perstack/.npm:size=512M,uid=999,gid=999,mode=0755,exec
      - /home/perstack/.cache:size=256M,uid=999,gid=999,mode=0755,exec
    deploy:
      resources:
        limits:
          memory: 2G
          cpus: '2'
          pids: 256
        reservations:
          memory: 256M
    depends_on:
      proxy:
        condition: service_healthy
    networks:
      - perstack-net-internal
    labels:
      sandbox.bench: "reference"

  proxy:
    image: "{proxy_image}"
    user: root
    entrypoint: ["squid", "-N", "-d", "1", "-f", "/etc/squid/reference/squid.conf"]
    volumes:
      - ./proxy:/etc/squid/reference:ro
    networks:
      - perstack-net-internal
      - perstack-net
    healthcheck:
      test: ["CMD-SHELL", "bash -c ': </dev/tcp/127.0.0.1/3128' || exit 1"]
      interval: 2s
      timeout: 5s
      retries: 10
    labels:
      sandbox.bench: "reference"

networks:
  perstack-net-internal:
    driver: bridge
    internal: true
  perstack-net:
    driver: bridge
"""


@dataclass(frozen=True)
class ReferenceRun:
    """One replay: seconds to the runtime's first output, `compose run` done, `compose down` done, total."""

    first_output_s: float | None
    run_s: float
    down_s: float
    total_s: float


class ReferenceFlow:
    """Replays the reference's per-run compose flow; `run_once()` does it all, from mkdtemp to rm -rf."""

    def __init__(self, runtime_image: str, proxy_image: str, *, temp_root: Path | None = None) -> None:
        self.runtime_image = runtime_image
        self.proxy_image = proxy_image
        self.temp_root = temp_root

    def run_once(self) -> ReferenceRun:
        t0 = time.perf_counter()
        build_dir = Path(tempfile.mkdtemp(prefix="perstack-docker-", dir=self.temp_root))
        compose = build_dir / "docker-compose.yml"
        down = ["docker", "compose", "-f", str(compose), "down", "--volumes", "--remove-orphans"]
        down_done = False
        try:
            (build_dir / "proxy").mkdir()
            (build_dir / "workspace").mkdir()
            compose.write_text(compose_file(self.runtime_image, self.proxy_image))
            (build_dir / "proxy" / "squid.conf").write_text(REFERENCE_SQUID_CONF)
            (build_dir / "proxy" / "allowed_domains.txt").write_text(REFERENCE_ALLOWLIST)
            for path in (build_dir, build_dir / "proxy"):
                path.chmod(0o755)
            run = timed(
                ["docker", "compose", "-f", str(compose), "run", "--rm", "runtime"],
                cwd=build_dir,
                timeout=180,
            )
            run_end = time.perf_counter()
            if run.code != 0 or not any("ready" in line for line in run.stdout):
                raise BenchError(f"reference flow: compose run failed: {run.describe()}")
            first = None
            if run.first_line_s is not None:
                first = run.first_line_s + (run_end - t0 - run.total_s)
            stopped = timed(down, cwd=build_dir, timeout=180)
            down_done = True
            if stopped.code != 0:
                raise BenchError(f"reference flow: compose down failed: {stopped.describe()}")
            shutil.rmtree(build_dir, ignore_errors=True)
            total = time.perf_counter() - t0
            return ReferenceRun(first, run_end - t0, stopped.total_s, total)
        finally:
            if not down_done and compose.exists():
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    subprocess.run(down, cwd=build_dir, capture_output=True, timeout=180, check=False)
            shutil.rmtree(build_dir, ignore_errors=True)
