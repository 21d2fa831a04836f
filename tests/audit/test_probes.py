"""The probe program and the audit's upstream, run on the host against each other (no Docker).

The network probes must report what really happened (a refusal, a tunnel, a TLS failure), so they are run
against the real upstream program and a small CONNECT proxy in this process. The resource and privilege
probes refuse to run outside a container; that refusal is tested here, the probes themselves in the docker
suite (tests/audit/test_audit_docker.py).
"""

from __future__ import annotations

import base64
import json
import os
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.audit import _probes as probes
from sandbox.audit._upstream import PREFIX

UPSTREAM_PY = Path(probes.__file__).with_name("_upstream.py")
NONCE = "n0nce"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Upstream:
    def __init__(self) -> None:
        self.tls, self.http, self.banner = free_port(), free_port(), free_port()
        self.udp, self.dns = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(UPSTREAM_PY),
                "--nonce",
                NONCE,
                "--name",
                "up.sandbox-audit.test",
                "--name",
                "other.sandbox-audit.test",
                "--tls",
                str(self.tls),
                "--http",
                str(self.http),
                "--banner",
                str(self.banner),
                "--udp",
                str(self.udp),
                "--dns",
                str(self.dns),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.lines: list[str] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().strip()
            self.lines.append(line)
            if line == PREFIX + "ready":
                break
        ca_line = next(line for line in self.lines if line.startswith(PREFIX + "ca "))
        self.ca = base64.b64decode(ca_line.split()[-1]).decode()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    yield up
    up.close()


class TinyProxy:
    """A CONNECT proxy for tests: tunnels to the upstream for `allowed` names, 403 otherwise."""

    def __init__(self, allowed: dict[str, tuple[str, int]]) -> None:
        self.allowed = allowed
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            if method != "CONNECT" or target not in self.allowed:
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            with socket.create_connection(self.allowed[target]) as up:
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                pair = {conn: up, up: conn}
                while True:
                    ready, _, _ = select.select(list(pair), [], [], 5)
                    if not ready:
                        return
                    for s in ready:
                        data = s.recv(65536)
                        if not data:
                            return
                        pair[s].sendall(data)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[TinyProxy]:
    p = TinyProxy(
        {
            "up.sandbox-audit.test:443": ("127.0.0.1", upstream.tls),
            "up.sandbox-audit.test:22": ("127.0.0.1", upstream.banner),
        }
    )
    yield p
    p.close()


def tls(upstream: Upstream, sni: str | None, *, verify: bool = True) -> dict[str, object]:
    return {"sni": sni, "verify": verify, "cadata": upstream.ca, "hostHeader": sni, "path": "/audit/t"}


# ---- pure helpers ----------------------------------------------------------------------------------------


def test_dns_query_and_reply() -> None:
    query = probes.build_dns_query("a.b.example", qid=0x1234)
    assert query[:2] == b"\x12\x34" and b"\x01a\x01b\x07example\x00" in query
    reply = b"\x12\x34" + struct.pack("!HHHHH", 0x8183, 1, 0, 0, 0)
    assert probes.parse_dns_reply(reply, 0x1234) == {"valid": True, "rcode": 3, "answers": 0}
    assert probes.parse_dns_reply(reply, 0x9999)["valid"] is False
    assert probes.parse_dns_reply(b"\x00", 1) == {"valid": False}


def test_icmp_checksum() -> None:
    # RFC 1071's example words sum to 0xddf2; the checksum is its complement.
    assert probes.icmp_checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D
    packet = struct.pack("!BBHHH", 8, 0, 0, 1, 1) + b"x"
    checksum = probes.icmp_checksum(packet)
    assert probes.icmp_checksum(packet[:2] + struct.pack("!H", checksum) + packet[4:]) == 0


def test_mountinfo_parsing() -> None:
    text = (
        "1 0 0:1 / / ro,relatime - overlay overlay rw,lowerdir=x\n"
        "2 1 254:1 /host/ws\\040dir /workspace rw,relatime - ext4 /dev/vda rw\n"
        "garbage line\n"
    )
    rows = probes.parse_mountinfo(text)
    assert rows[1] == {
        "mountPoint": "/workspace",
        "root": "/host/ws dir",
        "options": "rw,relatime",
        "fstype": "ext4",
        "source": "/dev/vda",
        "superOptions": "rw",
    }
    assert len(rows) == 2


def test_resource_and_privilege_probes_refuse_to_run_on_a_host() -> None:
    assert not probes.in_container()
    out: list[dict[str, object]] = []
    batch = [
        {"id": k, "kind": k, "maxProcs": 10, "maxBytes": 1, "path": "/tmp"} for k in probes.SEQUENTIAL_KINDS
    ]
    probes.run_batch({"probes": [*batch, {"id": "r", "kind": "resolve", "name": "localhost"}]}, out.append)
    results = {o["id"]: o["data"] for o in out if o["type"] == "result"}
    for kind in probes.SEQUENTIAL_KINDS:
        assert "refused" in results[kind]["error"]  # type: ignore[index]
    assert results["r"]["addresses"]  # type: ignore[index]


def test_the_program_speaks_json_lines() -> None:
    payload = {"probes": [{"id": "a", "kind": "resolve", "name": "localhost"}, {"id": "b", "kind": "nope"}]}
    proc = subprocess.run(
        [sys.executable, "-m", "sandbox.audit._probes"],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["type"] for line in lines] == ["hello", "result", "result", "done"]
    assert "probe crashed" in lines[2]["data"]["error"]
    bad = subprocess.run(
        [sys.executable, "-m", "sandbox.audit._probes"],
        input="{",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(bad.stdout)["type"] == "fatal"


def test_the_program_imports_only_the_standard_library() -> None:
    """It runs in the helper image, where nothing but the standard library exists."""
    code = (
        "import sys, json; before = set(sys.modules); import sandbox.audit._probes; "
        "new = set(sys.modules) - before; "
        "print(json.dumps(sorted(m for m in new if m.split('.')[0] not in sys.stdlib_module_names)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == ["sandbox", "sandbox.audit", "sandbox.audit._probes"]


# ---- network probes against the real upstream -----------------------------------------------------------


def test_direct_tls_with_a_verified_chain(upstream: Upstream) -> None:
    r = probes.probe_tcp(
        {"host": "127.0.0.1", "port": upstream.tls, "tls": tls(upstream, "up.sandbox-audit.test")}
    )
    assert r["connected"] and r["tls"]["ok"], r
    assert r["http"]["status"] == 200 and f"nonce={NONCE}" in r["http"]["body"]
    assert "sni=up.sandbox-audit.test" in r["http"]["body"]
    wrong = probes.probe_tcp(
        {"host": "127.0.0.1", "port": upstream.tls, "tls": tls(upstream, "evil.example")}
    )
    assert wrong["connected"] and not wrong["tls"]["ok"]  # the name is not on the certificate


def test_connect_through_a_proxy(upstream: Upstream, proxy: TinyProxy) -> None:
    address = f"127.0.0.1:{proxy.port}"
    ok = probes.probe_proxy_connect(
        {
            "proxy": address,
            "target": "up.sandbox-audit.test:443",
            "tls": tls(upstream, "up.sandbox-audit.test"),
        }
    )
    assert ok["status"] == 200 and ok["http"]["status"] == 200 and NONCE in ok["http"]["body"]
    refused = probes.probe_proxy_connect({"proxy": address, "target": "2130706433:443"})
    assert refused["status"] == 403 and "http" not in refused
    banner = probes.probe_proxy_connect(
        {"proxy": address, "target": "up.sandbox-audit.test:22", "read": True}
    )
    assert banner["after"].startswith(f"SSH-2.0-sandbox-audit-{NONCE}")
    mismatch = probes.probe_proxy_connect(
        {
            "proxy": address,
            "target": "up.sandbox-audit.test:443",
            "tls": tls(upstream, "other.sandbox-audit.test", verify=False),
        }
    )
    assert (
        "sni=other.sandbox-audit.test" in mismatch["http"]["body"]
    )  # a proxy without SNI check lets it pass
    plain = probes.probe_proxy_http(
        {"proxy": address, "url": "http://up.sandbox-audit.test/x", "headers": {"Metadata": "true"}}
    )
    assert plain["status"] == 403
    gone = probes.probe_proxy_connect({"proxy": f"127.0.0.1:{free_port()}", "target": "x:443", "timeout": 2})
    assert gone["status"] is None and gone["error"].startswith("ECONNREFUSED")


def test_urllib_with_and_without_the_proxy(upstream: Upstream, proxy: TinyProxy) -> None:
    via = probes.probe_urllib(
        {
            "proxy": f"http://127.0.0.1:{proxy.port}",
            "url": "https://up.sandbox-audit.test/u",
            "cadata": upstream.ca,
        }
    )
    assert via["status"] == 200 and NONCE in via["body"], via
    direct = probes.probe_urllib({"url": "https://up.sandbox-audit.test.invalid/u", "timeout": 3})
    assert direct["status"] is None and direct["error"]


def test_udp_dns_and_many(upstream: Upstream) -> None:
    echo = probes.probe_udp({"host": "127.0.0.1", "port": upstream.udp})
    assert bytes.fromhex(echo["reply"]).decode().endswith(NONCE)
    silent = probes.probe_udp({"host": "127.0.0.1", "port": free_port(socket.SOCK_DGRAM), "timeout": 0.5})
    assert silent["reply"] is None
    answered = probes.probe_dns(
        {"server": "127.0.0.1", "port": upstream.dns, "qname": "q-1.sandbox-audit.test"}
    )
    assert answered["answered"] and answered["rcode"] == 3
    deadline = time.monotonic() + 5
    while not any("qname=q-1.sandbox-audit.test" in line for line in upstream.lines):
        assert time.monotonic() < deadline, upstream.lines
        time.sleep(0.05)
    many = probes.probe_tcp_many({"targets": [["127.0.0.1", upstream.http], ["127.0.0.1", free_port()]]})
    assert many["connected"] == [f"127.0.0.1:{upstream.http}"] and many["count"] == 2


# ---- filesystem and environment --------------------------------------------------------------------------


def test_files_writes_and_stats(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("has MARK inside")
    read = probes.probe_read_files(
        {
            "paths": [str(tmp_path / "f"), str(tmp_path / "missing"), str(tmp_path)],
            "markers": ["MARK", "nope"],
        }
    )
    assert read[str(tmp_path / "f")]["markers"] == ["MARK"]
    assert read[str(tmp_path / "missing")]["error"].startswith("ENOENT")
    assert read[str(tmp_path)]["dir"] is True
    locked = tmp_path / "ro"
    locked.mkdir(mode=0o500)
    writes = probes.probe_write_paths({"dirs": [str(tmp_path), str(tmp_path / "nowhere")]})
    assert writes[str(tmp_path)]["ok"] and not writes[str(tmp_path / "nowhere")]["ok"]
    stats = probes.probe_stat_paths({"paths": [str(tmp_path)]})
    st = os.stat(tmp_path)
    assert (stats[str(tmp_path)]["dev"], stats[str(tmp_path)]["ino"]) == (st.st_dev, st.st_ino)


def test_environ_scan_finds_values_by_hash_never_by_content() -> None:
    secret = "sk-test-" + os.urandom(8).hex()
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)"], env={**os.environ, "SOME_KEY": secret}
    )
    try:
        import hashlib

        digest = hashlib.sha256(secret.encode()).hexdigest()
        r = probes.probe_environ({}, {"ANTHROPIC_API_KEY": secret}, [digest])
        assert f"host value in /proc/{child.pid}/environ: {digest}" in r["hits"]
        assert f"canary ANTHROPIC_API_KEY in /proc/{child.pid}/environ" in r["hits"]
        assert secret not in json.dumps(r)
    finally:
        child.kill()
        child.wait()
