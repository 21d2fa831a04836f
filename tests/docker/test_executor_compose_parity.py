"""compose.yaml stays the single description of the sandbox: Compose and the executor read it the same way.

Two checks on a rendered context, for every security-relevant field:

1. `docker compose -f compose.yaml config` (Compose's own normalisation) equals our translation
   (`sandbox.docker.load_compose`), so `docker compose up` would run the same sandbox;
2. what the engine stores for containers the executor creates from that translation (`docker inspect`)
   equals it too, so nothing is dropped on the way to the SDK.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.utils import parse_bytes

from sandbox.config import parse_config_text
from sandbox.docker import DockerBackend, ensure_shared_network, load_compose
from sandbox.plan import PlanInputs, compute_plan
from sandbox.render import RunSite, render_context

pytestmark = pytest.mark.docker

TOML = """
[provider]
providerName = "anthropic"
[provider.setting]
baseUrl = "https://llm.test"
[experts."coord"]
instruction = "x"
[experts."coord".skills."time"]
type = "mcpStdioSkill"
command = "uvx"
packageName = "mcp-server-time"
requiredEnv = ["TIME_TOKEN"]
"""
BASE = "sandbox-base:bookworm"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    tmp = tmp_path_factory.mktemp("parity")
    (tmp / "ws").mkdir()
    cfg, _ = parse_config_text(TOML, "perstack.toml")
    plan = compute_plan(
        cfg,
        PlanInputs(
            expert_key="coord",
            runtime="docker",
            env={"ANTHROPIC_API_KEY": "k", "TIME_TOKEN": "t"},
            base_image=BASE,
            node_image="sandbox-node:22",
            memory="768m",
            cpus=1.25,
            pids=200,
            add_hosts=("llm.test:192.0.2.10",),
            allow_private=("llm.test:8443",),
        ),
    )
    run_id = "paritytest" + str(abs(hash(tmp)) % 10_000)
    site = RunSite(
        project=f"sandbox-{run_id}",
        workspace=tmp / "ws",
        uid=1234,
        gid=2345,
        internal_subnet="10.231.77.0/24",
        egress_network=f"sandbox-parity-egress-{run_id}",  # the test's own, so it can remove it
        labels={"sandbox.run": run_id, "sandbox.owner": "1:1", "sandbox.host": "parity"},
    )
    ctx = render_context(plan, cfg, site)
    ctx.write(tmp / "ctx")
    return tmp / "ctx", ctx


def compose_config(directory: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["docker", "compose", "-f", str(directory / "compose.yaml"), "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def test_compose_config_equals_the_translation(rendered: tuple[Path, Any]) -> None:
    directory, _ = rendered
    reference = compose_config(directory)
    ours = load_compose(directory / "compose.yaml")
    assert ours.name == reference["name"]
    for key, net in reference["networks"].items():
        spec = ours.networks[key]
        assert spec.name == net["name"]
        assert spec.external == bool(net.get("external", False))
        if spec.external:
            continue
        assert spec.internal == bool(net.get("internal", False))
        assert spec.enable_ipv6 == bool(net.get("enable_ipv6", False))
        configs = (net.get("ipam") or {}).get("config") or [{}]
        assert spec.subnet == configs[0].get("subnet") and spec.ip_range == configs[0].get("ip_range")
        assert dict(spec.labels) == net.get("labels", {})
        assert dict(spec.options) == net.get("driver_opts", {})
    # The Expert's network gives the host no address: nothing on the host is routable from the sandbox.
    assert ours.networks["internal"].options == {"com.docker.network.bridge.inhibit_ipv4": "true"}
    # The proxies' egress side is shared (kept between runs), never the Expert's.
    assert ours.networks["egress"].external and not ours.networks["internal"].external
    assert set(ours.services) == set(reference["services"])
    for key, svc in reference["services"].items():
        cspec = ours.services[key]
        assert cspec.image == svc["image"]
        assert cspec.user == svc.get("user")
        assert cspec.read_only == bool(svc.get("read_only", False))
        assert list(cspec.cap_drop) == svc.get("cap_drop", [])
        assert list(cspec.cap_add) == svc.get("cap_add", [])
        assert list(cspec.security_opt) == svc.get("security_opt", [])
        assert [f"{p}:{o}" for p, o in cspec.tmpfs.items()] == svc.get("tmpfs", [])
        assert [(m.source, m.target, m.read_only) for m in cspec.mounts] == [
            (v["source"], v["target"], bool(v.get("read_only", False))) for v in svc.get("volumes", [])
        ]
        assert dict(cspec.environment) == svc.get("environment", {})
        assert list(cspec.dns) == svc.get("dns", [])
        assert list(cspec.extra_hosts) == svc.get("extra_hosts", [])
        for ours_limit, theirs in (
            (cspec.mem_limit, svc.get("mem_limit")),
            (cspec.memswap_limit, svc.get("memswap_limit")),
        ):
            assert (parse_bytes(ours_limit) if ours_limit else None) == (int(theirs) if theirs else None)
        assert cspec.nano_cpus == (round(float(svc["cpus"]) * 1e9) if "cpus" in svc else None)
        assert cspec.pids_limit == svc.get("pids_limit")

        # Compose's JSON leaves out zero fields (`core: {}` is soft 0, hard 0) and has `single` for `core: N`.
        def pair(u: Any) -> tuple[int, int]:
            if isinstance(u, int):  # `fsize: N`
                return u, u
            return u.get("soft", u.get("single", 0)), u.get("hard", u.get("single", 0))

        theirs_ulimits = {n: pair(u) for n, u in svc.get("ulimits", {}).items()}
        assert theirs_ulimits == dict(cspec.ulimits)
        # No core dumps in either container, and no raising the limit: a core is process memory (secrets).
        assert cspec.ulimits["core"] == (0, 0)
        assert cspec.service != "expert" or "fsize" in cspec.ulimits  # the workspace quota, per file
        assert cspec.init == bool(svc.get("init", False))
        assert cspec.stdin_open == bool(svc.get("stdin_open", False))
        assert dict(cspec.labels) == svc.get("labels", {})
        networks = {ours.networks[k].name: (v or {}).get("ipv4_address") for k, v in svc["networks"].items()}
        assert {a.network: a.ipv4_address for a in cspec.networks} == networks


def test_engine_stores_what_the_translation_says(rendered: tuple[Path, Any]) -> None:
    directory, _ = rendered
    project = load_compose(directory / "compose.yaml")
    backend = DockerBackend()
    api = docker.APIClient(version="auto")
    created: list[str] = []
    networks: list[str] = []
    try:
        for net in project.networks.values():
            if net.external:
                # What a run creates for it: the shared egress network, with inter-container traffic off.
                ensure_shared_network(backend, net.name)
                ensure_shared_network(backend, net.name)  # a second run finds it: not an error
                networks.append(api.inspect_network(net.name)["Id"])
                info = api.inspect_network(networks[-1])
                assert not info["Internal"] and info["Labels"]["sandbox.role"] == "egress"
                assert info["Options"]["com.docker.network.bridge.enable_icc"] == "false"
                continue
            networks.append(backend.create_network(net))
            info = api.inspect_network(networks[-1])
            assert info["Internal"] == net.internal and info["EnableIPv6"] == net.enable_ipv6
            options = info.get("Options") or {}
            assert {k: v for k, v in options.items() if k in net.options} == dict(net.options)
            if net.subnet:
                assert info["IPAM"]["Config"][0]["Subnet"] == net.subnet
        for spec in project.services.values():
            cid = backend.create_container(replace(spec, image=BASE, command=("true",)))
            created.append(cid)
            info = api.inspect_container(cid)
            host, config = info["HostConfig"], info["Config"]
            assert config["User"] == (spec.user or "")
            assert host["ReadonlyRootfs"] == spec.read_only
            assert host["CapDrop"] == list(spec.cap_drop) and (host["CapAdd"] or []) == list(spec.cap_add)
            assert host["SecurityOpt"] == list(spec.security_opt)
            assert host["Tmpfs"] == dict(spec.tmpfs)
            assert (host["Dns"] or []) == list(spec.dns)
            assert (host["ExtraHosts"] or []) == list(spec.extra_hosts)
            assert spec.mem_limit is not None
            assert host["Memory"] == parse_bytes(spec.mem_limit) and host["NanoCpus"] == (spec.nano_cpus or 0)
            assert host["PidsLimit"] == spec.pids_limit
            ulimits = {u["Name"]: (u["Soft"], u["Hard"]) for u in host.get("Ulimits") or []}
            assert ulimits == dict(spec.ulimits)
            assert spec.ulimits["core"] == (0, 0)
            assert bool(host.get("Init")) == spec.init
            assert config["OpenStdin"] == spec.stdin_open and config["StdinOnce"] == spec.stdin_open
            assert not host.get("Privileged") and host.get("NetworkMode") != "host"
            mounts = [(m["Source"], m["Target"], m.get("ReadOnly", False)) for m in host.get("Mounts") or []]
            assert mounts == [(m.source, m.target, m.read_only) for m in spec.mounts]
            env = dict(e.split("=", 1) for e in config["Env"] or [])
            for name, value in spec.environment.items():
                assert env[name] == value
            attached = info["NetworkSettings"]["Networks"]
            assert set(attached) == {a.network for a in spec.networks}
            for attachment in spec.networks:
                wanted = attachment.ipv4_address
                got = (attached[attachment.network].get("IPAMConfig") or {}).get("IPv4Address")
                assert got == wanted or (wanted is None and not got)
    finally:
        for cid in created:
            backend.remove_container(cid)
        for nid in networks:
            backend.remove_network(nid)
        backend.close()
        api.close()
