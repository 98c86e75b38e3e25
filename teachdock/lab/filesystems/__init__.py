"""Chapter 04, filesystems: the experiments (chroot and its escape, mount namespaces and
propagation, pivot_root, each in a forked child) and the exercises.

The notebook uses the experiments as a module: ``from teachdock.lab.filesystems import experiments as fs``.
"""

from teachdock.lab.filesystems.checks import (
    HIDE_TARGET,
    check_escape,
    check_hidden_cpuinfo,
    check_private_tmpfs,
    check_readonly_root,
)

__all__ = [
    "HIDE_TARGET",
    "check_escape",
    "check_hidden_cpuinfo",
    "check_private_tmpfs",
    "check_readonly_root",
]
