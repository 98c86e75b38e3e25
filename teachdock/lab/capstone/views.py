"""Look under the hood: your container's namespaces beside run_container's own, from /proc.

After a level's check says "new PID namespace", ``namespace_table(run_container)`` shows the raw
thing the check compared: the links in ``/proc/<pid>/ns/`` of the program your runtime started
and of the process that called run_container (the sandbox's), and ``NSpid`` from
``/proc/<pid>/status``, the program's PID in each PID namespace it is in.
"""

from __future__ import annotations

from html import escape

from teachdock.lab.capstone.outside import find_program, namespaces, read_status
from teachdock.lab.capstone.sandbox import PROBE_ARGV, run_sandboxed
from teachdock.lab.common.language import say
from teachdock.lab.common.views import TextAndHTML

#: (label, the sandbox's link to compare with, the program's link)
ROWS = [("pid", "pid_for_children", "pid"), ("uts", "uts", "uts"), ("mnt", "mnt", "mnt"), ("net", "net", "net"),
        ("user", "user", "user")]


def namespace_table(run_container, *, rootfs: str, bridge: str, memory: int | None, name: str = "mycontainer"):
    """Run the runtime on the probe and tabulate the namespaces (a TextAndHTML), or None if it never ran."""
    seen = {}

    def on_ready(run):
        program = find_program(run["sandbox_pid"], PROBE_ARGV)
        if program is not None:
            seen.update(program=namespaces(program), caller=namespaces(run["sandbox_pid"]),
                        nspid=read_status(program)["nspid"], pid=program)

    run_sandboxed(run_container, PROBE_ARGV, name=name, rootfs=rootfs, memory=memory, bridge=bridge,
                  on_ready=on_ready)
    if not seen:
        return None
    return table(seen)


def table(seen: dict) -> TextAndHTML:
    rows = [(label, seen["caller"][theirs] or "?", seen["program"][mine] or "?") for label, theirs, mine in ROWS]
    nspid = " ".join(str(p) for p in seen["nspid"])
    namespace, caller_head = say("namespace"), say("run_container (the caller)")
    yours = say("your container (host PID {pid})", pid=seen["pid"])
    own = say("<- its own")
    text = "\n".join([f"{namespace:<10} {caller_head:<28} {yours}"]
                     + [f"{label:<10} {caller:<28} {program}{'' if caller == program else '   ' + own}"
                        for label, caller, program in rows]
                     + [say("NSpid: {nspid} (its PID in each PID namespace, the host's first)", nspid=nspid)])
    highlight = ' style="background:#fff1cc"'
    body = "".join(f"<tr{highlight if caller != program else ''}><td>{label}</td>"
                   f"<td><code>{escape(caller)}</code></td><td><code>{escape(program)}</code></td></tr>"
                   for label, caller, program in rows)
    html = (f"<table><thead><tr><th>{escape(namespace)}</th><th>{escape(caller_head)}</th>"
            f"<th>{escape(yours)}</th></tr></thead><tbody>{body}</tbody></table>"
            "<small>" + say("Highlighted: a namespace of the container's own. NSpid: <code>{nspid}</code> "
                            "(its PID in each PID namespace, the host's first).", nspid=escape(nspid)) + "</small>")
    return TextAndHTML(html, text)
