"""Run a batch of network probes concurrently and print one JSON object of results.

Usage: probe.py '<json list of probes>'. Each probe is {"id": ..., "kind": ..., ...}:

* cmd:      {"argv": [...], "timeout": s}            -> {"rc", "out", "err"}
* connect:  {"proxy": "host:port", "target": "h:p", "send": str?}
            raw CONNECT exactly as given (curl would normalise `127.1`), returns the status line and,
            with "send", what came back after sending it through the tunnel -> {"status", "after", "error"}
* resolve:  {"name": ...}                            -> {"addresses", "error"}
* tcp:      {"host": ip, "port": n}                  -> {"connected", "error"}
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def run_cmd(p: dict[str, Any]) -> dict[str, Any]:
    try:
        r = subprocess.run(
            p["argv"], capture_output=True, text=True, timeout=p.get("timeout", 20), check=False
        )
        return {"rc": r.returncode, "out": r.stdout, "err": r.stderr}
    except subprocess.TimeoutExpired:
        return {"rc": -1, "out": "", "err": "timeout"}


def run_connect(p: dict[str, Any]) -> dict[str, Any]:
    host, _, port = p["proxy"].rpartition(":")
    out: dict[str, Any] = {"status": None, "after": None, "error": None}
    try:
        with socket.create_connection((host, int(port)), timeout=p.get("timeout", 10)) as s:
            s.sendall(f"CONNECT {p['target']} HTTP/1.1\r\nHost: {p['target']}\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(4096)
                if not chunk:
                    break
                head += chunk
            out["status"] = head.split(b"\r\n", 1)[0].decode("latin-1")
            if p.get("send") is not None and " 200 " in out["status"] + " ":
                s.sendall(p["send"].encode())
                data = b""
                try:
                    while len(data) < 4096:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                except OSError as exc:
                    out["error"] = type(exc).__name__
                out["after"] = data.decode("latin-1")
    except OSError as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


def run_resolve(p: dict[str, Any]) -> dict[str, Any]:
    try:
        infos = socket.getaddrinfo(p["name"], 443, type=socket.SOCK_STREAM)
        return {"addresses": sorted({i[4][0] for i in infos}), "error": None}
    except OSError as exc:
        return {"addresses": [], "error": f"{type(exc).__name__}: {exc}"}


def run_tcp(p: dict[str, Any]) -> dict[str, Any]:
    try:
        with socket.create_connection((p["host"], int(p["port"])), timeout=p.get("timeout", 5)):
            return {"connected": True, "error": None}
    except OSError as exc:
        return {"connected": False, "error": f"{type(exc).__name__}: {exc}"}


KINDS = {"cmd": run_cmd, "connect": run_connect, "resolve": run_resolve, "tcp": run_tcp}


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] == "--help":
        print(__doc__)
        return
    probes = json.loads(sys.argv[1])
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = pool.map(lambda p: (p["id"], KINDS[p["kind"]](p)), probes)
        print(json.dumps(dict(results)))


if __name__ == "__main__":
    main()
