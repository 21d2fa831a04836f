"""Test kit for docker runs: a scripted LLM provider on the sandbox's egress side, over real HTTPS.

Used by tests/docker/test_run_*.py and bench/warm_start.py. The provider is `sandbox.testing.llm_server`
(the scripted server speaking the Anthropic/OpenAI wire protocols) in a container started from a sandbox
expert image (it has the `sandbox` package and uvicorn), on the engine's default bridge with a published
port. The sandbox reaches it only through its proxy, by name: the Expert's config says
`baseUrl = "https://llm.test:<port>"`, so `llm.test` is on the allowlist, and the run opens exactly that
host and port with `--add-host llm.test:<bridge gateway>` and `--allow-private llm.test:<port>` (the
published port is on the host's bridge address, a private one, which the proxy refuses without the opt-in).
The Expert trusts the server through `--ca-cert`: a bundle of the test CA and the machine's own CAs (so the
image build still reaches PyPI and npm through a TLS-intercepting proxy).

The CA is kept under the user's cache dir and reused, so the expert image, whose tag hashes the CA bundle,
is built once per machine rather than once per test session.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

__all__ = [
    "LLM_HOST",
    "CliResult",
    "Harness",
    "LLMEndpoint",
    "TestTLS",
    "base_env",
    "llm_tls",
    "module_harness",
    "start_llm_container",
]

LLM_HOST = "llm.test"
TEST_LABEL = "sandbox.test"
_PORT = 8443


@dataclass(frozen=True)
class TestTLS:
    """The test CA, the server's certificate for llm.test/127.0.0.1, and the CA bundle for `--ca-cert`."""

    __test__ = False

    directory: Path
    ca_pem: Path
    cert_pem: Path
    key_pem: Path
    bundle: Path


def llm_tls(cache_dir: Path | None = None, env: Mapping[str, str] | None = None) -> TestTLS:
    """Create (once) or reuse the test TLS material; the bundle also holds the machine's CAs."""
    from sandbox.testing import make_tls_files

    environ = os.environ if env is None else env
    cache = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    root = cache_dir or cache / "sandbox-tests" / "llm-tls"
    files = root / "ca.pem", root / "server.pem", root / "server.key"
    if not all(f.is_file() for f in files):
        root.mkdir(parents=True, exist_ok=True)
        made = make_tls_files(root, hostnames=(LLM_HOST, "127.0.0.1", "localhost"))
        for src, dst in zip((made.ca_pem, made.cert_pem, made.key_pem), files, strict=True):
            if src != dst:
                src.replace(dst)
    for f in files:
        f.chmod(0o644)  # read by the server container's user through a bind mount
    root.chmod(0o755)
    system = environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
    bundle_bytes = files[0].read_bytes()
    with contextlib.suppress(OSError):
        bundle_bytes += b"\n" + Path(system).read_bytes()
    bundle = root / "bundle.pem"
    if not bundle.is_file() or bundle.read_bytes() != bundle_bytes:
        bundle.write_bytes(bundle_bytes)
    return TestTLS(root, *files, bundle)


@dataclass
class LLMEndpoint:
    """A running scripted provider: how the sandbox reaches it, and how the test reads it."""

    container_id: str
    host_port: int
    gateway: str
    tls: TestTLS

    @property
    def base_url(self) -> str:
        """What the Expert's config names (`[provider.setting] baseUrl`)."""
        return f"https://{LLM_HOST}:{self.host_port}"

    @property
    def add_host(self) -> str:
        return f"{LLM_HOST}:{self.gateway}"

    @property
    def allow_private(self) -> str:
        return f"{LLM_HOST}:{self.host_port}"

    @property
    def control_url(self) -> str:
        """Where the host test reads `/_sandbox/requests`."""
        return f"https://127.0.0.1:{self.host_port}"

    def remote(self) -> Any:
        from sandbox.testing import RemoteLLMServer

        return RemoteLLMServer(self.control_url, verify=self.tls.ca_pem)

    def stop(self, client: docker.APIClient) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            client.remove_container(self.container_id, force=True, v=True)


def start_llm_container(
    client: docker.APIClient, image: str, tls: TestTLS, *, labels: Mapping[str, str] | None = None
) -> LLMEndpoint:
    """Start the scripted server from `image` (a sandbox expert image) and wait until it answers."""
    host_config = client.create_host_config(
        binds={str(tls.directory): {"bind": "/tls", "mode": "ro"}},
        port_bindings={f"{_PORT}/tcp": None},
        read_only=True,
        cap_drop=["ALL"],
        tmpfs={"/tmp": "size=16m"},  # noqa: S108 - a tmpfs inside the container
    )
    created = client.create_container(
        image,
        entrypoint=["/opt/sandbox/venv/bin/python", "-m", "sandbox.testing.llm_server"],
        command=[
            "--host",
            "0.0.0.0",  # noqa: S104 - reached through a published port
            "--port",
            str(_PORT),
            "--tls-cert",
            "/tls/server.pem",
            "--tls-key",
            "/tls/server.key",
        ],
        ports=[_PORT],
        user="65534:65534",
        host_config=host_config,
        labels={
            TEST_LABEL: "1",
            f"{TEST_LABEL}.owner": "tests-executor",
            f"{TEST_LABEL}.created": str(int(time.time())),
            **(labels or {}),
        },
    )
    cid = created["Id"]
    client.start(cid)
    info = client.inspect_container(cid)
    port = int(info["NetworkSettings"]["Ports"][f"{_PORT}/tcp"][0]["HostPort"])
    # The host's address on the default bridge (its published ports answer there for every network).
    gateway = str(info["NetworkSettings"].get("Gateway") or "")
    if not gateway:
        subnet = client.inspect_network("bridge")["IPAM"]["Config"][0]["Subnet"]
        gateway = str(next(ipaddress.ip_network(subnet).hosts()))
    endpoint = LLMEndpoint(cid, port, gateway, tls)
    try:
        endpoint.remote().wait_ready(timeout=30)
    except Exception:
        logs = client.logs(cid).decode(errors="replace")
        endpoint.stop(client)
        raise RuntimeError(f"the scripted LLM container did not come up:\n{logs[-3000:]}") from None
    return endpoint


# ------------------------------------------------------------------------------------------ harness

PROVIDER_TOML = """\
model = "claude-sonnet-4-5"

[provider]
providerName = "anthropic"

[provider.setting]
baseUrl = "{base_url}"
"""

PLAIN_EXPERT = """
[experts."plain"]
version = "1.0.0"
instruction = "Answer briefly."
"""


@dataclass
class CliResult:
    """What one `sandbox run` subprocess did."""

    code: int
    stdout: str
    stderr: str

    @property
    def events(self) -> list[dict[str, Any]]:
        import json

        out = []
        for line in self.stdout.splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]


@dataclass
class Harness:
    """Everything a docker run test needs: images, the scripted provider, and a way to run the CLI."""

    client: docker.APIClient
    tls: TestTLS
    base_image: str
    node_image: str
    llm: LLMEndpoint | None = None

    def write_project(self, directory: Path, experts_toml: str) -> Path:
        assert self.llm is not None
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "perstack.toml"
        path.write_text(PROVIDER_TOML.format(base_url=self.llm.base_url) + experts_toml)
        return path

    def sandbox_flags(self) -> list[str]:
        assert self.llm is not None
        return [
            "--runtime",
            "docker",
            "--base-image",
            self.base_image,
            "--node-image",
            self.node_image,
            "--ca-cert",
            str(self.tls.bundle),
            "--add-host",
            self.llm.add_host,
            "--allow-private",
            self.llm.allow_private,
        ]

    def server_image(self, work: Path) -> str:
        """A sandbox expert image (built if needed) to run the scripted server from."""
        from sandbox.config import parse_config_text
        from sandbox.plan import PlanInputs, compute_plan
        from sandbox.render import RunSite, render_context

        from ._build import ensure_images
        from ._progress import ConsoleBuildReporter
        from ._sdk import DockerBackend

        cfg, _ = parse_config_text(PROVIDER_TOML.format(base_url="https://llm.test") + PLAIN_EXPERT, "t.toml")
        plan = compute_plan(
            cfg,
            PlanInputs(
                expert_key="plain",
                runtime="docker",
                env={},
                base_image=self.base_image,
                node_image=self.node_image,
                ca_cert=str(self.tls.bundle),
            ),
        )
        ctx = render_context(
            plan, cfg, RunSite(project="sandbox-test", workspace=work), ca_cert=self.tls.bundle.read_bytes()
        )
        backend = DockerBackend()
        try:
            ensure_images(backend, ctx, plan, reporter=ConsoleBuildReporter(), skills=False)
        finally:
            backend.close()
        return ctx.expert_image

    def start(self, work: Path) -> LLMEndpoint:
        self.llm = start_llm_container(self.client, self.server_image(work), self.tls)
        return self.llm

    def stop(self) -> None:
        if self.llm is not None:
            self.llm.stop(self.client)
            self.llm = None

    def run_cli(
        self, cwd: Path, args: list[str], env: Mapping[str, str], *, timeout: float = 600, flags: bool = True
    ) -> CliResult:
        """`sandbox run ARGS <sandbox flags>` as a subprocess in `cwd` with exactly `env`."""
        import subprocess
        import sys

        exe = Path(sys.executable).parent / "sandbox"
        argv = [str(exe), "run", *args, *(self.sandbox_flags() if flags else [])]
        proc = subprocess.run(
            argv, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)


def base_env(tmp: Path, **extra: str) -> dict[str, str]:
    """A minimal host environment for a CLI subprocess: PATH, HOME, CA settings, a private TMPDIR and state
    directory (the accepted sandbox policies, `sandbox.accepted`, are then the test's own)."""
    keep = ("PATH", "HOME", "SSL_CERT_FILE", "DOCKER_HOST", "XDG_CACHE_HOME", "LANG")
    env = {k: v for k, v in os.environ.items() if k in keep}
    tmpdir = tmp / "tmpdir"
    tmpdir.mkdir(parents=True, exist_ok=True)
    env["TMPDIR"] = str(tmpdir)
    env["XDG_STATE_HOME"] = str(tmp / "state")
    if os.getuid() == 0:
        # CI runs as root, and as root a run refuses to start the Expert as root unless asked to in the
        # process environment (sandbox/docker/_user.py): the tests ask. Pass SANDBOX_USER="" to not ask.
        env["SANDBOX_USER"] = "0:0"
    env.update(extra)
    if not env.get("SANDBOX_USER"):
        env.pop("SANDBOX_USER", None)
    return env


def module_harness(work: Path) -> Any:
    """Generator for a module-scoped pytest fixture: `yield from module_harness(tmp)` (stops the server)."""
    client = docker.APIClient(version="auto", timeout=300)
    harness = Harness(
        client=client,
        tls=llm_tls(),
        base_image=os.environ.get("SANDBOX_TEST_BASE_IMAGE", "sandbox-base:bookworm"),
        node_image=os.environ.get("SANDBOX_TEST_NODE_IMAGE", "sandbox-node:22"),
    )
    harness.start(work)
    try:
        yield harness
    finally:
        harness.stop()
        client.close()
