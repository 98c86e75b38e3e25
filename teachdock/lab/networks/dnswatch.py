"""Watch the DNS packets of a network namespace: a small sniffer, tcpdump's job in 100 lines.

``python dnswatch.py NETNS SECONDS`` (run by its path) joins the namespace,
opens a packet socket (``AF_PACKET``, every protocol) on ``lo`` — a container's resolver
address 127.0.0.11 is a loopback address, so its queries never leave ``lo`` — and prints one
JSON line per DNS packet (UDP port 53) until SECONDS have passed. ``parse_frame`` and
``parse_dns`` are pure, so the unit tests feed them bytes.

``watch(netns, seconds)`` starts it in the background and returns a handle whose ``packets()``
waits for the end and returns what was seen.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
QTYPES = {1: "A", 28: "AAAA", 5: "CNAME", 12: "PTR", 33: "SRV", 16: "TXT"}


def read_name(message: bytes, offset: int) -> tuple[str, int]:
    """A domain name at ``offset`` (labels, or a compression pointer); returns (name, next offset)."""
    labels, jumped, end = [], False, offset
    for _ in range(128):   # a loop of pointers must not hang us
        length = message[offset]
        if length == 0:
            offset += 1
            break
        if length & 0xC0 == 0xC0:
            pointer = struct.unpack_from("!H", message, offset)[0] & 0x3FFF
            if not jumped:
                end = offset + 2
            jumped, offset = True, pointer
            continue
        labels.append(message[offset + 1:offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    return ".".join(labels), (end if jumped else offset)


def parse_dns(message: bytes) -> dict:
    """The parts of a DNS message a learner reads: id, query or answer, the question, the
    answers (A and AAAA addresses, CNAMEs), and the response code (0 ok, 3 no such name)."""
    ident, flags, questions, answers, _, _ = struct.unpack_from("!6H", message, 0)
    offset, asked = 12, []
    for _ in range(questions):
        name, offset = read_name(message, offset)
        qtype, _ = struct.unpack_from("!2H", message, offset)
        offset += 4
        asked.append({"name": name, "type": QTYPES.get(qtype, str(qtype))})
    found = []
    for _ in range(answers):
        name, offset = read_name(message, offset)
        rtype, _, ttl, length = struct.unpack_from("!2HIH", message, offset)
        offset += 10
        data = message[offset:offset + length]
        offset += length
        if rtype == 1 and length == 4:
            value = socket.inet_ntop(socket.AF_INET, data)
        elif rtype == 28 and length == 16:
            value = socket.inet_ntop(socket.AF_INET6, data)
        elif rtype == 5:
            value = read_name(message, offset - length)[0]
        else:
            value = data.hex()
        found.append({"name": name, "type": QTYPES.get(rtype, str(rtype)), "ttl": ttl, "value": value})
    return {"id": ident, "response": bool(flags & 0x8000), "rcode": flags & 0x000F,
            "questions": asked, "answers": found}


def parse_frame(frame: bytes) -> dict | None:
    """An Ethernet frame (``lo`` has an all-zero 14-byte header) carrying IPv4/UDP to or from
    port 53: its addresses and the DNS message; None for anything else."""
    if len(frame) < 14 + 20 + 8 or struct.unpack_from("!H", frame, 12)[0] != 0x0800:
        return None
    ip = frame[14:]
    header_length = (ip[0] & 0x0F) * 4
    if ip[9] != 17:   # UDP
        return None
    source, destination = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
    sport, dport, length = struct.unpack_from("!3H", ip, header_length)
    if 53 not in (sport, dport):
        return None
    try:
        dns = parse_dns(ip[header_length + 8:header_length + length])
    except (struct.error, IndexError):
        return None
    return {"from": f"{source}:{sport}", "to": f"{destination}:{dport}", **dns}


def describe(packet: dict) -> str:
    """One line per packet, as a learner reads it (in the learner's language: imported here, as
    the sniffer itself runs as a script and says nothing but JSON)."""
    from teachdock.lab.common.language import say

    question = ", ".join(f"{q['type']} {q['name']}" for q in packet["questions"])
    if not packet["response"]:
        return say("{source:>22} -> {target:<22} query  #{ident:<5} {question}?", source=packet["from"],
                   target=packet["to"], ident=packet["id"], question=question)
    if packet["answers"]:
        answer = ", ".join(f"{a['type']} {a['value']}" for a in packet["answers"])
    elif packet["rcode"] == 3:
        answer = say("no such name (NXDOMAIN)")
    else:
        answer = say("no answer (rcode {rcode})", rcode=packet["rcode"])
    return say("{source:>22} -> {target:<22} answer #{ident:<5} {question}: {answer}", source=packet["from"],
               target=packet["to"], ident=packet["id"], question=question, answer=answer)


def sniff(seconds: float, interface: str = "lo") -> None:
    """Print the DNS packets seen on ``interface`` of this process's namespace, as JSON lines."""
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as raw:
        raw.bind((interface, 0))
        raw.settimeout(0.2)
        print("ready", flush=True)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                frame, address = raw.recvfrom(65535)
            except TimeoutError:
                continue
            if address[2] == socket.PACKET_OUTGOING:   # on lo each packet shows twice: keep the arrival
                continue
            packet = parse_frame(frame)
            if packet is not None:
                print(json.dumps(packet), flush=True)


class Watch:
    """A sniffer running in the background (``watch()``); ``packets()`` waits for its end."""

    def __init__(self, process):
        self.process = process

    def packets(self) -> list[dict]:
        from teachdock.lab.networks.byhand import stop

        try:
            out, _ = self.process.communicate(timeout=60)
        finally:
            stop(self.process)
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def watch(netns: str, seconds: float = 5) -> Watch:
    """Start the sniffer in ``netns`` (a path such as ``/proc/<pid>/ns/net``) for ``seconds``;
    returns once it is capturing."""
    from teachdock.lab.networks.byhand import start_in
    from teachdock.lab.networks.nsexec import netns_path

    process = start_in(None, [sys.executable, __file__, netns_path(netns), str(seconds)])
    first = process.stdout.readline()
    if first.strip() != "ready":
        from teachdock.lab.common.language import say

        raise RuntimeError(say("the sniffer did not start: {error}",
                               error=first.strip() or process.stderr.read().strip()))
    return Watch(process)


def main(argv: list[str]) -> int:
    import os

    from teachdock import kernel

    fd = os.open(argv[0], os.O_RDONLY)   # join the namespace (as nsexec.join; run as a script, by path)
    kernel.setns(fd, kernel.CLONE_NEWNET)
    os.close(fd)
    sniff(float(argv[1]) if len(argv) > 1 else 5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
