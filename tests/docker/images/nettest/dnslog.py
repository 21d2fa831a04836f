"""A DNS server that answers nothing and logs every question: `dnslog qname=<name> qtype=<n>`.

Pointed at as a container's upstream resolver, it shows which names that container tried to resolve: the
test for "the proxy does no DNS for names it refuses" (DNS exfiltration) reads this log.
"""

from __future__ import annotations

import socket
import struct


def qname(packet: bytes) -> tuple[str, int, int]:
    labels, i = [], 12
    while packet[i]:
        n = packet[i]
        labels.append(packet[i + 1 : i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    qtype = struct.unpack("!H", packet[i + 1 : i + 3])[0]
    return ".".join(labels).lower(), qtype, i + 5


def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", 53))
    print("dnslog ready", flush=True)
    while True:
        packet, peer = sock.recvfrom(4096)
        try:
            name, qtype, end = qname(packet)
        except (IndexError, struct.error):
            continue
        print(f"dnslog qname={name} qtype={qtype} from={peer[0]}", flush=True)
        # Same id and question; flags QR, RD, RA and RCODE 3 (NXDOMAIN); no answers.
        flags = 0x8183
        reply = packet[:2] + struct.pack("!HHHHH", flags, 1, 0, 0, 0) + packet[12:end]
        sock.sendto(reply, peer)


if __name__ == "__main__":
    main()
