"""A tiny upstream for the proxy tests: HTTPS (cert from /certs/server.pem) and plain HTTP ports.

Every response body is one line naming what answered, so a probe can tell the real upstream from a proxy
error page: `nettest-upstream host=<Host header> port=<local port> tls=<0|1>`.
"""

from __future__ import annotations

import argparse
import http.server
import ssl
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # the http.server API name
        tls = 1 if isinstance(self.connection, ssl.SSLSocket) else 0
        port = self.connection.getsockname()[1]
        body = f"nettest-upstream host={self.headers.get('Host')} port={port} tls={tls}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        print("upstream", self.address_string(), format % args, flush=True)


def serve(port: int, tls: bool, cert: str) -> None:
    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tls", type=int, action="append", default=[])
    parser.add_argument("--plain", type=int, action="append", default=[])
    parser.add_argument("--cert", default="/certs/server.pem")
    args = parser.parse_args()
    threads = [threading.Thread(target=serve, args=(p, True, args.cert), daemon=True) for p in args.tls]
    threads += [threading.Thread(target=serve, args=(p, False, args.cert), daemon=True) for p in args.plain]
    for t in threads:
        t.start()
    print("upstream ready", flush=True)
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
