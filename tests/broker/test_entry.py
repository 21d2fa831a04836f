"""`python -m sandbox.broker` as a real process: the credential arrives on stdin only, the broker says when
it is ready, serves the SDK, and prints each decision as a line the host can read."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import anthropic
import httpx
import pytest

from sandbox.broker.__main__ import READY_LINE
from sandbox.testing import ScriptedLLMServer, Turn

KEY = "sk-ant-only-in-the-broker-1234"
TOKEN = "sandbox-broker-placeholder-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(payload: Mapping[str, object], port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.broker", "--host", "127.0.0.1", "--port", str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "SSL_CERT_FILE")},
    )
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(payload) + "\n")
    proc.stdin.close()
    return proc


@pytest.fixture
def upstream() -> Iterator[ScriptedLLMServer]:
    with ScriptedLLMServer(tls=True, require_key=KEY) as server:
        yield server


def test_the_broker_process_serves_with_a_key_only_it_holds(upstream: ScriptedLLMServer) -> None:
    port = _free_port()
    payload = {
        "provider": "anthropic",
        "setting": {"baseUrl": upstream.anthropic_base_url},
        "env": {"ANTHROPIC_API_KEY": KEY},
        "token": TOKEN,
        "caPem": Path(upstream.ca_pem_path).read_text(),
    }
    proc = _start(payload, port)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == READY_LINE
        # Nowhere but its memory: not its argv, not its environment.
        for name in ("cmdline", "environ"):
            assert KEY.encode() not in Path(f"/proc/{proc.pid}/{name}").read_bytes()
        upstream.enqueue(Turn("brokered"))
        client = anthropic.Anthropic(base_url=f"http://127.0.0.1:{port}", api_key=TOKEN, max_retries=0)
        reply = client.messages.create(
            model="claude-test", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.content[0].text == "brokered"  # type: ignore[union-attr]
        refused = httpx.post(f"http://127.0.0.1:{port}/v1/files", headers={"x-api-key": TOKEN}, timeout=10)
        assert refused.status_code == 403
        decisions = [json.loads(proc.stdout.readline())["broker"] for _ in range(2)]
        assert [(d["allowed"], d["status"], d["path"]) for d in decisions] == [
            (True, 200, "/v1/messages"),
            (False, 403, "/v1/files"),
        ]
        assert KEY not in json.dumps(decisions)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"provider": "anthropic", "env": {}, "token": TOKEN}, "no value for ANTHROPIC_API_KEY"),
        ({"provider": "anthropic", "env": {"ANTHROPIC_API_KEY": KEY}, "token": "short"}, "token"),
        ({"provider": "nope", "env": {}, "token": TOKEN}, "unknown provider"),
        ({"env": {}, "token": TOKEN}, "provider: Field required"),
    ],
)
def test_a_bad_payload_is_one_line_and_exit_2(payload: dict[str, object], message: str) -> None:
    proc = _start(payload, _free_port())
    assert proc.stderr is not None
    proc.wait(timeout=30)
    err = proc.stderr.read()
    assert proc.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sandbox broker: ") and message in lines[0]
    assert KEY not in err
