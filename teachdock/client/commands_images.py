"""The image verbs of the ``teachdock`` CLI: images, pull, rmi, tag, build, commit, save, load,
export and import (a container's files as a tar, and a tar as an image), and
the ``image`` group, docker's management-command forms of them (``teachdock image ls`` =
``teachdock images``) with inspect, history and prune. All go through the daemon; the
daemonless ``teachdock store`` group lives in teachdock.cli.store."""

from __future__ import annotations

import sys

from teachdock.client.commands import Session, ago, human_size, print_inspected, report, table
from teachdock.client.flags import Flag, UsageError, Verb
from teachdock.errors import TeachdockError


def cmd_images(session: Session) -> int:
    images = session.client.images(all=session.options.all)
    if session.options.quiet:
        for image in images:
            print(image["Id"].removeprefix("sha256:")[:12])
        return 0
    rows = []
    for image in images:
        short_id = image["Id"].removeprefix("sha256:")[:12]
        for tag in image.get("RepoTags") or ["<none>:<none>"]:
            repository, _, name = tag.rpartition(":")
            rows.append([repository, name, short_id, ago(image.get("Created", 0)), human_size(image.get("Size", 0))])
    sys.stdout.write(table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], rows))
    return 0


class PullProgress:
    """``docker pull``'s display: one bar per layer (rich), or plain lines when not a terminal."""

    def __init__(self):
        self.rich = sys.stdout.isatty()
        self.tasks = {}
        self.progress = None
        if self.rich:
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn  # noqa: PLC0415

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn())
            self.progress.start()

    def __call__(self, message: dict) -> None:
        status, layer = message.get("status", ""), message.get("id")
        detail = message.get("progressDetail") or {}
        if not self.rich:
            if not detail:
                print(f"{layer}: {status}" if layer else status, flush=True)
            return
        if not layer or status.startswith("Pulling from"):
            self.progress.console.print(f"{layer}: {status}" if layer else status)
            return
        if layer not in self.tasks:
            self.tasks[layer] = self.progress.add_task(f"{layer}: {status}", total=None)
        task = self.tasks[layer]
        self.progress.update(task, description=f"{layer}: {status}",
                             completed=detail.get("current", 0), total=detail.get("total") or None)
        if status in ("Pull complete", "Already exists", "Download complete"):
            total = self.progress.tasks[task].total
            if total:
                self.progress.update(task, completed=total)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def cmd_pull(session: Session) -> int:
    from teachdock.client.api import split_reference  # noqa: PLC0415

    reference = session.args[0]
    progress = None if session.options.quiet else PullProgress()
    try:
        session.client.pull(reference, progress=progress)
    finally:
        if progress is not None:
            progress.close()
    name, tag = split_reference(reference)
    print(f"{name}{'@' if tag.startswith('sha256:') else ':'}{tag}")
    return 0


def cmd_rmi(session: Session) -> int:
    status = 0
    for name in session.args:
        try:
            for entry in session.client.remove_image(name, force=session.options.force):
                for action, subject in entry.items():
                    print(f"{action}: {subject}")
        except TeachdockError as error:
            report(error)
            status = 1
    return status


def cmd_tag(session: Session) -> int:
    source, target = session.args
    repository, tag = _split_target(target)
    session.client.tag(source, repository, tag)
    return 0


def _split_target(target: str) -> tuple[str, str]:
    slash, colon = target.rfind("/"), target.rfind(":")
    if colon > slash:
        return target[:colon], target[colon + 1:]
    return target, "latest"


def _print_stream(lines) -> str | None:
    """Print a build/load stream; return the image id from ``aux``; raise on ``errorDetail``."""
    from teachdock.client.transport import APIError  # noqa: PLC0415

    image_id = None
    for message in lines:
        if "errorDetail" in message or "error" in message:
            detail = message.get("errorDetail") or {}
            raise APIError(500, detail.get("message") or message.get("error") or "failed")
        if "stream" in message:
            sys.stdout.write(message["stream"])
            sys.stdout.flush()
        elif "status" in message:
            print(message["status"], flush=True)
        if isinstance(message.get("aux"), dict) and "ID" in message["aux"]:
            image_id = message["aux"]["ID"]
    return image_id


def cmd_build(session: Session) -> int:
    o = session.options
    build_args = {}
    for item in o.build_arg:
        key, _, value = item.partition("=")
        build_args[key] = value
    image_id = _print_stream(session.client.build(session.args[0], tags=o.tag, dockerfile=o.file,
                                                  build_args=build_args or None, nocache=o.no_cache))
    if o.quiet and image_id:
        print(image_id)
    return 0


def cmd_commit(session: Session) -> int:
    o, args = session.options, session.args
    repository, tag = _split_target(args[1]) if len(args) > 1 else (None, None)
    print(session.client.commit(args[0], repository, tag, message=o.message, author=o.author, changes=o.change))
    return 0


def cmd_save(session: Session) -> int:
    if not session.options.output:
        if sys.stdout.isatty():
            raise UsageError("refusing to write an archive to a terminal: use -o FILE or redirect stdout")
        session.client.save(session.args, sys.stdout.buffer)
        return 0
    import os  # noqa: PLC0415

    temporary = session.options.output + ".partial"
    try:
        with open(temporary, "wb") as out:
            session.client.save(session.args, out)
        os.replace(temporary, session.options.output)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return 0


def cmd_load(session: Session) -> int:
    if not session.options.input:
        raise UsageError("give the archive with -i FILE")
    with open(session.options.input, "rb") as archive:
        _print_stream(session.client.load(archive))
    return 0


def cmd_export(session: Session) -> int:
    """``docker export``: the container's files as a tar, to -o FILE (written whole or not at all)
    or to stdout when it is not a terminal."""
    if not session.options.output:
        if sys.stdout.isatty():
            raise UsageError("refusing to write an archive to a terminal: use -o FILE or redirect stdout")
        session.client.export_container(session.args[0], sys.stdout.buffer)
        return 0
    import os  # noqa: PLC0415

    temporary = session.options.output + ".partial"
    try:
        with open(temporary, "wb") as out:
            session.client.export_container(session.args[0], out)
        os.replace(temporary, session.options.output)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return 0


def cmd_import(session: Session) -> int:
    """``docker import file|URL|- [REPOSITORY[:TAG]]``: prints the new image's id."""
    o, args = session.options, session.args
    repository, tag = _split_target(args[1]) if len(args) > 1 else (None, None)
    source = args[0]
    options = {"repository": repository, "tag": tag, "changes": o.change, "message": o.message,
               "platform": o.platform}
    if source.startswith(("http://", "https://")):      # the daemon downloads it, as with docker
        print(session.client.import_image(url=source, **options))
    elif source == "-":
        import tempfile  # noqa: PLC0415 - stdin's size is unknown: spool it first

        with tempfile.TemporaryFile() as spool:
            while block := sys.stdin.buffer.read(1 << 20):
                spool.write(block)
            spool.seek(0)
            print(session.client.import_image(spool, **options))
    else:
        try:
            archive = open(source, "rb")
        except OSError as error:
            raise UsageError(f"cannot read {source}: {error.strerror}") from None
        with archive:
            print(session.client.import_image(archive, **options))
    return 0


def cmd_image_inspect(session: Session) -> int:
    """``docker image inspect``: images only (``teachdock inspect`` tries containers first)."""
    return print_inspected(session.args, session.client.inspect_image)


def cmd_image_history(session: Session) -> int:
    o = session.options
    rows = session.client.image_history(session.args[0])
    short = [row["Id"] if o.no_trunc or row["Id"] == "<missing>" else row["Id"].removeprefix("sha256:")[:12]
             for row in rows]
    if o.quiet:
        print("\n".join(short))
        return 0
    table_rows = []
    for image_id, row in zip(short, rows):
        created_by = row.get("CreatedBy") or ""
        if not o.no_trunc:
            created_by = " ".join(created_by.split())
            created_by = created_by[:44] + "…" if len(created_by) > 45 else created_by
        table_rows.append([image_id, ago(row.get("Created", 0)), created_by, human_size(row.get("Size", 0)),
                           row.get("Comment") or ""])
    sys.stdout.write(table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], table_rows))
    return 0


def cmd_image_prune(session: Session) -> int:
    result = session.client.prune_images(all=session.options.all)
    deleted = result.get("ImagesDeleted") or []
    if deleted:
        print("Deleted Images:")
        for entry in deleted:
            for action, subject in entry.items():
                print(f"{action.lower()}: {subject}")
        print()
    print(f"Total reclaimed space: {human_size(result.get('SpaceReclaimed', 0))}")
    return 0


VERBS = {
    "images": (Verb("images", "", "List images.", "GET /images/json",
                    [Flag("-a,--all", "all images"), Flag("-q,--quiet", "only the ids")], max_args=0), cmd_images),
    "pull": (Verb("pull", "NAME[:TAG|@DIGEST]", "Pull an image from a registry (progress as it comes).",
                  "POST /images/create?fromImage=NAME&tag=TAG (a stream of JSON progress lines)",
                  [Flag("-q,--quiet", "no progress")], min_args=1, max_args=1), cmd_pull),
    "rmi": (Verb("rmi", "IMAGE [IMAGE...]", "Remove images (untag; delete when no name is left).",
                 "DELETE /images/NAME[?force=1]", [Flag("-f,--force", "remove it even if tagged several times")],
                 min_args=1), cmd_rmi),
    "tag": (Verb("tag", "SOURCE TARGET", "Give an image another name.",
                 "POST /images/SOURCE/tag?repo=REPO&tag=TAG", min_args=2, max_args=2), cmd_tag),
    "build": (Verb("build", "CONTEXT_DIR", "Build an image from a Dockerfile; the context goes up as a tar.",
                   "POST /build?t=TAG&dockerfile=... with the context tar as the body (a stream of JSON lines)",
                   [Flag("-t,--tag", "name the image", value="NAME[:TAG]", repeat=True),
                    Flag("-f,--file", "Dockerfile path inside the context", value="FILE"),
                    Flag("--build-arg", "a build argument", value="KEY=VALUE", repeat=True),
                    Flag("--no-cache", "do not use the build cache"),
                    Flag("-q,--quiet", "print the image id at the end")], min_args=1, max_args=1), cmd_build),
    "commit": (Verb("commit", "CONTAINER [REPOSITORY[:TAG]]", "Make an image from a container's changes.",
                    "POST /commit?container=ID&repo=REPO&tag=TAG",
                    [Flag("-m,--message", "commit message", value="TEXT"),
                     Flag("-a,--author", "author", value="NAME"),
                     Flag("-c,--change", "a Dockerfile instruction to apply", value="INSTR", repeat=True)],
                    min_args=1, max_args=2), cmd_commit),
    "save": (Verb("save", "IMAGE [IMAGE...]", "Write images to a tar archive (docker-archive format).",
                  "GET /images/get?names=IMAGE (the archive is the body)",
                  [Flag("-o,--output", "file to write (instead of stdout)", value="FILE")], min_args=1), cmd_save),
    "load": (Verb("load", "", "Load images from a tar archive.",
                  "POST /images/load?quiet=1 with the archive as the body",
                  [Flag("-i,--input", "the archive to read", value="FILE")], max_args=0), cmd_load),
    "export": (Verb("export", "CONTAINER", "Write a container's root filesystem to a tar archive (no volumes).",
                    "GET /containers/ID/export (the tar is the body)",
                    [Flag("-o,--output", "file to write (instead of stdout)", value="FILE")],
                    min_args=1, max_args=1), cmd_export),
    "import": (Verb("import", "file|URL|- [REPOSITORY[:TAG]]", "Make a one-layer image from a tar of a filesystem.",
                    "POST /images/create?fromSrc=-|URL&repo=REPO&tag=TAG&changes=..&message=.. (the tar is the body)",
                    [Flag("-c,--change", "a Dockerfile instruction to apply (CMD, ENV, ...)", value="INSTR",
                          repeat=True),
                     Flag("-m,--message", "the image's comment", value="TEXT"),
                     Flag("--platform", "os/arch[/variant] to record (os must be linux)", value="PLATFORM")],
                    min_args=1, max_args=2), cmd_import),
}

# `teachdock image ls` is `teachdock images`, as `docker image ls` is `docker images`: one verb,
# two spellings. Push has no daemon route here: `teachdock store push` pushes from the store.
IMAGE_GROUP = {"ls": "images", "rm": "rmi", "pull": "pull", "tag": "tag", "build": "build", "save": "save",
               "load": "load", "import": "import"}
VERBS.update({f"image {sub}": (VERBS[verb][0].alias(f"image {sub}", f"{VERBS[verb][0].summary} (The same as "
                                                                     f"`teachdock {verb}`.)"), VERBS[verb][1])
              for sub, verb in IMAGE_GROUP.items()})
VERBS.update({
    "image inspect": (Verb("image inspect", "IMAGE [IMAGE...]", "Everything the daemon knows about images, as JSON.",
                           "GET /images/NAME/json", min_args=1), cmd_image_inspect),
    "image history": (Verb("image history", "IMAGE", "The steps that made an image, newest first.",
                           "GET /images/NAME/history",
                           [Flag("-q,--quiet", "only the ids"), Flag("--no-trunc", "do not shorten the output")],
                           min_args=1, max_args=1), cmd_image_history),
    "image prune": (Verb("image prune", "", "Remove untagged images (-a: every image no container uses).",
                         "POST /images/prune[?filters={\"dangling\":[\"false\"]}]",
                         [Flag("-a,--all", "every unused image, not only untagged ones"),
                          Flag("-f,--force", "do not ask (teachdock never asks)")], max_args=0), cmd_image_prune),
})
