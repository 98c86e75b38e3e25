"""teachdock.lab.networks (chapter 08), the pure parts: the topology model from made-up netlink
data, the nft rule text and the reader of ``nft -j`` output, the DNS packet parser, the
measurement's parsing, and each exercise's judge with right and wrong answers.
"""

import socket
import struct

import pytest

from teachdock.lab.networks import checks, dnswatch, measure, nft_text, topology
from teachdock.lab.networks.byhand import LinkState, check_name
from teachdock.lab.networks.nsexec import netns_path, nsexec_argv
from tests.support.korean import reads_korean


def link(name, index, kind="veth", *, peer=None, elsewhere=True, master=None, addresses=(), up=True):
    return LinkState(name=name, index=index, kind=kind, up=up, master=master, addresses=list(addresses),
                     peer_index=peer, peer_elsewhere=elsewhere if kind == "veth" else False)


# ------------------------------------------------------------------ topology


def docker_like_host():
    """A host with a bridge and two containers, and a veth whose peer we do not look at."""
    return {
        "host": [link("eth0", 2, "device"),
                 link("teachdock0", 3, "bridge", addresses=["172.29.0.1/16"]),
                 link("veth1", 7, peer=2, master="teachdock0"),
                 link("veth2", 9, peer=2, master="teachdock0"),
                 link("vethX", 11, peer=5)],
        "web": [link("eth0", 2, peer=7, addresses=["172.29.0.2/16"])],
        "db": [link("eth0", 2, peer=9, addresses=["172.29.0.3/16"])],
    }


def test_veth_ends_pair_across_namespaces_by_each_others_index():
    model = topology.build(docker_like_host())
    pairs = {(a.namespace, a.link.name, b.namespace, b.link.name) for a, b in model.pairs}
    assert pairs == {("host", "veth1", "web", "eth0"), ("host", "veth2", "db", "eth0")}
    assert [(end.namespace, end.link.name) for end in model.loose] == [("host", "vethX")]
    assert model.peer_of("web", "eth0").link.name == "veth1"
    assert model.peer_of("host", "veth2").namespace == "db"
    assert model.peer_of("host", "eth0") is None


def test_bridge_ports_are_the_links_whose_master_it_is():
    model = topology.build(docker_like_host())
    assert [bridge.link.name for bridge in model.bridges] == ["teachdock0"]
    assert model.ports[("host", "teachdock0")] == ["veth1", "veth2"]


def test_a_pair_inside_one_namespace_is_not_mistaken_for_a_cross_namespace_pair():
    data = {"a": [link("x0", 4, peer=5, elsewhere=False), link("x1", 5, peer=4, elsewhere=False)],
            "b": [link("y", 5, peer=4, elsewhere=True)]}
    model = topology.build(data)
    assert [(a.link.name, b.link.name) for a, b in model.pairs] == [("x0", "x1")]
    assert [end.link.name for end in model.loose] == ["y"]


def test_two_namespaces_joined_directly_pair_up():
    data = {"tdlab-red": [link("eth0", 2, peer=2, addresses=["10.213.1.1/24"])],
            "tdlab-blue": [link("eth0", 2, peer=2, addresses=["10.213.1.2/24"])]}
    model = topology.build(data, rules=[("ip tdlab-nat", "postrouting", "masquerade")])
    assert len(model.pairs) == 1 and not model.loose
    text = repr(model)
    assert "tdlab-red:eth0 10.213.1.1/24 <-> tdlab-blue:eth0 10.213.1.2/24" in text.replace(
        "tdlab-blue:eth0 10.213.1.2/24 <-> tdlab-red:eth0 10.213.1.1/24",
        "tdlab-red:eth0 10.213.1.1/24 <-> tdlab-blue:eth0 10.213.1.2/24")
    assert "rule ip tdlab-nat postrouting: masquerade" in text


def test_the_figure_draws_from_the_model():
    pytest.importorskip("matplotlib")
    figure = topology.draw(topology.build(docker_like_host(), [("inet teachdock", "postrouting", "masquerade")]),
                           title="fake", host="host")
    texts = [text.get_text() for text in figure.axes[0].texts]
    assert any("teachdock0" in text for text in texts)
    assert any("172.29.0.2/16" in text for text in texts)
    assert any("masquerade" in text for text in texts)


# ------------------------------------------------------------------ nft text


def test_masquerade_text_is_one_postrouting_rule_for_the_subnet_leaving_by_another_interface():
    text = nft_text.masquerade("10.213.0.0/24", "tdlab-br0")
    assert "table ip tdlab-nat {" in text
    assert "type nat hook postrouting priority srcnat; policy accept;" in text
    assert 'ip saddr 10.213.0.0/24 oifname != "tdlab-br0" masquerade' in text
    assert text.count("{") == text.count("}")


def test_publish_text_has_the_same_dnat_in_prerouting_and_output():
    text = nft_text.publish("203.0.113.1", 8080, "10.213.0.11", 80)
    rule = "ip daddr 203.0.113.1 tcp dport 8080 dnat to 10.213.0.11:80"
    assert text.count(rule) == 2
    assert "hook prerouting priority dstnat" in text and "hook output priority -100" in text
    assert "udp dport 53" in nft_text.publish("203.0.113.1", 53, "10.213.0.11", 53, protocol="udp")


@pytest.mark.parametrize("bad", [{"host_port": 0}, {"container_port": 65536}, {"protocol": "sctp"}])
def test_publish_refuses_bad_input(bad):
    arguments = {"host_address": "203.0.113.1", "host_port": 8080, "container_address": "10.0.0.2",
                 "container_port": 80, **bad}
    protocol = arguments.pop("protocol", "tcp")
    with pytest.raises(ValueError):
        nft_text.publish(**arguments, protocol=protocol)


def test_flush_and_delete_texts():
    assert nft_text.flush_nat() == "flush chain ip tdlab-nat prerouting\nflush chain ip tdlab-nat output\n"
    assert nft_text.delete_table() == "delete table ip tdlab-nat\n"


NFT_JSON = {"nftables": [
    {"metainfo": {"version": "1.0.6"}},
    {"table": {"family": "ip", "name": "tdlab-nat", "handle": 1}},
    {"rule": {"family": "ip", "table": "tdlab-nat", "chain": "postrouting", "handle": 3, "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                   "right": {"prefix": {"addr": "10.213.0.0", "len": 24}}}},
        {"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": "tdlab-br0"}},
        {"masquerade": None}]}},
    {"rule": {"family": "ip", "table": "tdlab-nat", "chain": "prerouting", "handle": 5, "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8080}},
        {"dnat": {"addr": "10.213.0.11", "port": 80}}]}},
    {"rule": {"family": "inet", "table": "other", "chain": "input", "handle": 2, "expr": [{"accept": None}]}},
]}


def test_rules_reads_nft_json_back_into_words():
    assert nft_text.rules(NFT_JSON, table="tdlab-nat") == [
        ("ip tdlab-nat", "postrouting", "ip saddr 10.213.0.0/24 oifname != tdlab-br0 masquerade"),
        ("ip tdlab-nat", "prerouting", "tcp dport 8080 dnat to 10.213.0.11:80"),
    ]
    assert len(nft_text.rules(NFT_JSON)) == 3
    assert nft_text.rules({}) == []


# ------------------------------------------------------------------ names and argv


def test_only_prefixed_names_are_made():
    assert check_name("tdlab-red") == "tdlab-red"
    with pytest.raises(ValueError, match="tdlab-"):
        check_name("red")


def test_nsexec_argv_runs_the_script_by_path_and_leaves_the_host_alone():
    assert netns_path("tdlab-red") == "/run/netns/tdlab-red"
    assert netns_path("/proc/42/ns/net") == "/proc/42/ns/net"
    assert nsexec_argv(None, ["true"]) == ["true"]
    argv = nsexec_argv("tdlab-red", ["ping", "x"], timed=True)
    assert argv[1].endswith("nsexec.py") and argv[2:] == ["/run/netns/tdlab-red", "--timed", "--", "ping", "x"]


# ------------------------------------------------------------------ DNS packets


def dns_message(ident, name, *, answer=None, qtype=1):
    question = b"".join(bytes([len(part)]) + part.encode() for part in name.split(".")) + b"\0"
    question += struct.pack("!2H", qtype, 1)
    flags = 0x8180 if answer is not None else 0x0100
    body = struct.pack("!6H", ident, flags, 1, 1 if answer else 0, 0, 0) + question
    if answer:
        body += b"\xc0\x0c" + struct.pack("!2HIH", 1, 1, 600, 4) + socket.inet_aton(answer)
    return body


def lo_frame(source, sport, destination, dport, payload):
    udp = struct.pack("!4H", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     socket.inet_aton(source), socket.inet_aton(destination))
    return b"\0" * 12 + b"\x08\x00" + ip + udp


def test_a_query_and_its_answer_are_read_from_loopback_frames():
    query = dnswatch.parse_frame(lo_frame("127.0.0.1", 40000, "127.0.0.11", 53, dns_message(7, "tdlab-api")))
    assert query["from"] == "127.0.0.1:40000" and query["to"] == "127.0.0.11:53"
    assert not query["response"] and query["questions"] == [{"name": "tdlab-api", "type": "A"}]
    answer = dnswatch.parse_frame(lo_frame("127.0.0.11", 53, "127.0.0.1", 40000,
                                           dns_message(7, "tdlab-api", answer="172.30.0.3")))
    assert answer["response"] and answer["id"] == 7
    assert answer["answers"] == [{"name": "tdlab-api", "type": "A", "ttl": 600, "value": "172.30.0.3"}]
    assert "A 172.30.0.3" in dnswatch.describe(answer) and "query" in dnswatch.describe(query)


def test_frames_that_are_not_dns_are_skipped():
    assert dnswatch.parse_frame(lo_frame("127.0.0.1", 40000, "127.0.0.1", 8080, b"hello")) is None
    assert dnswatch.parse_frame(b"\0" * 12 + b"\x86\xdd" + b"\0" * 60) is None   # IPv6
    assert dnswatch.parse_frame(b"short") is None


def test_no_such_name_is_said_in_words():
    message = bytearray(dns_message(9, "nope"))
    message[2:4] = struct.pack("!H", 0x8183)   # a response, rcode 3
    packet = dnswatch.parse_frame(lo_frame("127.0.0.11", 53, "127.0.0.1", 1, bytes(message)))
    assert "NXDOMAIN" in dnswatch.describe(packet)


# ------------------------------------------------------------------ measurements


def test_elapsed_is_the_last_line_nsexec_printed():
    assert measure.elapsed_of("nc: something\nelapsed=0.250000\n") == 0.25
    with pytest.raises(ValueError):
        measure.elapsed_of("nothing here")


def test_the_round_trip_loop_writes_and_reads_n_times():
    assert measure.ROUND_TRIP_LOOP.format(n=5).startswith("i=0; while [ $i -lt 5 ]")


def test_the_figure_compares_each_path_with_loopback():
    pytest.importorskip("matplotlib")
    results = [measure.PathResult("loopback", 100, 20.0, 8, 900.0),
               measure.PathResult("published port", 100, 30.0, 8, 300.0)]
    figure = measure.plot_paths(results)
    texts = [text.get_text() for axes in figure.axes for text in axes.texts]
    assert any("1.5× loopback" in text for text in texts)


# ------------------------------------------------------------------ exercise 1: a fourth namespace

WIRED = {"exists": True, "interfaces": [("eth0", True, ["10.213.0.14/24"], "veth")],
         "host_end": ("tdlab-v4", True, "tdlab-br0"), "veth_elsewhere": False, "ping": True}


def fourth(**changes):
    return checks.judge_fourth_namespace({**WIRED, **changes})


def test_fourth_namespace_right():
    assert fourth().passed


@pytest.mark.parametrize("changes, hint", [
    ({"exists": False}, "make_namespace"),
    ({"interfaces": []}, "only lo"),
    ({"veth_elsewhere": True, "host_end": None}, "peer is not in tdlab-host"),
    ({"interfaces": [("eth0", True, [], "veth")]}, "no address"),
    ({"interfaces": [("eth0", True, ["10.99.0.14/24"], "veth")]}, "not in the bridge's subnet"),
    ({"interfaces": [("eth0", True, ["10.213.0.14/32"], "veth")]}, "/32"),
    ({"interfaces": [("eth0", False, ["10.213.0.14/24"], "veth")]}, "down"),
    ({"host_end": ("tdlab-v4", True, None)}, "not a port of tdlab-br0"),
    ({"host_end": ("tdlab-v4", False, "tdlab-br0")}, "on the bridge but down"),
    ({"ping": False}, "duplicate"),
])
def test_fourth_namespace_mistakes_get_their_own_hint(changes, hint):
    result = fourth(**changes)
    assert not result.passed and hint in result.message


# ------------------------------------------------------------------ exercise 2: publish by hand

RIGHT_RULE = ("ip tdlab-nat", "prerouting", "ip daddr 203.0.113.1 tcp dport 9090 dnat to 10.213.0.12:80")


def test_published_by_hand_right_when_c2_answers():
    facts = {"rules": [RIGHT_RULE], "answer": "you are 203.0.113.10:4000, I am 10.213.0.12:80"}
    assert checks.judge_published_by_hand(facts).passed


@pytest.mark.parametrize("rules, hint", [
    ([], "No rule matches port 9090"),
    ([("ip tdlab-nat", "prerouting", "tcp dport 9090 accept")], "does not rewrite"),
    ([("ip tdlab-nat", "output", "tcp dport 9090 dnat to 10.213.0.12:80")], "prerouting hook"),
    ([("ip tdlab-nat", "postrouting", "tcp dport 9090 dnat to 10.213.0.12:80")], "postrouting is too late"),
    ([("ip tdlab-nat", "prerouting", "tcp dport 9090 dnat to 10.213.0.11:80")], "tdlab-c2 is 10.213.0.12"),
    ([("ip tdlab-nat", "prerouting", "tcp dport 9090 dnat to 10.213.0.12:9090")], "wrong port"),
    ([("ip tdlab-nat", "prerouting", "tcp dport 9090 dnat to 10.213.0.12:9090"), RIGHT_RULE], "first DNAT wins"),
    ([RIGHT_RULE], "nobody answered"),
])
def test_published_by_hand_mistakes(rules, hint):
    result = checks.judge_published_by_hand({"rules": rules, "answer": "nc: connection refused"})
    assert not result.passed and hint in result.message


# ------------------------------------------------------------------ exercise 3: by name


def by_name(a_networks, b_networks, ping=(1, "ping: bad address 'tdlab-ex-b'"), running=True):
    return {"tdlab-ex-a": {"running": running, "networks": a_networks},
            "tdlab-ex-b": {"running": True, "networks": b_networks}, "ping": ping}


def judge_by_name(facts):
    return checks.judge_reach_by_name(facts, "tdlab-ex-a", "tdlab-ex-b")


def test_reach_by_name_right():
    assert judge_by_name(by_name(["tdlab-ex"], ["tdlab-ex"], ping=(0, "64 bytes from 172.30.3.3"))).passed


@pytest.mark.parametrize("facts, hint", [
    ({"tdlab-ex-a": None, "tdlab-ex-b": None}, "no container tdlab-ex-a"),
    (by_name(["tdlab-ex"], ["tdlab-ex"], running=False), "not running"),
    (by_name(["bridge"], ["bridge"]), "default network `bridge`"),
    (by_name(["tdlab-one"], ["tdlab-two"]), "share no network"),
    (by_name(["tdlab-ex"], ["tdlab-ex"]), "did not resolve"),
    (by_name(["tdlab-ex"], ["tdlab-ex"], ping=(1, "1 packets transmitted, 0 received")), "resolved but"),
])
def test_reach_by_name_mistakes(facts, hint):
    result = judge_by_name(facts)
    assert not result.passed and hint in result.message


# ------------------------------------------------------------------ exercise 4: 127.0.0.1:9090


def published(ports, body="hello", running=True):
    return {"exists": True, "running": running, "ports": ports, "body": body}


def test_published_right():
    facts = published({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "9090"}]})
    assert checks.judge_published(facts, "tdlab-ex-web").passed


@pytest.mark.parametrize("facts, hint", [
    ({"exists": False}, "no container"),
    (published({}, running=False), "not running"),
    (published({"80/tcp": None}), "publishes nothing"),
    (published({"9090/tcp": [{"HostIp": "", "HostPort": "80"}]}), "Reversed"),
    (published({"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "9090"}]}), "listens on 80"),
    (published({"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "9090"}]}), "every address"),
    (published({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "9090"}]}, body="error: refused"), "httpd"),
])
def test_published_mistakes(facts, hint):
    result = checks.judge_published(facts, "tdlab-ex-web")
    assert not result.passed and hint in result.message


# ------------------------------------------------------------------ exercise 5: why unreachable


def test_unreachable_passes_only_with_the_right_reason_and_the_fix():
    assert checks.judge_unreachable("different-networks", ping_by_address_ok=True).passed
    not_fixed = checks.judge_unreachable("different-networks", ping_by_address_ok=False)
    assert not not_fixed.passed and "Right reason" in not_fixed.message and "fix it" in not_fixed.message
    no_daemon = checks.judge_unreachable("different-networks")
    assert not no_daemon.passed and "needs root" in no_daemon.message


@pytest.mark.parametrize("answer, hint", [
    ("no-dns", "pinged the *address*"),
    ("not-published", "Publishing is for the host"),
    ("no-route", "routing is not the problem"),
    ("because", "one of"),
])
def test_unreachable_wrong_answers(answer, hint):
    result = checks.judge_unreachable(answer)
    assert not result.passed and hint in result.message


def test_unreachable_placeholder_is_not_answered():
    assert not checks.judge_unreachable(...).answered


def test_the_checks_that_need_root_say_so_instead_of_raising(monkeypatch):
    monkeypatch.setattr(checks, "is_root", lambda: False)
    for result in (checks.check_fourth_namespace(), checks.check_published_by_hand(),
                   checks.check_reach_by_name(), checks.check_published()):
        assert result == checks.root_needed() and not result.passed and "needs root" in result.message
    reason_only = checks.check_unreachable("different-networks")     # the reason is judged without root
    assert "Right reason" in reason_only.message and "needs root" in reason_only.message


def test_nsexec_does_not_join_the_namespace_it_is_already_in(tmp_path):
    from teachdock.lab.networks.nsexec import already_in

    assert already_in("/proc/self/ns/net")       # loopback is measured without setns, so without root
    assert not already_in("/proc/self/ns/mnt")   # another namespace file: joined as before


# ------------------------------------------------------------------ in Korean (TEACHDOCK_LANG=ko)


def test_the_judges_speak_korean(korean):
    answers = [fourth(), fourth(exists=False), fourth(host_end=("tdlab-v4", True, None)),
               checks.judge_published_by_hand({"rules": [], "answer": ""}),
               checks.judge_published_by_hand({"rules": [("ip tdlab-nat", "output",
                                                          "tcp dport 9090 dnat to 10.213.0.12:80")], "answer": ""}),
               judge_by_name(by_name(["bridge"], ["bridge"])),
               checks.judge_published(published({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "9090"}]}),
                                      "tdlab-ex-web"),
               checks.judge_published(published({"9090/tcp": [{"HostIp": "", "HostPort": "80"}]}), "tdlab-ex-web"),
               checks.judge_unreachable("different-networks", ping_by_address_ok=True),
               checks.judge_unreachable("no-dns"), checks.judge_unreachable("because"), checks.root_needed()]
    for result in answers:
        assert reads_korean(result.message), result.message
    assert answers[0].passed and not answers[1].passed
    assert all(reads_korean(meaning) for meaning in checks.REASONS.values())
    assert list(checks.REASONS) == ["no-dns", "different-networks", "not-published", "no-route"]  # keys: code


def test_the_views_speak_korean(korean):
    model = topology.build(docker_like_host(), [("inet teachdock", "postrouting", "masquerade")])
    assert reads_korean(repr(model)) and "네임스페이스" in repr(model)
    query = {"from": "127.0.0.1:40000", "to": "127.0.0.11:53", "id": 7, "response": False,
             "questions": [{"name": "tdlab-api", "type": "A"}], "answers": [], "rcode": 0}
    assert "질의" in dnswatch.describe(query)
    assert "NXDOMAIN" in dnswatch.describe({**query, "response": True, "rcode": 3})
    assert reads_korean(repr(measure.PathResult("loopback", 100, 20.0, 8, 900.0)))
    pytest.importorskip("matplotlib")
    figure = measure.plot_paths([measure.PathResult("loopback", 100, 20.0, 8, 900.0),
                                 measure.PathResult("published port", 100, 30.0, 8, 300.0)])
    labels = [figure.axes[0].get_xlabel(), figure.axes[1].get_xlabel(), figure._suptitle.get_text()]
    assert all(reads_korean(label) for label in labels), labels
