"""The container launcher: type a command, choose a few options, press Run, see what happened.

The widget is a thin face on :func:`teachdock.runtime.run`: every click starts a real
container on this kernel, waits for it (at most ``timeout`` seconds) and deletes it. What
comes back is shown as it is: the output, the exit code with its meaning, how long it took,
and, when the container had a cgroup, its peak memory and CPU time.

Without root a container has no cgroup, so the memory box becomes an address-space limit
(``RLIMIT_AS``, setrlimit(2)) instead: a runaway command then fails to allocate, where a cgroup
would have the OOM killer end it. Either way it cannot eat the host's memory.
"""

from __future__ import annotations

import html
import os
import shlex
import signal

from teachdock.errors import TeachdockError
from teachdock.lab.common.language import say


def presets() -> dict[str, str]:
    """Commands worth trying first, each showing one thing a container changes: command -> why."""
    return {
        "ps": say("who else runs here? (the PID namespace)"),
        "hostname": say("whose name is this? (the UTS namespace)"),
        "ls /sys/class/net": say("which network interfaces? (the network namespace)"),
        "id; cat /proc/self/uid_map": say("who am I, and who is that on the host? (the user namespace)"),
        "cat /proc/self/cgroup": say("which cgroup? (cgroups)"),
        "mount | head -8": say("which filesystems? (the mount namespace and pivot_root)"),
        "x=a; while true; do x=$x$x; done": say("eat memory until the limit stops it (the memory cgroup)"),
    }

NAMESPACE_CHOICES = ("pid", "uts", "ipc", "network", "user", "cgroup", "time")
DEFAULT_CHOICES = ("pid", "uts", "ipc", "network")


def describe_exit(code: int | None, oom_killed: bool) -> str:
    """An exit code in words: 0, a program's own code, or 128 + the signal that ended it."""
    if code is None:
        return say("unknown (the monitor process was killed)")
    if code == 0:
        return say("0: success")
    if code > 128:
        try:
            name = signal.Signals(code - 128).name
        except ValueError:
            name = f"signal {code - 128}"
        if oom_killed:
            return say("{code} = 128 + {number}: killed by {name} by the kernel's OOM killer: the memory limit was "
                       "reached", code=code, number=code - 128, name=name)
        return say("{code} = 128 + {number}: killed by {name}", code=code, number=code - 128, name=name)
    return say("{code}: the program's own error code", code=code)


def memory_options(memory_mib: int | None, as_root: bool) -> dict:
    """run()'s keywords for a memory limit: a cgroup limit as root, an address-space rlimit without."""
    if not memory_mib:
        return {}
    if as_root:
        return {"memory": f"{int(memory_mib)}m"}
    size = int(memory_mib) * 1048576
    return {"rlimits": {"RLIMIT_AS": (size, size)}}


def launch(command: str, *, namespaces=DEFAULT_CHOICES, hostname: str = "launcher", memory_mib: int | None = None,
           rootfs=None, state_root=None, timeout: float = 10.0):
    """Run ``command`` with ``sh -c`` in a fresh busybox container and return the RunResult.

    ``memory_mib`` limits the container's memory: with a cgroup as root, with RLIMIT_AS without.
    """
    from teachdock.runtime import run  # noqa: PLC0415

    if not command.strip():
        raise TeachdockError(say("type a command first, e.g. ps"))
    if rootfs is None:
        from teachdock.lab.common.views import busybox_rootfs  # noqa: PLC0415

        rootfs = busybox_rootfs()
    kinds = ("mount", *namespaces)  # the runtime always needs its own mount namespace
    return run(["sh", "-c", command], rootfs=rootfs, state_root=state_root, timeout=timeout, namespaces=kinds,
               hostname=hostname if "uts" in namespaces else None,
               **memory_options(memory_mib, os.geteuid() == 0))


def result_html(command: str, result, address_space_mib: int | None = None) -> str:
    """The result of one launch as a small HTML report (``address_space_mib``: the RLIMIT_AS it ran under)."""
    rows = [(say("command"), f"<code>sh -c {html.escape(shlex.quote(command))}</code>"),
            (say("exit code"), html.escape(describe_exit(result.exit_code, result.oom_killed))),
            (say("time"), say("{ms:.0f} ms from create to exit, container deleted", ms=result.duration * 1000))]
    if result.metrics is not None:
        peak = result.metrics.memory_peak_bytes
        rows.append((say("peak memory"), say("unknown") if peak is None else f"{peak / 1048576:.1f} MiB"))
        cpu = result.metrics.cpu_usage_ns
        rows.append((say("CPU time"), say("unknown") if cpu is None else f"{cpu / 1e6:.1f} ms"))
    else:
        rows.append(("cgroup", say("none: a container started without root has no cgroup to measure")))
    if address_space_mib:
        rows.append((say("memory limit"),
                     say("RLIMIT_AS = {mib} MiB of address space (setrlimit(2)): without a cgroup, an allocation "
                         "past it fails instead of meeting the OOM killer", mib=int(address_space_mib))))
    table = "".join(f"<tr><td style='padding:2px 10px 2px 0'><b>{k}</b></td><td>{v}</td></tr>" for k, v in rows)
    output = html.escape(result.stdout + result.stderr) or say("(no output)")
    return (f"<table>{table}</table><pre style='background:#f6f6f6;padding:6px;max-height:20em;"
            f"overflow:auto;white-space:pre-wrap'>{output}</pre>")


class ContainerLauncher:
    """The widget. ``.run_button.click()`` works without a browser; ``.result`` holds the last run."""

    def __init__(self, rootfs=None, *, state_root=None, timeout: float = 10.0):
        import ipywidgets as widgets  # noqa: PLC0415

        self.rootfs, self.state_root, self.timeout = rootfs, state_root, timeout
        self.result = None
        self.error: str | None = None
        self.preset = widgets.Dropdown(options=[(say("pick a command to try…"), "")] +
                                       [(f"{cmd}  —  {why}", cmd) for cmd, why in presets().items()],
                                       layout=widgets.Layout(width="36em"))
        self.command = widgets.Text(value="ps", description="sh -c", layout=widgets.Layout(width="36em"))
        self.namespaces = {kind: widgets.Checkbox(value=kind in DEFAULT_CHOICES, description=kind, indent=False,
                                                  layout=widgets.Layout(width="7em"))
                           for kind in NAMESPACE_CHOICES}
        # A default limit keeps a runaway command from eating the host's memory (a cgroup limit
        # as root, an address-space rlimit without).
        self.memory = widgets.BoundedIntText(value=256, min=0, max=4096,
                                             description=say("memory MiB"), layout=widgets.Layout(width="14em"))
        self.run_button = widgets.Button(description=say("Run"), button_style="primary", icon="play")
        self.report = widgets.HTML()
        self.preset.observe(self._on_preset, names="value")
        self.run_button.on_click(self._on_run)
        hint = widgets.HTML("<small>" + say("mount is always new: the runtime needs it for pivot_root. "
                                            "Memory 0 means no limit; without root the limit is RLIMIT_AS, not a "
                                            "cgroup. Each run is stopped after {timeout:g} s.", timeout=timeout)
                            + "</small>")
        self.widget = widgets.VBox([self.preset, self.command, widgets.HBox(list(self.namespaces.values())),
                                    widgets.HBox([self.memory, self.run_button]), hint, self.report])

    def _on_preset(self, change) -> None:
        if change["new"]:
            self.command.value = change["new"]
            if "while true" in change["new"]:
                self.memory.value = 32  # the memory hog: watch it stop at a small limit

    def _on_run(self, _button) -> None:
        self.run_button.disabled = True
        self.report.value = f"<i>{say('running…')}</i>"
        chosen = tuple(kind for kind, box in self.namespaces.items() if box.value)
        try:
            self.result = launch(self.command.value, namespaces=chosen, memory_mib=self.memory.value or None,
                                 rootfs=self.rootfs, state_root=self.state_root, timeout=self.timeout)
            self.error = None
            rlimit = None if os.geteuid() == 0 else self.memory.value
            self.report.value = result_html(self.command.value, self.result, address_space_mib=rlimit)
        except (TeachdockError, OSError) as error:
            self.result, self.error = None, str(error)
            self.report.value = (f"<b style='color:#a00'>{say('Could not run it:')}</b> "
                                 f"{html.escape(str(error))}")
        finally:
            self.run_button.disabled = False

    def _ipython_display_(self):
        from IPython.display import display  # noqa: PLC0415

        display(self.widget)


def container_launcher(rootfs=None, *, state_root=None, timeout: float = 10.0) -> ContainerLauncher:
    """A container launcher widget for a notebook cell."""
    return ContainerLauncher(rootfs, state_root=state_root, timeout=timeout)
