"""HTTPS upstream for the proxy benchmark (stdlib only; runs in the tests' nettest image).

`GET /small` answers 64 bytes; `GET /bytes?n=N` answers N bytes written in 1 MiB chunks from one buffer.
HTTP/1.1 with keep-alive, one thread per connection, no request logging (it would cost more than the
requests). Prints `netbench upstream ready` once listening.
"""

from __future__ import annotations

import argparse
import http.server
import ssl
import sys
from urllib.parse import parse_qs, urlsplit

CHUNK = memoryview(b"\x5a" * (1 << 20))
SMALL = b"netbench-small-response-" + b"x" * 39 + b"\n"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Small answers go out in one write with TCP_NODELAY: otherwise Nagle + delayed ACK add ~40 ms to
    # every request, on both paths alike, and hide what the proxy costs.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/small":
            self._send(len(SMALL), [memoryview(SMALL)])
            return
        if url.path == "/bytes":
            n = int(parse_qs(url.query).get("n", ["0"])[0])
            full, rest = divmod(n, len(CHUNK))
            self._send(n, [CHUNK] * full + ([CHUNK[:rest]] if rest else []))
            return
        self.send_error(404)

    def _send(self, length: int, chunks: list[memoryview]) -> None:
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n"
        ).encode()
        if length <= 65536:
            self.wfile.write(head + b"".join(chunks))
            return
        self.wfile.write(head)
        for chunk in chunks:
            self.wfile.write(chunk)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=443)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("0.0.0.0", args.port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("netbench upstream ready", flush=True)
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
