"""A bigger guest: Python, pytest and the kernel modules a container runtime needs.

The plain tiny VM holds only busybox. To run teachdock's own runtime (and its tests)
against a real cgroup v2 kernel, the guest also needs:

* the host's Python interpreter, the shared libraries ``ldd`` lists for it and for the
  extension modules we keep, and the dynamic loader;
* a trimmed standard library (no test suite, no Tk, no build configuration), with its
  compiled ``.pyc`` files *and the source files' mtimes*, so that nothing is compiled
  again under emulation (a .pyc is only used when its recorded mtime matches the source);
* pytest and what it imports (pluggy, iniconfig, packaging, pygments), from the host;
* kernel modules loaded with ``insmod`` in dependency order (read from the guest
  kernel's ``modules.dep``): overlayfs for image layers, 9p over virtio to share the
  project read-only with the guest, and ``dummy`` so the guest has a second network
  interface besides ``lo``, as a real host does.

This archive is about 40 MB and slow-ish to assemble, so :func:`python_initramfs` caches
it under ``<data root>/vm/``, named after a hash of its inputs (every file's path, size
and mtime, the scripts below, the module list): it is rebuilt only when one of them
changes.

:func:`run_in_guest` boots it and runs one shell command as a host would: the initramfs
re-rooted (pivot_root refuses to move the initramfs itself, so `/` is bind-mounted onto
a directory, moved onto `/`, and entered with chroot), /proc, /sys and /dev mounted,
cgroup2 at /sys/fs/cgroup with memory, pids and cpu handed down from the root, the
project at /project (9p, read-only), and the command itself in a leaf cgroup
``/runner``, like a login shell on a systemd machine.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from teachdock.vm.errors import VmError
from teachdock.vm.initramfs import BUSYBOX, INIT_SCRIPT, build_initramfs
from teachdock.vm.boot_kernel import KernelImage, cache_dir, prepare_kernel
from teachdock.vm.qemu import VmResult, boot

#: Kernel modules the guest loads (their dependencies are found in modules.dep).
GUEST_MODULES = ("overlay", "virtio_mmio", "virtio_pci", "9pnet_virtio", "9p", "dummy")
#: Packages copied from the host's site-packages: pytest and what it imports.
PYTEST_PACKAGES = ("pytest", "_pytest", "pluggy", "iniconfig", "packaging", "pygments", "py")
#: Libraries teachdock opens through ctypes, which no ``ldd`` listing names: libseccomp builds
#: the containers' seccomp filters (runtime/seccomp.py).
DLOPEN_LIBRARIES = ("libseccomp.so.2",)
#: Where they go in the guest: a directory on the guest Python's default sys.path.
GUEST_SITE_PACKAGES = "usr/lib/python3/dist-packages"
#: Parts of the standard library nobody in the guest imports (names at the top of stdlib).
STDLIB_SKIP = {
    "test", "idlelib", "tkinter", "turtledemo", "turtle.py", "ensurepip", "lib2to3",
    "pydoc_data", "distutils", "venv", "sqlite3", "dbm", "curses", "msilib", "xmlrpc",
    "wsgiref", "site-packages", "dist-packages", "__phello__",
}
#: Extension modules left out: tests, Tk, terminals, databases, and the two that would
#: pull in OpenSSL (hashlib falls back to its built-in sha256 without _hashlib).
DYNLOAD_SKIP = re.compile(r"^(_test|_ctypes_test|_xx|xx|_curses|_dbm|_gdbm|_sqlite3|_tkinter|"
                          r"audioop|nis|ossaudiodev|readline|_ssl|_hashlib|_crypt)")

PROJECT_TAG = "project"     # 9p mount tag of the shared project directory
GUEST_PROJECT = "/project"  # where it is mounted in the guest
RUNNER_CGROUP = "runner"    # the leaf cgroup the command runs in

#: Step 1, run by /init's workload: re-root the initramfs, then continue in stage 2.
#: pivot_root(2) fails with EINVAL when the current root is the initramfs ("rootfs")
#: itself; a bind mount of it, moved onto /, is an ordinary mount it accepts.
ENTER_SCRIPT = """\
set -e
mkdir -p /newroot
mount -o bind / /newroot
cd /newroot
mount -o move . /
exec chroot . /bin/sh /teachdock/stage2.sh
"""

#: Step 2, inside the re-rooted tree: what a host has before anyone runs a container.
STAGE2_SCRIPT = f"""\
set -e
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /run /var/lib/teachdock {GUEST_PROJECT}
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup
echo "+memory +pids +cpu" > /sys/fs/cgroup/cgroup.subtree_control
hostname teachdock-vm
ip link set lo up
if [ -f /teachdock/share ]; then
    mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 {PROJECT_TAG} {GUEST_PROJECT}
fi
# Tools the command must do without (a runtime that uses syscalls, not mount or ip).
if [ -f /teachdock/hide ]; then
    while read -r tool; do
        rm -f /bin/$tool /sbin/$tool /usr/bin/$tool /usr/sbin/$tool
    done < /teachdock/hide
fi
# The caller sits in a leaf cgroup, as on a systemd host: the runtime must never nest
# containers under it (cgroup v2's no-internal-process rule would answer EBUSY).
mkdir /sys/fs/cgroup/{RUNNER_CGROUP}
echo $$ > /sys/fs/cgroup/{RUNNER_CGROUP}/cgroup.procs
set +e
cd /
. /teachdock/env.sh
sh /teachdock/command.sh
"""


# --- what goes into the archive ------------------------------------------------------------

LDD_LINE = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")


def shared_libraries(binary: str | os.PathLike) -> list[str]:
    """The shared libraries (and the dynamic loader) ``binary`` needs, as ``ldd`` names them."""
    try:
        listing = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise VmError(f"cannot list the libraries of {binary} with ldd ({exc})") from None
    return [match.group(1) for match in map(LDD_LINE.search, listing.splitlines()) if match]


def _tree(top: Path, guest_top: str, files: dict[str, Path], skip=lambda path: False) -> None:
    """Add the .py, .pyc (this interpreter's, not optimised), .so and data files under ``top``."""
    for directory, subdirs, names in os.walk(top):
        here = Path(directory)
        subdirs[:] = sorted(d for d in subdirs if not skip(here / d))
        for name in sorted(names):
            path = here / name
            if skip(path) or name.endswith((".opt-1.pyc", ".opt-2.pyc")):
                continue
            if name.endswith(".pyc") and sys.implementation.cache_tag not in name:
                continue
            files[f"{guest_top}/{path.relative_to(top)}"] = path


def dlopen_libraries(libraries, names: Sequence[str] = DLOPEN_LIBRARIES) -> list[str]:
    """Where ``names`` are on the host, looked for beside ``libraries`` (ldd's listing: the C
    library's directory is one the guest's loader searches too). A missing one is left out."""
    found = []
    for name in names:
        for directory in sorted({os.path.dirname(library) for library in libraries}):
            candidate = os.path.join(directory, name)
            if os.path.exists(candidate):
                found.append(candidate)
                break
    return found


def python_files(packages: tuple[str, ...] = PYTEST_PACKAGES) -> dict[str, Path]:
    """{guest path: host file} for a Python that runs pytest: interpreter, libraries, stdlib, packages.

    The interpreter is the one running this code (a venv's base interpreter, e.g.
    /usr/bin/python3.11), so the guest gets the very stdlib and pytest the host uses.
    """
    python = Path(os.path.realpath(sys._base_executable))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    dynload = Path(sysconfig.get_config_var("DESTSHARED"))
    files: dict[str, Path] = {}
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    files[f"usr/bin/{version}"] = python

    def skip_stdlib(path: Path) -> bool:
        relative = path.relative_to(stdlib)
        if relative.parts[0] in STDLIB_SKIP or relative.parts[0].startswith("config-"):
            return True
        return path.parent == dynload and bool(DYNLOAD_SKIP.match(path.name))

    _tree(stdlib, stdlib.as_posix().lstrip("/"), files, skip_stdlib)
    libraries = set(shared_libraries(python))
    for host in files.values():
        if host.suffix == ".so":  # extension modules have libraries of their own (libffi, liblzma...)
            libraries.update(shared_libraries(host))
    libraries.update(dlopen_libraries(libraries))
    for library in libraries:
        files[library.lstrip("/")] = Path(os.path.realpath(library))

    for name in packages:
        spec = _find_spec(name)
        if spec is None:
            raise VmError(f"the guest needs the Python package {name!r}, which is not installed here: "
                          f"`pip install pytest` into the environment running this")
        origin = Path(spec)
        if origin.name == "__init__.py":
            _tree(origin.parent, f"{GUEST_SITE_PACKAGES}/{name}", files)
        else:
            files[f"{GUEST_SITE_PACKAGES}/{origin.name}"] = origin
    return files


def _find_spec(name: str) -> str | None:
    """The file a top-level module or package is imported from (without importing it)."""
    import importlib.util  # noqa: PLC0415 - only needed when building the archive

    spec = importlib.util.find_spec(name)
    return spec.origin if spec is not None and spec.origin not in (None, "built-in", "frozen") else None


def read_modules_dep(release: str, modules_dir: str | os.PathLike = "/lib/modules") -> dict[str, list[str]]:
    """{module file: [its dependencies]} from modules.dep of kernel ``release`` (paths absolute)."""
    base = Path(modules_dir) / release
    try:
        text = (base / "modules.dep").read_text()
    except OSError as exc:
        raise VmError(f"cannot read {base / 'modules.dep'} ({exc.strerror}): the guest kernel's modules "
                      f"are missing; `apt-get install linux-image-{release}`") from None
    dependencies = {}
    for line in text.splitlines():
        module, _, needs = line.partition(":")
        dependencies[str(base / module)] = [str(base / need) for need in needs.split()]
    return dependencies


def module_name(path: str) -> str:
    """"9pnet_virtio" for .../9pnet_virtio.ko; the kernel treats - and _ in names alike."""
    return Path(path).name.split(".ko")[0].replace("-", "_")


def module_load_order(names, release: str, modules_dir: str | os.PathLike = "/lib/modules") -> list[str]:
    """Module files for ``names`` and everything they depend on, each after its dependencies."""
    dependencies = read_modules_dep(release, modules_dir)
    by_name = {module_name(path): path for path in dependencies}
    order: list[str] = []

    def visit(path: str, chain: tuple[str, ...]) -> None:
        if path in order:
            return
        if path in chain:
            raise VmError(f"modules.dep has a dependency cycle: {' -> '.join(map(module_name, chain + (path,)))}")
        for need in dependencies.get(path, []):
            visit(need, chain + (path,))
        order.append(path)

    for name in names:
        path = by_name.get(name.replace("-", "_"))
        if path is None:
            raise VmError(f"kernel {release} has no module {name!r} in {modules_dir}/{release}/modules.dep "
                          "(built in, or not built at all?)")
        visit(path, ())
    compressed = [path for path in order if not path.endswith(".ko")]
    if compressed:
        raise VmError(f"compressed kernel modules ({', '.join(compressed)}): busybox insmod needs plain "
                      ".ko files; point TEACHDOCK_VM_KERNEL at a kernel whose modules are not compressed")
    return order



# --- the cached base archive ----------------------------------------------------------------

def _manifest_hash(files: Mapping[str, Path], modules: list[str], busybox: Path) -> str:
    """A hash of every input: paths, sizes and mtimes of the files, and the scripts themselves."""
    digest = hashlib.sha256()
    for text in (INIT_SCRIPT, ENTER_SCRIPT, STAGE2_SCRIPT, repr(GUEST_MODULES), repr(STDLIB_SKIP)):
        digest.update(text.encode() + b"\0")
    for guest_path, host in sorted(files.items()) + [(f"module:{m}", Path(m)) for m in modules] \
            + [("busybox", busybox)]:
        info = host.stat()
        digest.update(f"{guest_path}\0{host}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def python_initramfs(kernel: KernelImage | None = None, *, busybox: Path = BUSYBOX,
                     modules_dir: str | os.PathLike = "/lib/modules", rebuild: bool = False) -> Path:
    """The base initramfs with Python, pytest and modules, built once and cached by input hash."""
    kernel = kernel or prepare_kernel()
    if not kernel.release:
        raise VmError(f"cannot tell the release of kernel {kernel.source}, so not which modules to load: "
                      "name it vmlinuz-<release>, or point TEACHDOCK_VM_KERNEL at such a file")
    files = python_files()
    modules = module_load_order(GUEST_MODULES, kernel.release, modules_dir)
    key = _manifest_hash(files, modules, Path(busybox))
    cached = cache_dir() / f"python-initramfs-{kernel.release}-{key}.cpio"
    if cached.exists() and not rebuild:
        return cached

    extra: dict[str, bytes | Path] = dict(files)
    extra["teachdock/enter.sh"] = ENTER_SCRIPT.encode()
    extra["teachdock/stage2.sh"] = STAGE2_SCRIPT.encode()
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(cached.name + f".partial-{os.getpid()}")
    try:
        build_initramfs(partial, busybox=busybox, extra_files=extra, modules=modules, keep_mtimes=True,
                        symlinks={"usr/bin/python3": version, "usr/bin/python": version})
        os.replace(partial, cached)
    finally:
        partial.unlink(missing_ok=True)
    for old in cached.parent.glob(f"python-initramfs-{kernel.release}-*.cpio"):
        if old != cached:
            old.unlink(missing_ok=True)  # an older build of the same kernel's guest
    return cached



# --- running a command ----------------------------------------------------------------------

@dataclass
class GuestRun:
    """One command run in the Python guest."""

    status: int | None   # the command's exit status (None: it never finished)
    output: str          # its stdout and stderr, as the console showed them
    vm: VmResult         # the boot's figures (times, accelerator, console)


def guest_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """What the command's environment holds: a root shell's basics, Python told not to write."""
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root", "TERM": "dumb", "PYTHONUTF8": "1",
        "PYTHONDONTWRITEBYTECODE": "1",   # the project is shared read-only
        "PYTHONPATH": GUEST_PROJECT,
        "TEACHDOCK_IN_VM": "1",
    }
    env.update(extra or {})
    return env


def run_in_guest(command: str, *, share: str | os.PathLike | None = None,
                 env: Mapping[str, str] | None = None, timeout: float = 120, memory_mb: int = 768,
                 accel: str | None = None, kernel: KernelImage | None = None,
                 files: Mapping[str, bytes] | None = None, hide_tools: Sequence[str] = ()) -> GuestRun:
    """Boot the Python guest, run ``command`` (a busybox sh command line) as root, power off.

    ``share``: a host directory mounted read-only at /project (9p); PYTHONPATH points there.
    ``env``: added to :func:`guest_environment`. ``files``: extra guest files for this boot.
    ``hide_tools``: busybox applets (e.g. "mount", "ip") removed before the command runs, to
    show it does without them.
    ``timeout`` covers boot, command and power-off; on expiry QEMU is killed and
    :class:`~teachdock.vm.errors.VmTimeout` raised (its ``console`` has everything printed).
    """
    kernel = kernel or prepare_kernel()
    base = python_initramfs(kernel)
    environment = guest_environment(env)
    boot_files = {
        "teachdock/command.sh": command.encode() + b"\n",
        "teachdock/env.sh": "".join(f"export {k}={shlex.quote(v)}\n" for k, v in environment.items()).encode(),
    }
    shares = {}
    if share is not None:
        shares[PROJECT_TAG] = os.fspath(share)
        boot_files["teachdock/share"] = b""
    if hide_tools:
        boot_files["teachdock/hide"] = "".join(f"{tool}\n" for tool in hide_tools).encode()
    boot_files.update(files or {})
    result = boot("sh /teachdock/enter.sh", memory_mb=memory_mb, timeout=timeout, accel=accel,
                  kernel=kernel, initramfs=base, files=boot_files, shares=shares)
    return GuestRun(result.exit_status, result.output or "", result)
