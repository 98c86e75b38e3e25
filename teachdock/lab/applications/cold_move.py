"""Chapter 09: move a container from daemon A to daemon B the cold way, and see what moved.

Two ways, both through the Engine API of two daemons (two ``teachdock.client.Client``):

- **export → import**: ``GET /containers/ID/export`` on A (the container's whole root
  filesystem as one tar), ``POST /images/create?fromSrc=-`` on B (that tar as a one-layer
  image). The image's config does *not* travel (no Cmd, no Env): it is given back with
  ``changes``, as ``docker import -c 'CMD [...]'`` does.
- **commit → save → load**: ``POST /commit`` on A (the container's changes as a new layer
  on top of its image), ``GET /images/get`` on A, ``POST /images/load`` on B. Config,
  history and every layer travel; the image id is the same on both daemons.

Either way a container started from the moved image on B has A's files — and none of A's
processes: they are new processes with new PIDs, and a counter held in a shell's memory
starts again from one while the file it wrote on A arrived intact.

    with LabDaemons(tmp) as lab:
        a, b = Client(lab.start("a").host), Client(lab.start("b").host)
        start_counter(a)
        report = move_by_export(a, b)       # or move_by_commit(a, b)
        report                              # what moved, what did not
"""

from __future__ import annotations

import io
import json
import shlex
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from html import escape

from teachdock.lab.common.language import say
from teachdock.lab.common.views import TextAndHTML

COUNTER = "counter"
COUNTER_FILE = "/state/count"
#: Counts in the shell's memory and writes each value to its output and to COUNTER_FILE: the
#: file is state on disk (it moves), the variable is state in a process (it does not). The
#: trap ends it between two counts on ``docker stop``, so file and log agree on the last value.
COUNTER_SCRIPT = (f"trap 'exit 0' TERM; mkdir -p /state; i=0; while true; do i=$((i+1)); "
                  f"echo $i | tee {COUNTER_FILE}; sleep 0.2; done")


@dataclass
class ColdMove:
    """What a cold move carried from daemon A to daemon B, and what it could not."""

    method: str                                   # "export → import" or "commit → save → load"
    container: str                                # the container's name on A
    image: str                                    # the image's name on B
    image_id: str                                 # its id on B
    archive_bytes: int                            # the size of what travelled
    files: list[tuple[str, int]]                  # regular files in what travelled: (path, size)
    state_file: str                               # COUNTER_FILE as it travelled
    counter_before: int | None                    # the last value A's process counted
    counter_after: int | None                     # the first value B's new process counted
    processes_before: list[tuple[int, str]]       # (host PID, command) of the container on A
    processes_after: list[tuple[int, str]]        # ... and of the new container on B
    config_before: dict = field(default_factory=dict)   # Cmd/Env/WorkingDir of the container on A
    config_after: dict = field(default_factory=dict)    # ... of the moved image on B
    moved_container: str = ""                     # the new container's id on B
    source_image_id: str = ""                     # commit only: the committed image's id on A
    seconds: float = 0.0                          # how long the move took (without starting on B)

    def rows(self) -> list[tuple[str, str, str]]:
        """(what, on A, on B) for the table."""
        pids = lambda processes: ", ".join(str(pid) for pid, _ in processes) or say("no processes")  # noqa: E731
        top = max(self.files, key=lambda item: item[1]) if self.files else ("-", 0)
        return [
            (say("the container's files"), say("{count} files, {size} bytes", count=len(self.files),
                               size=sum(size for _, size in self.files)),
             say("the same {count} files (one {size}-byte archive travelled)", count=len(self.files),
                 size=self.archive_bytes)),
            (say("largest file"), say("{path} ({size} bytes)", path=top[0], size=top[1]), say("arrived too")),
            (COUNTER_FILE, self.state_file.strip() or "-", say("arrived with the same content")),
            (say("processes (host PIDs)"), pids(self.processes_before),
             say("{pids} (new processes)", pids=pids(self.processes_after))),
            (say("counter in the shell's memory"), say("reached {count}", count=self.counter_before),
             say("started again at {count}", count=self.counter_after)),
            (say("image config"), json.dumps(self.config_before), json.dumps(self.config_after)),
        ]

    def _repr_html_(self) -> str:
        return self.view()._repr_html_()

    def __repr__(self) -> str:
        return repr(self.view())

    def view(self) -> TextAndHTML:
        rows = self.rows()
        html_rows = "".join(f"<tr><td style='text-align:left'>{escape(what)}</td>"
                            f"<td style='text-align:left'><code>{escape(a)}</code></td>"
                            f"<td style='text-align:left'><code>{escape(b)}</code></td></tr>" for what, a, b in rows)
        title = say("{method}: {container} on A → {image} on B ({seconds:.2f} s)", method=self.method,
                    container=self.container, image=self.image, seconds=self.seconds)
        head = "".join(f"<th style='text-align:left'>{escape(name)}</th>"
                       for name in (say("what is compared"), say("daemon A"), say("daemon B")))
        html = (f"<b>{escape(title)}</b><table><thead><tr>{head}</tr></thead>"
                f"<tbody>{html_rows}</tbody></table>")
        text = "\n".join([title] + [f"{what:<30} {a:<40} {b}" for what, a, b in rows])
        return TextAndHTML(html, text)


def start_counter(client, name: str = COUNTER, *, least: int = 3, timeout: float = 20) -> str:
    """Run the busybox counter as container ``name`` (detached); return once it has counted to
    ``least``. Returns the container's id."""
    container = client.run("busybox", ["sh", "-c", COUNTER_SCRIPT], name=name, detach=True).id
    deadline = time.monotonic() + timeout
    while (last_count(client, container) or 0) < least:
        if time.monotonic() > deadline:
            raise TimeoutError(say("the counter {name} did not count to {least} in {timeout} s: {logs}", name=name,
                                   least=least, timeout=timeout, logs=repr(client.logs(container))))
        time.sleep(0.1)
    return container


def counts(client, container: str) -> list[int]:
    """Every value the counter has written to its output, in order."""
    return [int(line) for line in client.logs(container).split() if line.isdigit()]


def last_count(client, container: str) -> int | None:
    values = counts(client, container)
    return values[-1] if values else None


def processes(client, container: str) -> list[tuple[int, str]]:
    """(host PID, command) of each process of a running container (``docker top``)."""
    top = client.top(container)
    titles = top.get("Titles") or []
    pid_at, cmd_at = titles.index("PID"), titles.index("CMD") if "CMD" in titles else len(titles) - 1
    return [(int(row[pid_at]), row[cmd_at]) for row in top.get("Processes") or []]


def move_by_export(source, target, container: str = COUNTER, image: str = "moved/counter:export",
                   *, start: bool = True) -> ColdMove:
    """export on A → import on B (the config given back as ``changes``) → run on B."""
    before, config = _stop(source, container)
    began = time.monotonic()
    with tempfile.TemporaryFile() as archive:
        size = source.export_container(container, archive)
        archive.seek(0)
        image_id = target.import_image(archive, *_split(image), changes=_changes(config),
                                       message=f"moved from {container}")  # the same in every language: the image's comment
        archive.seek(0)
        files, state = _files_in(tarfile.open(fileobj=archive))
    report = ColdMove("export → import", container, image, image_id, size, files, state, last_count(source, container),
                      None, before, [], _shown(config), seconds=time.monotonic() - began)
    return _run_on_target(target, report, start)


def move_by_commit(source, target, container: str = COUNTER, image: str = "moved/counter:commit",
                   *, start: bool = True) -> ColdMove:
    """commit on A → save on A → load on B → run on B. Only the container's own layer is
    listed as its files: the layers below it are busybox's, which B has too."""
    before, config = _stop(source, container)
    began = time.monotonic()
    source_image = source.commit(container, *_split(image),
                                 message=f"moved from {container}")  # the same in every language: the image's comment
    with tempfile.TemporaryFile() as archive:
        source.save([image], archive)
        size = archive.tell()
        archive.seek(0)
        target.load(archive)
        archive.seek(0)
        files, state = _files_in(_top_layer(tarfile.open(fileobj=archive)))
    image_id = target.inspect_image(image)["Id"]
    report = ColdMove("commit → save → load", container, image, image_id, size, files, state,
                      last_count(source, container), None, before, [], _shown(config),
                      source_image_id=source_image, seconds=time.monotonic() - began)
    return _run_on_target(target, report, start)


def _stop(source, container: str) -> tuple[list[tuple[int, str]], dict]:
    """The processes while it runs, then stop it: a cold move copies files nothing writes."""
    before = processes(source, container)
    config = source.inspect(container)["Config"]
    source.stop(container, timeout=1)
    return before, config


def _run_on_target(target, report: ColdMove, start: bool, timeout: float = 20) -> ColdMove:
    report.config_after = _shown(target.inspect_image(report.image_id).get("Config") or {})
    if not start:
        return report
    report.moved_container = target.run(report.image, detach=True).id
    deadline = time.monotonic() + timeout
    while not counts(target, report.moved_container):
        if time.monotonic() > deadline:
            raise TimeoutError(say("the moved counter did not count on B in {timeout} s", timeout=timeout))
        time.sleep(0.1)
    report.counter_after = counts(target, report.moved_container)[0]
    report.processes_after = processes(target, report.moved_container)
    return report


def _changes(config: dict) -> list[str]:
    """What ``docker import -c`` needs to give the container's config back to the image."""
    changes = [f"CMD {json.dumps(config['Cmd'])}"] if config.get("Cmd") else []
    if config.get("Entrypoint"):
        changes.append(f"ENTRYPOINT {json.dumps(config['Entrypoint'])}")
    changes += [f"ENV {shlex.quote(item)}" for item in config.get("Env") or [] if "=" in item]
    if config.get("WorkingDir"):
        changes.append(f"WORKDIR {config['WorkingDir']}")
    return changes


def _shown(config: dict) -> dict:
    return {key: config.get(key) for key in ("Cmd", "Env", "WorkingDir") if config.get(key)}


def _split(image: str) -> tuple[str, str]:
    repository, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "latest")
    return repository, tag


def _files_in(tar: tarfile.TarFile) -> tuple[list[tuple[str, int]], str]:
    """The regular files of a filesystem tar, and the counter's file as it is in there."""
    files, state = [], ""
    with tar:
        for member in tar:
            if member.isreg():
                path = "/" + member.name.removeprefix("./").lstrip("/")
                files.append((path, member.size))
                if path == COUNTER_FILE:
                    state = tar.extractfile(member).read().decode(errors="replace")
    return files, state


def _top_layer(archive: tarfile.TarFile) -> tarfile.TarFile:
    """The last layer of the (one) image in a ``docker save`` archive, as a tar of its own."""
    with archive:
        manifest = json.load(archive.extractfile("manifest.json"))
        data = archive.extractfile(manifest[0]["Layers"][-1]).read()
    return tarfile.open(fileobj=io.BytesIO(data))
