"""A DNS server that logs every question it is asked: `dnslog qname=<name> qtype=<n> from=<ip>`.

Used as a container's upstream resolver (`dns=[<this ip>]`), it shows which names that container tried to
resolve: the test for "the proxy does no DNS for names it refuses" (DNS exfiltration) reads this log.
With `--forward`, questions are passed on to this container's own resolver (Docker's 127.0.0.11, which
answers Docker's names and forwards the rest) so real names still resolve; without it every answer is
NXDOMAIN.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading


def question(packet: bytes) -> tuple[str, int, int]:
    labels, i = [], 12
    while packet[i]:
        n = packet[i]
        labels.append(packet[i + 1 : i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    qtype = struct.unpack("!H", packet[i + 1 : i + 3])[0]
    return ".".join(labels).lower(), qtype, i + 5


def nxdomain(packet: bytes, end: int) -> bytes:
    # Same id and question; flags QR, RD, RA and RCODE 3 (NXDOMAIN); no answers.
    return packet[:2] + struct.pack("!HHHHH", 0x8183, 1, 0, 0, 0) + packet[12:end]


def answer(sock: socket.socket, packet: bytes, peer: tuple[str, int], end: int, forward: bool) -> None:
    reply = nxdomain(packet, end)
    if forward:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as up:
            up.settimeout(3)
            try:
                up.sendto(packet, ("127.0.0.11", 53))
                reply = up.recv(4096)
            except OSError:
                reply = packet[:2] + struct.pack("!HHHHH", 0x8182, 1, 0, 0, 0) + packet[12:end]  # SERVFAIL
    sock.sendto(reply, peer)


def main() -> None:
    forward = "--forward" in sys.argv[1:]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", 53))
    print("dnslog ready", flush=True)
    while True:
        packet, peer = sock.recvfrom(4096)
        try:
            name, qtype, end = question(packet)
        except (IndexError, struct.error):
            continue
        print(f"dnslog qname={name} qtype={qtype} from={peer[0]}", flush=True)
        threading.Thread(target=answer, args=(sock, packet, peer, end, forward), daemon=True).start()


if __name__ == "__main__":
    main()
