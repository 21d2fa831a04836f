"""Proxy: a large download and many small requests through the sandbox's Squid vs the same, direct.

Topology (built with the docker tests' helpers, tests/docker/conftest.py, and removed afterwards)::

    internal (internal: true)                 egress (TEST-NET subnet: public-looking, never routed)
      client-proxied ── proxy (our image, ──── upstream.bench  (HTTPS, bench/netbench/upstream.py)
                        config from             client-direct  (--add-host upstream.bench:<ip>)
                        render_squid)

* The proxy is the product's: the proxy image `sandbox build` made for the bench Expert, the config
  `render_squid()` renders for a policy with `upstream.bench` on the allowlist (the defaults, so the SNI
  check stage is on), run hardened as the tests run it. The proxied client sits where the Expert sits
  (internal network, no DNS, unprivileged, read-only root); the direct client sits on the egress network.
* Large download: `--proxy-mb` MB with curl (C and OpenSSL, so the client is not what limits), through
  the proxy with `-x` and direct, `--proxy-download-reps` times each, interleaved; throughput is bytes /
  curl's time_total (connect to last byte). Target: proxied >= 90% of direct (medians).
* Small requests: the same Python script on both paths (bench/netbench/client.py, http.client; through
  the proxy it tunnels with CONNECT like any HTTPS_PROXY client): `--proxy-requests` sequential
  `GET /small`, each on a new connection (TCP, CONNECT, TLS, GET: what a request on a fresh connection
  costs) and all on one kept-alive connection. Added per request = median proxied - median direct.
  Target: < 5 ms, judged on fresh connections (the stricter case).
* Diagnostics (no target): the same measurements through a second proxy rendered with `check_sni=False`,
  to show what the SNI check stage (a second, loopback Squid hop that peeks at the ClientHello) costs;
  and the large download at a 1 Gbit/s-class rate (curl `--limit-rate`), i.e. on a realistic link
  rather than two containers on one host, where the single-threaded relay is the limit.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..harness import BenchError, log
from ..report import Row, fmt_ms, fmt_summary
from ..stats import Target, evaluate, ratio, summarize
from . import Context, PartResult

__all__ = ["TARGET_LATENCY", "TARGET_THROUGHPUT", "cpu_seconds", "cpu_text", "run_proxy"]

TARGET_THROUGHPUT = Target(
    "proxy.throughput", "large download through the proxy, share of direct throughput", ">=", 90.0, "%"
)
TARGET_LATENCY = Target(
    "proxy.added_latency", "small requests (new connection each): added per request", "<", 5.0, "ms"
)

UPSTREAM = "upstream.bench"
LINK_RATE = "125M"
"""A 1 Gbit/s-class link (curl's --limit-rate, bytes per second): the diagnostic of a realistic network."""
NETBENCH = Path(__file__).resolve().parents[1] / "netbench"


def cpu_seconds(container_id: str, root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPU time a container has used so far (cgroup v1 cpuacct, or v2 cpu.stat), None if unreadable."""
    try:
        v1 = root / "cpuacct" / "docker" / container_id / "cpuacct.usage"
        if v1.exists():
            return int(v1.read_text().strip()) / 1e9
        stat = root / "system.slice" / f"docker-{container_id}.scope" / "cpu.stat"
        for line in stat.read_text().splitlines():
            if line.startswith("usage_usec "):
                return int(line.split()[1]) / 1e6
    except (OSError, ValueError):
        return None
    return None


def _exec_json(container: Any, argv: list[str]) -> dict[str, Any]:
    code, output = container.exec_run(argv)
    text = output.decode(errors="replace")
    if code != 0:
        raise BenchError(f"{' '.join(argv[:3])} failed in {container.name} (exit {code}):\n{text[-2000:]}")
    data: dict[str, Any] = json.loads(text.strip().splitlines()[-1])
    return data


def run_proxy(ctx: Context) -> PartResult:
    from sandbox.render._squid import ProxyPolicy, render_squid
    from sandbox.testing import make_tls_files
    from tests.docker.conftest import (
        EGRESS_SUBNETS,
        EXPERT_DNS,
        IMAGES_DIR,
        Topology,
        build_image,
        ip_on,
        start_proxy,
        wait_for_log,
        write_files,
    )

    site = ctx.docker()
    client = site.client
    nettest = build_image(client, IMAGES_DIR / "nettest", "sandbox-nettest")
    tmp = ctx.work / "proxy-bench"
    tls = make_tls_files(tmp / "tls-src", hostnames=(UPSTREAM,))
    certs = write_files(
        tmp / "certs",
        {
            "ca.pem": tls.ca_pem.read_text(),
            "server.pem": tls.cert_pem.read_text(),
            "server.key": tls.key_pem.read_text(),
        },
    )
    scripts = tmp / "netbench"
    shutil.copytree(NETBENCH, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    for p in [scripts, *scripts.iterdir()]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    binds = {
        str(certs): {"bind": "/certs", "mode": "ro"},
        str(scripts): {"bind": "/opt/netbench", "mode": "ro"},
    }

    topo = Topology(client, prefix=f"sbxbench-{tmp.parent.name[-8:]}")
    try:
        internal = topo.network("internal", internal=True)
        egress = topo.network("egress", subnets=EGRESS_SUBNETS)
        subnet = internal.attrs["IPAM"]["Config"][0]["Subnet"]
        upstream = topo.container(
            nettest,
            "upstream",
            [
                "python3",
                "/opt/netbench/upstream.py",
                "--cert",
                "/certs/server.pem",
                "--key",
                "/certs/server.key",
            ],
            networks=[(egress, [UPSTREAM])],
            binds=binds,
        )
        wait_for_log(upstream, lambda line: line == "netbench upstream ready")
        up_ip = ip_on(upstream, egress)
        policy = ProxyPolicy(allowed_domains=(UPSTREAM,), client_networks=(subnet,))
        proxy = start_proxy(
            topo,
            site.proxy_image,
            render_squid(policy),
            tmp / "proxy-config",
            name="proxy",
            internal=internal,
            others=[(egress, [])],
        )
        # Diagnostic only: the same proxy without the SNI check stage, to show what that stage costs.
        plain_policy = replace(policy, check_sni=False)
        plain = start_proxy(
            topo,
            site.proxy_image,
            render_squid(plain_policy),
            tmp / "proxy-config-nosni",
            name="proxy-nosni",
            internal=internal,
            others=[(egress, [])],
        )
        hardened: dict[str, Any] = {
            "read_only": True,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges:true"],
            "tmpfs": {"/tmp": "size=16m"},
        }
        proxied = topo.container(
            nettest,
            "client-proxied",
            ["sleep", "infinity"],
            networks=[(internal, [])],
            user="65534:65534",
            binds=binds,
            **hardened,
            **EXPERT_DNS,
        )
        direct = topo.container(
            nettest,
            "client-direct",
            ["sleep", "infinity"],
            networks=[(egress, [])],
            user="65534:65534",
            binds=binds,
            extra_hosts={UPSTREAM: up_ip},
            **hardened,
        )
        nbytes = ctx.proxy_download_mb * 1000 * 1000
        url = f"https://{UPSTREAM}/bytes?n={nbytes}"

        def curl(container: Any, proxy_url: str | None, limit: str | None = None) -> float:
            """Seconds to the last byte of one large download (curl: the client is not the limit)."""
            argv = ["curl", "-sS", "-o", "/dev/null", "--cacert", "/certs/ca.pem", "--max-time", "300"]
            argv += ["--limit-rate", limit] if limit else []
            argv += ["-w", "%{time_total} %{size_download} %{http_code}"]
            argv += ["-x", proxy_url] if proxy_url else []
            code, output = container.exec_run([*argv, url])
            text = output.decode(errors="replace").strip()
            fields = text.split()
            if code != 0 or len(fields) != 3 or fields[2] != "200" or int(float(fields[1])) != nbytes:
                raise BenchError(f"large download in {container.name} failed (exit {code}): {text[-500:]}")
            return float(fields[0])

        base = [
            "python3",
            "/opt/netbench/client.py",
            "small",
            "--host",
            UPSTREAM,
            "--cafile",
            "/certs/ca.pem",
        ]

        def sm(container: Any, proxy_hostport: str | None, mode: str, count: int) -> list[float]:
            extra = ["--proxy", proxy_hostport] if proxy_hostport else []
            out = _exec_json(container, [*base, "--mode", mode, "--count", str(count), *extra])
            return [float(x) for x in out["seconds"]]

        paths: list[tuple[str, Any, Any]] = [
            ("proxied", proxied, proxy),
            ("direct", direct, None),
            ("proxied-nosni", proxied, plain),
        ]
        log(f"proxy: warm-up (proxy ready in {proxy.ready_s:.2f} s)")
        for _, container, px in paths:
            curl(container, px.url if px else None)
            sm(container, px.hostport if px else None, "fresh", 20)

        down: dict[str, list[float]] = {name: [] for name, _, _ in paths}
        cpu: dict[str, dict[str, list[float]]] = {}  # path -> role -> % of one core during each download
        log(f"proxy: {ctx.proxy_download_reps} x {ctx.proxy_download_mb} MB each way, interleaved")
        for i in range(ctx.proxy_download_reps):
            for name, container, px in paths[i % 3 :] + paths[: i % 3]:
                roles = {"client": container, "upstream": upstream, **({"proxy": px.container} if px else {})}
                before = {r: cpu_seconds(c.id) for r, c in roles.items()}
                seconds = curl(container, px.url if px else None)
                down[name].append(seconds)
                for r, c in roles.items():
                    b, a = before[r], cpu_seconds(c.id)
                    if a is not None and b is not None:
                        cpu.setdefault(name, {}).setdefault(r, []).append((a - b) / seconds * 100)
        capped: dict[str, list[float]] = {"proxied": [], "direct": []}
        cap_reps = max(3, ctx.proxy_download_reps // 3)
        log(f"proxy: {cap_reps} x {ctx.proxy_download_mb} MB each way at --limit-rate {LINK_RATE}")
        for i in range(cap_reps):
            for name, container, px in paths[:2] if i % 2 == 0 else paths[1::-1]:
                capped[name].append(curl(container, px.url if px else None, LINK_RATE))
        small: dict[str, list[float]] = {}
        for mode in ("fresh", "keepalive"):
            log(f"proxy: {ctx.proxy_requests} small requests each way ({mode})")
            for name, container, px in paths:
                small[f"{name}-{mode}"] = sm(container, px.hostport if px else None, mode, ctx.proxy_requests)
        accesses = len(proxy.accesses())
    finally:
        topo.close()

    mbps = {k: summarize([nbytes / s / 1e6 for s in v]) for k, v in down.items()}
    capped_mbps = {k: summarize([nbytes / s / 1e6 for s in v]) for k, v in capped.items()}
    ms = {k: summarize([x * 1000 for x in v]) for k, v in small.items()}
    share = ratio(mbps["proxied"].median, mbps["direct"].median)
    share_pct = None if share is None else share * 100
    added = {
        mode: ms[f"proxied-{mode}"].median - ms[f"direct-{mode}"].median for mode in ("fresh", "keepalive")
    }
    v_tp = evaluate(
        TARGET_THROUGHPUT, share_pct, note=f"median of {ctx.proxy_download_reps} x {ctx.proxy_download_mb} MB"
    )
    v_lat = evaluate(
        TARGET_LATENCY, added["fresh"], note=f"medians of {ctx.proxy_requests} requests each way"
    )
    result = PartResult("proxy", verdicts=[v_tp, v_lat])
    result.data = {
        "proxyImage": site.proxy_image,
        "sniCheck": policy.check_sni,
        "downloadBytes": nbytes,
        "throughputMBps": {k: v.to_json() for k, v in mbps.items()},
        "throughputMBpsAtLinkRate": {"rate": LINK_RATE, **{k: v.to_json() for k, v in capped_mbps.items()}},
        "requestMs": {k: v.to_json() for k, v in ms.items()},
        "addedMsPerRequest": {k: round(v, 3) for k, v in added.items()},
        "throughputSharePercent": None if share_pct is None else round(share_pct, 2),
        "proxyLoggedDecisions": accesses,
        "cpuPercentOfOneCoreDuringDownload": {
            path: {role: summarize(v).to_json() for role, v in roles.items() if v}
            for path, roles in cpu.items()
        },
        "raw": {
            "downloadSeconds": down,
            "downloadSecondsAtLinkRate": capped,
            "requestSeconds": {k: [round(x, 6) for x in v] for k, v in small.items()},
        },
    }
    mb = ctx.proxy_download_mb
    result.rows += [
        Row(
            "proxy",
            f"{mb} MB download through the proxy, MB/s",
            fmt_summary(mbps["proxied"], "MB/s"),
            f"direct: {fmt_summary(mbps['direct'], 'MB/s')}",
            share,
            ">= 0.90x direct",
            v_tp.status,
        ),
        Row(
            "proxy",
            "small request, new connection each (TCP+CONNECT+TLS+GET)",
            fmt_summary(ms["proxied-fresh"], "ms"),
            f"direct: {fmt_summary(ms['direct-fresh'], 'ms')}",
            ratio(ms["proxied-fresh"].median, ms["direct-fresh"].median),
        ),
        Row(
            "proxy",
            "added per request, new connection each",
            fmt_ms(added["fresh"]),
            "",
            None,
            "< 5 ms",
            v_lat.status,
        ),
        Row(
            "proxy",
            "small request on a kept-alive connection",
            fmt_summary(ms["proxied-keepalive"], "ms"),
            f"direct: {fmt_summary(ms['direct-keepalive'], 'ms')}",
            ratio(ms["proxied-keepalive"].median, ms["direct-keepalive"].median),
        ),
        Row("proxy", "added per request, kept-alive connection", fmt_ms(added["keepalive"])),
        Row(
            "proxy",
            f"diagnostic: {mb} MB download, same proxy without the SNI check stage, MB/s",
            fmt_summary(mbps["proxied-nosni"], "MB/s"),
            f"direct: {fmt_summary(mbps['direct'], 'MB/s')}",
            ratio(mbps["proxied-nosni"].median, mbps["direct"].median),
        ),
        Row(
            "proxy",
            "diagnostic: CPU during the large download, median % of one core",
            cpu_text(cpu.get("proxied", {})),
            f"direct: {cpu_text(cpu.get('direct', {}))}",
        ),
        Row(
            "proxy",
            f"diagnostic: {mb} MB download at a 1 Gbit/s-class link (--limit-rate {LINK_RATE}), MB/s",
            fmt_summary(capped_mbps["proxied"], "MB/s"),
            f"direct: {fmt_summary(capped_mbps['direct'], 'MB/s')}",
            ratio(capped_mbps["proxied"].median, capped_mbps["direct"].median),
        ),
        Row(
            "proxy",
            "diagnostic: added per request (new connection), without the SNI check stage",
            fmt_ms(ms["proxied-nosni-fresh"].median - ms["direct-fresh"].median),
        ),
    ]
    return result


def cpu_text(roles: dict[str, list[float]]) -> str:
    """`proxy 80%, upstream 36%, client 50%` (medians), in that order; `n/a` when nothing was sampled."""
    parts = [
        f"{role} {summarize(roles[role]).median:.0f}%"
        for role in ("proxy", "upstream", "client")
        if roles.get(role)
    ]
    return ", ".join(parts) or "n/a"
