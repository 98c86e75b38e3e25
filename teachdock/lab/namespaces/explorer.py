"""The isolation explorer: tick namespaces, run a probe container, see what it shares with the host.

For each of the eight namespace kinds the explorer answers one question twice:

1. **Identity.** Is the container's namespace the host's? Every namespace is an inode in the
   kernel's nsfs; ``/proc/<pid>/ns/<kind>`` links to it. We read the link for this notebook's
   own process and for the container's PID 1, both from the host. Same inode: shared.
   Different inode: the container has its own (isolated).
2. **Evidence.** What difference does that make? A small shell script (PROBE_SCRIPT) runs
   inside the container and asks one concrete question per kind (its own PID, the hostname,
   whether a host IPC object is visible, the network interfaces, its uid map, its cgroup,
   the clocks, its mounts). The host answers the same questions from /proc.

``compare()`` turns both sides into an :class:`ExplorerResult` (pure: testable without a
container); ``explore()`` does the real run and always deletes the probe; the widget
(:class:`IsolationExplorer`) is checkboxes, a Run button, a heat-map and a table on top.

Why the probe is created first and started later: after ``Container.create`` the
container's PID 1 already exists with all its namespaces, waiting for ``start`` (as with
``runc create``). That is when we read its ``/proc/<pid>/ns`` links from the host.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import select
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from teachdock.errors import InvalidConfig, KernelError, TeachdockError
from teachdock.kernel import NAMESPACES
from teachdock.lab.common.language import say
from teachdock.lab.common.views import TextAndHTML, interfaces_from_net_dev
from teachdock.lab.namespaces.heatmap import figure_png, plot_matrix, render_table

#: The eight kinds, in the order the chapter teaches them (OCI names; /proc calls network "net", mount "mnt").
KINDS = ("pid", "mount", "uts", "ipc", "network", "user", "cgroup", "time")
PROC_NAME = {kind: NAMESPACES[kind][1] for kind in KINDS}
#: The short names people also use (/proc/<pid>/ns and unshare(1) spell them so).
ALIASES = {"net": "network", "mnt": "mount", "ns": "mount"}

#: What `docker run` gives a container, and so what the explorer starts with.
DOCKER_DEFAULT = ("pid", "mount", "uts", "ipc", "network")



def mount_reason() -> str:
    return say("mount is always on: the runtime mounts /proc, /dev and /sys for the container and then calls "
               "pivot_root(2) to make the rootfs its /. pivot_root needs a mount namespace of its own; in the "
               "host's, it would move the root of every process on the machine.")


def rootless_reason() -> str:
    return say("user is always on without root: only a user namespace lets an ordinary user create the other "
               "namespaces (the kernel grants root's powers inside it, and nowhere else).")


def user_without_pid() -> str:
    return say("A container cannot mount its /proc this way: in a new user namespace, a process may mount procfs "
               "only for a PID namespace that its user namespace owns, and the host's PID namespace belongs to the "
               "host, so the runtime refuses the combination up front. Tick pid as well. (Docker lists --pid=host "
               "among the features that do not work with user namespace remapping.)")


def time_note() -> str:
    return say("The probe asks for no clock offsets, so a new time namespace reads the same clocks as the host: "
               "only its inode tells it apart.")


def kind_tooltip(kind: str) -> str:
    """What ticking one kind gives the probe, for its checkbox's tooltip."""
    tips = {
        "pid": say("ticked: the probe numbers its processes from 1 and cannot see the host's"),
        "mount": say("always ticked: the probe gets its own mount table, with the rootfs as /"),
        "uts": say("ticked: the probe can have a hostname of its own"),
        "ipc": say("ticked: the host's shared memory segments are hidden from the probe"),
        "network": say("ticked: the probe gets its own interfaces, routes and ports"),
        "user": say("ticked: root in the probe can be an ordinary user on the host"),
        "cgroup": say("ticked: the probe sees its own cgroup as the root of the tree"),
        "time": say("ticked: the probe may have its own boot and monotonic clocks"),
    }
    return tips.get(kind, "")

# Runs inside the container under busybox sh: one line per question, as key=value.
# TD_IPC_KEY is the key of a System V shared memory segment the host creates just before.
PROBE_SCRIPT = """\
echo "pid=$$"
echo "processes=$(ls -d /proc/[0-9]* | wc -l)"
echo "hostname=$(hostname)"
if grep -q "^ *$TD_IPC_KEY " /proc/sysvipc/shm; then echo ipc=visible; else echo ipc=hidden; fi
echo "interfaces=$(cut -s -d: -f1 /proc/net/dev | tr -d ' ' | tr '\\n' ' ')"
echo "uid=$(id -u)"
echo "uid_map=$(head -n 1 /proc/self/uid_map)"
echo "cgroup=$(tr '\\n' ';' < /proc/self/cgroup)"
echo "uptime=$(cut -d' ' -f1 /proc/uptime)"
echo "time_offsets=$(tr '\\n' ';' < /proc/self/timens_offsets 2>/dev/null)"
echo "mounts=$(wc -l < /proc/self/mountinfo)"
"""


def normalise(namespaces) -> tuple[str, ...]:
    """The namespaces a probe really gets, in KINDS order: mount always; user too without root."""
    if isinstance(namespaces, str):
        namespaces = [namespaces]
    chosen = set()
    for name in namespaces:
        kind = ALIASES.get(name, name)
        if kind not in KINDS:
            raise InvalidConfig(say("{name} is not a namespace kind: choose from {kinds}", name=repr(name),
                                    kinds=", ".join(KINDS)))
        chosen.add(kind)
    chosen.add("mount")
    if os.geteuid() != 0:
        chosen.add("user")
    return tuple(kind for kind in KINDS if kind in chosen)


# --- one side's view ----------------------------------------------------------------------------------
@dataclass
class Side:
    """What one process saw: its namespace inodes and one concrete answer per kind."""

    inodes: dict[str, int]  # kind -> inode of /proc/<pid>/ns/<name>
    own_pid: int
    processes: int
    hostname: str
    ipc_visible: bool  # can it see the host's System V shared memory segment?
    interfaces: list[str]
    uid: int
    uid_map: str  # first line of /proc/self/uid_map, e.g. "0 100000 65536"
    cgroup: str  # the memory (v1) or unified (v2) line of /proc/self/cgroup
    uptime: float  # seconds, CLOCK_BOOTTIME as /proc/uptime shows it
    time_offsets: str  # /proc/self/timens_offsets, e.g. "monotonic 0 0; boottime 0 0"
    mounts: int


def namespace_inodes(pid: int | str = "self") -> dict[str, int]:
    """{kind: inode} from the links in /proc/<pid>/ns (a kind this kernel lacks is left out)."""
    inodes = {}
    for kind in KINDS:
        try:
            link = os.readlink(f"/proc/{pid}/ns/{PROC_NAME[kind]}")  # e.g. "net:[4026531840]"
        except FileNotFoundError:
            continue
        inodes[kind] = int(link[link.index("[") + 1:-1])
    return inodes


def pick_cgroup_line(text: str) -> str:
    """The line of /proc/<pid>/cgroup worth showing: memory's on cgroup v1, the unified one on v2."""
    lines = [line for line in text.replace(";", "\n").splitlines() if line.strip()]
    for line in lines:
        if line.split(":")[1:2] == ["memory"]:
            return line.split(":", 1)[1]
    for line in lines:
        if line.startswith("0::"):
            return "unified:" + line.split("::", 1)[1]
    return lines[0].split(":", 1)[1] if lines else ""


def _squeeze(text: str) -> str:
    """'monotonic   0   0\\nboottime  0  0' -> 'monotonic 0 0; boottime 0 0'."""
    return "; ".join(" ".join(line.split()) for line in text.replace(";", "\n").splitlines() if line.strip())


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def observe_host(ipc_key: int | None = None) -> Side:
    """This notebook's own view, straight from /proc (the same questions the probe asks)."""
    shm = _read("/proc/sysvipc/shm").splitlines()[1:]
    return Side(
        inodes=namespace_inodes("self"),
        own_pid=os.getpid(),
        processes=sum(entry.isdigit() for entry in os.listdir("/proc")),
        hostname=socket.gethostname(),
        ipc_visible=ipc_key is not None and any(line.split()[:1] == [str(ipc_key)] for line in shm),
        interfaces=interfaces_from_net_dev(_read("/proc/net/dev")),
        uid=os.getuid(),
        uid_map=" ".join(_read("/proc/self/uid_map").split()[:3]),
        cgroup=pick_cgroup_line(_read("/proc/self/cgroup")),
        uptime=float(_read("/proc/uptime").split()[0]),
        time_offsets=_squeeze(_read("/proc/self/timens_offsets")),
        mounts=len(_read("/proc/self/mountinfo").splitlines()),
    )


def parse_probe(output: str, inodes: dict[str, int]) -> Side:
    """Read back what PROBE_SCRIPT printed; ``inodes`` were read from the host meanwhile."""
    values = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)
    wanted = {"pid", "processes", "hostname", "ipc", "interfaces", "uid", "uid_map", "cgroup", "uptime", "mounts"}
    missing = wanted - values.keys()
    if missing:
        raise TeachdockError(say("the probe's output lacks {names}; it printed:\n{output}",
                                 names=", ".join(sorted(missing)), output=output))
    return Side(
        inodes=inodes,
        own_pid=int(values["pid"]),
        processes=int(values["processes"]),
        hostname=values["hostname"],
        ipc_visible=values["ipc"] == "visible",
        interfaces=values["interfaces"].split(),
        uid=int(values["uid"]),
        uid_map=" ".join(values["uid_map"].split()),
        cgroup=pick_cgroup_line(values["cgroup"]),
        uptime=float(values["uptime"]),
        time_offsets=_squeeze(values.get("time_offsets", "")),
        mounts=int(values["mounts"]),
    )


# --- the comparison -----------------------------------------------------------------------------------
@dataclass
class Row:
    """One namespace kind: asked for or not, shared or isolated, and what each side saw."""

    kind: str
    asked: bool
    host_inode: int | None
    container_inode: int | None
    container_sees: str
    host_sees: str

    @property
    def isolated(self) -> bool:
        return self.container_inode is not None and self.container_inode != self.host_inode

    @property
    def shared(self) -> bool:
        return self.container_inode is not None and self.container_inode == self.host_inode

    @property
    def as_asked(self) -> bool:
        """Did the kernel do what the config asked? (A new namespace asked for = isolated.)"""
        return self.asked == self.isolated

    @property
    def verdict(self) -> str:
        """"isolated", "shared" or "not in this kernel": a value for code (the views say it in words)."""
        if self.container_inode is None:
            return "not in this kernel"
        return "isolated" if self.isolated else "shared"


def _uid_map_text(uid_map: str) -> str:
    """'0 100000 65536' -> 'uids 0-65535 → host 100000-165535' (user_namespaces(7))."""
    parts = uid_map.split()
    if len(parts) != 3:
        return uid_map or "?"
    inside, outside, count = (int(p) for p in parts)
    if count >= 4294967295 and inside == outside:
        return say("identity map: every uid is the same uid on the host")
    if count == 1:
        return say("uid {inside} → host {outside}", inside=inside, outside=outside)
    return say("uids {first}-{last} → host {host_first}-{host_last}", first=inside, last=inside + count - 1,
               host_first=outside, host_last=outside + count - 1)


def evidence(kind: str, host: Side, container: Side, init_host_pid: int | None = None,
             init_host_uid: int | None = None) -> tuple[str, str]:
    """(what the container saw, what the host saw) for one kind, as short text."""
    if kind == "pid":
        inside = say("its own PID is {pid}; sees {count} processes", pid=container.own_pid, count=container.processes)
        if init_host_pid is None:
            return inside, say("this notebook is PID {pid}; sees {count} processes", pid=host.own_pid,
                               count=host.processes)
        return inside, say("this notebook is PID {pid}; sees {count} processes; the probe is PID {probe} here",
                           pid=host.own_pid, count=host.processes, probe=init_host_pid)
    if kind == "mount":
        return (say("{count} mounts, the rootfs is /", count=container.mounts),
                say("{count} mounts", count=host.mounts))
    if kind == "uts":
        return (say("hostname {name}", name=repr(container.hostname)),
                say("hostname {name}", name=repr(host.hostname)))
    if kind == "ipc":
        seen = (say("sees the host's shared memory segment") if container.ipc_visible
                else say("cannot see the host's shared memory segment"))
        return seen, say("created a System V shared memory segment")
    if kind == "network":
        inside = (say("interfaces: {names}", names=" ".join(container.interfaces)) if container.interfaces
                  else say("interfaces: none"))
        return inside, say("interfaces: {names}", names=" ".join(host.interfaces))
    if kind == "user":
        inside = say("uid {uid}; {map}", uid=container.uid, map=_uid_map_text(container.uid_map))
        if init_host_uid is None:
            return inside, say("uid {uid}", uid=host.uid)
        return inside, say("uid {uid}; the probe runs as uid {probe} here", uid=host.uid, probe=init_host_uid)
    if kind == "cgroup":
        return say("its cgroup: {path}", path=container.cgroup), say("its cgroup: {path}", path=host.cgroup)
    if kind == "time":
        offsets = container.time_offsets or say("no timens_offsets file")
        return (say("uptime {seconds:.0f} s; offsets: {offsets}", seconds=container.uptime, offsets=offsets),
                say("uptime {seconds:.0f} s", seconds=host.uptime))
    raise ValueError(f"unknown namespace kind {kind!r}")


@dataclass
class ExplorerResult:
    """The outcome of one probe run: one Row per kind, in KINDS order."""

    asked: tuple[str, ...]
    rows: list[Row]
    container_id: str = ""
    init_host_pid: int | None = None
    seconds: float = 0.0
    ipc_key: int | None = None  # key of the host's shared memory segment the probe looked for
    host: Side | None = field(default=None, repr=False)
    container: Side | None = field(default=None, repr=False)

    def row(self, kind: str) -> Row:
        kind = ALIASES.get(kind, kind)
        return next(row for row in self.rows if row.kind == kind)

    @property
    def isolated(self) -> set[str]:
        return {row.kind for row in self.rows if row.isolated}

    @property
    def shared(self) -> set[str]:
        return {row.kind for row in self.rows if row.shared}

    @property
    def as_asked(self) -> bool:
        return all(row.as_asked for row in self.rows if row.container_inode is not None)

    def table(self) -> TextAndHTML:
        return render_table(self)

    def figure(self):
        return plot_matrix(self)

    def _repr_html_(self) -> str:
        return render_table(self).html

    def __repr__(self) -> str:
        return render_table(self).text


def compare(asked, host: Side, container: Side, *, init_host_pid: int | None = None, init_host_uid: int | None = None,
            container_id: str = "", seconds: float = 0.0, ipc_key: int | None = None) -> ExplorerResult:
    """Pure: the two views -> one Row per kind (shared when the inodes match)."""
    asked = tuple(kind for kind in KINDS if kind in set(asked))
    rows = []
    for kind in KINDS:
        inside, outside = evidence(kind, host, container, init_host_pid, init_host_uid)
        rows.append(Row(kind, kind in asked, host.inodes.get(kind), container.inodes.get(kind), inside, outside))
    return ExplorerResult(asked, rows, container_id, init_host_pid, seconds, ipc_key, host, container)


# --- the real run --------------------------------------------------------------------------------------
_libc = ctypes.CDLL(None, use_errno=True)
_IPC_CREAT, _IPC_EXCL, _IPC_RMID = 0o1000, 0o2000, 0


@contextmanager
def host_ipc_object():
    """A System V shared memory segment in this process's IPC namespace, removed afterwards.

    Yields its key. Processes in the same IPC namespace find it by that key (shmget(2)) and list
    it in /proc/sysvipc/shm; processes in another IPC namespace do not see it at all.
    (POSIX shared memory would not do: it is a file in /dev/shm, which the mount namespace
    already hides.)
    """
    for _ in range(20):
        key = 0x7D000000 + secrets.randbelow(0x00FFFFFF)
        shmid = _libc.shmget(ctypes.c_int(key), ctypes.c_size_t(4096), ctypes.c_int(_IPC_CREAT | _IPC_EXCL | 0o600))
        if shmid >= 0:
            break
        if ctypes.get_errno() != 17:  # EEXIST: that key is taken, try another
            err = ctypes.get_errno()
            raise KernelError("shmget", err, say("shmget: {error}: cannot create the IPC object to look for",
                                                 error=os.strerror(err)))
    else:
        raise KernelError("shmget", 17, say("shmget: no free key found for the IPC probe object"))
    try:
        yield key
    finally:
        _libc.shmctl(ctypes.c_int(shmid), ctypes.c_int(_IPC_RMID), None)


def explain_start_failure(asked, message: str) -> str | None:
    """A sentence on why the kernel refused this combination of namespaces, when we know it."""
    if "user" in asked and "pid" not in asked and ("needs a new pid namespace" in message or "mount(proc" in message):
        return user_without_pid()
    return None


def _read_until_closed(fd: int, timeout: float) -> str:
    """Everything the probe writes, until it closes its output (or TeachdockError after ``timeout``)."""
    chunks, deadline = [], time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TeachdockError(say("the probe container printed nothing for {timeout} s; got so far: {output}",
                                     timeout=timeout, output=repr(b"".join(chunks))))
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks).decode(errors="replace")
        chunks.append(chunk)


def _status_field(pid: int, name: str) -> list[int]:
    """A numeric line of /proc/<pid>/status, e.g. NSpid or Uid, as a list of numbers."""
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith(f"{name}:"):
            return [int(value) for value in line.split()[1:]]
    return []


def explore(namespaces=DOCKER_DEFAULT, rootfs=None, *, state_root=None, container_id: str | None = None,
            timeout: float = 10.0) -> ExplorerResult:
    """Start a probe container with exactly these namespaces, compare it with the host, delete it."""
    from teachdock.errors import ContainerStartError  # noqa: PLC0415
    from teachdock.runtime import DEVNULL, Container  # noqa: PLC0415 - lab sits on top; import when used

    asked = normalise(namespaces)
    if rootfs is None:
        from teachdock.lab.common.views import busybox_rootfs  # noqa: PLC0415

        rootfs = busybox_rootfs()
    container_id = container_id or f"explorer-{os.getpid()}-{secrets.token_hex(3)}"
    started = time.monotonic()
    with host_ipc_object() as key:
        host = observe_host(key)
        read_end, write_end = os.pipe()
        container = None
        try:
            # stdout and stderr: two descriptors for one pipe, so error messages arrive in order too.
            error_end = os.dup(write_end)
            try:
                container = Container.create(
                    container_id, rootfs=rootfs, args=["sh", "-c", PROBE_SCRIPT], state_root=state_root,
                    namespaces=asked, hostname="probe" if "uts" in asked else None,
                    env={"TD_IPC_KEY": str(key)}, stdin=DEVNULL, stdout=write_end, stderr=error_end)
            except (ContainerStartError, InvalidConfig) as error:
                why = explain_start_failure(asked, str(error))
                if why is None:
                    raise
                raise type(error)(f"{error}\n{why}") from None
            finally:
                os.close(write_end)
                os.close(error_end)
            pid = container.pid
            inodes = namespace_inodes(pid)  # PID 1 exists, in all its namespaces, before start
            init_uid = (_status_field(pid, "Uid") or [None])[0]
            container.start()
            output = _read_until_closed(read_end, timeout)
            code = container.wait(timeout)
            if code != 0:
                raise TeachdockError(say("the probe exited with {code}: {output}", code=code, output=output.strip()))
        finally:
            os.close(read_end)
            if container is not None:
                container.delete(force=True)
    inside = parse_probe(output, inodes)
    return compare(asked, host, inside, init_host_pid=pid, init_host_uid=init_uid,
                   container_id=container_id, seconds=time.monotonic() - started, ipc_key=key)


# --- the widget ------------------------------------------------------------------------------------------
def _time_namespace_available() -> bool:
    return os.path.exists("/proc/self/ns/time")


class IsolationExplorer:
    """Checkboxes for the namespace kinds, a Run button, and the heat-map and table of the last run.

    Headless use (tests, nbval): ``ex.select("pid", "uts"); ex.run_button.click()``, then read
    ``ex.result`` (an ExplorerResult) or ``ex.error`` (a message, when the run failed).
    """

    def __init__(self, rootfs=None, *, state_root=None, initial=DOCKER_DEFAULT):
        import ipywidgets as widgets  # noqa: PLC0415 - only the widget needs it

        self.rootfs = rootfs
        self.state_root = state_root
        self.result: ExplorerResult | None = None
        self.error: str | None = None
        self.runs = 0
        self.checkboxes = {}
        for kind in KINDS:
            box = widgets.Checkbox(value=kind in initial or kind == "mount", description=kind, indent=False,
                                   tooltip=kind_tooltip(kind),
                                   layout=widgets.Layout(width="105px"))
            self.checkboxes[kind] = box
        self.checkboxes["mount"].disabled = True
        notes = [mount_reason()]
        if os.geteuid() != 0:
            self.checkboxes["user"].value = True
            self.checkboxes["user"].disabled = True
            notes.append(rootless_reason())
        if not _time_namespace_available():
            self.checkboxes["time"].value = False
            self.checkboxes["time"].disabled = True
            notes.append(say("time is greyed out: this kernel has no time namespace (it needs Linux 5.6)."))
        else:
            notes.append(time_note())
        self.run_button = widgets.Button(description=say("Run probe"), button_style="primary", icon="play",
                                         tooltip=say("start a probe container with the ticked namespaces"))
        self.run_button.on_click(self._on_run)
        self.status = widgets.HTML(say("Tick the namespaces the probe container gets, then press <b>Run probe</b>."))
        self.image = widgets.Image(format="png", layout=widgets.Layout(width="100%", max_width="980px"))
        self.table = widgets.HTML()
        intro = widgets.HTML(
            say("<b>Isolation explorer.</b> Ticked = the container gets a <i>new</i> namespace of that kind; "
                "unticked = it stays in the host's.") + "<br>"
            + "<br>".join(f"<small>{escape(n)}</small>" for n in notes))
        self.widget = widgets.VBox([
            intro,
            widgets.HBox(list(self.checkboxes.values()), layout=widgets.Layout(flex_flow="row wrap")),
            widgets.HBox([self.run_button, self.status]),
            self.image,
            self.table,
        ])

    @property
    def selected(self) -> tuple[str, ...]:
        return tuple(kind for kind, box in self.checkboxes.items() if box.value)

    def select(self, *kinds) -> None:
        """Tick exactly these kinds (mount stays ticked; so does user without root)."""
        wanted = set(normalise(kinds))
        for kind, box in self.checkboxes.items():
            if not box.disabled:
                box.value = kind in wanted

    def _on_run(self, _button=None) -> None:
        self.run_button.disabled = True
        self.status.value = say("running the probe…")
        try:
            self.result = explore(self.selected, self.rootfs, state_root=self.state_root)
            self.error = None
        except Exception as error:  # the widget reports; it must not die with a traceback in the log
            self.result = None
            self.error = f"{type(error).__name__}: {error}"
            self.status.value = say('<span style="color:#8f1d1d"><b>✘ the probe did not run.</b> {error}</span> '
                                    "(Starting containers needs root: see doctor().)", error=escape(self.error))
            self.image.value = b""
            self.table.value = ""
            return
        finally:
            self.run_button.disabled = False
            self.runs += 1
        result = self.result
        self.image.value = figure_png(plot_matrix(result))
        self.table.value = render_table(result).html
        isolated = ", ".join(sorted(result.isolated)) or "—"
        shared = ", ".join(sorted(result.shared)) or "—"
        if result.as_asked:
            self.status.value = say("run {run}: isolated <b>{isolated}</b>; shared <b>{shared}</b> (exactly as asked; "
                                    "probe created, run and deleted in {ms:.0f} ms)", run=self.runs,
                                    isolated=isolated, shared=shared, ms=result.seconds * 1000)
        else:
            self.status.value = say("run {run}: isolated <b>{isolated}</b>; shared <b>{shared}</b> (⚠ not as asked: "
                                    "see the marked rows; probe created, run and deleted in {ms:.0f} ms)",
                                    run=self.runs, isolated=isolated, shared=shared, ms=result.seconds * 1000)

    def _ipython_display_(self) -> None:
        from IPython.display import display  # noqa: PLC0415

        display(self.widget)


def isolation_explorer(rootfs=None, **options) -> IsolationExplorer:
    """The widget, ready to display: ``isolation_explorer(rootfs)`` as a cell's last line."""
    return IsolationExplorer(rootfs, **options)
