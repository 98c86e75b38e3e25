"""Who the container's program runs as: capabilities, groups, user, and no_new_privs.

The last thing init (and ``td-exec``'s program) does before ``execve``. The order is the
kernel's, not a choice:

1. drop capabilities from the bounding set: that needs CAP_SETPCAP, so while still root;
2. set the supplementary groups, then the gid: both need CAP_SETGID, so before the uid;
3. with keepcaps, change the uid (otherwise setuid away from root empties the permitted set);
4. set effective, permitted and inheritable explicitly, then the ambient set;
5. no_new_privs last: nothing after it may need to gain a privilege.

Every privileged call goes through ``kernel`` (the real :mod:`teachdock.kernel` by default),
so a unit test can pass a recording stand-in and check this order without root.
"""

from __future__ import annotations

import os

from teachdock import kernel as linux


def drop_bounding_capabilities(keep: list[str], *, kernel=linux) -> None:
    """Remove every capability not in ``keep`` from the bounding set, for good."""
    bounding = kernel.capability_bits(keep)
    for number in range(kernel.last_capability() + 1):
        if not bounding >> number & 1 and kernel.in_bounding_set(number):
            kernel.drop_bounding_capability(number)


def set_user(user: dict, *, kernel=linux) -> None:
    """Groups, then gid, then uid (process.user of config.json)."""
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    groups = user.get("additionalGids", [])
    if groups or os.getgroups():
        try:
            kernel.setgroups(groups)
        except PermissionError:  # rootless: setgroups is switched off; we hold no groups that matter
            if groups:
                raise
    if uid != 0:
        kernel.set_keepcaps(True)  # keep the permitted set across setuid(), then set it explicitly
    kernel.setresgid(gid)
    kernel.setresuid(uid)


def set_capabilities(caps: dict, *, kernel=linux) -> None:
    """The effective, permitted, inheritable and ambient sets of process.capabilities."""
    kernel.capset(kernel.capability_bits(caps.get("effective", [])),
                  kernel.capability_bits(caps.get("permitted", [])),
                  kernel.capability_bits(caps.get("inheritable", [])))
    kernel.clear_ambient_capabilities()
    for name in caps.get("ambient", []):
        kernel.raise_ambient_capability(kernel.CAP_NUMBER[name])


def set_identity(process: dict, *, kernel=linux) -> None:
    """Capabilities, groups, user and no_new_privs of config.json's ``process``, in the kernel's order."""
    caps = process.get("capabilities", {})
    drop_bounding_capabilities(caps.get("bounding", []), kernel=kernel)
    set_user(process.get("user", {}), kernel=kernel)
    set_capabilities(caps, kernel=kernel)
    if process.get("noNewPrivileges"):
        kernel.set_no_new_privs()
