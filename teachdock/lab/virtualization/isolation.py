"""Chapter 01: a virtualenv against a container, asked the same questions.

The same questions (``PY_PROBE`` in Python, ``SH_PROBE`` in busybox sh, which has no Python)
asked in this notebook's Python, in a fresh virtualenv and in a container;
``isolation_table()`` shows what each one changed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from html import escape
from pathlib import Path

from teachdock.lab.common.language import say
from teachdock.lab.common.views import TextAndHTML

# ---- virtualenv against container ---------------------------------------------------------

# Both probes print the same key=value lines. Run with: PROBE MARKER_PATH NOTEBOOK_PID.
# The memory limit comes from the process's own cgroup (v1: the memory controller's line of
# /proc/self/cgroup; v2: the "0::" line), falling back to the cgroup mount's root, which is what
# a container sees when its cgroup is mounted at /sys/fs/cgroup.
PY_PROBE = r'''
import os, socket, sys

marker, notebook_pid = sys.argv[1], sys.argv[2]


def say(key, value):
    print(f"{key}={value}")


def memory_limit():
    lines = open("/proc/self/cgroup").read().splitlines()
    v1 = [line.split(":", 2)[2] for line in lines if line.split(":")[1] == "memory"]
    if v1:
        candidates = [f"/sys/fs/cgroup/memory{v1[0]}/memory.limit_in_bytes",
                      "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
    else:
        path = [line[3:] for line in lines if line.startswith("0::")][0]
        candidates = [f"/sys/fs/cgroup{path}/memory.max", "/sys/fs/cgroup/memory.max"]
    for candidate in candidates:
        try:
            return open(candidate).read().strip()
        except OSError:
            pass
    return "unknown"


try:
    from importlib import metadata
    packages = len({dist.metadata["Name"] for dist in metadata.distributions()})
except Exception:
    packages = "unknown"
try:
    import teachdock  # noqa: F401
    has_teachdock = "yes"
except ImportError:
    has_teachdock = "no"
pids = [entry for entry in os.listdir("/proc") if entry.isdigit()]
say("python", sys.prefix)
say("packages", packages)
say("teachdock", has_teachdock)
say("marker", "yes" if os.path.exists(marker) else "no")
say("processes", len(pids))
say("notebook_pid", "yes" if notebook_pid in pids else "no")
say("hostname", socket.gethostname())
say("interfaces", " ".join(sorted(line.split(":")[0].strip()
                                  for line in open("/proc/net/dev") if ":" in line)))
say("uid", os.getuid())
say("mount_ns", os.readlink("/proc/self/ns/mnt"))
say("mounts", len(open("/proc/self/mountinfo").read().splitlines()))
say("memory_limit", memory_limit())
'''

# The memory-limit part of SH_PROBE, on its own: it prints the limit of the cgroup the shell is in.
MEMORY_LIMIT_COMMAND = r'''
limit=unknown
cg=$(sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup)
if [ -n "$cg" ]; then
    files="/sys/fs/cgroup/memory$cg/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.limit_in_bytes"
else
    cg=$(sed -n 's/^0:://p' /proc/self/cgroup)
    files="/sys/fs/cgroup$cg/memory.max /sys/fs/cgroup/memory.max"
fi
for f in $files; do
    if [ -r "$f" ]; then limit=$(cat "$f"); break; fi
done
echo "$limit"
'''.strip() + "\n"

SH_PROBE = r'''
echo "python=$(command -v python3 || echo none)"
echo "packages=none"
echo "teachdock=no"
if [ -e "$1" ]; then echo marker=yes; else echo marker=no; fi
echo "processes=$(ls /proc | grep -c '^[0-9]')"
if [ -d "/proc/$2" ]; then echo notebook_pid=yes; else echo notebook_pid=no; fi
echo "hostname=$(hostname)"
echo "interfaces=$(cut -s -d: -f1 /proc/net/dev | tr -d ' ' | sort | tr '\n' ' ')"
echo "uid=$(id -u)"
echo "mount_ns=$(readlink /proc/self/ns/mnt)"
echo "mounts=$(wc -l < /proc/self/mountinfo)"
echo "memory_limit=$(sh -c "$MEMORY_LIMIT_COMMAND")"
'''.strip() + "\n"

PROBE_KEYS = ("python", "packages", "teachdock", "marker", "processes", "notebook_pid", "hostname",
              "interfaces", "uid", "mount_ns", "mounts", "memory_limit")


def parse_probe(text: str) -> dict[str, str]:
    """The key=value lines either probe printed, checked for completeness."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in PROBE_KEYS:
            values[key] = value.strip()
    missing = [key for key in PROBE_KEYS if key not in values]
    if missing:
        raise ValueError(f"the probe did not report {', '.join(missing)}; it printed:\n{text}")
    return values


UNLIMITED_V1 = 2**62  # cgroup v1 writes "no limit" as a huge page-aligned number (0x7FFFFFFFFFFFF000)


def describe_memory_limit(raw: str) -> str:
    """'67108864' -> '64 MiB'; v1's huge number and v2's 'max' -> 'unlimited' (in the learner's language)."""
    if raw == "max":
        return say("unlimited")
    try:
        number = int(raw)
    except ValueError:
        return say("unknown") if raw == "unknown" else raw
    if number >= UNLIMITED_V1:
        return say("unlimited")
    return f"{number / 2**20:g} MiB"


def is_real_interpreter(path: str | os.PathLike) -> bool:
    """True for an executable ELF file; False for a wrapper script such as a pyenv shim.

    A pyenv shim is a bash script that finds the real interpreter on every start (about 150 ms
    here): fine for typing commands, wrong for timing or for making a virtualenv from.
    """
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF" and os.access(path, os.X_OK)
    except OSError:
        return False


def base_python() -> str:
    """The real interpreter under this notebook's Python (which may itself be a virtualenv)."""
    for candidate in (getattr(sys, "_base_executable", None), sys.executable, "/usr/bin/python3"):
        if candidate and is_real_interpreter(os.path.realpath(candidate)):
            return candidate
    raise RuntimeError(say("found no real Python interpreter (only wrapper scripts): install python3"))


@contextmanager
def temporary_virtualenv(python: str | None = None) -> Iterator[Path]:
    """Create a fresh, empty virtualenv in a temporary directory; yield its python; remove it.

    ``--without-pip`` keeps it fast (about 50 ms instead of several seconds) and empty: not even
    pip is installed in it, so whatever it can import, it found outside its own site-packages.
    """
    python = python or base_python()
    directory = Path(tempfile.mkdtemp(prefix="teachdock-venv-"))
    try:
        subprocess.run([python, "-m", "venv", "--without-pip", str(directory / "venv")],
                       check=True, capture_output=True, text=True)
        yield directory / "venv" / "bin" / "python"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def marker_file() -> Iterator[Path]:
    """A file only the host's filesystem has: who can see it shares the host's files."""
    handle, name = tempfile.mkstemp(prefix="teachdock-marker-")
    os.close(handle)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def probe_python(python: str | os.PathLike, marker: str | os.PathLike) -> dict[str, str]:
    """Run PY_PROBE with this interpreter, from an empty directory (so the cwd adds no packages)."""
    with tempfile.TemporaryDirectory(prefix="teachdock-probe-") as empty:
        script = Path(empty) / "probe.py"
        script.write_text(PY_PROBE)
        completed = subprocess.run([str(python), str(script), str(marker), str(os.getpid())], cwd=empty,
                                   capture_output=True, text=True, timeout=60, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"the probe failed in {python}: {completed.stderr.strip()}")
    return parse_probe(completed.stdout)


def probe_container(rootfs, marker: str | os.PathLike, **options):
    """Run SH_PROBE in a fresh container; (its answers, the RunResult)."""
    from teachdock.runtime import run

    env = {"PATH": "/bin:/sbin:/usr/bin:/usr/sbin", "MEMORY_LIMIT_COMMAND": MEMORY_LIMIT_COMMAND}
    result = run(["sh", "-c", SH_PROBE, "probe", str(marker), str(os.getpid())], rootfs=str(rootfs),
                 env=env, timeout=30, **options)
    if result.exit_code != 0:
        raise RuntimeError(f"the probe failed in the container ({result.exit_code}): {result.stderr.strip()}")
    return parse_probe(result.stdout), result


# (fact, how it is shown, the key that decides "same" or "different"). The facts are the names a
# learner answers exercise 1 with, so they stay English; fact_label() shows them.
ISOLATION_ROWS = (
    ("Python packages", lambda p: _packages(p), "packages"),
    ("files (a marker file in the host's /tmp)", lambda p: say("visible") if p["marker"] == "yes" else say("not there"),
     "marker"),
    ("processes", lambda p: _processes(p), "notebook_pid"),
    ("hostname", lambda p: p["hostname"], "hostname"),
    ("network interfaces", lambda p: p["interfaces"] or say("(none)"), "interfaces"),
    ("mounts (mount namespace)", lambda p: say("{count} in {namespace}", count=p["mounts"], namespace=p["mount_ns"]),
     "mount_ns"),
    ("memory limit", lambda p: describe_memory_limit(p["memory_limit"]), "memory_limit"),
    ("user id", lambda p: p["uid"], "uid"),
)


def fact_label(fact: str) -> str:
    """A row's title in the table, in the learner's language (the table adds the English name to answer
    exercise 1 with where the title does not hold it)."""
    return {
        "Python packages": say("Python packages"),
        "files (a marker file in the host's /tmp)": say("files (a marker file in the host's /tmp)"),
        "processes": say("processes"),
        "hostname": say("hostname"),
        "network interfaces": say("network interfaces"),
        "mounts (mount namespace)": say("mounts (mount namespace)"),
        "memory limit": say("memory limit"),
        "user id": say("user id"),
    }.get(fact, fact)

# The names learners may use for each fact in exercise 1 (lower case).
FACT_NAMES = {
    "packages": "Python packages", "python packages": "Python packages", "sys.path": "Python packages",
    "files": "files", "filesystem": "files", "processes": "processes", "pids": "processes",
    "hostname": "hostname", "network": "network interfaces", "network interfaces": "network interfaces",
    "interfaces": "network interfaces", "mounts": "mounts", "memory": "memory limit",
    "memory limit": "memory limit", "user": "user id", "uid": "user id", "user id": "user id",
}


def _packages(probe: dict[str, str]) -> str:
    if probe["python"] == "none":
        return say("no Python at all")
    if probe["teachdock"] == "yes":
        return say("{count} (teachdock among them), in {prefix}", count=probe["packages"], prefix=probe["python"])
    return say("{count} (no teachdock), in {prefix}", count=probe["packages"], prefix=probe["python"])


def _processes(probe: dict[str, str]) -> str:
    if probe["notebook_pid"] == "yes":
        return say("{count} visible, the notebook among them", count=probe["processes"])
    return say("{count} visible, the notebook not among them", count=probe["processes"])


def fact_key(fact: str) -> str:
    """The short name of a row, as FACT_NAMES maps to it ('files (a marker...)' -> 'files')."""
    return fact.split(" (")[0]


def isolated_facts(host: dict[str, str], other: dict[str, str] | None) -> set[str]:
    """The facts (row names, short form) on which ``other`` differs from the host."""
    if other is None:
        return set()
    return {fact_key(fact) for fact, _show, key in ISOLATION_ROWS if other[key] != host[key]}


def isolation_table(host: dict[str, str], venv: dict[str, str] | None,
                    container: dict[str, str] | None) -> TextAndHTML:
    """One row per fact; a cell is highlighted where the answer differs from this notebook's."""
    columns = [(say("this notebook's Python"), host), (say("a fresh virtualenv"), venv), (say("a container"), container)]
    head = "".join(f"<th style='text-align:left'>{escape(name)}</th>" for name, _ in columns)
    rows, text_rows = [], []
    for fact, show, key in ISOLATION_ROWS:
        cells, texts = [], []
        for name, probe in columns:
            if probe is None:
                cells.append(f"<td style='text-align:left;color:#777'>{say('not measured')}</td>")
                texts.append(say("not measured"))
                continue
            shown = show(probe)
            differs = probe is not host and probe[key] != host[key]
            style = "text-align:left" + (";background:#fff1cc" if differs else "")
            cells.append(f"<td style='{style}'>{escape(shown)}</td>")
            texts.append(shown + (" *" if differs else ""))
        label, name = fact_label(fact), fact_key(fact)
        named = name in label  # in English the label holds the name to answer with; else it is added
        rows.append(f"<tr><td style='text-align:left'><b>{escape(label)}</b>"
                    f"{'' if named else f' <code>{escape(name)}</code>'}</td>{''.join(cells)}</tr>")
        text_rows.append(f"{label if named else f'{label} ({name})':<42} " + " | ".join(texts))
    note = say("Highlighted: different from this notebook's own answer, i.e. isolated.")
    html = (f"<table><thead><tr><th style='text-align:left'>{say('question')}</th>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table><small>{note}</small>")
    return TextAndHTML(html, "\n".join(text_rows) + "\n" + say("(* = different from this notebook's answer)"))

