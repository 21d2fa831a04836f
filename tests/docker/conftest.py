"""Docker fixtures for tests that need a real engine: images built once by content, networks and containers
that are always removed, and a hardened egress proxy started from the rendered configuration.

Everything created here carries the label `sandbox.test=1`, plus an owner and a per-topology run id, and is
removed in fixture teardown even when a test fails. Objects of ours older than two hours (a killed test
run) are swept at session start; other sessions' fresh objects are never touched, so concurrent runs on one
engine do not collide. No registry is contacted: images build from the offline base
(`SANDBOX_TEST_BASE_IMAGE`, default `sandbox-base:bookworm`, made by scripts/base-image.sh).

Reusable pieces for other docker tests: `docker_client`, `build_image`, `Topology` (`topology_factory`),
`PROXY_HARDENING`, `EXPERT_DNS`, `start_proxy`, `ProxyHandle`, `proxy_image`, `nettest_image`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from docker.models.containers import Container

from sandbox.docker._proxylog import ProxyAccess, is_proxy_ready_line, parse_proxy_log_line
from sandbox.render._squid import PROXY_CONFIG_DIR, PROXY_PORT, PROXY_WRITABLE_DIR

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGES_DIR = Path(__file__).resolve().parent / "images"
BASE_IMAGE = os.environ.get("SANDBOX_TEST_BASE_IMAGE", "sandbox-base:bookworm")

LABEL = "sandbox.test"
OWNER_LABEL = "sandbox.test.owner"
RUN_LABEL = "sandbox.test.run"
CREATED_LABEL = "sandbox.test.created"
OWNER = "tests-docker"
STALE_AFTER_S = 2 * 3600

PROXY_HARDENING: dict[str, Any] = {
    "read_only": True,
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges:true"],
    # The only writable path: the SNI check stage's throwaway key (uid/gid 13 = Debian's `proxy`).
    "tmpfs": {PROXY_WRITABLE_DIR: "size=1m,uid=13,gid=13,mode=0700"},
    "mem_limit": "256m",
    "pids_limit": 256,
}
"""How the proxy container runs: non-root (the image's USER), no capabilities, read-only root, one tmpfs."""

EXPERT_DNS: dict[str, Any] = {"dns": ["127.0.0.1"], "dns_opt": ["timeout:1", "attempts:1"]}
"""DNS for a container on the internal network: Docker's embedded DNS still answers container names, and
forwards every other name to 127.0.0.1 *in the container's own namespace*, where nothing answers. Without
`dns`, names go to the host's resolvers, and a host resolver on loopback (systemd-resolved's 127.0.0.53) is
queried from the host's namespace, i.e. outside names resolve even on an internal network. The options make
the failure take 1 s instead of 20 s."""


# --------------------------------------------------------------------------------------------------------
# Engine and images
# --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A client for the local engine; fails (does not skip) when there is none: CI must run these."""
    try:
        client = docker.from_env(timeout=180)
        client.ping()
    except Exception as exc:  # any failure means "no usable engine"
        pytest.fail(
            f"Docker engine not reachable ({exc}); run `bash scripts/docker-engine.sh`, "
            "or deselect with -m 'not docker'"
        )
    _sweep_stale(client)
    yield client
    client.close()


def _sweep_stale(client: docker.DockerClient) -> None:
    """Remove our objects left by a killed run (older than STALE_AFTER_S); never touch fresh ones."""
    cutoff = time.time() - STALE_AFTER_S
    flt: dict[str, Any] = {"label": [f"{LABEL}=1", f"{OWNER_LABEL}={OWNER}"]}
    for c in client.containers.list(all=True, filters=flt):
        if float(c.labels.get(CREATED_LABEL, "0")) < cutoff:
            with contextlib.suppress(docker.errors.APIError):
                c.remove(force=True, v=True)
    for n in client.networks.list(filters=flt):
        if float((n.attrs.get("Labels") or {}).get(CREATED_LABEL, "0")) < cutoff:
            with contextlib.suppress(docker.errors.APIError):
                n.remove()


def content_tag(repo: str, context: Path, base_image_id: str) -> str:
    """`repo:<hash>` of the files in `context` plus the base image's id: same inputs, same tag.

    Jinja templates are left out: proxy/ holds squid.conf.j2, which is rendered per Expert, not built in.
    """
    h = hashlib.sha256(base_image_id.encode())
    files = [
        p for p in context.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".j2"
    ]
    for path in sorted(files):
        h.update(path.relative_to(context).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{repo}:{h.hexdigest()[:16]}"


def build_image(client: docker.DockerClient, context: Path, repo: str, base_image: str = BASE_IMAGE) -> str:
    """Build `context` on `base_image` unless its content tag exists; returns the tag. Never pulls."""
    try:
        base_id = client.images.get(base_image).id
    except docker.errors.ImageNotFound:
        pytest.fail(f"base image {base_image} missing: run `bash scripts/base-image.sh`")
    tag = content_tag(repo, context, str(base_id))
    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.get(tag)
        return tag
    log: list[str] = []
    for chunk in client.api.build(
        path=str(context),
        tag=tag,
        buildargs={"BASE_IMAGE": base_image},
        rm=True,
        forcerm=True,
        pull=False,
        decode=True,
        labels={LABEL: "1"},
    ):
        if "stream" in chunk:
            log.extend(chunk["stream"].splitlines())
        if "error" in chunk:
            tail = "\n".join(log[-30:])
            pytest.fail(f"building {tag} from {context} failed: {chunk['error']}\n{tail}")
    return tag


@pytest.fixture(scope="session")
def proxy_image(docker_client: docker.DockerClient) -> str:
    """The real proxy image (proxy/Dockerfile) built on the offline base."""
    return build_image(docker_client, REPO_ROOT / "proxy", "sandbox-proxy-test")


@pytest.fixture(scope="session")
def nettest_image(docker_client: docker.DockerClient) -> str:
    """Test-only image: HTTPS/HTTP upstream, logging DNS server, probe runner (python3 + curl)."""
    return build_image(docker_client, IMAGES_DIR / "nettest", "sandbox-nettest")


# --------------------------------------------------------------------------------------------------------
# Networks and containers with guaranteed cleanup
# --------------------------------------------------------------------------------------------------------

# Public-looking, never-routed subnets for an egress network, so the proxy's private-address guard does not
# hide a result. Slices of TEST-NET-2, tried in turn, so concurrent sessions on one engine can coexist.
EGRESS_SUBNETS = (
    "198.51.100.0/26",
    "198.51.100.64/26",
    "198.51.100.128/26",
    "198.51.100.192/26",
    "192.88.99.0/26",
    "192.88.99.64/26",
)


@dataclass
class Topology:
    """Networks and containers of one test module; `close()` removes all of them (idempotent)."""

    client: docker.DockerClient
    prefix: str = field(default_factory=lambda: f"sbxt-{uuid.uuid4().hex[:8]}")
    containers: list[Container] = field(default_factory=list)
    networks: list[Any] = field(default_factory=list)

    @property
    def labels(self) -> dict[str, str]:
        return {
            LABEL: "1",
            OWNER_LABEL: OWNER,
            RUN_LABEL: self.prefix,
            CREATED_LABEL: str(int(time.time())),
        }

    def network(self, name: str, *, internal: bool = False, subnets: tuple[str, ...] = ()) -> Any:
        """A bridge network; with `subnets`, the first one free on this engine."""
        errors = []
        for subnet in subnets or (None,):
            ipam = None
            if subnet:
                ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)])
            try:
                net = self.client.networks.create(
                    f"{self.prefix}-{name}", driver="bridge", internal=internal, ipam=ipam, labels=self.labels
                )
            except docker.errors.APIError as exc:
                errors.append(str(exc))
                continue
            self.networks.append(net)
            return net
        pytest.fail(f"could not create network {name}: {errors}")

    def container(
        self,
        image: str,
        name: str,
        command: list[str] | None = None,
        *,
        networks: list[tuple[Any, list[str]]],
        user: str | None = None,
        binds: dict[str, dict[str, str]] | None = None,
        start: bool = True,
        **host_config: Any,
    ) -> Container:
        """Create a container attached to `networks` ([(network, aliases)]) before it starts."""
        api: Any = self.client.api
        first, first_aliases = networks[0]
        hc = api.create_host_config(network_mode=first.name, binds=binds or {}, **host_config)
        nc = api.create_networking_config(
            {first.name: api.create_endpoint_config(aliases=first_aliases or None)}
        )
        created = api.create_container(
            image,
            command=command,
            name=f"{self.prefix}-{name}",
            user=user or "",
            host_config=hc,
            networking_config=nc,
            labels=self.labels,
        )
        container = self.client.containers.get(created["Id"])
        self.containers.append(container)
        for net, aliases in networks[1:]:
            api.connect_container_to_network(created["Id"], net.id, aliases=aliases or None)
        if start:
            container.start()
        return container

    def close(self) -> None:
        for c in reversed(self.containers):
            with contextlib.suppress(docker.errors.NotFound):
                c.remove(force=True, v=True)
        self.containers.clear()
        for n in reversed(self.networks):
            with contextlib.suppress(docker.errors.NotFound):
                n.remove()
        self.networks.clear()


@pytest.fixture(scope="module")
def topology_factory(docker_client: docker.DockerClient) -> Iterator[Callable[[], Topology]]:
    """Make Topology objects for this module; all of them are removed at module teardown."""
    made: list[Topology] = []

    def make() -> Topology:
        topo = Topology(docker_client)
        made.append(topo)
        return topo

    yield make
    for topo in made:
        topo.close()


def ip_on(container: Container, network: Any) -> str:
    container.reload()
    return str(container.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"])


def wait_for_log(container: Container, predicate: Callable[[str], bool], timeout: float = 20.0) -> str:
    """Poll the container's output until a line matches; fail with the output if it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = container.logs(stdout=True, stderr=True).decode(errors="replace")
        for line in text.splitlines():
            if predicate(line):
                return line
        container.reload()
        if container.status in ("exited", "dead"):
            break
        time.sleep(0.02)
    text = container.logs(stdout=True, stderr=True).decode(errors="replace")
    pytest.fail(f"{container.name}: expected line not seen (status {container.status}):\n{text[-4000:]}")


def write_files(directory: Path, files: dict[str, str]) -> Path:
    """Write rendered files readable by the container's non-root user (pytest's tmp dirs are 0700)."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    for name, content in files.items():
        path = directory / name
        path.write_text(content)
        path.chmod(0o644)
    return directory


# --------------------------------------------------------------------------------------------------------
# The proxy
# --------------------------------------------------------------------------------------------------------


@dataclass
class ProxyHandle:
    """A running proxy: its container, its address for the sandbox, and how long it took to be ready."""

    container: Container
    address: str
    ready_s: float

    @property
    def url(self) -> str:
        return f"http://{self.address}:{PROXY_PORT}"

    @property
    def hostport(self) -> str:
        return f"{self.address}:{PROXY_PORT}"

    def lines(self) -> list[str]:
        return self.container.logs(stdout=True, stderr=False).decode(errors="replace").splitlines()

    def accesses(self) -> list[ProxyAccess]:
        """Every decision the proxy logged so far, parsed from its stdout."""
        return [a for a in (parse_proxy_log_line(line) for line in self.lines()) if a is not None]


def start_proxy(
    topo: Topology,
    image: str,
    files: dict[str, str],
    config_dir: Path,
    *,
    name: str,
    internal: Any,
    others: list[tuple[Any, list[str]]],
    **extra: Any,
) -> ProxyHandle:
    """Start the hardened proxy with `files` (from render_squid) mounted read-only; wait for its ready line.

    `internal` is the sandbox's network (the proxy's address is taken there); `others` are the egress side.
    """
    write_files(config_dir, files)
    t0 = time.monotonic()
    container = topo.container(
        image,
        name,
        networks=[(internal, []), *others],
        binds={str(config_dir): {"bind": PROXY_CONFIG_DIR, "mode": "ro"}},
        **{**PROXY_HARDENING, **extra},
    )
    wait_for_log(container, is_proxy_ready_line)
    ready_s = time.monotonic() - t0
    return ProxyHandle(container, ip_on(container, internal), ready_s)


def exec_text(container: Container, argv: list[str]) -> tuple[int, str]:
    """`docker exec` without a TTY: (exit code, stdout+stderr as text)."""
    code, output = container.exec_run(argv)
    assert isinstance(output, bytes)
    return int(code or 0), output.decode(errors="replace")


def run_probes(container: Container, probes: list[dict[str, Any]]) -> dict[str, Any]:
    """Run a batch of probes (see images/nettest/probe.py) in one exec; results by probe id."""
    code, text = exec_text(container, ["python3", "/opt/nettest/probe.py", json.dumps(probes)])
    assert code == 0, text
    results: dict[str, Any] = json.loads(text)
    return results
