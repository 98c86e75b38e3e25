"""A tiny static C program that makes a few system calls and prints what the kernel answered.

Each line is ``name=ok`` or ``name=ERRNO`` (e.g. ``unshare_user=EPERM``). The arguments are
chosen so that, without a filter, the kernel itself answers something other than EPERM
(EFAULT for NULL pointers, EINVAL, or success): an EPERM then comes from seccomp. Two
probes call numbers above every syscall Docker's profile names (462, mseal on x86_64, and
1000, no syscall at all), which runc and teachdock answer with ENOSYS. The seccomp
tests (runtime, daemon, runc beside teachdock) run it inside containers; it needs gcc and
glibc's static libc (Debian: gcc, libc6-dev).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SOURCE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static void show(const char *name, long result) {
    printf("%s=%s\n", name, result < 0 ? strerrorname_np(errno) : "ok");
}

int main(void) {
    show("getppid", syscall(SYS_getppid));                              /* allowed: the control */
    show("unshare_user", syscall(SYS_unshare, CLONE_NEWUSER));          /* needs CAP_SYS_ADMIN in the profile */
    show("keyctl", syscall(SYS_keyctl, 0, -3, 0));                      /* keyrings are not namespaced */
    show("add_key", syscall(SYS_add_key, NULL, NULL, NULL, 0, 0));
    show("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
    show("clone3", syscall(SYS_clone3, NULL, 0));                       /* errnoRet 38: ENOSYS */
    show("socket_vsock", syscall(SYS_socket, 40, SOCK_STREAM, 0));      /* an argument condition */
    show("socket_unix", syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0));
    show("personality_query", syscall(SYS_personality, 0xffffffff));    /* one of five allowed values */
    show("personality_rie", syscall(SYS_personality, 0x0400000));
    show("mseal", syscall(462, 0, 0, 0));         /* x86_64's newest here: newer than the profile's names */
    show("unknown_1000", syscall(1000));          /* no such syscall at all */
    fflush(stdout);
    return 0;
}
"""

#: What Docker's default profile answers for a container with Docker's 14 capabilities.
DEFAULT_PROFILE_ANSWERS = {
    "getppid": "ok", "unshare_user": "EPERM", "keyctl": "EPERM", "add_key": "EPERM", "perf_event_open": "EPERM",
    "clone3": "ENOSYS", "socket_vsock": "EPERM", "socket_unix": "ok", "personality_query": "ok",
    "personality_rie": "EPERM",
    # above the largest number the profile names: ENOSYS (runc's prologue), not the default EPERM
    "mseal": "ENOSYS", "unknown_1000": "ENOSYS",
}


def why_no_probe() -> str | None:
    """None when the probe can be built here, else why not."""
    return None if shutil.which("gcc") else "needs gcc (and libc6-dev) to build the static probe"


def build_probe(directory: Path) -> Path:
    """Compile the probe into ``directory/probe`` (static: it runs in a busybox root)."""
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / "probe.c"
    source.write_text(SOURCE)
    binary = directory / "probe"
    subprocess.run(["gcc", "-static", "-O2", "-o", str(binary), str(source)], check=True, capture_output=True)
    return binary


def parse(output: str) -> dict[str, str]:
    """The probe's lines -> {syscall probe: "ok" or errno name}."""
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)
