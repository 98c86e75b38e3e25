"""DNS messages by hand (teachdock/daemon/dns_messages.py): the wire format byte by byte,
name compression, truncation, and malformed packets refused with MalformedMessage only."""

from __future__ import annotations

import random
import struct

import pytest

from teachdock.daemon.dns import host_resolvers
from teachdock.daemon.dns_messages import (
    FLAG_QR, FLAG_RA, FLAG_RD, FLAG_TC, FORMERR, HEADER, NOERROR, NXDOMAIN, SERVFAIL, TTL, TYPE_A,
    TYPE_AAAA, MalformedMessage, Question, build_error, build_query, build_response, encode_name,
    parse_message, read_name)


def header(ident=1, flags=0, qd=0, an=0, ns=0, ar=0) -> bytes:
    return struct.pack("!HHHHHH", ident, flags, qd, an, ns, ar)


def test_a_query_on_the_wire():
    query = build_query("web", TYPE_A, ident=0x1234)
    assert query == bytes.fromhex("1234 0100 0001 0000 0000 0000") + b"\x03web\x00" + bytes.fromhex("0001 0001")
    message = parse_message(query)
    assert (message.id, message.is_response, message.opcode) == (0x1234, False, 0)
    assert message.questions == [Question("web", TYPE_A, 1)]
    assert message.answers == message.authority == message.additional == []


def test_names_encode_label_by_label():
    assert encode_name("www.example.com") == b"\x03www\x07example\x03com\x00"
    assert encode_name("www.example.com.") == encode_name("www.example.com")
    assert encode_name("") == encode_name(".") == b"\x00"          # the root
    with pytest.raises(ValueError):
        encode_name("a" * 64)                                     # labels hold 63 octets
    with pytest.raises(ValueError):
        encode_name("a..b")                                       # no empty label inside a name
    with pytest.raises(ValueError):
        encode_name(".".join(["a" * 63] * 4))                     # 257 octets > 255


def test_an_answer_repeats_the_question_and_points_back_at_its_name():
    query = parse_message(build_query("Web.MyNet", TYPE_A, ident=9))
    answer = build_response(query, NOERROR, ["172.30.5.2", "172.30.5.3"])
    question_end = 12 + len(b"\x03Web\x05MyNet\x00") + 4
    assert answer[:12] == HEADER.pack(9, FLAG_QR | FLAG_RD | FLAG_RA, 1, 2, 0, 0)
    assert answer[12:question_end] == b"\x03Web\x05MyNet\x00\x00\x01\x00\x01"   # the case as asked
    first = answer[question_end:question_end + 16]
    assert first == bytes.fromhex("c00c 0001 0001 00000258 0004") + bytes([172, 30, 5, 2])
    assert len(answer) == question_end + 2 * 16
    parsed = parse_message(answer)
    assert [(r.name, r.ttl, r.address) for r in parsed.answers] == [
        ("Web.MyNet", TTL, "172.30.5.2"), ("Web.MyNet", TTL, "172.30.5.3")]
    assert parsed.rcode == NOERROR and parsed.is_response


def test_error_answers_carry_the_rcode_and_no_records():
    query = parse_message(build_query("nowhere.test", TYPE_AAAA, ident=77))
    for rcode in (NXDOMAIN, SERVFAIL, NOERROR):
        parsed = parse_message(build_response(query, rcode))
        assert (parsed.id, parsed.rcode, parsed.answers) == (77, rcode, [])
        assert parsed.questions == query.questions


def test_too_many_answers_for_udp_are_truncated_with_tc():
    query = parse_message(build_query("many", TYPE_A))
    addresses = [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(100)]
    small = build_response(query, NOERROR, addresses, limit=512)
    assert len(small) <= 512
    parsed = parse_message(small)
    assert parsed.flags & FLAG_TC
    assert len(parsed.answers) == (512 - 12 - len(b"\x04many\x00") - 4) // 16
    full = parse_message(build_response(query, NOERROR, addresses))
    assert not full.flags & FLAG_TC and len(full.answers) == 100


def test_compressed_names_are_followed_even_in_chains():
    # www.example.com in the question; "mail" + pointer to "example.com" (offset 16);
    # and a name that is only a pointer to that second name: a chain of two pointers.
    packet = header(qd=1, an=2, flags=FLAG_QR) + b"\x03www\x07example\x03com\x00" + struct.pack("!HH", 1, 1)
    second = len(packet)
    packet += b"\x04mail\xc0\x10" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 1])
    packet += struct.pack("!H", 0xC000 | second) + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 2])
    message = parse_message(packet)
    assert [r.name for r in message.answers] == ["mail.example.com", "mail.example.com"]
    assert [r.address for r in message.answers] == ["192.0.2.1", "192.0.2.2"]
    assert read_name(packet, second) == ("mail.example.com", second + 7)   # ends after the pointer


QUESTION = b"\x03web\x00\x00\x01\x00\x01"
MALFORMED = {
    "empty": b"",
    "short header": b"\x00" * 11,
    "question missing": header(qd=1),
    "label past the end": header(qd=1) + b"\x05web",
    "no type and class": header(qd=1) + b"\x03web\x00\x00",
    "pointer to itself": header(qd=1) + b"\xc0\x0c\x00\x01\x00\x01",
    "pointer forwards": header(qd=1) + b"\xc0\x20" + b"\x00" * 40,
    "pointer cut in half": header(qd=1) + b"\xc0",
    "pointer loop": header(qd=1, an=1) + b"\x01a\xc0\x12" + b"\x00\x01\x00\x01" + b"\xc0\x0c",
    "extended label type": header(qd=1) + b"\x41" + b"a" * 10,
    "name over 255 octets": header(qd=1) + b"\x3f" + b"a" * 63 + b"\x3f" + b"b" * 63 + b"\x3f" + b"c" * 63
                            + b"\x3f" + b"d" * 63 + b"\x00\x00\x01\x00\x01",
    "a dot in a label": header(qd=1) + b"\x03w.b\x00\x00\x01\x00\x01",
    "record data past the end": header(qd=1, an=1) + QUESTION + b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + b"\x01",
    "record header cut": header(qd=1, an=1) + QUESTION + b"\xc0\x0c\x00\x01",
    "counts larger than the packet": header(qd=1, an=65535) + QUESTION,
    "bytes after the last record": header(qd=1) + QUESTION + b"junk",
    "longer than any message": header(qd=1) + QUESTION + b"\x00" * 65536,
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_packets_are_refused(name):
    with pytest.raises(MalformedMessage):
        parse_message(MALFORMED[name])


def test_a_malformed_question_gets_formerr_and_responses_get_nothing():
    assert build_error(b"\x12\x34", FORMERR) is None                     # no header: drop it
    error = build_error(header(ident=0xBEEF, flags=FLAG_RD, qd=1) + b"\x05web", FORMERR)
    assert error == HEADER.pack(0xBEEF, FLAG_QR | FLAG_RD | FLAG_RA | FORMERR, 0, 0, 0, 0)
    assert build_error(header(flags=FLAG_QR, qd=1) + b"\x05", FORMERR) is None   # never answer an answer


def test_random_damage_raises_only_malformed_message():
    """Cut and flipped copies of real messages: the parser returns or refuses, nothing else."""
    rng = random.Random(13)
    query = parse_message(build_query("db.backend.example", TYPE_A))
    seeds = [build_query("db.backend.example", TYPE_A),
             build_response(query, NOERROR, ["10.1.2.3", "10.1.2.4", "10.1.2.5"])]
    for _ in range(3000):
        packet = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            packet[rng.randrange(len(packet))] = rng.randrange(256)
        packet = bytes(packet[:rng.randint(0, len(packet))]) if rng.random() < 0.3 else bytes(packet)
        try:
            parse_message(packet)
        except MalformedMessage:
            pass


def test_host_resolvers_reads_ipv4_nameservers_at_most_three(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nsearch example\nnameserver 10.0.0.1\nnameserver fe80::1\n"
                    "nameserver 127.0.0.11\nnameserver 10.0.0.2\nnameserver 10.0.0.3\nnameserver 10.0.0.4\n")
    assert host_resolvers(str(conf)) == [("10.0.0.1", 53), ("10.0.0.2", 53), ("10.0.0.3", 53)]
    assert host_resolvers(str(tmp_path / "missing")) == []
