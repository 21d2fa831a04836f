"""The README's first command: run the example Expert (examples/time-keeper) in the Docker sandbox, then say
in a few lines what happened.

With a provider key (ANTHROPIC_API_KEY in the environment or in examples/time-keeper/.env) the real provider
answers. Without one, on a fresh offline machine, the package's scripted model server answers instead: it
runs in a container on the sandbox's egress side and is reached only through the sandbox's proxy, over
HTTPS, exactly as a provider is (`sandbox.docker._testkit`, which the docker tests and the benchmark use).
The summary says plainly which of the two it was.

Usage: .venv/bin/python scripts/demo.py [--workspace DIR] [extra `sandbox run` flags...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "time-keeper"
QUERY = "What time is it in Tokyo right now? Also add 2 and 3."
SCRIPTED_KEY = "scripted-demo-key-not-a-real-one"
# Where the demo keeps its workspace, events and the scripted project (tests point it at a temp dir).
STATE = Path(os.environ.get("SANDBOX_DEMO_DIR") or ROOT / ".cache")


def _has_key() -> bool:
    """Whether the run will have a key: the environment, or the env files `sandbox run` reads there."""
    from sandbox.config import DEFAULT_ENV_PATH, load_env_files

    if os.environ.get("ANTHROPIC_API_KEY"):
        return True
    return bool(load_env_files(list(DEFAULT_ENV_PATH), EXAMPLE).get("ANTHROPIC_API_KEY"))


BASE_IMAGE = os.environ.get("SANDBOX_BASE_IMAGE", "sandbox-base:bookworm")
NODE_IMAGE = os.environ.get("SANDBOX_NODE_IMAGE", "sandbox-node:22")


def _workspace(path: str | None) -> Path:
    """A workspace of the Expert's own (not the example's directory, where perstack.toml and .env live),
    owned by an ordinary user: as root, `sandbox run` never starts the Expert as root by default."""
    workspace = Path(path) if path else STATE / "demo-workspace"
    workspace.mkdir(parents=True, exist_ok=True)
    if os.getuid() == 0 and not os.environ.get("SANDBOX_USER"):
        os.chown(workspace, 1000, 1000)
    return workspace


def _run(cwd: Path, flags: list[str], env: dict[str, str], events_path: Path) -> int:
    exe = Path(sys.executable).parent / "sandbox"
    argv = [str(exe), "run", "time-keeper", QUERY, "--runtime", "docker", *flags]
    with events_path.open("w") as out:
        return subprocess.run(argv, cwd=cwd, env=env, stdout=out, check=False).returncode


def _short(text: str, words: int = 14) -> str:
    parts = text.split()
    return " ".join(parts[:words]) + (" ..." if len(parts) > words else "")


def _summary(events_path: Path, *, scripted: bool, project: Path) -> list[str]:
    events: list[dict[str, Any]] = []
    for line in events_path.read_text().splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    tools = [
        f"{c['skillName']}/{c['toolName']}"
        for e in events
        if e["type"] == "callTools"
        for c in e["toolCalls"]
    ]
    allowed = sorted(
        {
            f"{e['domain']}:{e['port']}"
            for e in events
            if e["type"] == "proxyAccess" and e["action"] == "allowed"
        }
    )
    blocked = sorted(
        {
            f"{e['domain']}:{e['port']}"
            for e in events
            if e["type"] == "proxyAccess" and e["action"] == "blocked"
        }
    )
    results = [
        (f"{r['skillName']}/{r['toolName']}", _short(" ".join(p.get("text", "") for p in r["result"])))
        for e in events
        if e["type"] == "resolveToolResults"
        for r in e["toolResults"]
    ]
    done = [e for e in events if e["type"] == "completeRun"]
    job = events[0]["jobId"] if events else None
    lines = [
        "",
        "== what happened",
        "model: "
        + (
            "the package's scripted model server (no provider key was set)"
            if scripted
            else "the real provider"
        ),
        "tools the Expert ran: " + (", ".join(tools) or "none"),
        *(f"  {name}: {text}" for name, text in results),
        "the proxy allowed: " + (", ".join(allowed) or "nothing"),
        "the proxy blocked: " + (", ".join(blocked) or "nothing"),
        "answer: " + (done[-1].get("text") or "(none)" if done else "(the run did not complete)"),
    ]
    if job:
        lines.append(f"job: {project / 'perstack' / 'jobs' / job} (resume with `sandbox run ... --continue`)")
    lines.append(f"events (JSON lines): {events_path}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace")
    args, extra = parser.parse_known_args(argv)
    STATE.mkdir(parents=True, exist_ok=True)
    workspace = _workspace(args.workspace)
    flags = ["--workspace", str(workspace), "--base-image", BASE_IMAGE, "--node-image", NODE_IMAGE, *extra]
    events_path = STATE / "demo-events.jsonl"
    env = dict(os.environ)
    if _has_key():
        if os.environ.get("SSL_CERT_FILE"):
            flags += ["--ca-cert", os.environ["SSL_CERT_FILE"]]
        code = _run(EXAMPLE, flags, env, events_path)
        print("\n".join(_summary(events_path, scripted=False, project=EXAMPLE)))
        return code
    return _scripted(workspace, flags, env, events_path)


def _scripted(workspace: Path, flags: list[str], env: dict[str, str], events_path: Path) -> int:
    import docker

    from sandbox.docker._testkit import Harness, llm_tls
    from sandbox.testing import Expectation, ToolCall, Turn

    print(
        "sandbox demo: no provider key is set; the package's scripted model server answers instead",
        flush=True,
    )
    client = docker.APIClient(version="auto", timeout=300)
    work = STATE / "demo-scripted"
    project = work / "project"
    project.mkdir(parents=True, exist_ok=True)
    harness = Harness(client=client, tls=llm_tls(), base_image=BASE_IMAGE, node_image=NODE_IMAGE)
    llm = harness.start(work)
    try:
        toml = (EXAMPLE / "perstack.toml").read_text()
        marker = '[provider]\nproviderName = "anthropic"\n'
        assert marker in toml, "examples/time-keeper/perstack.toml changed its [provider] table"
        toml = toml.replace(marker, f'{marker}\n[provider.setting]\nbaseUrl = "{llm.base_url}"\n')
        (project / "perstack.toml").write_text(toml)
        llm.remote().set_script(
            [
                Turn(
                    tool_calls=[
                        ToolCall("get_current_time", {"timezone": "Asia/Tokyo"}),
                        ToolCall("get-sum", {"a": 2, "b": 3}),
                    ],
                    expect=Expectation(tools_include=["get_current_time", "get-sum", "attemptCompletion"]),
                ),
                Turn(
                    tool_calls=[ToolCall("attemptCompletion", {})],
                    expect=Expectation(tool_result_contains=["Asia/Tokyo", "The sum of 2 and 3 is 5"]),
                ),
                Turn("(scripted) Here is the time in Tokyo, and 2 + 3 = 5."),
            ]
        )
        # The sandbox trusts the scripted server's CA and may reach exactly its host and port.
        reach = [
            "--ca-cert",
            str(harness.tls.bundle),
            "--add-host",
            llm.add_host,
            "--allow-private",
            llm.allow_private,
        ]
        run_flags = [*flags, *reach]
        code = _run(project, run_flags, {**env, "ANTHROPIC_API_KEY": SCRIPTED_KEY}, events_path)
        print("\n".join(_summary(events_path, scripted=True, project=project)))
        return code
    finally:
        harness.stop()
        client.close()


if __name__ == "__main__":
    raise SystemExit(main())
