"""Shared fixtures for the integration tests: a busybox rootfs, private state roots,
unique container ids, helpers to run or start a container, a leak check, and a private teachdockd.

The runtime tests (test_ns_*.py, test_limits.py, test_lifecycle.py, ...) use them like this::

    pytestmark = [pytest.mark.root, pytest.mark.usefixtures("leak_check")]

    def test_something(box):
        result = box("echo $$")          # run() a shell script in a fresh container
        assert result.stdout == "1\n"

    def test_watch_it(running, finish, host):
        with running("echo ready; read x; echo bye") as c:   # started, printed "ready"
            assert host.proc_stat(c.pid)[2] == "sh"         # look at it from the host
            assert finish(c) == (0, "bye\n")                 # close stdin, wait

The plain helpers behind ``finish`` and ``host`` live in tests/support/host.py; a test may
also import them from there (``from tests.support.host import wait_until``).

Why the scratch directory is world-searchable (mode 0755) and not pytest's tmp_path:
with a user namespace the container's root is uid 100000 on the host, and it must be
able to walk down to the rootfs and to the state directory (the container's
/etc/hostname is bind-mounted from there). pytest's tmp_path lives under a 0700
directory, so a user-namespaced container would fail with EACCES. Each test still gets
its own state root, removed after the test.

Other people run tests on this machine at the same time, so the leak check only looks
at what belongs to the current test: mounts under our scratch directory (or on the
host paths a container mounts onto), cgroups and processes named after the test's
container-id prefix, our own child processes, and the test's state root.
"""

from __future__ import annotations

import contextlib
import errno
import json
import itertools
import os
import secrets
import shutil
import tempfile
import types
from pathlib import Path

import pytest

from teachdock import kernel
from teachdock.errors import KernelError, TeachdockError
from teachdock.image import busybox
from teachdock.image.images import Images
from teachdock.image.overlay import mount_points
from teachdock.runtime import PIPE, Container, run

from tests.support.daemons import running_daemon
from tests.support.host import (cgroup_dirs_named, children_of, descendants_of, finish, mountinfo, proc_stat,
                                processes_in_cgroups_named, read_line, read_rest, wait_until)

#: Host paths a container mounts onto inside its own namespace; a new host mount at one of
#: them during a test means a container mount escaped its mount namespace.
CONTAINER_MOUNT_POINTS = {"/", "/mnt", "/tmp", "/proc", "/sys", "/sys/fs/cgroup", "/dev", "/dev/pts",
                          "/dev/shm", "/dev/mqueue", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}


# --- the rootfs and where containers keep their state -------------------------------------------
@pytest.fixture(scope="session")
def scratch_dir():
    """A session directory every uid may traverse (see the module docstring for why)."""
    directory = Path(tempfile.mkdtemp(prefix="teachdock-it-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def rootfs(scratch_dir) -> Path:
    """The busybox base rootfs, built once per session from the host's static busybox."""
    try:
        binary = busybox.find_busybox()
    except TeachdockError as error:
        pytest.skip(f"needs the host's static busybox (apt-get install busybox-static): {error}")
    return busybox.build_busybox_rootfs(scratch_dir / "rootfs", binary)


@pytest.fixture
def state_root(scratch_dir) -> Path:
    """This test's own state root: tests never touch /run/teachdock/runtime."""
    directory = Path(tempfile.mkdtemp(prefix="state-", dir=scratch_dir))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def new_id():
    """``new_id()`` gives a fresh container id; all ids of one test share ``new_id.prefix``."""
    prefix = f"tdt-{secrets.token_hex(4)}"
    counter = itertools.count()

    def make() -> str:
        return f"{prefix}-{next(counter)}"

    make.prefix = prefix
    return make


# --- running containers ----------------------------------------------------------------------------
@pytest.fixture
def box(rootfs, state_root, new_id):
    """``box(script, **make_spec_options)``: run ``sh -c script`` in a fresh container, return the
    RunResult. ``rootfs=`` picks another root than the shared busybox one."""

    def run_script(script: str, **options):
        options.setdefault("timeout", 30)
        options.setdefault("rootfs", rootfs)
        return run(["sh", "-c", script], state_root=state_root, container_id=new_id(), **options)

    return run_script


@pytest.fixture
def running(rootfs, state_root, new_id):
    """``with running(script, **options) as c:`` — a started container whose script has
    printed ``ready``; stdin and stdout are pipes. The script usually ends in ``read x`` so
    it waits until :func:`finish` closes stdin. The container is deleted on exit."""

    @contextlib.contextmanager
    def start(script: str, *, container_id: str | None = None, **options):
        with Container.create(container_id or new_id(), rootfs=rootfs, args=["sh", "-c", script],
                              state_root=state_root, stdin=PIPE, stdout=PIPE, **options) as container:
            container.start()
            line = read_line(container.stdout)
            assert line == "ready", f"the container printed {line!r} instead of 'ready'"
            yield container

    return start


@pytest.fixture(name="finish")
def finish_fixture():
    """:func:`finish`: close the container's stdin, wait, return (exit code, rest of stdout)."""
    return finish


@pytest.fixture(scope="session")
def host():
    """Helpers that look at containers from the host (``host.children_of(pid)`` ...)."""
    return types.SimpleNamespace(proc_stat=proc_stat, children_of=children_of, descendants_of=descendants_of,
                                 wait_until=wait_until, mountinfo=mountinfo, read_line=read_line,
                                 read_rest=read_rest, cgroup_dirs_named=cgroup_dirs_named,
                                 processes_in_cgroups_named=processes_in_cgroups_named)


@pytest.fixture
def host_mount_guard(monkeypatch, tmp_path):
    """Make mount, umount2, pivot_root and chroot refuse to act in the host's mount namespace.

    For tests that probe what the runtime does *without* a mount namespace of its own: a bug
    there would remount, pivot or detach the host's root for every process on the machine.
    The wrappers are inherited by the runtime's forked processes; inside a container's own
    mount namespace they simply call the real function. Returns the file in which tripped
    calls are recorded (it exists only if the guard refused something).
    """
    host_namespace = os.readlink("/proc/self/ns/mnt")
    tripped = tmp_path / "host-mount-guard-tripped"

    def guard(name, real):
        def guarded(*args, **kwargs):
            if os.readlink("/proc/self/ns/mnt") == host_namespace:
                with open(tripped, "a") as f:
                    f.write(f"{name}{args}\n")
                raise KernelError(name, errno.EPERM, f"test guard: refused {name} in the host's mount namespace")
            return real(*args, **kwargs)
        return guarded

    for name in ("mount", "umount2", "pivot_root"):
        monkeypatch.setattr(kernel, name, guard(name, getattr(kernel, name)))
    monkeypatch.setattr(os, "chroot", guard("chroot", os.chroot))
    return tripped


# --- the leak check ------------------------------------------------------------------------------------
def _our_mounts(lines, scratch: Path) -> set[str]:
    ours = set()
    for line in lines:
        mount_point = line.split()[4].replace("\\040", " ")
        if mount_point in CONTAINER_MOUNT_POINTS or mount_point.startswith(f"{scratch}/") or mount_point == str(scratch):
            ours.add(line)
    return ours


@pytest.fixture
def leak_check(scratch_dir, state_root, new_id):
    """Fail (at teardown) when a test leaves a mount, cgroup, process or state directory behind."""
    mounts_before = _our_mounts(mountinfo(), scratch_dir)
    children_before = descendants_of(os.getpid())
    yield
    problems = []
    new_mounts = _our_mounts(mountinfo(), scratch_dir) - mounts_before
    if new_mounts:
        problems.append(f"mounts on the host: {sorted(new_mounts)}")
    cgroups_left = cgroup_dirs_named(new_id.prefix)
    if cgroups_left:
        problems.append(f"cgroups: {cgroups_left}")
    in_cgroups = processes_in_cgroups_named(new_id.prefix)
    if in_cgroups:
        problems.append(f"processes in the test's cgroups: {[(p, proc_stat(p)) for p in in_cgroups]}")
    children = descendants_of(os.getpid()) - children_before
    if children:
        problems.append(f"child processes of pytest: {[(p, proc_stat(p)) for p in sorted(children)]}")
    states_left = sorted(os.listdir(state_root)) if state_root.is_dir() else []
    if states_left:
        problems.append(f"state directories in {state_root}: {states_left}")
    assert not problems, "the test left resources behind: " + "; ".join(problems)


# --- teachdock.image engines -----------------------------------------------------------------------------------
@pytest.fixture
def data_roots(scratch_dir, state_root, new_id):
    """``data_roots(driver="overlay", bootstrap=True)`` -> an Images on a fresh data root.

    At the end: nothing may be mounted under any of them, no container directory or
    container hold may be left; then they are removed."""
    made = []

    def make(driver="overlay", bootstrap=True) -> Images:
        root = Path(tempfile.mkdtemp(prefix="images-", dir=scratch_dir))
        root.chmod(0o755)
        images = Images(root, driver=driver, state_root=state_root, container_prefix=new_id.prefix)
        made.append(images)
        if bootstrap:
            try:
                busybox.find_busybox()
            except TeachdockError as error:
                pytest.skip(f"needs the host's static busybox (apt-get install busybox-static): {error}")
            images.bootstrap_busybox()
        return images

    yield make
    problems = []
    for images in made:
        root = images.data_root
        problems += [f"mount {p}" for p in mount_points() if p.startswith(f"{root}/")]
        containers = root / "containers"
        if containers.is_dir() and any(containers.iterdir()):
            problems.append(f"container dirs {sorted(p.name for p in containers.iterdir())}")
        holders = Path(images.store.root) / "holders.json"
        if holders.exists():
            problems += [f"holder {h}" for users in json.loads(holders.read_text()).values()
                         for h in users if h.startswith("container:")]
        for point in sorted((p for p in mount_points() if p.startswith(f"{root}/")), reverse=True):
            kernel.umount2(point, kernel.MNT_DETACH)
        shutil.rmtree(root, ignore_errors=True)
    assert not problems, f"the test left behind: {problems}"


@pytest.fixture
def context(tmp_path):
    """``context(Dockerfile=..., **files)``: a build context directory ("a__b" is "a/b")."""
    directory = tmp_path / "ctx"
    directory.mkdir()

    def fill(**files):
        for name, content in files.items():
            path = directory / name.replace("__", "/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return directory

    return fill


# --- teachdockd ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def daemon(scratch_dir):
    """A private teachdockd with busybox:latest, one per test module (tests/support/daemons.py);
    stopped at the module's end, failing if its containers left anything behind. A module that
    needs a daemon per test, or more checks, defines its own ``daemon`` fixture."""
    with running_daemon(str(scratch_dir)) as process:
        yield process
