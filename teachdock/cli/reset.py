"""``teachdock system reset``: put this machine's teachdock back to a clean state between sessions.

Everything teachdock made under one data root and exec root goes — the daemon's containers,
networks (with their bridges and the nftables table), volumes and images (all but the
``busybox:latest`` base and its rootfs), the runtime containers a notebook's ``run()`` left
under the state root, empty cgroups under the cgroup parent, mounts left under the two roots,
the build cache — and the daemon on that socket is stopped. What belongs to anyone else is not
touched: another daemon (its own roots, socket, bridge and cgroup parent), dockerd, a cgroup
under our parent that still holds processes (another state root's container: it is named and
kept).

Why ``system reset`` and not a top-level ``reset``: docker has no such verb, and the nearest ones
live in docker's ``system`` group (``system prune``, ``system df``), which is where a learner who
knows docker looks; ``system prune`` removes what is unused, ``system reset`` everything but the
base. Unlike ``system prune`` it works on the machine itself, not only through the daemon's API
(it stops the daemon and cleans the runtime's state after it), so it lives here in the CLI.

Each object is removed by its owner: containers, networks and volumes through the daemon's API
(a daemon is started for the reset when records exist and none answers), images through the
store, runtime containers through the runtime.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from teachdock import paths
from teachdock.errors import TeachdockError

BASE_IMAGE = "docker.io/library/busybox:latest"
# What two chapters build by hand outside any data root, each found and removed by its own lab module
# (leftovers() and cleanup()): the default roots' reset removes it too, since it is the course's on this machine.
CHAPTER_LABS = (("chapter 08's network by hand", "teachdock.lab.networks.byhand"),
                ("chapter 09's swarm", "teachdock.lab.applications.swarm"))
PREDEFINED_NETWORKS = ("bridge", "host", "none")

DESCRIPTION = """\
Put this machine's teachdock back to a clean state, e.g. between two workshop sessions.

Removes every container, image (but busybox:latest, the base, and its rootfs), network (and
the default bridge and nftables table), volume, runtime container, empty cgroup and leftover
mount that teachdock made under the data root and exec root, clears the build cache, and stops
the daemon on the socket. Then it lists what it removed, with counts.

Another daemon (other roots, socket and cgroup parent), dockerd, and cgroups that still hold
processes are never touched. Without -f it asks first; --dry-run only lists.
"""


@dataclass
class Roots:
    data_root: Path
    exec_root: Path
    socket: str
    state_root: Path
    cgroup_parent: str
    default: bool = False  # the default daemon's roots: the chapters' own leftovers are included

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"


@dataclass
class Inventory:
    """What teachdock has under the roots, read from the disk (and the socket's peer)."""

    daemon_pid: int | None = None
    containers: list[tuple[str, str]] = field(default_factory=list)  # (id, name): the daemon's records
    networks: list[tuple[str, str]] = field(default_factory=list)  # (id, name): user networks
    default_network: dict | None = None
    volumes: list[str] = field(default_factory=list)
    images: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # (id, names), the base excluded
    base_extra_names: list[str] = field(default_factory=list)  # other tags of the base image
    runtime: list[tuple[str, str]] = field(default_factory=list)  # (id, status), not the daemon's
    cgroups: list[str] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)
    chapters: list[str] = field(default_factory=list)  # "chapter 08's ...: namespace tdlab-a"

    @property
    def daemon_work(self) -> bool:
        return bool(self.containers or self.networks or self.volumes)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="teachdock system reset", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    p.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    p.add_argument("-H", "--host", help="the daemon's socket, unix://PATH (default: EXEC_ROOT/teachdock.sock)")
    p.add_argument("--data-root", help="default: $TEACHDOCK_DATA_ROOT or /var/lib/teachdock")
    p.add_argument("--exec-root", help=f"default: {paths.DEFAULT_EXEC_ROOT}")
    p.add_argument("--cgroup-parent", default="teachdock", help="the daemon's and run()'s (default: teachdock)")
    return p


def roots_from(arguments, host: str | None = None) -> Roots:
    exec_root = Path(arguments.exec_root or paths.DEFAULT_EXEC_ROOT).absolute()
    address = arguments.host or host
    if address:
        if not address.startswith("unix://"):
            raise TeachdockError(f"system reset works on this machine: -H must be unix://PATH, not {address}")
        socket_path = address[len("unix://"):]
    else:
        socket_path = paths.DEFAULT_SOCKET if arguments.exec_root is None else str(exec_root / "teachdock.sock")
    data_root = Path(arguments.data_root).absolute() if arguments.data_root else paths.data_root()
    # run()'s state root with the default exec root ($TEACHDOCK_STATE_ROOT; a user's own without root)
    state_root = exec_root / "runtime" if arguments.exec_root else paths.state_root()
    default = not (arguments.exec_root or arguments.data_root or address) and arguments.cgroup_parent == "teachdock"
    return Roots(data_root, exec_root, socket_path, state_root, arguments.cgroup_parent.strip("/"), default)


# --------------------------------------------------------------------------------------------
# Looking


def daemon_pid(socket_path: str) -> int | None:
    """The pid of the teachdockd listening on ``socket_path`` (SO_PEERCRED), None when nothing
    answers or what answers is not a teachdockd."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(2)
            client.connect(socket_path)
            pid, _uid, _gid = struct.unpack("3i", client.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                                    struct.calcsize("3i")))
    except OSError:
        return None
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    return pid if ("teachdock.daemon" in command or "teachdockd" in command) else None


def _records(directory: Path, pattern: str) -> list[dict]:
    found = []
    for path in sorted(directory.glob(pattern)) if directory.is_dir() else []:
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return found


def child_cgroups(parent: str) -> list[str]:
    """/<parent>/<name> for every cgroup directly under /<parent>, in any hierarchy."""
    from teachdock.runtime import cgroups  # noqa: PLC0415
    from teachdock.runtime.init import cgroup_dirs  # noqa: PLC0415

    try:
        directories = cgroup_dirs(cgroups.open_cgroup(f"/{parent}")).values()
    except TeachdockError:
        return []
    names = set()
    for directory in directories:
        if os.path.isdir(directory):
            names.update(entry.name for entry in os.scandir(directory) if entry.is_dir())
    return [f"/{parent}/{name}" for name in sorted(names)]


def mounts_under(*roots: Path) -> list[str]:
    from teachdock.image.overlay import mount_points  # noqa: PLC0415

    prefixes = tuple(f"{root}/" for root in roots)
    return sorted((point for point in mount_points() if point.startswith(prefixes)), reverse=True)


def take_inventory(roots: Roots) -> Inventory:
    from teachdock.runtime.container import list_containers  # noqa: PLC0415

    found = Inventory(daemon_pid=daemon_pid(roots.socket))
    if found.daemon_pid:  # never remove one daemon's things while reading another's records
        served = _api(roots.host, "GET", "/info").get("DockerRootDir")
        if served and Path(served) != roots.data_root:
            raise TeachdockError(f"the daemon on {roots.socket} serves the data root {served}, not {roots.data_root}:"
                                 f" give --data-root {served} (and its --exec-root), or stop that daemon first")
    daemon_dir = roots.data_root / "daemon"
    found.containers = [(r["Id"], r.get("Name", "").lstrip("/")) for r in _records(daemon_dir / "containers",
                                                                                   "*/container.json")]
    for network in _records(daemon_dir / "networks", "*.json"):
        if network.get("Name") == "bridge":
            found.default_network = network
        elif network.get("Name") not in PREDEFINED_NETWORKS:
            found.networks.append((network["Id"], network["Name"]))
    found.volumes = [v["Name"] for v in _records(daemon_dir / "volumes", "*/volume.json")]
    if (roots.data_root / "images" / "index.json").exists():
        from teachdock.image.images import Images  # noqa: PLC0415

        for image in Images(roots.data_root).list():
            if BASE_IMAGE in image.names:
                found.base_extra_names = [name for name in image.names if name != BASE_IMAGE]
            else:
                found.images.append((image.id, image.names))
    daemon_ids = {container_id for container_id, _ in found.containers}
    found.runtime = [(s["id"], s["status"]) for s in list_containers(roots.state_root) if s["id"] not in daemon_ids]
    found.cgroups = child_cgroups(roots.cgroup_parent)
    found.mounts = mounts_under(roots.data_root, roots.exec_root)
    if roots.default:
        found.chapters = chapter_leftovers()
    return found


def chapter_leftovers() -> list[str]:
    import importlib  # noqa: PLC0415

    from teachdock.lab.common.language import speaking  # noqa: PLC0415

    found = []
    for title, module in CHAPTER_LABS:
        try:
            with speaking("en"):  # this command's own lines are English, whatever the terminal's language
                found += [f"{title}: {item}" for item in importlib.import_module(module).leftovers()]
        except (ImportError, OSError, TeachdockError) as error:  # e.g. no pyroute2, or no root to look
            found.append(f"{title}: not looked at ({error})")
    return found


def default_bridge(found: Inventory) -> str | None:
    return (found.default_network or {}).get("Bridge") or None


def plan_lines(found: Inventory, roots: Roots) -> list[str]:
    """What a reset would do, one line per object."""
    lines = [f"container {cid[:12]} {name}" for cid, name in found.containers]
    lines += [f"image {iid.split(':', 1)[-1][:12]} {' '.join(names) or '<none>'}" for iid, names in found.images]
    lines += [f"image tag {name} (of the base image; the base stays)" for name in found.base_extra_names]
    lines += [f"network {nid[:12]} {name}" for nid, name in found.networks]
    lines += [f"volume {name}" for name in found.volumes]
    lines += [f"runtime container {cid} ({status})" for cid, status in found.runtime]
    lines += [f"cgroup {path} (removed when empty)" for path in found.cgroups]
    lines += [f"mount {point}" for point in found.mounts]
    lines += found.chapters
    bridge = default_bridge(found)
    if bridge:
        lines.append(f"bridge {bridge} and its nftables table (the daemon makes them again when it starts)")
    lines.append("the build cache and unpacked layers nothing uses")
    if found.daemon_pid:
        lines.append(f"stop teachdockd (pid {found.daemon_pid}) on {roots.socket}")
    return lines


# --------------------------------------------------------------------------------------------
# Removing


@dataclass
class Removed:
    counts: dict[str, int] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, kind: str, line: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.lines.append(f"removed {kind} {line}")

    def summary(self) -> str:
        kinds = ("container", "image", "network", "volume", "runtime container", "cgroup", "mount")
        return "removed: " + ", ".join(f"{self.counts.get(k, 0)} {k}{'s' if self.counts.get(k, 0) != 1 else ''}"
                                       for k in kinds)


def _api(host: str, method: str, path: str, timeout: float = 60):
    from teachdock.client.autostart import ask  # noqa: PLC0415

    response = ask(host, method, path, timeout=timeout)
    body = response.body
    if response.status >= 400:
        raise TeachdockError(f"{method} {path}: {response.status} {body[:200].decode(errors='replace')}")
    return json.loads(body) if body else None


def through_daemon(roots: Roots, found: Inventory, removed: Removed) -> int | None:
    """Remove containers, networks, volumes and images through the daemon on the socket (started
    for the reset when records exist and none answers). Returns the pid of the daemon to stop."""
    from urllib.parse import quote  # noqa: PLC0415

    pid = found.daemon_pid
    if pid is None and found.daemon_work:
        pid = start_for_reset(roots, found)
        removed.lines.append(f"started teachdockd (pid {pid}) to remove its records")
    if pid is None:
        return None
    host = roots.host
    for summary in _api(host, "GET", "/containers/json?all=1"):
        _try(removed, "container", f"{summary['Id'][:12]} {summary['Names'][0].lstrip('/')}",
             lambda: _api(host, "DELETE", f"/containers/{summary['Id']}?force=1&v=1"))
    for network in _api(host, "GET", "/networks"):
        if network["Name"] not in PREDEFINED_NETWORKS:
            _try(removed, "network", f"{network['Id'][:12]} {network['Name']}",
                 lambda: _api(host, "DELETE", f"/networks/{network['Id']}"))
    for volume in (_api(host, "GET", "/volumes") or {}).get("Volumes") or []:
        _try(removed, "volume", volume["Name"], lambda: _api(host, "DELETE", f"/volumes/{quote(volume['Name'])}?force=1"))
    for image in _api(host, "GET", "/images/json?all=1"):
        tags = image.get("RepoTags") or []
        if any(_full(tag) == BASE_IMAGE for tag in tags):
            for tag in tags:
                if _full(tag) != BASE_IMAGE:
                    _try(removed, "image tag", tag, lambda: _api(host, "DELETE", f"/images/{quote(tag, safe='')}"))
            continue
        _try(removed, "image", f"{image['Id'].split(':', 1)[-1][:12]} {' '.join(tags) or '<none>'}",
             lambda: _api(host, "DELETE", f"/images/{image['Id']}?force=1"))
    return pid


def _full(tag: str) -> str:
    from teachdock.image.reference import parse_reference  # noqa: PLC0415

    try:
        return str(parse_reference(tag))
    except TeachdockError:
        return tag


def _try(removed: Removed, kind: str, line: str, action) -> None:
    try:
        action()
    except (TeachdockError, OSError) as error:
        removed.problems.append(f"{kind} {line}: {error}")
        return
    removed.add(kind, line)


def start_for_reset(roots: Roots, found: Inventory) -> int:
    """A teachdockd on the roots, with the default bridge its records name, so that it can
    remove what it made."""
    from teachdock.client.autostart import start_daemon  # noqa: PLC0415

    network = found.default_network or {}
    bip = None
    for config in (network.get("IPAM") or {}).get("Config") or []:
        if config.get("Gateway") and config.get("Subnet"):
            bip = f"{config['Gateway']}/{config['Subnet'].split('/')[1]}"
    daemon = start_daemon(roots.host, roots.data_root, exec_root=roots.exec_root, cgroup_parent=roots.cgroup_parent,
                          bridge=default_bridge(found), bip=bip)
    return daemon.pid


def stop_daemon(pid: int, timeout: float = 20) -> None:
    """SIGTERM, as an init system would, then wait for it to go (SIGKILL after ``timeout``)."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and _state(pid) != "Z":
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline += timeout
        time.sleep(0.05)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "X"


def after_daemon(roots: Roots, found: Inventory, removed: Removed) -> None:
    """With the daemon gone: runtime containers, cgroups, mounts, the bridge and its table, the cache."""
    from teachdock.runtime import cgroups  # noqa: PLC0415
    from teachdock.runtime.container import Container, list_containers  # noqa: PLC0415

    for state in list_containers(roots.state_root):
        _try(removed, "runtime container", f"{state['id']} ({state['status']})",
             lambda: Container.load(state["id"], roots.state_root).delete(force=True))
    for path in child_cgroups(roots.cgroup_parent):
        cgroup = cgroups.open_cgroup(path)
        busy = cgroup.processes()
        if busy:
            removed.lines.append(f"kept cgroup {path}: processes {busy[:5]} run in it (not under these roots)")
            continue
        _try(removed, "cgroup", path, cgroup.destroy)
    from teachdock import kernel  # noqa: PLC0415

    for point in mounts_under(roots.data_root, roots.exec_root):
        _try(removed, "mount", point, lambda: kernel.umount2(point, kernel.MNT_DETACH))
    bridge = default_bridge(found)
    if bridge and os.geteuid() == 0:
        from teachdock.daemon import links  # noqa: PLC0415
        from teachdock.daemon.firewall import Firewall, table_name  # noqa: PLC0415

        if links.delete_link(bridge):
            removed.lines.append(f"removed bridge {bridge}")
        firewall = Firewall(table_name(bridge))
        if firewall.text():
            firewall.sweep(set(), set())
            removed.lines.append(f"removed nftables table inet {firewall.table}")
    if (roots.data_root / "images" / "index.json").exists():
        from teachdock.image.images import Images  # noqa: PLC0415

        images = Images(roots.data_root)
        for image in images.list():  # what no daemon removed (none answered and none was needed)
            if BASE_IMAGE in image.names:
                for name in image.names:
                    if name != BASE_IMAGE:
                        _try(removed, "image tag", name, lambda: images.remove(name))
            else:
                _try(removed, "image", f"{image.short_id} {' '.join(image.names) or '<none>'}",
                     lambda: images.remove(image.id, force=True))
        pruned = images.prune(build_cache=True)
        removed.lines += [f"removed unused image {entry}" for entry in pruned["images"]]
        if pruned["build_cache"] or pruned["snapshots"]:
            removed.lines.append(f"removed {len(pruned['build_cache'])} build cache entries, "
                                 f"{len(pruned['snapshots'])} unpacked layers")


def chapter_cleanups(found: Inventory, removed: Removed) -> None:
    import importlib  # noqa: PLC0415

    for title, module in CHAPTER_LABS:
        if not any(line.startswith(f"{title}: ") for line in found.chapters):
            continue
        lab = importlib.import_module(module)
        _try(removed, "chapter leftovers", title, lab.cleanup)
        removed.problems += [f"{title}: {item} is still there" for item in lab.leftovers()]


def reset(roots: Roots, found: Inventory) -> Removed:
    removed = Removed()
    chapter_cleanups(found, removed)
    pid = through_daemon(roots, found, removed)
    if pid is not None:
        stop_daemon(pid)
        removed.lines.append(f"stopped teachdockd (pid {pid})")
    after_daemon(roots, found, removed)
    return removed


def main(argv: list[str], host: str | None = None) -> int:
    arguments = parser().parse_args(argv)
    try:
        roots = roots_from(arguments, host)
        found = take_inventory(roots)
    except (TeachdockError, OSError) as error:  # OSError: e.g. a user reading root's data root
        print(f"teachdock system reset: {error}", file=sys.stderr)
        return 1
    plan = plan_lines(found, roots)
    where = f"data root {roots.data_root}, exec root {roots.exec_root}, cgroup parent /{roots.cgroup_parent}"
    if arguments.dry_run:
        print(f"would remove ({where}):")
        print("\n".join(f"  {line}" for line in plan))
        print("kept: the base image busybox:latest and its rootfs")
        return 0
    if not arguments.force:
        print(f"WARNING! This removes everything teachdock made here ({where}):")
        print("\n".join(f"  {line}" for line in plan))
        sys.stdout.write("Are you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return 1
    try:
        removed = reset(roots, found)
    except (TeachdockError, OSError) as error:
        print(f"teachdock system reset: {error}", file=sys.stderr)
        return 1
    print("\n".join(removed.lines))
    for problem in removed.problems:
        print(f"could not remove {problem}", file=sys.stderr)
    print(removed.summary())
    print("kept: the base image busybox:latest and its rootfs")
    return 1 if removed.problems else 0
