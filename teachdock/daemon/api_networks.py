"""Routes for networks: bridge, none, host and user bridges (docker network ls/create/rm/inspect/prune,
connect, disconnect).

They use the daemon's one NetworkManager (``daemon.networks``), the same one the container
manager connects containers with.
"""

from __future__ import annotations

from teachdock.daemon import networks
from teachdock.daemon.filters import check_keys, labels_match
from teachdock.daemon.server import HTTPError


def network_json(daemon, network: dict) -> dict:
    """The Network object of the API; ``Containers`` lists the live endpoints.

    ``Options`` are the ones given at create, as dockerd shows them: a user network's Linux
    bridge (``td-<12 hex of the id>``, dockerd's ``br-…``) is not among them — docker-compose
    1.29 compares a network's options with its file and would call the network changed. The
    default network's bridge is (dockerd's ``docker0`` is too)."""
    shown = {key: value for key, value in network.items() if key not in ("Endpoints", "Bridge")}
    if network["Name"] == "bridge":
        shown["Options"] = {**(network.get("Options") or {}), "com.docker.network.bridge.name": network["Bridge"]}
    containers = {}
    for container_id, endpoint in daemon.networks.endpoints(network).items():
        try:
            name = daemon.containers.get(container_id).name.lstrip("/")
        except Exception:  # noqa: BLE001 - removed meanwhile: still show the endpoint
            name = ""
        containers[container_id] = {"Name": name, "EndpointID": endpoint["EndpointID"],
                                    "MacAddress": endpoint["MacAddress"],
                                    "IPv4Address": f"{endpoint['IPAddress']}/{endpoint['IPPrefixLen']}",
                                    "IPv6Address": ""}
    if network["Name"] in networks.NO_VETH:  # no endpoints to keep: every running container in that mode
        for record in daemon.containers.list():
            if record.running and record.data["HostConfig"].get("NetworkMode") == network["Name"]:
                containers[record.id] = {"Name": record.name.lstrip("/"), "EndpointID": "", "MacAddress": "",
                                         "IPv4Address": "", "IPv6Address": ""}
    shown["Containers"] = containers
    return shown


def list_networks(daemon, request) -> None:
    filters = request.filters()
    check_keys(filters, {"name", "id", "driver", "type", "label", "scope"})
    shown = []
    for network in daemon.networks.list():
        if "name" in filters and not any(wanted in network["Name"] for wanted in filters["name"]):
            continue
        if "id" in filters and not any(network["Id"].startswith(wanted) for wanted in filters["id"]):
            continue
        if "driver" in filters and network["Driver"] not in filters["driver"]:
            continue
        if "type" in filters:
            kind = "builtin" if network["Name"] in networks.PREDEFINED else "custom"
            if kind not in filters["type"]:
                continue
        if "label" in filters and not labels_match(network.get("Labels") or {}, filters["label"]):
            continue
        if "scope" in filters and "local" not in filters["scope"]:
            continue
        shown.append(network_json(daemon, network))
    request.handler.send_json(200, shown)


def inspect(daemon, request, name: str) -> None:
    request.handler.send_json(200, network_json(daemon, daemon.networks.get(name)))


def create(daemon, request) -> None:
    body = request.json()
    ipam_configs = (body.get("IPAM") or {}).get("Config") or []
    if len(ipam_configs) > 1:
        raise HTTPError(400, "teachdockd networks take one IPv4 subnet: give --subnet once")
    ipam = ipam_configs[0] if ipam_configs else {}
    if body.get("EnableIPv6"):
        raise HTTPError(400, "IPv6 networks are not supported by teachdockd")
    network = daemon.networks.create(body.get("Name") or "", driver=body.get("Driver"),
                                     subnet=ipam.get("Subnet") or None, gateway=ipam.get("Gateway") or None,
                                     ip_range=ipam.get("IPRange") or None,
                                     labels=body.get("Labels") or {}, options=body.get("Options") or {},
                                     internal=bool(body.get("Internal")))
    daemon.events.publish("network", "create", network["Id"], name=network["Name"], type=network["Driver"])
    request.handler.send_json(201, {"Id": network["Id"], "Warning": ""})


def remove(daemon, request, name: str) -> None:
    network = daemon.networks.remove(name)
    daemon.events.publish("network", "destroy", network["Id"], name=network["Name"], type=network["Driver"])
    request.handler.send_bytes(204, b"", None)


def prune(daemon, request) -> None:
    """``docker network prune [--filter label=...]``: user networks no running container uses."""
    labels = request.filters().get("label") or []
    before = daemon.networks.list()
    deleted = daemon.networks.prune(keep=lambda network: not labels_match(network.get("Labels") or {}, labels))
    for network in before:
        if network["Name"] in deleted:
            daemon.events.publish("network", "destroy", network["Id"], name=network["Name"], type=network["Driver"])
    request.handler.send_json(200, {"NetworksDeleted": deleted})


def connect(daemon, request, name: str) -> None:
    """``docker network connect [--alias A] [--ip X] NET CONTAINER``: live when it runs, at start otherwise."""
    body = request.json()
    network = daemon.networks.get(name)
    record = daemon.containers.get(body.get("Container") or "")
    daemon.containers.connect_network(record, network["Name"], body.get("EndpointConfig") or {})
    daemon.events.publish("network", "connect", network["Id"], container=record.id, name=network["Name"],
                          type=network["Driver"])
    request.handler.send_bytes(200, b"", None)


def disconnect(daemon, request, name: str) -> None:
    body = request.json()
    record = daemon.containers.get(body.get("Container") or "")
    try:
        network = daemon.networks.get(name)
    except networks.NetworkNotFound:
        if not body.get("Force"):
            raise
        network = {"Name": name, "Id": name, "Driver": ""}
    daemon.containers.disconnect_network(record, network["Name"])
    daemon.events.publish("network", "disconnect", network["Id"], container=record.id, name=network["Name"],
                          type=network["Driver"])
    request.handler.send_bytes(200, b"", None)


def register(router) -> None:
    router.add("GET", "/networks", list_networks)
    router.add("POST", "/networks/create", create)
    router.add("POST", "/networks/prune", prune)
    router.add("GET", "/networks/{name}", inspect)
    router.add("DELETE", "/networks/{name}", remove)
    router.add("POST", "/networks/{name}/connect", connect)
    router.add("POST", "/networks/{name}/disconnect", disconnect)
