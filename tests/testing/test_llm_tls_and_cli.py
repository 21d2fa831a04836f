"""TLS with a trustme CA, and the standalone CLI started as a subprocess and driven over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from sandbox.testing import (
    Expectation,
    RemoteLLMServer,
    Script,
    ScriptedLLMServer,
    ToolCall,
    Turn,
    make_tls_files,
)
from sandbox.testing.pytest_plugin import LLMServerFactory

HELLO: list[Any] = [{"role": "user", "content": "hello"}]
REPO = Path(__file__).resolve().parents[2]


def test_tls_server_is_trusted_only_with_its_ca(llm_server: LLMServerFactory) -> None:
    srv = llm_server([Turn("over tls"), Turn("again over tls")], tls=True)
    assert srv.base_url.startswith("https://127.0.0.1:")
    ca = srv.client_ssl_context()
    assert srv.ca_pem_path.read_text().startswith("-----BEGIN CERTIFICATE-----")
    with pytest.raises(httpx.ConnectError):  # the system trust store does not know this CA
        httpx.get(srv.base_url + "/v1/models")
    with httpx.Client(verify=ca) as http:
        assert http.get(srv.base_url + "/v1/models").status_code == 200
    c = anthropic.Anthropic(
        base_url=srv.base_url, api_key="k", max_retries=0, http_client=anthropic.DefaultHttpxClient(verify=ca)
    )
    assert c.messages.create(model="m", max_tokens=8, messages=HELLO).content[0].type == "text"
    o = openai.OpenAI(
        base_url=srv.openai_base_url,
        api_key="k",
        max_retries=0,
        http_client=openai.DefaultHttpxClient(verify=ca),
    )
    with o.chat.completions.stream(model="m", messages=HELLO) as stream:
        assert stream.get_final_completion().choices[0].message.content == "again over tls"


def test_tls_certificate_covers_given_hostnames(llm_server: LLMServerFactory) -> None:
    srv = llm_server(tls=True, hostnames=["localhost"])  # no 127.0.0.1 in the certificate
    with httpx.Client(verify=srv.client_ssl_context()) as http:
        assert http.get(f"https://localhost:{srv.port}/v1/models").status_code == 200
        with pytest.raises(httpx.ConnectError, match=r"(?i)certificate|hostname|IP address mismatch"):
            http.get(srv.base_url + "/v1/models")


def test_stop_releases_port_and_tls_files() -> None:
    srv = ScriptedLLMServer([Turn("x")], tls=True).start()
    port, ca = srv.port, srv.ca_pem_path
    srv.stop()
    assert not ca.exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"https://127.0.0.1:{port}/v1/models", verify=False)
    with pytest.raises(RuntimeError, match="not started"):
        _ = srv.base_url


class Standalone:
    """A `python -m sandbox.testing.llm_server` subprocess and the base URL it printed."""

    def __init__(self, args: list[str]) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sandbox.testing.llm_server", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        assert self.process.stdout is not None
        self.base_url = self.process.stdout.readline().strip()

    def stop(self) -> str:
        self.process.terminate()
        _, err = self.process.communicate(timeout=15)
        return err


@pytest.fixture
def standalone() -> Iterator[list[Standalone]]:
    started: list[Standalone] = []
    yield started
    for proc in started:
        if proc.process.poll() is None:
            proc.stop()


def test_cli_serves_script_file_and_exposes_requests(tmp_path: Path, standalone: list[Standalone]) -> None:
    script = Script(
        [
            Turn(
                tool_calls=[ToolCall("bash", {"cmd": "ls"})], expect=Expectation(system_contains=["in a box"])
            ),
            Turn("listed", expect=Expectation(tool_result_contains=["a.txt"])),
        ]
    )
    path = script.dump(tmp_path / "script.json")
    server = Standalone(["--script", str(path), "--host", "127.0.0.1", "--require-key", "sk-cli"])
    standalone.append(server)
    assert server.base_url.startswith("http://127.0.0.1:"), server.process.stderr
    remote = RemoteLLMServer(server.base_url)
    remote.wait_ready()

    c = anthropic.Anthropic(base_url=server.base_url, api_key="sk-cli", max_retries=0)
    first = c.messages.create(model="m", max_tokens=8, system="You run in a box.", messages=HELLO)
    tool_use = first.content[0]
    assert tool_use.type == "tool_use" and tool_use.input == {"cmd": "ls"}
    o = openai.OpenAI(base_url=server.base_url + "/v1", api_key="sk-cli", max_retries=0)
    tool_call = {"id": tool_use.id, "type": "function", "function": {"name": "bash", "arguments": "{}"}}
    messages: list[Any] = [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": None, "tool_calls": [tool_call]},
        {"role": "tool", "tool_call_id": tool_use.id, "content": "a.txt\nb.txt"},
    ]
    assert o.chat.completions.create(model="m", messages=messages).choices[0].message.content == "listed"

    raw = httpx.get(server.base_url + "/_sandbox/requests").json()
    assert [r["protocol"] for r in raw["requests"]] == ["anthropic", "openai"]
    assert raw["requests"][0]["headers"]["anthropic-version"]
    assert raw["requests"][1]["body"]["messages"][2]["content"] == "a.txt\nb.txt"
    assert raw["unexpected"] == [] and raw["pending"] == []
    recorded = remote.requests
    assert [r.api_key for r in recorded] == ["sk-cli", "sk-cli"]
    assert recorded[1].tool_results == ("a.txt\nb.txt",)
    assert recorded[0].turn is not None and recorded[0].turn.tool_calls[0].name == "bash"
    remote.assert_all_served()

    # Host side replaces the script; the key is still enforced.
    remote.set_script([Turn("second script")])
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=server.base_url, api_key="wrong", max_retries=0).messages.create(
            model="m", max_tokens=8, messages=HELLO
        )
    assert [u.kind for u in remote.unexpected] == ["auth"]
    with pytest.raises(AssertionError, match=r"(?s)auth: invalid API key.*turn 0 was never served"):
        remote.assert_all_served()
    assert c.messages.create(model="m", max_tokens=8, messages=HELLO).content[0].type == "text"
    assert "sk-cli" not in server.stop()  # the key is not logged


def test_cli_with_tls_files(tmp_path: Path, standalone: list[Standalone]) -> None:
    files = make_tls_files(tmp_path / "tls", ["llm.internal", "127.0.0.1"])
    server = Standalone(["--tls-cert", str(files.cert_pem), "--tls-key", str(files.key_pem)])
    standalone.append(server)
    assert server.base_url.startswith("https://127.0.0.1:")
    remote = RemoteLLMServer(server.base_url, verify=str(files.ca_pem))
    remote.wait_ready()
    assert remote.requests == []
    remote.set_script([Turn("hello over tls", thinking="hm")])
    with (
        anthropic.Anthropic(
            base_url=server.base_url,
            api_key="k",
            max_retries=0,
            http_client=anthropic.DefaultHttpxClient(verify=files.client_ssl_context()),
        ) as c,
        c.messages.stream(model="m", max_tokens=8, messages=HELLO) as stream,
    ):
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    remote.assert_all_served()


def test_cli_rejects_bad_script(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"turns": [{"txt": "typo"}], "version": 1}))
    result = subprocess.run(
        [sys.executable, "-m", "sandbox.testing.llm_server", "--script", str(bad), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 1
    assert "txt" in result.stderr and result.stdout == ""


def test_control_api_is_off_in_process_by_default(llm_server: LLMServerFactory) -> None:
    srv = llm_server(check=False)
    assert httpx.get(srv.base_url + "/_sandbox/requests").status_code == 404
    on = llm_server(control_api=True)
    assert httpx.get(on.base_url + "/_sandbox/requests").json()["requests"] == []
