"""CRIU in the Python guest: the host's criu, its libraries, and the kernel modules it checks for.

On a host whose kernel ``criu check`` rejects (this machine's 6.18 with Debian's criu 3.17:
"vdso: Failed to fill self vdso symtable"), the guest's Debian 6.1 kernel is where a real
checkpoint and restore can happen. What criu needs there besides the Python guest:

* the ``criu`` binary and the libraries ``ldd`` lists for it (gnutls, nftables, protobuf-c,
  libnl...), added to one boot's files like any other (:func:`criu_files`), and GNU ``tar``:
  criu saves and restores the files of a tmpfs (the container's /dev) with ``tar --create``
  options busybox's tar does not know, and iproute2's ``ip`` (``ip addr save``/``restore``
  for a network namespace's addresses and routes);
* kernel modules ``criu check`` looks for: the socket *diag* modules (criu lists a process's
  sockets through netlink's sock_diag), ``tun`` and ``veth`` (it tries to make both), and
  ``nf_tables`` (criu locks a network namespace's traffic during a dump with an nftables
  table; libcrc32c needs a crc32c implementation, a soft dependency modules.dep omits), and
  ``nf_conntrack_netlink`` (criu saves the namespace's tracked connections: without the
  module the kernel answers EINVAL and the dump fails).

:func:`daemon_files` adds what two teachdockd need there, for the chapter's live move
between daemons. A boot's extra files are written with mode 0644, so :func:`criu_prelude` makes them
executable again (the dynamic loader too: ld.so must be executable to run a program) and
loads the modules, before the command runs.
"""

from __future__ import annotations

import glob
import os
import shutil
import sysconfig
from pathlib import Path

from teachdock.vm.errors import VmError
from teachdock.vm.guest import GUEST_SITE_PACKAGES, module_load_order, shared_libraries

#: Modules criu check wants, in an order that satisfies the soft dependency of libcrc32c.
CRIU_MODULES = ("crc32c_generic", "tun", "veth", "netlink_diag", "unix_diag", "inet_diag", "tcp_diag",
                "udp_diag", "af_packet_diag", "nf_tables", "nf_conntrack_netlink")
GUEST_MODULE_DIR = "lib/modules/criu"
#: Programs from the host: {guest path: (program, why criu needs it)}. They come before
#: busybox's applets of the same name on the guest's PATH.
CRIU_PROGRAMS = {
    "usr/sbin/criu": ("criu", "`apt-get install criu`"),
    "usr/bin/tar": ("tar", "criu saves a tmpfs's files with GNU tar's options"),
    "usr/sbin/ip": ("ip", "criu saves a network namespace's addresses with iproute2's `ip addr save`"),
    # and its firewall rules with iptables-save (a multi-call binary: one copy per name)
    **{f"usr/sbin/{name}": ("xtables-legacy-multi", "criu saves a network namespace's iptables rules")
       for family in ("iptables", "ip6tables") for kind in ("", "-legacy") for verb in ("-save", "-restore")
       for name in [family + kind + verb]},
}


def criu_files(release: str, modules_dir: str | os.PathLike = "/lib/modules") -> tuple[dict[str, bytes], list[str]]:
    """({guest path: content} for criu, its libraries and modules; [module guest paths, in load order])."""
    files: dict[str, bytes] = {}
    for guest_path, (program, why) in CRIU_PROGRAMS.items():
        host = shutil.which(program, path="/usr/sbin:/usr/bin:/sbin:/bin")
        if host is None:
            raise VmError(f"the guest gets the host's {program} ({why}), and this host has none")
        files[guest_path] = Path(host).read_bytes()
        for library in shared_libraries(host):
            files[library.lstrip("/")] = Path(os.path.realpath(library)).read_bytes()
    modules = []
    for module in module_load_order(CRIU_MODULES, release, modules_dir):
        guest_path = f"{GUEST_MODULE_DIR}/{Path(module).name}"
        files[guest_path] = Path(module).read_bytes()
        modules.append(guest_path)
    return files, modules


#: What two teachdockd need in the guest besides criu: the bridge and the nftables expressions
#: of their default networks' firewall, pyroute2 (netlink), and the parts of the standard
#: library the base guest leaves out that pyroute2 imports (ssl, sqlite3).
DAEMON_MODULES = ("bridge", "nft_masq", "nft_nat", "nft_ct", "nft_chain_nat", "nft_fib_inet", "nft_reject_inet",
                  "nft_compat")
DAEMON_EXTENSIONS = ("_ssl", "_hashlib", "_sqlite3")


def daemon_files(release: str, modules_dir: str | os.PathLike = "/lib/modules") -> tuple[dict[str, bytes], list[str]]:
    """({guest path: content}, [module guest paths]) for running teachdockd in the guest."""
    import pyroute2  # noqa: PLC0415 - the host's copy goes into the guest

    files: dict[str, bytes] = {}
    package = Path(pyroute2.__file__).parent
    for path in package.rglob("*.py"):
        files[f"{GUEST_SITE_PACKAGES}/pyroute2/{path.relative_to(package)}"] = path.read_bytes()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in (stdlib / "sqlite3").rglob("*.py"):
        files[path.as_posix().lstrip("/")] = path.read_bytes()
    dynload = sysconfig.get_config_var("DESTSHARED")
    for name in DAEMON_EXTENSIONS:
        for extension in glob.glob(f"{dynload}/{name}.*.so"):
            files[extension.lstrip("/")] = Path(extension).read_bytes()
            for library in shared_libraries(extension):
                files[library.lstrip("/")] = Path(os.path.realpath(library)).read_bytes()
    modules = []
    for module in module_load_order(DAEMON_MODULES, release, modules_dir):
        guest_path = f"{GUEST_MODULE_DIR}/{Path(module).name}"
        files[guest_path] = Path(module).read_bytes()
        modules.append(guest_path)
    return files, modules


def criu_prelude(files: dict[str, bytes], modules: list[str]) -> str:
    """Shell lines that make the added programs and libraries executable and load the modules."""
    executables = sorted(path for path in files if not path.startswith(GUEST_MODULE_DIR) and not path.endswith(".py"))
    lines = ["chmod 755 " + " ".join(f"/{path}" for path in executables)]
    lines += [f"insmod /{module} || echo 'cannot load {module}'" for module in modules]
    return "\n".join(lines) + "\n"
