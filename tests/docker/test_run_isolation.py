"""Isolation of a running sandbox, every "blocked" paired with its control.

One run of an Expert whose scripted model calls the base skill's `exec` with a probe script, so the probes
run where an Expert's code runs (inside the sandbox, with the environment the runtime gives tools). While
the run waits on a delayed model turn, the host checks what leaks where: `docker inspect`, image history,
the rendered files, every process's argv on the host and every sandbox process's environment. Then the
probe results, the proxy's decisions and the job files are checked.

Pairs:
* allowlisted name through the proxy: reachable  <->  a name not on the allowlist: refused (403);
* the LLM server by name through the proxy: reachable  <->  the same server by IP, through the proxy:
  refused (IP literal), and directly without the proxy: no route;
* no outside name resolves inside (example.com, llm.test)  <->  the proxy resolves llm.test (the first pair).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from sandbox.docker._testkit import Harness, base_env, module_harness
from sandbox.testing import Expectation, ToolCall, Turn

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SECRET = "sk-ant-iso-SECRET-93e1f0aa"
UNRELATED = "unrelated-host-value-5c2d"
PROBE = r"""
import json, os, socket, ssl, urllib.request
PORT, GW = {port}, "{gw}"
def fetch(url, proxy=True):
    handlers = [urllib.request.HTTPSHandler(context=ssl.create_default_context())]
    if not proxy:
        handlers.append(urllib.request.ProxyHandler({{}}))
    try:
        return "ok %d" % urllib.request.build_opener(*handlers).open(url, timeout=10).status
    except Exception as e:
        return "err %s: %s" % (type(e).__name__, e)
def tcp(host, port):
    try:
        socket.create_connection((host, port), timeout=3).close()
        return "connected"
    except Exception as e:
        return "err %s" % type(e).__name__
def dns(name):
    try:
        return "resolved " + socket.gethostbyname(name)
    except Exception as e:
        return "err %s" % type(e).__name__
print(json.dumps({{
    "allowlisted": fetch("https://llm.test:%d/_sandbox/health" % PORT),
    "not_allowlisted": fetch("https://example.com/"),
    "ip_literal": fetch("https://%s:%d/_sandbox/health" % (GW, PORT)),
    "direct_gateway": tcp(GW, PORT),
    "direct_public": tcp("1.1.1.1", 443),
    "dns_outside": dns("example.com"),
    "dns_llm": dns("llm.test"),
    "env_names": sorted(os.environ),
}}))
"""


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    yield from module_harness(tmp_path_factory.mktemp("llm"))


def proc_texts(pids: list[int], what: str) -> str:
    out = []
    for pid in pids:
        try:
            out.append(Path(f"/proc/{pid}/{what}").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return "\n".join(out)


def all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def files_text(root: Path) -> str:
    return "\n".join(p.read_bytes().decode(errors="replace") for p in root.rglob("*") if p.is_file())


def test_isolation_and_secret_hygiene(harness: Harness, tmp_path: Path) -> None:
    llm = harness.llm
    assert llm is not None
    project = tmp_path / "project"
    harness.write_project(project, '\n[experts."probe"]\nversion = "1.0.0"\ninstruction = "Probe."\n')
    probe = PROBE.format(port=llm.host_port, gw=llm.gateway)
    llm.remote().set_script(
        [
            Turn(
                tool_calls=[ToolCall("exec", {"command": "python3", "args": ["-c", probe], "timeout": 60000})]
            ),
            Turn("probed", delay_s=6, expect=Expectation(tool_result_contains=["allowlisted"])),
        ]
    )
    env = base_env(tmp_path, ANTHROPIC_API_KEY=SECRET, UNRELATED_TOKEN=UNRELATED)
    exe = Path(__import__("sys").executable).parent / "sandbox"
    job = "isojob" + str(int(time.time()))
    argv = [str(exe), "run", "probe", "go", "--job-id", job, *harness.sandbox_flags()]
    proc = subprocess.Popen(
        argv, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    api = docker.APIClient(version="auto")
    seen: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            found = api.containers(filters={"label": [f"sandbox.job={job}"]})
            roles = {c["Labels"].get("sandbox.role"): c["Id"] for c in found}
            requests = llm.remote().requests
            if {"expert", "proxy"} <= set(roles) and len(requests) >= 2:
                seen["roles"] = roles
                seen["inspect"] = {r: api.inspect_container(cid) for r, cid in roles.items()}
                seen["pids"] = [
                    int(row[0])
                    for cid in roles.values()
                    for row in api.top(cid, ps_args="-eo pid")["Processes"]
                ]
                seen["argv_all"] = proc_texts(all_pids(), "cmdline")
                seen["environ_sandbox"] = proc_texts(seen["pids"], "environ")
                run_dirs = list((Path(env["TMPDIR"])).glob("sandbox-run-*"))
                seen["run_dirs"] = run_dirs
                seen["rendered"] = "\n".join(files_text(d) for d in run_dirs)
                break
            time.sleep(0.2)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert "inspect" in seen, "never saw the sandbox running"

    # --- secrets: nowhere but the Expert's private memory --------------------------------------------
    expert_info, proxy_info = seen["inspect"]["expert"], seen["inspect"]["proxy"]
    for text in (json.dumps(seen["inspect"]), seen["argv_all"], seen["environ_sandbox"], seen["rendered"]):
        assert SECRET not in text
        assert UNRELATED not in text
    assert seen["rendered"] and seen["run_dirs"]
    for image in (expert_info["Config"]["Image"], proxy_info["Config"]["Image"]):
        history = subprocess.run(
            ["docker", "history", "--no-trunc", image], capture_output=True, text=True, check=True
        )
        assert SECRET not in history.stdout
        assert SECRET not in json.dumps(api.inspect_image(image))  # type: ignore[no-untyped-call]
    assert SECRET not in files_text(project / "perstack")
    assert SECRET not in out  # the event stream never carries the key

    # --- the container's environment is exactly the image's plus the plan's infrastructure names ----
    image_env = {
        e.split("=", 1)[0]
        for e in api.inspect_image(expert_info["Config"]["Image"])["Config"]["Env"]  # type: ignore[no-untyped-call]
    }
    proxies = {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"}
    compose_env = proxies | {n.lower() for n in proxies} | {
        "NPM_CONFIG_PROXY", "NPM_CONFIG_HTTPS_PROXY", "HOME", "SANDBOX_CONFIG", "SANDBOX_PROXY_URL",
    }  # fmt: skip
    container_env = {e.split("=", 1)[0] for e in expert_info["Config"]["Env"]}
    assert container_env == image_env | compose_env
    assert expert_info["HostConfig"]["CapDrop"] == ["ALL"] and expert_info["HostConfig"]["ReadonlyRootfs"]
    assert proxy_info["HostConfig"]["CapDrop"] == ["ALL"] and proxy_info["HostConfig"]["ReadonlyRootfs"]
    assert proxy_info["Config"]["User"] not in ("", "root", "0", "0:0")
    assert not any("docker.sock" in m["Source"] for m in expert_info["Mounts"])
    mounts = {m["Destination"]: m for m in expert_info["Mounts"]}
    # The workspace, the Expert's config, and an empty read-only file over the host's perstack.toml.
    assert set(mounts) == {"/workspace", "/sandbox/expert", "/workspace/perstack.toml"}
    mask = mounts["/workspace/perstack.toml"]
    assert not mask["RW"] and mask["Source"].endswith("/mask/empty")
    assert list(expert_info["NetworkSettings"]["Networks"]) == [
        n for n in expert_info["NetworkSettings"]["Networks"] if n.endswith("_internal")
    ]

    # --- the probes, from inside ---------------------------------------------------------------------
    result_text = next(r for r in llm.remote().requests[1].tool_results if "allowlisted" in r)
    probes = json.loads(result_text[result_text.index("{") : result_text.rindex("}") + 1])
    assert probes["allowlisted"] == "ok 200", probes
    assert probes["not_allowlisted"].startswith("err") and "403" in probes["not_allowlisted"], probes
    assert probes["ip_literal"].startswith("err") and "403" in probes["ip_literal"], probes
    assert probes["direct_gateway"].startswith("err"), probes  # same server, no proxy: no route
    assert probes["direct_public"].startswith("err"), probes
    assert probes["dns_outside"].startswith("err"), probes
    assert probes["dns_llm"].startswith("err"), probes  # only the proxy resolves names
    assert "ANTHROPIC_API_KEY" not in probes["env_names"] and "UNRELATED_TOKEN" not in probes["env_names"]

    # --- the proxy's decisions are events and an audit file ------------------------------------------
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    access = [e for e in events if e["type"] == "proxyAccess"]
    assert any(a["action"] == "allowed" and a["domain"] == "llm.test" for a in access), access
    assert any(a["action"] == "blocked" and a["domain"] == "example.com" for a in access), access
    assert any(a["action"] == "blocked" and a["domain"] == llm.gateway for a in access), access
    audit = list((project / "perstack" / "jobs" / job).rglob("proxy-access.jsonl"))
    assert audit and "example.com" in audit[0].read_text()

    # --- and nothing is left behind --------------------------------------------------------------------
    assert api.containers(all=True, filters={"label": [f"sandbox.job={job}"]}) == []
    assert api.networks(filters={"label": [f"sandbox.job={job}"]}) == []
    assert not list(Path(env["TMPDIR"]).glob("sandbox-run-*"))
    api.close()
