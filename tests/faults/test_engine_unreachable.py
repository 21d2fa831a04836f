"""Docker engine unreachable (DOCKER_HOST pointing at a dead socket or port): one clear line and exit 1.

Through the CLI's real entry point, for every command that talks to the engine. No engine is needed, so
this runs in the fast suite too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# The real entry point (`sandbox.cli.main`: one-line errors, exit codes). Commands not yet mounted on the app
# (`build`, `clean`, `audit` are exported by their modules for the lead to wire) are mounted the same way.
ENTRY = """
import sandbox.cli as c
names = {getattr(x, "name", None) for x in c.app.registered_commands}
for name, module, attr in (("build", "build", "build_command"), ("clean", "clean", "clean_command"),
                           ("audit", "audit", "audit_command")):
    if name not in names:
        import importlib
        c.app.command(name)(getattr(importlib.import_module("sandbox.cli." + module), attr))
c.main()
"""
TOML = """
model = "claude-sonnet-4-5"
[provider]
providerName = "anthropic"
[experts."plain"]
version = "1.0.0"
instruction = "Answer."
"""


def free_tcp_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("where", ["unix", "tcp"])
@pytest.mark.parametrize(
    "args",
    [
        ["run", "plain", "hi", "--runtime", "docker", "--base-image", "sandbox-base:bookworm"],
        ["build", "plain", "--base-image", "sandbox-base:bookworm"],
        ["clean"],
        ["audit", "plain", "--base-image", "sandbox-base:bookworm"],
    ],
    ids=["run", "build", "clean", "audit"],
)
def test_one_clear_line_and_exit_1(tmp_path: Path, args: list[str], where: str) -> None:
    (tmp_path / "perstack.toml").write_text(TOML)
    dead = f"unix://{tmp_path}/no-engine.sock" if where == "unix" else f"tcp://127.0.0.1:{free_tcp_port()}"
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SSL_CERT_FILE")}
    env.update({"DOCKER_HOST": dead, "ANTHROPIC_API_KEY": "sk-ant-x", "TMPDIR": str(tmp_path)})
    if os.getuid() == 0:
        env["SANDBOX_USER"] = "0:0"  # as root, the explicit opt-in (else the run refuses before the engine)
    proc = subprocess.run(
        [sys.executable, "-c", ENTRY, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Docker engine is unreachable" in lines[0] and dead.split("//")[1] in lines[0], lines[0]
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("sandbox-run-*")), "a temp dir was left behind"
