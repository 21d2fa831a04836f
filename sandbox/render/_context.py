"""SandboxPlan -> build context: the Dockerfile, compose.yaml, the proxy's config and what the image needs.

Rendering is deterministic: the same plan and the same installation give byte-identical files, and the
image tags are content hashes of the files each image is built from. So `sandbox run` can skip a build
entirely when the tag already exists, and two Experts with the same skills share one image.

The renderer never reads perstack.toml or the environment: it consumes the plan, plus the run-specific
values of `RunSite` (workspace, user, network subnet, labels), which a caller supplies.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from sandbox._assets import asset_dir, jinja_env
from sandbox._errors import RenderError
from sandbox._version import __version__
from sandbox.config import PerstackConfig
from sandbox.plan import SandboxPlan

from ._filters import FILTERS
from ._squid import ProxyPolicy, render_squid
from ._wheel import runtime_wheel

__all__ = [
    "EGRESS_NETWORK",
    "EXPERT_CONFIG_PATH",
    "PROXY_CONFIG_DIR",
    "PROXY_PORT",
    "ProxyRuntime",
    "RenderedContext",
    "RunSite",
    "proxy_policy",
    "render_context",
]

PROXY_PORT = 3128
EGRESS_NETWORK = "sandbox-egress"
"""The egress network every sandbox's proxy joins (shared, kept between runs; see compose.yaml.j2)."""
PROXY_CONFIG_DIR = "/etc/squid/sandbox"
EXPERT_CONFIG_PATH = "/sandbox/expert/perstack.json"
TOOL_LABEL = "sandbox.tool"
TOOL_NAME = "perstack-sandbox"


@dataclass(frozen=True)
class ProxyRuntime:
    """How the proxy container runs: what the proxy image needs from the container settings."""

    user: str = "proxy"
    cap_add: tuple[str, ...] = ()
    # Squid runs in the foreground with no pid file, cache or log files: its only writable path is
    # /run/squid, where the entrypoint puts the SNI stage's throwaway key.
    tmpfs: tuple[str, ...] = ("/run/squid:size=1m,mode=0700,uid=13,gid=13",)
    config_dir: str = PROXY_CONFIG_DIR


MASK_FILE = "mask/empty"
"""The empty file, in the rendered context, bind-mounted read-only over each masked path."""


@dataclass(frozen=True)
class RunSite:
    """Run-specific values: who runs, where the workspace is, how the networks are numbered, labels."""

    project: str
    workspace: Path
    uid: int = field(default_factory=os.getuid)
    gid: int = field(default_factory=os.getgid)
    internal_subnet: str = "10.213.0.0/24"
    labels: Mapping[str, str] = field(default_factory=dict)
    # Container paths under /workspace covered by an empty read-only tmpfs, e.g. the host's job store when it
    # lives inside the workspace (the Expert must not read or forge the checkpoints the host resumes from).
    hidden: tuple[str, ...] = ()
    # Container paths of files under /workspace covered by an empty read-only file: the host's steering
    # files (perstack.toml, env files) when they lie inside the workspace (`sandbox.steering`).
    masked: tuple[str, ...] = ()
    egress_network: str = EGRESS_NETWORK

    @property
    def proxy_ip(self) -> str:
        """The proxy's fixed address on the internal network: the subnet's .2 (Docker's gateway takes .1)."""
        return str(ipaddress.ip_network(self.internal_subnet)[2])

    @property
    def dynamic_range(self) -> str:
        """Where Docker allocates other addresses (the upper half), so nothing can take the proxy's .2."""
        net = ipaddress.ip_network(self.internal_subnet)
        return str(list(net.subnets(prefixlen_diff=1))[1])


@dataclass(frozen=True)
class RenderedContext:
    """The build context as data. `write()` puts it on disk; nothing else touches the filesystem."""

    files: Mapping[str, bytes]
    expert_image: str
    proxy_image: str
    environment: Mapping[str, str]

    def write(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        for rel, data in sorted(self.files.items()):
            path = out / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            if rel.endswith(".sh"):
                path.chmod(0o755)


def _digest(files: Mapping[str, bytes], *names: str) -> str:
    h = hashlib.sha256()
    for name in sorted(names):
        h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return h.hexdigest()[:16]


def proxy_policy(plan: SandboxPlan, client_networks: tuple[str, ...] | None = None) -> ProxyPolicy:
    """The proxy's part of the plan; `client_networks` limits who may use the proxy (the internal subnet)."""
    allow_private = []
    for entry in plan.network.allow_private:
        host, _, port = entry.rpartition(":")
        allow_private.append((host.strip("[]"), int(port)))
    add_hosts = []
    for entry in plan.network.add_hosts:
        name, _, ip = entry.partition(":")
        add_hosts.append((name, ip))
    policy = ProxyPolicy(
        allowed_domains=plan.allowed_domains,
        allow_private=tuple(allow_private),
        add_hosts=tuple(add_hosts),
    )
    return replace(policy, client_networks=client_networks) if client_networks else policy


def _proxy_env(proxy_url: str) -> dict[str, str]:
    env = {}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = proxy_url
        env[name.lower()] = proxy_url
    env["NO_PROXY"] = env["no_proxy"] = "localhost,127.0.0.1,::1"
    env["NPM_CONFIG_PROXY"] = env["NPM_CONFIG_HTTPS_PROXY"] = proxy_url
    return env


def _extras(plan: SandboxPlan) -> str:
    extra = {"google": "google", "google-vertex": "google", "amazon-bedrock": "bedrock"}.get(plan.provider)
    return f"[{extra}]" if extra else ""


def render_context(
    plan: SandboxPlan,
    config: PerstackConfig,
    site: RunSite,
    *,
    ca_cert: bytes | None = None,
    proxy_runtime: ProxyRuntime | None = None,
) -> RenderedContext:
    """Render every file of the build context for `plan`, run at `site`."""
    proxy_rt = proxy_runtime or ProxyRuntime()
    env = jinja_env().overlay()
    env.filters.update(FILTERS)
    files: dict[str, bytes] = {}

    wheel_name, wheel = runtime_wheel()
    files[f"runtime/{wheel_name}"] = wheel
    if ca_cert is not None:
        if b"-----BEGIN CERTIFICATE-----" not in ca_cert:
            raise RenderError("the CA bundle is not PEM: no 'BEGIN CERTIFICATE' block")
        files["runtime/extra-ca.crt"] = ca_cert

    node = "node" in plan.runtimes
    dockerfile = env.get_template("templates/Dockerfile.j2").render(
        version=__version__,
        expert=plan.expert,
        base_image=plan.base_image,
        node_image=plan.node_image,
        node=node,
        ca_cert=ca_cert is not None,
        wheel_name=wheel_name,
        extras=_extras(plan),
        npm_packages=plan.packages.npm,
        pypi_packages=plan.packages.pypi,
    )
    files["Dockerfile"] = dockerfile.encode()
    image_inputs = ["Dockerfile", f"runtime/{wheel_name}", *(["runtime/extra-ca.crt"] if ca_cert else [])]
    expert_image = f"sandbox-expert:{_digest(files, *image_inputs)}"

    # The proxy image: one per base image and proxy/ sources, shared by every Expert.
    proxy_src = asset_dir() / "proxy"
    proxy_inputs = []
    for path in sorted(proxy_src.rglob("*")):
        skipped = path.suffix == ".j2" or path.name == ".keep" or "__pycache__" in path.parts
        if path.is_file() and not skipped:
            rel = f"proxy/{path.relative_to(proxy_src).as_posix()}"
            files[rel] = path.read_bytes()
            proxy_inputs.append(rel)
    files["proxy/.base-image"] = plan.base_image.encode()
    proxy_image = f"sandbox-proxy:{_digest(files, *proxy_inputs, 'proxy/.base-image')}"
    del files["proxy/.base-image"]
    for name, content in sorted(render_squid(proxy_policy(plan, (site.internal_subnet,))).items()):
        files[f"proxy/config/{name}"] = content.encode()

    # What the runtime inside reads: only the planned Experts, with the runtime forced to the native one.
    subset = config.model_copy(
        update={
            "experts": {k: config.experts[k] for k in plan.experts},
            "runtime": "perstack",
            "sandbox": None,
        }
    )
    files["expert/perstack.json"] = (
        json.dumps(subset.model_dump(mode="json", by_alias=True, exclude_none=True), indent=2, sort_keys=True)
        + "\n"
    ).encode()
    files["expert/plan.json"] = (plan.model_dump_json(indent=2, by_alias=True) + "\n").encode()
    if site.masked:
        files[MASK_FILE] = b""  # what the Expert sees in place of each steering file

    proxy_url = f"http://{site.proxy_ip}:{PROXY_PORT}"
    environment = {
        **_proxy_env(proxy_url),
        "HOME": "/home/sandbox",
        "SANDBOX_CONFIG": EXPERT_CONFIG_PATH,
        "SANDBOX_PROXY_URL": proxy_url,
    }
    labels = {TOOL_LABEL: TOOL_NAME, "sandbox.expert": plan.expert, **dict(site.labels)}
    tmpfs_size = plan.limits.tmpfs_size
    compose = env.get_template("compose/compose.yaml.j2").render(
        version=__version__,
        expert=plan.expert,
        project=site.project,
        proxy_image=proxy_image,
        expert_image=expert_image,
        base_image=plan.base_image,
        proxy=proxy_rt,
        user=f"{site.uid}:{site.gid}",
        workspace=str(site.workspace),
        environment=environment,
        dns=["127.0.0.1"],
        limits=plan.limits,
        fsize=plan.limits.workspace_quota_bytes,
        labels=labels,
        internal_subnet=site.internal_subnet,
        internal_ip_range=site.dynamic_range,
        proxy_ip=site.proxy_ip,
        egress_network=site.egress_network,
        extra_hosts=[],
        masked=list(site.masked),
        expert_tmpfs=[
            f"/tmp:size={tmpfs_size},mode=1777,exec",  # noqa: S108 - the container's own tmpfs
            f"/home/sandbox:size={tmpfs_size},mode=1777,exec",
            *(f"{path}:ro,size=64k,mode=0555" for path in site.hidden),
        ],
    )
    files["compose.yaml"] = compose.encode()
    return RenderedContext(
        files=files, expert_image=expert_image, proxy_image=proxy_image, environment=environment
    )
