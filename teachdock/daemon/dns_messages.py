"""DNS messages by hand (RFC 1035, section 4): what the embedded resolver (daemon/dns.py) reads and writes.

A message is a 12-byte header (an id, a flags word, four counts), then the question (a name, a
type, a class), then answer records (a name, type, class, TTL, and data: 4 bytes for an IPv4
address). A name travels as length-prefixed labels (``3web0`` for "web."); to save room an
answer's name is usually a *pointer*: two bytes, ``0xC00C``, "the name at offset 12", which is
where the question's name starts. The parser follows pointers, but only backwards, and refuses
anything that runs past the packet: a malformed packet is an error, never a crash or a loop.

Try it::

    >>> query = build_query("web", TYPE_A, ident=7)
    >>> answer = build_response(parse_message(query), NOERROR, ["172.30.0.2"])
    >>> [record.address for record in parse_message(answer).answers]
    ['172.30.0.2']
"""

from __future__ import annotations

import os
import socket
import struct
from typing import NamedTuple

TTL = 600                  # seconds, as in dockerd's answers
MAX_MESSAGE = 65535        # a message over TCP carries a 16-bit length

# Record types and the class we know by name (RFC 1035 3.2.2, RFC 3596 for AAAA).
TYPE_A, TYPE_NS, TYPE_CNAME, TYPE_SOA, TYPE_PTR, TYPE_MX, TYPE_TXT = 1, 2, 5, 6, 12, 15, 16
TYPE_AAAA, TYPE_SRV, TYPE_OPT, TYPE_ANY = 28, 33, 41, 255
CLASS_IN = 1

# The header's flags word: QR | Opcode(4) | AA | TC | RD | RA | Z(3) | RCODE(4).
FLAG_QR = 0x8000           # this is a response
FLAG_AA = 0x0400           # authoritative answer
FLAG_TC = 0x0200           # truncated: ask again over TCP
FLAG_RD = 0x0100           # recursion desired (copied from the question)
FLAG_RA = 0x0080           # recursion available
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
RCODE_NAMES = {NOERROR: "NOERROR", FORMERR: "FORMERR", SERVFAIL: "SERVFAIL", NXDOMAIN: "NXDOMAIN",
               NOTIMP: "NOTIMP", REFUSED: "REFUSED"}

HEADER = struct.Struct("!HHHHHH")   # id, flags, qdcount, ancount, nscount, arcount
QUESTION_TAIL = struct.Struct("!HH")        # type, class
RECORD_TAIL = struct.Struct("!HHIH")        # type, class, ttl, rdlength
MAX_NAME = 255             # octets of a name on the wire (RFC 1035 3.1)
MAX_LABEL = 63


class MalformedMessage(ValueError):
    """A packet that is not a well-formed DNS message."""


class Question(NamedTuple):
    name: str          # without the final dot, as asked ("web", "Example.com")
    qtype: int
    qclass: int = CLASS_IN


class Record(NamedTuple):
    name: str
    rtype: int
    rclass: int
    ttl: int
    data: bytes

    @property
    def address(self) -> str | None:
        """The IPv4 address of an A record (None for any other record)."""
        if self.rtype == TYPE_A and len(self.data) == 4:
            return socket.inet_ntoa(self.data)
        return None


class Message(NamedTuple):
    id: int
    flags: int
    questions: list
    answers: list
    authority: list
    additional: list

    @property
    def rcode(self) -> int:
        return self.flags & 0x000F

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0x000F

    @property
    def is_response(self) -> bool:
        return bool(self.flags & FLAG_QR)


# --- reading a message -------------------------------------------------------------------------

def read_name(packet: bytes, offset: int) -> tuple[str, int]:
    """The name at ``offset`` and the offset just after it in the packet (where a pointer ends it).

    Labels are a length byte and that many bytes; a zero length ends the name; a byte whose top
    two bits are set starts a two-byte pointer to an earlier offset, where the name goes on.
    Each pointer must point before the previous one's target, so a walk cannot loop.
    """
    labels: list[str] = []
    length_on_wire = 0
    end = None                  # where the name ends in the packet: after the first pointer
    floor = offset              # each pointer must point before the last place we jumped to
    while True:
        if offset >= len(packet):
            raise MalformedMessage("name runs past the end of the packet")
        length = packet[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(packet):
                raise MalformedMessage("pointer runs past the end of the packet")
            target = ((length & 0x3F) << 8) | packet[offset + 1]
            if end is None:
                end = offset + 2
            if target >= floor:   # so the walk always ends: no pointer loops
                raise MalformedMessage("name pointer does not point backwards")
            offset = floor = target
            continue
        if length & 0xC0:
            raise MalformedMessage(f"unknown label type {length >> 6}")
        if length == 0:
            break
        label = packet[offset + 1:offset + 1 + length]
        if len(label) != length:
            raise MalformedMessage("label runs past the end of the packet")
        if b"." in label:
            raise MalformedMessage("a dot inside a label")
        length_on_wire += 1 + length
        if length_on_wire + 1 > MAX_NAME:
            raise MalformedMessage("name longer than 255 octets")
        labels.append(label.decode("latin-1"))
        offset += 1 + length
    return ".".join(labels), (end if end is not None else offset + 1)


def parse_message(packet: bytes) -> Message:
    """A DNS message from its wire form; MalformedMessage when it is not one."""
    if len(packet) > MAX_MESSAGE:
        raise MalformedMessage("longer than any DNS message")
    if len(packet) < HEADER.size:
        raise MalformedMessage("shorter than a DNS header")
    ident, flags, qdcount, ancount, nscount, arcount = HEADER.unpack_from(packet)
    offset = HEADER.size
    questions = []
    for _ in range(qdcount):
        name, offset = read_name(packet, offset)
        if offset + QUESTION_TAIL.size > len(packet):
            raise MalformedMessage("question runs past the end of the packet")
        qtype, qclass = QUESTION_TAIL.unpack_from(packet, offset)
        offset += QUESTION_TAIL.size
        questions.append(Question(name, qtype, qclass))
    sections = []
    for count in (ancount, nscount, arcount):
        records = []
        for _ in range(count):
            name, offset = read_name(packet, offset)
            if offset + RECORD_TAIL.size > len(packet):
                raise MalformedMessage("record runs past the end of the packet")
            rtype, rclass, ttl, rdlength = RECORD_TAIL.unpack_from(packet, offset)
            offset += RECORD_TAIL.size
            data = packet[offset:offset + rdlength]
            if len(data) != rdlength:
                raise MalformedMessage("record data runs past the end of the packet")
            offset += rdlength
            records.append(Record(name, rtype, rclass, ttl, data))
        sections.append(records)
    if offset != len(packet):
        raise MalformedMessage(f"{len(packet) - offset} bytes after the last record")
    return Message(ident, flags, questions, *sections)


# --- writing a message -------------------------------------------------------------------------

def encode_name(name: str) -> bytes:
    """A name in wire form: each label with its length byte, then a zero byte ("" is the root)."""
    wire = b""
    for label in name.rstrip(".").split(".") if name.strip(".") else []:
        raw = label.encode("latin-1")
        if not 0 < len(raw) <= MAX_LABEL:
            raise ValueError(f"bad label {label!r} in {name!r}")
        wire += bytes([len(raw)]) + raw
    if len(wire) + 1 > MAX_NAME:
        raise ValueError(f"name longer than 255 octets: {name!r}")
    return wire + b"\x00"


def build_query(name: str, qtype: int = TYPE_A, ident: int | None = None) -> bytes:
    """A question as a stub resolver sends it: one question, recursion desired."""
    if ident is None:
        ident = int.from_bytes(os.urandom(2), "big")
    return (HEADER.pack(ident, FLAG_RD, 1, 0, 0, 0)
            + encode_name(name) + QUESTION_TAIL.pack(qtype, CLASS_IN))


def build_response(query: Message, rcode: int = NOERROR, addresses=(), *,
                   limit: int = MAX_MESSAGE) -> bytes:
    """The answer to ``query``: its question repeated, then one A record per address.

    Each record's name is a pointer to the question's name at offset 12 (0xC00C), so an answer
    costs 16 bytes whatever the name's length. When the answers do not fit ``limit`` (512 bytes
    over UDP), the ones that fit are sent with TC set, and the client asks again over TCP.
    """
    flags = FLAG_QR | (query.flags & 0x7800) | (query.flags & FLAG_RD) | FLAG_RA | (rcode & 0xF)
    question = b""
    for q in query.questions[:1]:
        question = encode_name(q.name) + QUESTION_TAIL.pack(q.qtype, q.qclass)
    records = [struct.pack("!H", 0xC000 | HEADER.size) + RECORD_TAIL.pack(TYPE_A, CLASS_IN, TTL, 4)
               + socket.inet_aton(address) for address in addresses]
    room = (limit - HEADER.size - len(question)) // 16 if records else 0
    if len(records) > room:
        records, flags = records[:max(room, 0)], flags | FLAG_TC
    header = HEADER.pack(query.id, flags, 1 if question else 0, len(records), 0, 0)
    return header + question + b"".join(records)


def build_error(packet: bytes, rcode: int) -> bytes | None:
    """A header-only answer (FORMERR for a packet we cannot read); None when not even the
    header is there, or the packet is itself a response (answering those could loop)."""
    if len(packet) < HEADER.size:
        return None
    ident, flags = struct.unpack_from("!HH", packet)
    if flags & FLAG_QR:
        return None
    return HEADER.pack(ident, FLAG_QR | (flags & 0x7800) | (flags & FLAG_RD) | FLAG_RA | rcode, 0, 0, 0, 0)
