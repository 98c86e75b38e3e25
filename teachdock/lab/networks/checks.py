"""Chapter 08's exercises: each ``check_*`` gathers facts from the kernel or the daemon, and a
pure ``judge_*`` turns them into a CheckResult with a hint for the likely mistake (the judges
are unit-tested with made-up facts).

1. ``check_fourth_namespace()``: tdlab-c4 on the by-hand bridge, pinging tdlab-c1.
2. ``check_published_by_hand()``: tdlab-c2's port 80 published as 203.0.113.1:9090 with nft.
3. ``check_reach_by_name(a, b)``: two containers that find each other by name.
4. ``check_published(name)``: a container's web server on 127.0.0.1:9090 only.
5. ``check_unreachable(answer)``: why one container cannot reach another (and the fix).

Checks 1–4 read namespaces, nftables or the daemon, all root's: without root they return
``root_needed()`` instead of raising. Check 5 judges the answer without root too. Every hint is
a whole sentence through ``say`` (the learner's language); answer keys such as ``REASONS``'
stay English, as the code a learner types does.
"""

from __future__ import annotations

import ipaddress
import json

from teachdock.lab.common.checks import CheckResult, not_answered, not_answered_yet
from teachdock.lab.common.language import SaidWhenRead, say
from teachdock.lab.common.root import is_root
from teachdock.lab.networks import byhand
from teachdock.lab.networks.nsexec import netns_path

FOURTH = "tdlab-c4"
FOURTH_ADDRESS = "10.213.0.14"
BY_HAND_PORT = 9090
EXERCISE_CONTAINERS = ("tdlab-ex-a", "tdlab-ex-b", "tdlab-ex-web", "tdlab-ex-left", "tdlab-ex-right")


def root_needed() -> CheckResult:
    """What checks 1–4 answer without root (made when shown, in the learner's language)."""
    return CheckResult(False, say("This check needs root: it reads network namespaces, nftables rules or "
                                  "teachdockd, which belong to root. Start the lab as root (sudo scripts/lab) "
                                  "to do this exercise."))


# ------------------------------------------------------------------ 1. a fourth namespace


def fourth_namespace_facts() -> dict:
    from teachdock.lab.networks.topology import collect, build

    facts = {"exists": FOURTH in byhand.namespaces()}
    if not facts["exists"]:
        return facts
    topology = build(collect([(name, netns_path(name)) for name in (FOURTH, byhand.HOST)]))
    inside = [link for link in byhand.links(FOURTH) if link.kind != "loopback"]
    facts["interfaces"] = [(link.name, link.up, link.addresses, link.kind) for link in inside]
    facts["host_end"] = None
    for link in inside:
        peer = topology.peer_of(FOURTH, link.name)
        if peer is not None and peer.namespace == byhand.HOST:
            facts["host_end"] = (peer.link.name, peer.link.up, peer.link.master)
    facts["veth_elsewhere"] = any(kind == "veth" for *_, kind in facts["interfaces"]) and facts["host_end"] is None
    facts["ping"] = byhand.ping(FOURTH, byhand.CONTAINERS["tdlab-c1"]).ok if facts["host_end"] else False
    return facts


def judge_fourth_namespace(facts: dict) -> CheckResult:
    if not facts.get("exists"):
        return CheckResult(False, say("There is no namespace {fourth} yet: make_namespace({quoted}).",
                                      fourth=FOURTH, quoted=repr(FOURTH)))
    if not facts.get("interfaces"):
        return CheckResult(False, say("{fourth} has only lo. Give it one end of a veth pair whose other end is "
                                      "in {host} (veth_pair, or plug_in which does all four steps).",
                                      fourth=FOURTH, host=byhand.HOST))
    if facts.get("veth_elsewhere"):
        return CheckResult(False, say("{fourth} has a veth, but its peer is not in {host}: a bridge can only "
                                      "take ports in its own namespace. Make the pair between tdlab-host and "
                                      "tdlab-c4.", fourth=FOURTH, host=byhand.HOST))
    addresses = [address for _, _, found, _ in facts["interfaces"] for address in found]
    if not addresses:
        return CheckResult(False, say("The veth is there but has no address: add_address({quoted}, 'eth0', "
                                      "'{address}/24').", quoted=repr(FOURTH), address=FOURTH_ADDRESS))
    subnet = ipaddress.ip_network(byhand.SUBNET)
    ours = [ipaddress.ip_interface(address) for address in addresses]
    if not any(address.ip in subnet for address in ours):
        return CheckResult(False, say("{addresses} is not in the bridge's subnet {subnet}: the kernel would send "
                                      "c1's address to a gateway, not out of eth0.",
                                      addresses=", ".join(addresses), subnet=byhand.SUBNET))
    if all(address.network.prefixlen == 32 for address in ours if address.ip in subnet):
        return CheckResult(False, say("A /32 address has no neighbours: no route to 10.213.0.0/24 comes with it. "
                                      "Use /24, like the other three."))
    if not all(up for _, up, _, _ in facts["interfaces"]):
        return CheckResult(False, say("An interface in {fourth} is down: link_up({quoted}, 'eth0').",
                                      fourth=FOURTH, quoted=repr(FOURTH)))
    name, up, master = facts["host_end"]
    if master != byhand.BRIDGE:
        if master:
            return CheckResult(False, say("The host end {name} is not a port of {bridge} (its master is {master}): "
                                          "enslave(HOST, {quoted}, BRIDGE).", name=name, bridge=byhand.BRIDGE,
                                          master=master, quoted=repr(name)))
        return CheckResult(False, say("The host end {name} is not a port of {bridge} (it has no master): "
                                      "enslave(HOST, {quoted}, BRIDGE).", name=name, bridge=byhand.BRIDGE,
                                      quoted=repr(name)))
    if not up:
        return CheckResult(False, say("The host end {name} is on the bridge but down: link_up(HOST, {quoted}).",
                                      name=name, quoted=repr(name)))
    if not facts.get("ping"):
        return CheckResult(False, say("Everything looks wired, yet c1 does not answer. Is the address a duplicate "
                                      "of another namespace's? Look at links(FOURTH) and routes(FOURTH)."))
    return CheckResult(True, say("{fourth} pings tdlab-c1 across {bridge}: the bridge switched frames between its "
                                 "ports, as docker0 does for every container.", fourth=FOURTH, bridge=byhand.BRIDGE))


def check_fourth_namespace() -> CheckResult:
    if not is_root():
        return root_needed()
    return judge_fourth_namespace(fourth_namespace_facts())


# ------------------------------------------------------------------ 2. a port published by hand


def published_by_hand_facts() -> dict:
    from teachdock.lab.networks.nft_text import rules, ruleset_json

    facts = {"rules": rules(ruleset_json(netns_path(byhand.HOST)))}
    server = None
    try:
        server = byhand.whoami_server("tdlab-c2", 80)
        facts["answer"] = byhand.ask(byhand.OUTSIDE, byhand.HOST_OUTSIDE_ADDRESS, BY_HAND_PORT)
    except RuntimeError as error:
        facts["answer"] = f"error: {error}"
    finally:
        if server is not None:
            byhand.stop(server)
    return facts


def start_over() -> str:
    return say("Rules are tried in order and the first DNAT wins, so remove the wrong one first: "
               "nft_text.apply(HOST, nft_text.flush_nat()), then apply yours again.")


def judge_published_by_hand(facts: dict) -> CheckResult:
    answer = facts.get("answer", "")
    if f"I am {byhand.CONTAINERS['tdlab-c2']}:80" in answer:
        return CheckResult(True, say("tdlab-out asked {address}:{port} and tdlab-c2 answered ({answer}). That is "
                                     "`-p {port}:80`.", address=byhand.HOST_OUTSIDE_ADDRESS, port=BY_HAND_PORT,
                                     answer=answer))
    c2 = f"{byhand.CONTAINERS['tdlab-c2']}:80"
    mine = [(chain, rule) for _, chain, rule in facts.get("rules", []) if f"dport {BY_HAND_PORT}" in rule]
    if not mine:
        return CheckResult(False, say("No rule matches port {port} yet. Build one with nft_text.publish(...) and "
                                      "load it with nft_text.apply(HOST, text).", port=BY_HAND_PORT))
    dnat = [(chain, rule) for chain, rule in mine if "dnat" in rule]
    if not dnat:
        return CheckResult(False, say("Your rule matches the port but does not rewrite the destination: it needs "
                                      "`dnat to {c2}`.", c2=c2))
    first = next((rule for chain, rule in dnat if chain == "prerouting"), None)
    if first is None:
        where = ", ".join(sorted({chain for chain, _ in dnat}))
        return CheckResult(False, say("Your DNAT is in {where}. A client in tdlab-out arrives from outside: its "
                                      "packets pass the prerouting hook, before the routing decision (output is "
                                      "for the host's own connections; postrouting is too late to change where a "
                                      "packet goes).", where=where))
    if not first.endswith(c2):
        if byhand.CONTAINERS["tdlab-c2"] not in first:
            return CheckResult(False, say("The first matching rule sends the connection elsewhere ({first}); "
                                          "tdlab-c2 is {address}.", first=first,
                                          address=byhand.CONTAINERS["tdlab-c2"]) + " " + start_over())
        return CheckResult(False, say("Right container, wrong port ({first}): the server in tdlab-c2 listens on "
                                      "80, so the rule must end `dnat to {c2}` ({port} is the host's side).",
                                      first=first, c2=c2, port=BY_HAND_PORT) + " " + start_over())
    if answer:
        return CheckResult(False, say("The rule looks right, but nobody answered ({answer}). Did the match say the "
                                      "host's outside address, 203.0.113.1, and tcp?", answer=answer))
    return CheckResult(False, say("The rule looks right, but nobody answered (silence). Did the match say the "
                                  "host's outside address, 203.0.113.1, and tcp?"))


def check_published_by_hand() -> CheckResult:
    if not is_root():
        return root_needed()
    return judge_published_by_hand(published_by_hand_facts())


# ------------------------------------------------------------------ 3. by name


def reach_by_name_facts(a: str, b: str) -> dict:
    from teachdock.lab.networks.daemon_side import DockerFailed, docker

    facts = {}
    for name in (a, b):
        try:
            state = json.loads(docker("inspect", "--format",
                                      "{{json .State.Running}}|{{json .NetworkSettings.Networks}}", name)
                               .stdout.replace("|", ",", 1).join("[]"))
            facts[name] = {"running": state[0], "networks": sorted(state[1] or {})}
        except DockerFailed:
            facts[name] = None
    if facts[a] and facts[b] and facts[a]["running"] and facts[b]["running"]:
        done = docker("exec", a, "ping", "-c", "1", "-W", "2", b, check=False)
        facts["ping"] = (done.returncode, (done.stdout + done.stderr).strip())
    return facts


def judge_reach_by_name(facts: dict, a: str, b: str) -> CheckResult:
    for name in (a, b):
        if not facts.get(name):
            return CheckResult(False, say("There is no container {name}: docker run -d --name {name} … busybox "
                                          "sleep 600.", name=name))
        if not facts[name]["running"]:
            return CheckResult(False, say("{name} is not running: give it a program that lasts (sleep 600).",
                                          name=name))
    shared = set(facts[a]["networks"]) & set(facts[b]["networks"])
    user_shared = shared - {"bridge", "host", "none"}
    code, output = facts.get("ping", (1, ""))
    if code == 0:
        return CheckResult(True, say("{a} reaches {b} by name ({networks}): the embedded resolver at 127.0.0.11 "
                                     "answered with b's address.", a=a, b=b,
                                     networks=sorted(user_shared) or sorted(shared)))
    if not shared:
        return CheckResult(False, say("They share no network ({a}: {a_networks}, {b}: {b_networks}). Put both on "
                                      "one: docker network connect NET {a}.", a=a, b=b,
                                      a_networks=facts[a]["networks"], b_networks=facts[b]["networks"]))
    if not user_shared:
        return CheckResult(False, say("Both are only on the default network `bridge`. As in Docker, it has no "
                                      "name resolution between containers: create a network and run both on it."))
    if "bad address" in output or "resolve" in output:
        return CheckResult(False, say("They share {networks}, but {b} did not resolve. Is {quoted} the container's "
                                      "name (or an alias)?", networks=sorted(user_shared), b=b, quoted=repr(b)))
    return CheckResult(False, say("The name resolved but the ping failed: {last}",
                                  last=output.splitlines()[-1] if output else "?"))


def check_reach_by_name(a: str = "tdlab-ex-a", b: str = "tdlab-ex-b") -> CheckResult:
    if not is_root():
        return root_needed()
    return judge_reach_by_name(reach_by_name_facts(a, b), a, b)


# ------------------------------------------------------------------ 4. publish on 127.0.0.1:9090


def published_facts(name: str, url: str) -> dict:
    from teachdock.lab.networks.daemon_side import DockerFailed, docker, http_get

    try:
        ports = json.loads(docker("inspect", "--format", "{{json .NetworkSettings.Ports}}", name).stdout or "null")
        running = docker("inspect", "--format", "{{.State.Running}}", name).stdout.strip() == "true"
    except DockerFailed:
        return {"exists": False}
    return {"exists": True, "running": running, "ports": ports or {}, "body": http_get(url)}


def judge_published(facts: dict, name: str, host_ip: str = "127.0.0.1", host_port: int = 9090,
                    container_port: int = 80) -> CheckResult:
    if not facts.get("exists"):
        return CheckResult(False, say("There is no container {name} yet.", name=name))
    if not facts.get("running"):
        return CheckResult(False, say("{name} exists but is not running: a published port needs a live server.",
                                      name=name))
    bindings = [(key, binding) for key, value in facts["ports"].items() for binding in (value or [])]
    if not bindings:
        return CheckResult(False, say("{name} publishes nothing: -p {host_ip}:{host_port}:{container_port}.",
                                      name=name, host_ip=host_ip, host_port=host_port, container_port=container_port))
    for key, binding in bindings:
        port = int(key.split("/")[0])
        if port == host_port and binding.get("HostPort") == str(container_port):
            return CheckResult(False, say("Reversed: you published the container's {host_port} on the host's "
                                          "{container_port}. -p reads HOST:CONTAINER, host side first.",
                                          host_port=host_port, container_port=container_port))
    right_port = [(key, b) for key, b in bindings if key == f"{container_port}/tcp" and b.get("HostPort") == str(host_port)]
    if not right_port:
        found = ", ".join(f"{b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort')}->{key}" for key, b in bindings)
        return CheckResult(False, say("Found {found}; the server listens on {container_port} in the container and "
                                      "the host side must be port {host_port}.", found=found,
                                      container_port=container_port, host_port=host_port))
    if not any(b.get("HostIp") == host_ip for _, b in right_port):
        return CheckResult(False, say("Port {host_port} is published on every address of the host (0.0.0.0), so "
                                      "other machines could reach it too. Name the address: "
                                      "-p {host_ip}:{host_port}:{container_port}.", host_port=host_port,
                                      host_ip=host_ip, container_port=container_port))
    if facts.get("body", "").startswith("error"):
        return CheckResult(False, say("The binding is right, but http://{host_ip}:{host_port}/ did not answer "
                                      "({body}). Is httpd running in the foreground (httpd -f -p 80)?",
                                      host_ip=host_ip, host_port=host_port, body=facts["body"]))
    return CheckResult(True, say("http://{host_ip}:{host_port}/ answered from {name}, and only on {host_ip}.",
                                 host_ip=host_ip, host_port=host_port, name=name))


def check_published(name: str = "tdlab-ex-web", host_ip: str = "127.0.0.1", host_port: int = 9090) -> CheckResult:
    if not is_root():
        return root_needed()
    return judge_published(published_facts(name, f"http://{host_ip}:{host_port}/"), name, host_ip, host_port)


# ------------------------------------------------------------------ 5. why can't it reach it?


def reasons() -> dict[str, str]:
    """The answers of exercise 5: each key (typed by the learner, the same in every language)
    and what it means, in the learner's language."""
    return {
        "no-dns": say("the name does not resolve: the default bridge has no embedded DNS"),
        "different-networks": say("they are on different networks, and traffic between two bridges is dropped"),
        "not-published": say("the server's port is not published"),
        "no-route": say("the container has no route to the other's subnet"),
    }


REASONS = SaidWhenRead(reasons)


def judge_unreachable(answer, *, ping_by_address_ok: bool | None = None) -> CheckResult:
    if not_answered(answer):
        return not_answered_yet()
    if answer not in REASONS:
        return CheckResult(False, say("Answer with one of: {keys}.", keys=", ".join(REASONS)))
    if answer == "different-networks":
        if ping_by_address_ok:
            return CheckResult(True, say(
                "Right reason: tdlab-left and tdlab-right are two bridges, and the firewall's isolation rule drops "
                "forwarding between them, as Docker's DOCKER-ISOLATION chains do. And now they reach each other: "
                "your network connect gave one container a leg on the other's bridge."))
        if ping_by_address_ok is None:
            return CheckResult(False, say(
                "Right reason: tdlab-left and tdlab-right are two bridges, and the firewall's isolation rule drops "
                "forwarding between them, as Docker's DOCKER-ISOLATION chains do. Whether your fix works needs "
                "teachdockd, which needs root: start the lab as root (sudo scripts/lab) to do the second half."))
        return CheckResult(False, say(
            "Right reason: tdlab-left and tdlab-right are two bridges, and the firewall's isolation rule drops "
            "forwarding between them, as Docker's DOCKER-ISOLATION chains do. Now the second half: fix it with one "
            "docker command (no new container, no rule of your own), then run this cell again."))
    if answer == "no-dns":
        return CheckResult(False, say("Not DNS: the cell pinged the *address*, and that failed too. A name is "
                                      "only the first step; the packets themselves do not get through."))
    if answer == "not-published":
        return CheckResult(False, say("Publishing is for the host and the outside world (DNAT on the host's "
                                      "address). Containers reach each other's ports directly, on a shared "
                                      "network."))
    return CheckResult(False, say("Each container has a default route to its gateway, the host, which knows both "
                                  "bridges: routing is not the problem. Look at what the host does with a packet "
                                  "going from one bridge to another."))


def unreachable_facts(source: str = "tdlab-ex-left", target: str = "tdlab-ex-right") -> bool:
    """Whether ``source`` reaches ``target``'s address on the target's first network, now."""
    from teachdock.lab.networks.daemon_side import container_address, docker

    address = container_address(target)
    return docker("exec", source, "ping", "-c", "1", "-W", "2", address, check=False).returncode == 0


def check_unreachable(answer, source: str = "tdlab-ex-left", target: str = "tdlab-ex-right") -> CheckResult:
    reachable = None
    if answer == "different-networks" and is_root():
        try:
            reachable = unreachable_facts(source, target)
        except Exception:  # noqa: BLE001 — the answer is judged even without the daemon
            reachable = None
    return judge_unreachable(answer, ping_by_address_ok=reachable)
