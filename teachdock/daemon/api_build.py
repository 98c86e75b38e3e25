"""Routes for build, commit, save and load: images made or moved through the daemon.

    docker build (legacy builder)  POST /build              tar context in, JSON lines out
    docker builder prune           POST /build/prune
    docker commit                  POST /commit             a container's changes -> an image
    docker save                    GET  /images/get         docker-archive tar out, streamed
                                   GET  /images/{name}/get
    docker load                    POST /images/load        docker-archive tar in

A build context and an archive to load can be far bigger than a JSON body, so they are
not read into memory: ``request.body_to_file`` copies the request body into a temporary file,
chunk by chunk. A build context is untrusted input, like a layer: it is unpacked with
:func:`teachdock.image.layers.unpack_layer` (no ``..``, no absolute names, symlinks
followed only inside the context) into a temporary directory removed afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import threading
from pathlib import Path

from teachdock.daemon.server import ChunkedTarWriter, HTTPError
from teachdock.errors import TeachdockError
from teachdock.image import archive, archive_load
from teachdock.image.build import BuildStepFailed
from teachdock.image.layers import LayerError, unpack_layer
from teachdock.image.reference import parse_reference
from teachdock.runtime.securejoin import secure_join

#: A context or archive larger than this is refused (413); it is spooled to disk, not memory.
MAX_UPLOAD = 4 << 30
#: The builder keeps per-build state (its progress callback): one build at a time per daemon process.
_BUILD_LOCK = threading.Lock()


# --- request helpers ---------------------------------------------------------------------------------

def query_json(request, name: str, default):
    """A query parameter that carries JSON (``buildargs``, ``labels``)."""
    text = request.query.get(name, "")
    if not text:
        return default
    try:
        value = json.loads(text)
    except ValueError as error:
        raise HTTPError(400, f"query parameter {name} is not valid JSON: {error}") from None
    if value is None:
        return default
    if not isinstance(value, type(default)):
        raise HTTPError(400, f"query parameter {name} must be a JSON {type(default).__name__}")
    return value


class JSONStream:
    """Docker's progress stream: one JSON object per line, the response started on first use.

    Before the first message an error can still be an ordinary HTTP status; after it the
    status is sent, and an error travels in the stream as ``errorDetail`` (the CLI prints
    it and exits non-zero).
    """

    def __init__(self, request):
        self.handler = request.handler

    @property
    def started(self) -> bool:
        return self.handler.response_started

    def send(self, message: dict) -> None:
        if not self.handler.response_started:
            self.handler.start_chunks(200, "application/json")
        self.handler.write_chunk(json.dumps(message).encode() + b"\n")

    def error(self, message: str, code: int | None = None) -> None:
        detail = {"message": message}
        if code:
            detail["code"] = code
        self.send({"errorDetail": detail, "error": message})

    def end(self) -> None:
        if not self.handler.response_started:
            self.handler.start_chunks(200, "application/json")
        self.handler.end_chunks()


# --- docker build -------------------------------------------------------------------------------------

def build(daemon, request) -> None:
    """``POST /build?t=name:tag&dockerfile=Dockerfile&buildargs={...}&nocache=1&q=1&labels={...}``."""
    if request.query.get("remote"):
        raise HTTPError(400, "remote build contexts (git URLs, tarball URLs) are not supported: send the context")
    tags = request.query_list("t")
    for tag in tags:
        try:
            parse_reference(tag)
        except TeachdockError as error:
            raise HTTPError(400, f"invalid tag {tag!r}: {error}") from None
    build_args = {name: value for name, value in query_json(request, "buildargs", {}).items() if value is not None}
    labels = query_json(request, "labels", {})
    quiet = request.flag("q")
    stream = JSONStream(request)
    workdir = Path(tempfile.mkdtemp(prefix="build-", dir=_scratch_dir(daemon)))
    try:
        context = workdir / "context"
        with request.body_to_file(workdir, MAX_UPLOAD) as body:
            _end_unterminated_tar(body)
            try:
                unpack_layer(body, context)
            except LayerError as error:
                raise HTTPError(400, f"invalid build context (a tar archive is expected): {error}") from None
        dockerfile = _dockerfile(context, request.query.get("dockerfile") or "Dockerfile", labels, workdir)
        _run_build(daemon, stream, context, dockerfile, tags, build_args, request.flag("nocache"), quiet)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    stream.end()  # only now: a client that sees the end finds the context gone


def _end_unterminated_tar(spool) -> None:
    """Add the zero blocks a tar lacks at its end, when nothing else is missing.

    ``docker build -f ../other.Dockerfile`` adds that file to the context itself and sends
    a tar without the last member's padding and without the two zero blocks that end a
    tar. dockerd (Go's tar reader) accepts it; Python's tarfile calls it truncated. So: if
    every member's data is complete, append the missing zeros. A tar cut inside a member
    stays as it is, and is refused when unpacked.
    """
    size = spool.seek(0, os.SEEK_END)
    spool.seek(max(0, size - 1024))
    if size % 512 == 0 and spool.read() == bytes(min(size, 1024)) and size >= 1024:
        spool.seek(0)
        return
    members = []
    spool.seek(0)
    try:
        with tarfile.open(fileobj=spool, mode="r:") as tar:
            while (member := tar.next()) is not None:
                members.append(member)
    except (tarfile.TarError, EOFError):
        pass  # the end: where the padding was missing (or a tar this cannot help)
    if members and all(member.offset_data + member.size <= size for member in members):
        spool.seek(0, os.SEEK_END)
        spool.write(bytes(-size % 512 + 1024))
    spool.seek(0)


def _dockerfile(context: Path, name: str, labels: dict, workdir: Path) -> Path:
    """The Dockerfile's path inside the context; ``--label``s become a last LABEL line, as
    the legacy builder adds them."""
    try:
        path = Path(secure_join(str(context), name.lstrip("/")))
    except TeachdockError as error:
        raise HTTPError(400, f"invalid Dockerfile path {name!r}: {error}") from None
    if not path.is_file():
        raise HTTPError(400, f"Cannot locate specified Dockerfile: {name}")
    if not labels:
        return path
    pairs = " ".join(f"{json.dumps(str(key))}={json.dumps(str(value))}" for key, value in sorted(labels.items()))
    with_labels = workdir / "Dockerfile.labels"
    with_labels.write_text(path.read_text().rstrip("\n") + f"\nLABEL {pairs}\n")
    return with_labels


def _run_build(daemon, stream: JSONStream, context: Path, dockerfile: Path, tags: list[str], build_args: dict,
               no_cache: bool, quiet: bool) -> None:

    def progress(line: str) -> None:
        if line.startswith(("Successfully built", "Successfully tagged")):
            return  # sent below, after the aux message with the id, as dockerd orders them
        if not quiet:
            stream.send({"stream": line + "\n"})

    try:
        with _BUILD_LOCK:
            result = daemon.images.build(context, tags=tags, dockerfile=dockerfile, build_args=build_args,
                                         no_cache=no_cache, progress=progress)
    except BuildStepFailed as error:
        stream.error(str(error).split("\n")[0], error.exit_code)  # its output is in the stream already
        return
    except TeachdockError as error:
        if not stream.started:  # e.g. a Dockerfile syntax error: dockerd answers 400, before any output
            raise HTTPError(400, str(error)) from None
        stream.error(str(error))
        return
    image = result.image
    stream.send({"aux": {"ID": image.id}})
    if quiet:
        stream.send({"stream": image.id + "\n"})
    else:
        stream.send({"stream": f"Successfully built {image.short_id}\n"})
        for tag in tags:
            stream.send({"stream": f"Successfully tagged {parse_reference(tag).familiar}\n"})
    for tag in tags:
        daemon.events.publish("image", "tag", image.id, name=parse_reference(tag).familiar)


def build_prune(daemon, request) -> None:
    """``docker builder prune``: forget the build cache (its layers no image uses are deleted)."""
    removed = daemon.images.prune(build_cache=True)["build_cache"]
    request.handler.send_json(200, {"CachesDeleted": removed or None, "SpaceReclaimed": 0})


# --- docker commit ------------------------------------------------------------------------------------

def commit(daemon, request) -> None:
    """``POST /commit?container=web&repo=course/web&tag=v1&comment=..&author=..&changes=CMD ["sh"]``.

    The container is not paused (``pause=1`` is ignored): commit a stopped container for
    a consistent layer. The body (a container config to merge) is read and ignored.
    """
    request.body()
    name = request.query.get("container") or ""
    if not name:
        raise HTTPError(400, "which container? give container=NAME or ID")
    record = daemon.containers.get(name)
    reference = None
    repo = request.query.get("repo") or ""
    if repo:
        reference = f"{repo}:{request.query.get('tag') or 'latest'}"
        try:
            parse_reference(reference)
        except TeachdockError as error:
            raise HTTPError(400, f"invalid reference format {reference!r}: {error}") from None
    elif request.query.get("tag"):
        raise HTTPError(400, "a tag without a repository: give repo= too")
    command = " ".join([record.data.get("Path", ""), *record.data.get("Args", [])]).strip()
    image = daemon.images.commit(record.id, reference, author=request.query.get("author") or "",
                                 comment=request.query.get("comment") or "", changes=request.query_list("changes"),
                                 created_by=command, container_config=record.data["Config"])
    daemon.events.publish("container", "commit", record.id, comment=request.query.get("comment") or "",
                          imageID=image.id, imageRef=parse_reference(reference).familiar if reference else "")
    if reference:
        daemon.events.publish("image", "tag", image.id, name=parse_reference(reference).familiar)
    request.handler.send_json(201, {"Id": image.id})


# --- docker save / docker load --------------------------------------------------------------------------

def save(daemon, request, name: str | None = None) -> None:
    """``docker save busybox course/box:v1`` -> ``GET /images/get?names=busybox&names=course/box:v1``."""
    names = [name] if name else request.query_list("names")
    if not names:
        raise HTTPError(400, "which images? give names=NAME (repeatable)")
    for each in names:
        if not _bare_repository(daemon, each):
            daemon.images.get(each)  # an unknown image is a 404, before any byte is sent
    archive.save(daemon.images.store, names, ChunkedTarWriter(request.handler))
    request.handler.end_chunks()
    for each in names:
        daemon.events.publish("image", "save", each, name=each)


def _bare_repository(daemon, name: str) -> bool:
    """True for ``busybox`` when some ``busybox:TAG`` exists (save then writes every tag)."""
    try:
        ref = parse_reference(name, default_tag=None)
    except TeachdockError:
        return False
    if ref.tag or ref.digest:
        return False
    return any(other.name == ref.name and other.tag for image in daemon.images.list() for other in image.references)


def load(daemon, request) -> None:
    """``docker load < busybox.tar`` -> ``POST /images/load?quiet=0`` with the tar as the body.

    dockerd answers a JSON stream, ``{"stream": "Loaded image: busybox:latest\\n"}`` per image.
    """
    store = daemon.images.store
    with request.body_to_file(store.root, MAX_UPLOAD) as body:
        loaded = archive_load.load(store, body)
    stream = JSONStream(request)
    for name in loaded:
        label = "Loaded image ID" if name.startswith("sha256:") else "Loaded image"
        stream.send({"stream": f"{label}: {name}\n"})
        daemon.events.publish("image", "load", name, name=name)
    stream.end()


def _scratch_dir(daemon) -> Path:
    """Where build contexts are unpacked: inside the data root, where there is disk space."""
    directory = daemon.data_root / "tmp"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def register(router) -> None:
    router.add("POST", "/build", build)
    router.add("POST", "/build/prune", build_prune)
    router.add("POST", "/commit", commit)
    router.add("GET", "/images/get", save)
    router.add("GET", "/images/{name*}/get", save)
    router.add("POST", "/images/load", load)
