"""Helpers for the client-and-daemon chapter (07): the architecture drawn, the daemon's socket
described, one HTTP request written by hand, the daemon's files on disk, and daemons of the
chapter's own.

- ``plot_architecture()``: Docker's picture (client, host with the daemon and its objects,
  registry), with teachdock's names on it.
- ``socket_info(path)``: a socket as ``ls -l`` shows it (the ``s`` in ``srw-rw----``), and
  which process listens on it, found through ``/proc/net/unix`` and ``/proc/<pid>/fd``.
- ``raw_request(socket, "GET", "/v1.45/version")``: HTTP/1.1 typed by hand on a Unix socket;
  the result shows the exact bytes that went each way.
- ``disk_map(data_root, exec_root)``: where images, containers, volumes and networks live.
- ``LabDaemons``: start teachdockd processes with their own socket, data root, exec root and
  cgroup parent under one directory; ``close()`` removes their containers, stops them by PID,
  and removes every file, mount and cgroup they had. A context manager, and an ``atexit`` hook,
  so an interrupted chapter leaves nothing running.
"""

from __future__ import annotations

import atexit
import contextlib
import grp
import json
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import time
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from teachdock.errors import NotFound, TeachdockError
from teachdock.lab.common.language import say
from teachdock.lab.common.views import TextAndHTML
from teachdock.paths import DEFAULT_SOCKET

CGROUP_ROOT = "/sys/fs/cgroup"
API = "/v1.45"


def socket_path(host: str | os.PathLike) -> str:
    """``unix:///x.sock`` or ``/x.sock`` -> ``/x.sock``."""
    text = str(host)
    return text[len("unix://"):] if text.startswith("unix://") else text


def docker_cli() -> str | None:
    """The real docker CLI's path, or None when it is not installed."""
    for path in ("/usr/local/bin/docker", "/usr/bin/docker"):
        if os.access(path, os.X_OK):
            return path
    return shutil.which("docker")


# ------------------------------------------------------------------ the picture


def plot_architecture(socket: str = DEFAULT_SOCKET):
    """Docker's architecture picture (client, host, registry) with teachdock's parts in it."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    fig = Figure(figsize=(12, 6.4), layout="constrained")
    ax = fig.subplots()
    ax.set_xlim(0, 12)
    ax.set_ylim(0, 6.6)
    ax.axis("off")

    def region(x, y, w, h, title, colour):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.15",
                                    facecolor=colour, edgecolor="#888888", linewidth=1))
        ax.text(x + w / 2, y + h - 0.12, title, ha="center", va="top", fontsize=11, weight="bold")

    def box(x, y, w, h, text, colour="#ffffff", size=8.5):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                    facecolor=colour, edgecolor="#555555", linewidth=1))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size)
        return (x, y, w, h)

    def arrow(start, end, label="", colour="#0072B2", both=False, offset=(0, 0.1)):
        ax.annotate("", xy=end, xytext=start,
                    arrowprops={"arrowstyle": "<->" if both else "->", "color": colour, "linewidth": 1.4})
        if label:
            ax.text((start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1], label,
                    ha="center", va="bottom", fontsize=7.5, color=colour)

    region(0.1, 0.2, 2.6, 6.2, say("CLIENT"), "#eef4fb")
    clients = ["teachdock CLI\n(teachdock run …)", "teachdock.client\n(Python)", say("docker CLI\n(unchanged)"),
               "docker SDK\n(import docker)"]
    client_boxes = [box(0.3, 4.9 - 1.3 * i, 2.2, 0.9, text, "#ffffff") for i, text in enumerate(clients)]

    region(3.2, 0.2, 5.8, 6.2, say("DOCKER HOST (this machine)"), "#f3f8ee")
    sock = box(3.4, 2.7, 1.1, 1.3, say("Unix\nsocket\n(HTTP)"), "#fff1cc", 8)
    daemon = box(5.0, 4.6, 3.8, 1.1, say("teachdockd  (teachdock.daemon)\nEngine API, events, logs,\n"
                                         "supervision (like dockerd)"), "#ffffff")
    objects = [(say("images\nOCI store"), 5.0), (say("containers\nrecords, logs"), 5.97),
               (say("networks\nbridge"), 6.94), (say("volumes\ndirectories"), 7.91)]
    object_boxes = [box(x, 3.0, 0.9, 1.0, text, "#e6eefb", 7.5) for text, x in objects]
    ax.text(5.0, 2.92, say("objects (under the data root)"), ha="left", va="top", fontsize=7.5, color="#555555")
    runtime = box(5.0, 1.65, 3.8, 0.8, say("teachdock.runtime (like runc): bundle → process"), "#ffffff")
    box(5.0, 0.4, 3.8, 0.8, say("Linux kernel: namespaces, cgroups, overlayfs"), "#eeeeee")

    region(9.4, 0.2, 2.5, 6.2, say("REGISTRY"), "#fbf1ee")
    box(9.6, 3.9, 2.1, 1.3, "docker-registry\n(distribution)\nDocker Hub …", "#ffffff")
    for i, name in enumerate(["busybox", "team/app"]):
        box(9.8, 2.6 - 0.8 * i, 1.7, 0.55, name, "#e6eefb", 8)
    ax.text(10.65, 3.25, say("repositories"), ha="center", va="bottom", fontsize=7.5, color="#555555")

    for (x, y, w, h) in client_boxes:
        arrow((x + w, y + h / 2), (sock[0], sock[1] + sock[3] / 2), colour="#0072B2")
    ax.text(3.95, 4.45, "HTTP/1.1\nEngine API", ha="center", va="center", fontsize=7.5, color="#0072B2")
    arrow((sock[0] + sock[2], sock[1] + sock[3] / 2 + 0.4), (daemon[0], daemon[1] + 0.3), colour="#0072B2")
    ax.text(3.95, 2.45, socket, ha="center", va="top", fontsize=7, family="monospace", color="#555555", wrap=True)
    for (x, y, w, h) in object_boxes:
        arrow((x + w / 2, daemon[1]), (x + w / 2, y + h), colour="#555555")
    arrow((daemon[0] + daemon[2] / 2, 3.0), (daemon[0] + daemon[2] / 2, runtime[1] + runtime[3]), colour="#555555")
    arrow((runtime[0] + runtime[2] / 2, runtime[1]), (runtime[0] + runtime[2] / 2, 1.2), colour="#555555")
    arrow((8.8, 5.15), (9.6, 4.55), colour="#D55E00", both=True)
    ax.text(10.65, 5.45, say("pull / push (HTTPS)"), ha="center", va="bottom", fontsize=7.5, color="#D55E00")
    return fig


# ------------------------------------------------------------------ the socket


@dataclass
class SocketInfo:
    """A path as ``ls -l`` sees it, and who listens on it (if it is a socket)."""

    path: str
    mode: int                          # st_mode: the file type bits and the permissions
    owner: str
    group: str
    modified: float
    listeners: list[tuple[int, str]] = field(default_factory=list)   # (pid, command line)

    @property
    def is_socket(self) -> bool:
        return stat.S_ISSOCK(self.mode)

    @property
    def permissions(self) -> str:
        """``srw-rw----``: the first letter is the file type (``s`` for socket)."""
        return stat.filemode(self.mode)

    @property
    def ls_line(self) -> str:
        when = time.strftime("%b %d %H:%M", time.localtime(self.modified))
        return f"{self.permissions} 1 {self.owner} {self.group} 0 {when} {self.path}"

    def __repr__(self) -> str:
        lines = [self.ls_line]
        if self.is_socket and self.mode & 0o007:
            lines.append(say("type: a Unix socket (the 's' at the start of {permissions}); read/write for {owner} "
                             "and the group {group}", permissions=self.permissions, owner=self.owner,
                             group=self.group))
        elif self.is_socket:
            lines.append(say("type: a Unix socket (the 's' at the start of {permissions}); read/write for {owner} "
                             "and the group {group}, nobody else", permissions=self.permissions, owner=self.owner,
                             group=self.group))
        else:
            lines.append(say("type: not a socket"))
        for pid, command in self.listeners:
            lines.append(say("listening: PID {pid}: {command}", pid=pid, command=command))
        if self.is_socket and not self.listeners:
            lines.append(say("listening: nobody (a socket file left behind: connecting to it is refused)"))
        return "\n".join(lines)


def listeners(path: str) -> list[tuple[int, str]]:
    """Processes holding a listening socket bound to ``path``: the inode from /proc/net/unix
    (flag 00010000 = __SO_ACCEPTCON, a listening socket), then whose /proc/<pid>/fd has it."""
    inodes = set()
    with open("/proc/net/unix") as table:
        next(table)
        for line in table:
            parts = line.split()
            if len(parts) >= 8 and parts[7] == path and int(parts[3], 16) & 0x10000:
                inodes.add(parts[6])
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:                   # gone, or not ours to look at
            continue
        held = set()
        for fd in fds:
            with contextlib.suppress(OSError):   # closed meanwhile (listdir's own fd, for one)
                held.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        if any(f"socket:[{inode}]" in held for inode in inodes):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except OSError:
                command = "?"
            found.append((int(pid), command))
    return found


def socket_info(host: str | os.PathLike) -> SocketInfo:
    """The daemon's socket (a path or ``unix://PATH``) as ``ls -l`` shows it, and its listener."""
    path = socket_path(host)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise NotFound(say("{path} does not exist: no daemon has created its socket there", path=path)) from None
    try:
        owner = pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        owner = str(info.st_uid)
    try:
        group = grp.getgrgid(info.st_gid).gr_name
    except KeyError:
        group = str(info.st_gid)
    found = listeners(path) if stat.S_ISSOCK(info.st_mode) else []
    return SocketInfo(path, info.st_mode, owner, group, info.st_mtime, found)


# ------------------------------------------------------------------ HTTP by hand


def visible(data: bytes) -> str:
    """Bytes as text with the line ends shown: ``\\r\\n`` printed, then a real line break."""
    text = data.decode("utf-8", "backslashreplace")
    return text.replace("\r\n", "\\r\\n\n")


def dechunk(data: bytes) -> bytes:
    """The body of a ``Transfer-Encoding: chunked`` message: hex size line, data, CRLF, ...; 0 ends."""
    body, rest = b"", data
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        body, rest = body + rest[:size], rest[size + 2:]
    return body


@dataclass
class RawExchange:
    """One request written by hand and the answer, byte for byte."""

    sent: bytes
    received: bytes

    @property
    def status_line(self) -> str:
        return self.received.split(b"\r\n", 1)[0].decode("latin-1")

    @property
    def status(self) -> int:
        return int(self.status_line.split()[1])

    @property
    def headers(self) -> dict[str, str]:
        head = self.received.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
        return {name.strip(): value.strip() for name, _, value in (line.partition(":") for line in head)}

    @property
    def body(self) -> bytes:
        raw = self.received.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in self.received else b""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return dechunk(raw)
        return raw

    def json(self):
        return json.loads(self.body)

    def __repr__(self) -> str:
        return (f"--- {say('sent ({count} bytes)', count=len(self.sent))} ---\n{visible(self.sent)}\n"
                f"--- {say('received ({count} bytes)', count=len(self.received))} ---\n{visible(self.received)}")

    def _repr_html_(self) -> str:
        def pane(title: str, data: bytes, colour: str) -> str:
            return (f"<div style='flex:1;min-width:0'><b>{escape(title)}</b>"
                    f"<pre style='background:{colour};padding:6px;white-space:pre-wrap;word-break:break-all'>"
                    f"{escape(visible(data))}</pre></div>")
        return ("<div style='display:flex;gap:12px'>"
                + pane(say("sent ({count} bytes)", count=len(self.sent)), self.sent, "#e6eefb")
                + pane(say("received ({count} bytes)", count=len(self.received)), self.received, "#d9f2e6")
                + "</div>")


def raw_request(host: str | os.PathLike, method: str, path: str, *, body=None, headers: dict | None = None,
                timeout: float = 10) -> RawExchange:
    """Send one HTTP/1.1 request over a Unix socket, written out by hand, and read the answer
    until the daemon closes the connection (we ask it to, with ``Connection: close``)."""
    data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost"]
    if data:
        lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    lines += ["Connection: close", "", ""]
    request = "\r\n".join(lines).encode() + data
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(socket_path(host))
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return RawExchange(request, answer)


# ------------------------------------------------------------------ the daemon's files

def places() -> list[tuple[str, str, str]]:
    """(object, path under the data root, what it holds) for the disk map, in the learner's language."""
    return [
        ("image", "images/index.json",
         say("OCI image layout: the list of images, each pointing at its manifest by digest")),
        ("image", "images/blobs/sha256", say("every manifest, config and layer, named by the sha256 of its bytes")),
        ("image", "rootfs/busybox", say("the base busybox tree, built from this machine's static busybox")),
        ("image", "snapshots", say("each layer unpacked once, shared by every container: overlay's lower dirs")),
        ("container", "containers/{id}",
         say("its root filesystem: upper/ (its writes), work/, merged/ (the overlay mount)")),
        ("container", "daemon/containers/{id}/container.json", say("the daemon's record: config, state, exit code")),
        ("container", "daemon/containers/{id}/{id}-json.log", say("its stdout/stderr, one JSON object per line")),
        ("network", "daemon/networks", say("one JSON record per network (name, subnet, bridge)")),
        ("volume", "daemon/volumes",
         say("one directory per named volume; its _data is mounted at each container's target")),
        ("volume", "volumes", say("named volumes' files")),
    ]


def exec_places() -> list[tuple[str, str, str]]:
    """(object, path under the exec root, what it holds) for the disk map."""
    return [
        ("daemon", "{socket}", say("the API socket clients connect to")),
        ("container", "runtime/{id}", say("the runtime's state while the container exists (like /run/runc/<id>)")),
    ]


def object_label(kind: str) -> str:
    """An object kind of the disk map as the learner reads it (the rows keep the English kind)."""
    return {"image": say("image"), "container": say("container"), "network": say("network"),
            "volume": say("volume"), "daemon": say("daemon")}.get(kind, kind)


def _count(path: Path) -> str:
    if path.is_file():
        return say("{size} bytes", size=f"{path.stat().st_size:,}")
    files = [p for p in path.rglob("*") if p.is_file()]
    return say("{count} files, {size} bytes", count=len(files),
               size=f"{sum(p.stat().st_size for p in files if not p.is_symlink()):,}")


def object_files(data_root: str | os.PathLike, exec_root: str | os.PathLike | None = None,
                 socket: str | None = None) -> list[dict]:
    """Rows (object, path, size, what it is) for what exists now under the daemon's roots."""
    data_root = Path(data_root)
    rows = []
    container_dir = data_root / "daemon" / "containers"
    ids = sorted(p.name for p in container_dir.iterdir()) if container_dir.is_dir() else []
    for kind, pattern, what in places():
        paths = [pattern.replace("{id}", cid) for cid in ids] if "{id}" in pattern else [pattern]
        for relative in paths:
            path = data_root / relative
            if path.exists():
                rows.append({"object": kind, "path": str(path), "size": _count(path), "what": what})
    if exec_root is not None:
        exec_root = Path(exec_root)
        for kind, pattern, what in exec_places():
            if pattern == "{socket}":
                paths = [Path(socket)] if socket else []
            else:
                paths = [exec_root / pattern.replace("{id}", cid) for cid in ids]
            rows.extend({"object": kind, "path": str(path), "size": say("socket") if path.is_socket() else _count(path),
                         "what": what} for path in paths if path.exists())
    return rows


def disk_map(data_root, exec_root=None, socket: str | None = None) -> TextAndHTML:
    """Where each object lives on disk, now: a table of the daemon's files."""
    rows = object_files(data_root, exec_root, socket)
    colours = {"image": "#e6eefb", "container": "#d9f2e6", "network": "#fff1cc", "volume": "#f3e6fb",
               "daemon": "#eeeeee"}
    html_rows = "".join(
        f"<tr style='background:{colours.get(r['object'], '#ffffff')}'>"
        f"<td style='text-align:left'>{escape(object_label(r['object']))}</td>"
        f"<td style='text-align:left'><code>{escape(r['path'])}</code></td><td style='text-align:left'>{r['size']}</td>"
        f"<td style='text-align:left'>{escape(r['what'])}</td></tr>" for r in rows)
    head = "".join(f"<th style='text-align:left'>{escape(label)}</th>"
                   for label in (say("object"), say("path"), say("size"), say("what it holds")))
    html = f"<table><thead><tr>{head}</tr></thead><tbody>{html_rows}</tbody></table>"
    text = "\n".join(f"{object_label(r['object']):<10} {r['path']:<90} {r['size']:>22}  {r['what']}" for r in rows)
    return TextAndHTML(html, text)


def tree(root: str | os.PathLike, max_depth: int = 3, max_entries: int = 6) -> str:
    """A small ``tree``: directories first; long directories cut to ``max_entries`` lines."""
    root = Path(root)
    lines = [str(root)]

    def walk(directory: Path, prefix: str, depth: int) -> None:
        try:
            children = sorted(directory.iterdir(), key=lambda p: (not p.is_dir() or p.is_symlink(), p.name))
        except OSError:
            return
        shown = children[:max_entries]
        for index, child in enumerate(shown):
            last = index == len(shown) - 1 and len(children) <= max_entries
            name = child.name + ("/" if child.is_dir() and not child.is_symlink() else "")
            if child.is_socket():
                name += "  " + say("(socket)")
            lines.append(f"{prefix}{'└── ' if last else '├── '}{name}")
            if child.is_dir() and not child.is_symlink() and depth < max_depth:
                walk(child, prefix + ("    " if last else "│   "), depth + 1)
        if len(children) > max_entries:
            lines.append(f"{prefix}└── " + say("… {count} more", count=len(children) - max_entries))

    walk(root, "", 1)
    return "\n".join(lines)


# ------------------------------------------------------------------ daemons of the chapter's own


@dataclass
class LabDaemon:
    """One teachdockd of the chapter's: where it listens and keeps its things, and its PID."""

    name: str
    directory: Path
    socket_path: str
    data_root: Path
    exec_root: Path
    cgroup_parent: str
    embedded: object                   # teachdock.client.EmbeddedDaemon: its pid, stop()
    bridge: str | None = None          # its default network's own Linux bridge (None without root)

    @property
    def host(self) -> str:
        """What DOCKER_HOST / TEACHDOCK_HOST / Client(...) take: ``unix://`` + the socket."""
        return f"unix://{self.socket_path}"

    @property
    def pid(self) -> int:
        return self.embedded.pid

    def running(self) -> bool:
        return self.embedded.running()

    def log(self) -> str:
        path = Path(self.embedded.log_path)
        return path.read_text(errors="replace") if path.exists() else ""


class LabDaemons:
    """teachdockd processes under one directory, each with its own socket, data root (busybox
    bootstrapped into it, so no registry is needed), exec root and cgroup parent.

    ``start(name)`` -> LabDaemon. ``close()``: remove each daemon's containers, SIGTERM it by
    PID (SIGKILL if it lingers), detach leftover mounts, remove its cgroups and all its files.
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o755)      # containers' processes must walk down to their root filesystems
        self.daemons: dict[str, LabDaemon] = {}
        self.bridges: list[str] = []     # the Linux bridges of the networks they had: must be gone at the end
        self.cgroup_parents: list[str] = []   # ours only: another chapter's daemons may run beside them
        atexit.register(self.close)

    def start(self, name: str) -> LabDaemon:
        """Start daemon ``name`` (or return it if it runs): teachdock.client.start_daemon, the
        same function that starts the default daemon when a Client finds none."""
        from teachdock.client import start_daemon  # noqa: PLC0415
        from teachdock.image.images import Images  # noqa: PLC0415

        if name in self.daemons:
            return self.daemons[name]
        directory = self.directory / name
        directory.mkdir(exist_ok=True)
        data_root, exec_root = directory / "data", directory / "exec"
        Images(data_root).bootstrap_busybox()
        socket_file = str(directory / "teachdock.sock")
        cgroup_parent = f"td07-{name}-{secrets.token_hex(3)}"
        # A default bridge of its own (as dockerd's -b/--bip): daemons on one bridge would hand out
        # the same addresses, and each would sweep the other's firewall rules as strangers'.
        bridge, bip = (f"td07{secrets.token_hex(4)}", _free_bip()) if os.geteuid() == 0 else (None, None)
        embedded = start_daemon(f"unix://{socket_file}", data_root, exec_root=exec_root, cgroup_parent=cgroup_parent,
                                bridge=bridge, bip=bip)
        daemon = LabDaemon(name, directory, socket_file, data_root, exec_root, cgroup_parent, embedded, bridge)
        self.cgroup_parents.append(cgroup_parent)
        self.daemons[name] = daemon
        return daemon

    def stop(self, name: str) -> None:
        """Remove the daemon's containers, stop it by PID, remove its mounts, cgroups and files."""
        daemon = self.daemons.pop(name, None)
        if daemon is None:
            return
        if daemon.running():
            _remove_objects(daemon.socket_path, self.bridges)
        daemon.embedded.stop(remove_containers=True)
        _remove_leftovers(daemon.directory, daemon.cgroup_parent)
        if daemon.bridge:  # its default bridge and its nftables table go with it
            from teachdock.daemon import links  # noqa: PLC0415
            from teachdock.daemon.firewall import Firewall, table_name  # noqa: PLC0415

            _off_the_event_loop(links.delete_link, daemon.bridge)
            Firewall(table_name(daemon.bridge)).sweep(set(), set())

    def close(self) -> None:
        for name in list(self.daemons):
            self.stop(name)
        shutil.rmtree(self.directory, ignore_errors=True)
        atexit.unregister(self.close)

    def leftovers(self) -> list[str]:
        """What the chapter's daemons would have left: processes, mounts, cgroups, files."""
        problems = [say("daemon {name} (PID {pid}) still running", name=d.name, pid=d.pid)
                    for d in self.daemons.values() if d.running()]
        problems += [say("mount {path}", path=point) for point in _mounts_under(self.directory)]
        problems += [say("bridge {name}", name=name) for name in self.bridges if os.path.exists(f"/sys/class/net/{name}")]
        problems += [f"cgroup {path}" for parent in self.cgroup_parents for path in _cgroups_named(parent)]
        if self.directory.exists():
            problems.append(say("directory {path}", path=self.directory))
        return problems

    def __enter__(self) -> LabDaemons:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _remove_objects(socket_file: str, bridges: list[str]) -> None:
    """Remove a daemon's containers, then its networks (a network with containers cannot go):
    each network is a bridge in the host's kernel, which outlives the daemon otherwise."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        for container in raw_request(socket_file, "GET", f"{API}/containers/json?all=1").json():
            raw_request(socket_file, "DELETE", f"{API}/containers/{container['Id']}?force=1", timeout=30)
        for network in raw_request(socket_file, "GET", f"{API}/networks").json():
            if network.get("Name") in ("bridge", "host", "none"):
                continue                 # the built-in networks belong to the daemon
            # a user network's bridge: td-<12 hex of its id> (dockerd's br-…), unless named at create
            bridges.append((network.get("Options") or {}).get("com.docker.network.bridge.name")
                           or "td-" + network["Id"][:12])
            raw_request(socket_file, "DELETE", f"{API}/networks/{network['Id']}", timeout=30)


def _mounts_under(directory: Path) -> list[str]:
    points = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(f"{directory}/"):
                points.append(point)
    return points


def _cgroups_named(prefix: str) -> list[str]:
    found = []
    with contextlib.suppress(OSError):
        for controller in os.listdir(CGROUP_ROOT):
            base = Path(CGROUP_ROOT) / controller
            with contextlib.suppress(OSError):
                found += [str(p) for p in base.iterdir() if p.name.startswith(prefix) and p.is_dir()]
    return found


def _off_the_event_loop(function, *args):
    """``function(*args)`` in a thread of its own: pyroute2's synchronous API runs an asyncio loop
    of its own, which cannot start in a Jupyter kernel's thread, where one already runs."""
    import concurrent.futures  # noqa: PLC0415

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args).result()


def _free_bip() -> str:
    """A gateway/subnet for a chapter daemon's bridge: the daemon's own subnet picker, on a /24 of
    172.27.0.0/16 that no interface has (clear of teachdock0's 172.29.0.0/16, user networks'
    172.30.0.0/16 and Docker's 172.17.0.0/16)."""
    import ipaddress  # noqa: PLC0415

    from teachdock.daemon import ipam, links  # noqa: PLC0415

    taken = _off_the_event_loop(links.host_networks)
    subnet = ipam.pick_subnet(None, taken, pool=ipaddress.ip_network("172.27.0.0/16"))
    return f"{subnet.network_address + 1}/24"


def _remove_leftovers(directory: Path, cgroup_parent: str) -> None:
    """Detach mounts under ``directory`` and remove the daemon's cgroup parent (deepest first)."""
    from teachdock import kernel  # noqa: PLC0415

    for point in sorted(_mounts_under(directory), reverse=True):
        with contextlib.suppress(OSError, TeachdockError):
            kernel.umount2(point, kernel.MNT_DETACH)
    for path in _cgroups_named(cgroup_parent):
        for sub, _dirs, _files in sorted(os.walk(path), reverse=True):
            with contextlib.suppress(OSError):
                os.rmdir(sub)
    shutil.rmtree(directory, ignore_errors=True)


# ------------------------------------------------------------------ the docker CLI


def run_docker(host: str, *args: str, timeout: float = 60, config_dir: str | os.PathLike | None = None
           ) -> subprocess.CompletedProcess:
    """Run the real docker CLI against ``host`` (``unix://…``): no hints, the legacy builder,
    and a config directory of its own if given (so no context or login of yours is used)."""
    binary = docker_cli()
    if binary is None:
        raise NotFound(say("the docker CLI is not installed (apt-get install docker.io, or docker-ce-cli)"))
    env = {**os.environ, "DOCKER_HOST": host, "DOCKER_CLI_HINTS": "false", "DOCKER_BUILDKIT": "0"}
    env.pop("DOCKER_CONTEXT", None)
    env.pop("DOCKER_API_VERSION", None)
    if config_dir is not None:
        env["DOCKER_CONFIG"] = str(config_dir)
    return subprocess.run([binary, *args], env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


__all__ = ["DEFAULT_SOCKET", "LabDaemon", "LabDaemons", "RawExchange", "SocketInfo", "dechunk",
           "disk_map", "docker_cli", "exec_places", "listeners", "object_files", "object_label", "places",
           "plot_architecture", "raw_request", "run_docker",
           "socket_info", "socket_path", "tree", "visible"]
