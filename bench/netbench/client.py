"""HTTPS client for the proxy benchmark (stdlib only; runs in the tests' nettest image). Prints one JSON.

    client.py download --host upstream.bench --bytes N --reps R --cafile CA [--proxy IP:PORT]
    client.py small    --host upstream.bench --count N --mode fresh|keepalive --cafile CA [--proxy IP:PORT]

With `--proxy` every connection is a CONNECT tunnel through it (`http.client`'s `set_tunnel`, as HTTP
clients do with HTTPS_PROXY); without it the client connects straight to `--host` (resolved from
/etc/hosts, so no DNS is timed). TLS is verified against `--cafile` with SNI = `--host` either way.

* download: seconds from connect to the last byte of `GET /bytes?n=N`, per repetition, and the bytes read.
* small, mode fresh: every request on a new connection (TCP + CONNECT + TLS + GET): per-request seconds.
* small, mode keepalive: one connection, `count` requests on it: per-request seconds.
"""

from __future__ import annotations

import argparse
import http.client
import json
import ssl
import time


def connection(args: argparse.Namespace, ctx: ssl.SSLContext) -> http.client.HTTPSConnection:
    if args.proxy:
        host, _, port = args.proxy.rpartition(":")
        conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=60)
        conn.set_tunnel(args.host, 443)
        return conn
    return http.client.HTTPSConnection(args.host, 443, context=ctx, timeout=60)


def get(conn: http.client.HTTPSConnection, path: str, buf: memoryview | None = None) -> int:
    conn.request("GET", path)
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"GET {path}: HTTP {resp.status}")
    if buf is None:
        return len(resp.read())
    total = 0
    while True:
        n = resp.readinto(buf)
        if not n:
            break
        total += n
    return total


def download(args: argparse.Namespace, ctx: ssl.SSLContext) -> dict[str, object]:
    buf = memoryview(bytearray(4 << 20))
    seconds, sizes = [], []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        conn = connection(args, ctx)
        size = get(conn, f"/bytes?n={args.bytes}", buf)
        seconds.append(time.perf_counter() - t0)
        conn.close()
        if size != args.bytes:
            raise RuntimeError(f"short read: {size} of {args.bytes} bytes")
        sizes.append(size)
    return {"seconds": seconds, "bytes": sizes}


def small(args: argparse.Namespace, ctx: ssl.SSLContext) -> dict[str, object]:
    seconds = []
    if args.mode == "keepalive":
        conn = connection(args, ctx)
        get(conn, "/small")  # the tunnel and TLS session are set up before timing starts
        for _ in range(args.count):
            t0 = time.perf_counter()
            get(conn, "/small")
            seconds.append(time.perf_counter() - t0)
        conn.close()
    else:
        for _ in range(args.count):
            t0 = time.perf_counter()
            conn = connection(args, ctx)
            get(conn, "/small")
            conn.close()
            seconds.append(time.perf_counter() - t0)
    return {"seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["download", "small"])
    parser.add_argument("--host", required=True)
    parser.add_argument("--proxy")
    parser.add_argument("--cafile", required=True)
    parser.add_argument("--bytes", type=int, default=200 * 1000 * 1000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--mode", choices=["fresh", "keepalive"], default="fresh")
    args = parser.parse_args()
    ctx = ssl.create_default_context(cafile=args.cafile)
    result = download(args, ctx) if args.what == "download" else small(args, ctx)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
