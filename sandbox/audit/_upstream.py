"""The audit's own upstream: the one destination the audit's controls are allowed to reach.

No outside name resolves on many machines (CI, air-gapped hosts), so "the proxy refused evil.example"
proves nothing by itself: a broken proxy that refuses everything would pass. Every blocked probe is
therefore paired with a control that takes the same path to *this* server and succeeds once the path is
allowed. It runs in the audit's trusted helper image (never the Expert's image), on audit-only networks
with a public-looking TEST-NET address, and answers with a per-audit nonce so a success can only come from
here, never from a proxy error page:

* HTTPS on 443 and 8443 (a throwaway CA made at start with the `openssl` CLI; its certificate is printed
  so probes can verify the chain) and plain HTTP on 80: body
  `sandbox-audit-upstream nonce=<n> host=<Host> port=<p> tls=<0|1> sni=<sni>`.
* An SSH-style banner on 22 (`SSH-2.0-sandbox-audit-<nonce>`): a non-HTTP protocol for the port probes.
* UDP echo on 443 (QUIC-like) and a DNS responder on UDP 53 that answers NXDOMAIN and logs every question,
  so the audit can show that the sandbox's queries never arrive while the control's do.

Standard library only; stdout lines start with `sandbox-audit-upstream ` and are read by the host.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.server
import shutil
import socket
import socketserver
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

__all__ = ["PREFIX", "main", "make_certificates"]

PREFIX = "sandbox-audit-upstream "
_LOCK = threading.Lock()


def log(text: str) -> None:
    with _LOCK:
        sys.stdout.write(PREFIX + text + "\n")
        sys.stdout.flush()


def make_certificates(directory: Path, names: list[str]) -> tuple[Path, Path, bytes]:
    """A throwaway CA and a server certificate for `names`; returns (chain file, key file, CA PEM)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "server.ext"
    ext.write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=" + ",".join(f"DNS:{n}" for n in names) + "\n"
    )

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    curve = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl(
        "req",
        "-x509",
        *curve,
        "-days",
        "2",
        "-subj",
        "/CN=sandbox-audit throwaway CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca_crt),
    )
    openssl("req", "-new", *curve, "-subj", f"/CN={names[0]}", "-keyout", str(key), "-out", str(csr))
    openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca_crt),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        str(ext),
        "-out",
        str(crt),
    )
    ca_key.unlink()
    return crt, key, ca_crt.read_bytes()


class _Handler(http.server.BaseHTTPRequestHandler):
    nonce = ""
    protocol_version = "HTTP/1.1"
    timeout = 10

    def do_GET(self) -> None:
        tls = isinstance(self.connection, ssl.SSLSocket)
        sni = getattr(self.connection, "sandbox_sni", None) if tls else None
        port = self.connection.getsockname()[1]
        body = (
            f"sandbox-audit-upstream nonce={self.nonce} host={self.headers.get('Host')} port={port} "
            f"tls={int(tls)} sni={sni or '-'}\n"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        log(f"http port={port} tls={int(tls)} host={self.headers.get('Host')} from={self.client_address[0]}")

    def log_message(self, format: str, *args: object) -> None:
        return


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def _http_server(port: int, tls_ctx: ssl.SSLContext | None) -> _Server:
    server = _Server(("0.0.0.0", port), _Handler)  # noqa: S104 - a test server on audit-only networks
    if tls_ctx is not None:
        # The handshake happens on the handler's thread (first read), never in the accept loop, so a
        # client that connects and stays silent cannot stall the other connections.
        server.socket = tls_ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    return server


def _serve_banner(srv: socket.socket, nonce: str) -> None:
    port = srv.getsockname()[1]
    while True:
        conn, addr = srv.accept()
        with conn, contextlib.suppress(OSError):
            conn.sendall(f"SSH-2.0-sandbox-audit-{nonce}\r\n".encode())
        log(f"banner port={port} from={addr[0]}")


def _qname(packet: bytes) -> tuple[str, int]:
    labels, i = [], 12
    while packet[i]:
        n = packet[i]
        labels.append(packet[i + 1 : i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    return ".".join(labels).lower(), i + 5


def _serve_udp(sock: socket.socket, nonce: str, dns: bool) -> None:
    port = sock.getsockname()[1]
    while True:
        data, peer = sock.recvfrom(4096)
        if dns:
            try:
                name, end = _qname(data)
            except IndexError:
                continue
            log(f"dns qname={name} from={peer[0]}")
            # Same id and question; QR, RD, RA, RCODE 3 (NXDOMAIN); no answers.
            sock.sendto(data[:2] + struct.pack("!HHHHH", 0x8183, 1, 0, 0, 0) + data[12:end], peer)
        else:
            log(f"udp port={port} from={peer[0]}")
            sock.sendto(f"sandbox-audit-udp nonce={nonce}".encode(), peer)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="sandbox-audit-upstream")
    parser.add_argument("--nonce", required=True)
    parser.add_argument("--name", action="append", required=True, help="names the certificate is for")
    parser.add_argument("--tls", type=int, action="append", default=[])
    parser.add_argument("--http", type=int, action="append", default=[])
    parser.add_argument("--banner", type=int, action="append", default=[])
    parser.add_argument("--udp", type=int, action="append", default=[], help="UDP echo ports")
    parser.add_argument("--dns", type=int, action="append", default=[], help="logging DNS ports (UDP)")
    args = parser.parse_args(argv)
    _Handler.nonce = args.nonce

    work = Path(tempfile.mkdtemp(prefix="sandbox-audit-"))
    chain, key, ca_pem = make_certificates(work, args.name)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(chain), str(key))
    shutil.rmtree(work, ignore_errors=True)  # loaded into memory; leave no key or temp dir behind

    def remember_sni(sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _ctx: ssl.SSLContext) -> None:
        sock.sandbox_sni = name  # type: ignore[union-attr]

    ctx.sni_callback = remember_sni

    # Bind everything before announcing readiness, so "ready" means every port answers.
    threads: list[threading.Thread] = []
    for port, tls in [*((p, ctx) for p in args.tls), *((p, None) for p in args.http)]:
        threads.append(threading.Thread(target=_http_server(port, tls).serve_forever, daemon=True))
    for port in args.banner:
        srv = socket.create_server(("0.0.0.0", port))  # noqa: S104
        threads.append(threading.Thread(target=_serve_banner, args=(srv, args.nonce), daemon=True))
    for port, dns in [*((p, False) for p in args.udp), *((p, True) for p in args.dns)]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("0.0.0.0", port))  # noqa: S104
        threads.append(threading.Thread(target=_serve_udp, args=(sock, args.nonce, dns), daemon=True))
    for t in threads:
        t.start()
    log("ca " + base64.b64encode(ca_pem).decode())
    log("ready")
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
