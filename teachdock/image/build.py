"""Build: a Dockerfile and a context directory in, an image out (Docker's classic builder, small).

Each instruction is one *step*. Steps that only change the config (ENV, CMD, USER, ...)
add a history entry with ``empty_layer: true``. Steps that change files make a layer:

    RUN       prepare a snapshot of the current state (overlay: the layers so far plus an
              empty upper dir), run the command there in a container (teachdock.runtime:
              own network namespace with only lo, Docker's default capabilities, the
              image's Env, WorkingDir and User), then the layer = the upper dir as a tar.
    COPY/ADD  the same, but instead of a container we copy files from the context into the
              snapshot (ADD also unpacks a local tar archive): build_files.py.
    WORKDIR   creates the directory if the image lacks it (a layer only when it did).

A step that changes nothing gets no layer, as in Docker.

The cache. Every step has a key: the previous step's key + the step's history line
(``/bin/sh -c echo hi``, ``COPY file:<content digest> in /app``, with build args). The first
key is the base image's id. A key seen before gives the stored layer at once, without
running anything: " ---> Using cache". COPY's history line contains the digest of the
copied files' contents and modes (not their times), so editing a copied file changes
that key and every later one. Cached steps also keep their creation time, so an
unchanged rebuild produces the very same image id. Cached layers stay in the store
(held by "build-cache") until :meth:`BuildCache.clear`, like ``docker builder prune``.

The output mimics ``docker build`` with the legacy builder::

    Step 2/6 : ENV GREETING=hello
     ---> Using cache
     ---> 3f2a1b9c8d7e
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import posixpath
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from teachdock.errors import InvalidConfig, TeachdockError
from teachdock.files import write_json_atomically
from teachdock.image.build_files import (archive_opener, context_sources, copy_source, extract_archive,
                                         make_directory, sources_digest)
from teachdock.image.commit import NewLayer, store_layer
from teachdock.image.digest import sha256_digest
from teachdock.image.dockerfile import (METADATA, BuildError, DockerIgnore, Instruction, apply_metadata,
                                        command_of, config_env, new_config, parse_dockerfile, process_word,
                                        timestamp, words, workdir_path)
from teachdock.image.manifest import Descriptor, Image
from teachdock.image.reference import parse_reference
from teachdock.image.snapshots import Snapshot, Snapshotter
from teachdock.image.store import ImageNotFound, ImageStore
from teachdock.runtime.users import resolve_user

CACHE_HOLDER = "build-cache"
#: Build args Docker accepts without an ARG line (proxies).
PREDEFINED_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
                   "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")
#: Mount points the runtime creates when an image lacks them; not part of a RUN's changes.
RUNTIME_MOUNT_POINTS = ("proc", "dev", "sys")

Progress = Callable[[str], None]


class BuildStepFailed(BuildError):
    """A RUN command exited non-zero (or could not start); carries its output and exit code."""

    def __init__(self, message: str, inst: Instruction, exit_code: int | None, output: str):
        super().__init__(message, inst.line, inst.dockerfile)
        self.exit_code = exit_code
        self.output = output


@dataclass(frozen=True)
class BuildStep:
    number: int
    instruction: str              # as written: "RUN echo hi"
    line: int
    cached: bool
    diff_id: str | None           # the layer it added, None for a config-only or empty step
    seconds: float


@dataclass
class BuildResult:
    image: Image
    steps: list[BuildStep]
    seconds: float
    output: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.image.id

    @property
    def cached_steps(self) -> int:
        return sum(1 for step in self.steps if step.cached)


# --------------------------------------------------------------------------- the cache

class BuildCache:
    """Step key -> the step's result, in ``<data root>/buildcache/cache.json``."""

    def __init__(self, data_root: str | os.PathLike, store: ImageStore):
        self.directory = Path(data_root) / "buildcache"
        self.path = self.directory / "cache.json"
        self.store = store

    def get(self, key: str) -> dict | None:
        """The entry, if its layer blob still exists."""
        entry = self._read().get(key)
        if entry is None:
            return None
        if entry.get("layer") and not self.store.has_blob(entry["layer"]["digest"]):
            return None
        return entry

    def put(self, key: str, layer: NewLayer | None, created: str) -> dict:
        entry = {"created": created, "layer": layer.descriptor.to_json() if layer else None,
                 "diff_id": layer.diff_id if layer else None}
        if layer is not None:
            self.store.add_holder(layer.descriptor.digest, CACHE_HOLDER)
        with self._locked():
            entries = self._read()
            entries[key] = entry
            self._write(entries)
        return entry

    def clear(self) -> list[str]:
        """Forget every cached step; layers no image uses are deleted. Returns their digests."""
        with self._locked():
            entries = self._read()
            self._write({})
        deleted = []
        for entry in entries.values():
            if entry.get("layer"):
                deleted += self.store.remove_holder(entry["layer"]["digest"], CACHE_HOLDER)
        return deleted

    def __len__(self) -> int:
        return len(self._read())

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError:
            return {}                      # a damaged cache is an empty one

    def _write(self, entries: dict) -> None:
        write_json_atomically(self.path, entries, indent=1)

    @contextlib.contextmanager
    def _locked(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


# --------------------------------------------------------------------------- running processes

def run_settings(config: dict, args: list[str] | None = None) -> dict:
    """What an image config means for a container's process: keywords for teachdock.runtime.

    args: Entrypoint + (the given args, or Cmd); env from Env; cwd from WorkingDir;
    user from User (``make_spec`` looks it up in the container's /etc/passwd).
    """
    settings = config.get("config") or {}
    command = list(settings.get("Entrypoint") or []) + list(args if args else settings.get("Cmd") or [])
    if not command:
        raise InvalidConfig("no command specified: the image has no CMD or ENTRYPOINT, so give one")
    return {"args": command, "env": config_env(config), "cwd": settings.get("WorkingDir") or "/",
            "user": settings.get("User") or None}


# --------------------------------------------------------------------------- the builder

@dataclass
class _State:
    """Where the build is: the image so far, the cache key chain, the ARGs in scope."""

    config: dict
    layers: list[Descriptor]
    key: str
    args: dict[str, str | None] = field(default_factory=dict)
    cmd_set: bool = False
    from_seen: bool = False

    @property
    def diff_ids(self) -> list[str]:
        return list(self.config["rootfs"]["diff_ids"])

    def env(self) -> dict[str, str]:
        """Variables for substitution: ARGs with a value, overridden by ENVs."""
        scope = {name: value for name, value in self.args.items() if value is not None}
        scope.update(config_env(self.config))
        return scope


class Builder:
    """Builds Dockerfiles into the image store, with a layer cache.

    state_root: where the runtime keeps RUN containers' state (default: the runtime's own).
    container_prefix: RUN and COPY containers are called ``<prefix>-<12 hex>``.
    """

    def __init__(self, store: ImageStore, snapshots: Snapshotter, *, data_root: str | os.PathLike,
                 state_root: str | os.PathLike | None = None, container_prefix: str = "build"):
        self.store = store
        self.snapshots = snapshots
        self.cache = BuildCache(data_root, store)
        self.state_root = state_root
        self.container_prefix = container_prefix
        self._progress: Progress | None = None
        self._output: list[str] = []

    def build(self, context: str | os.PathLike, *, dockerfile: str | os.PathLike | None = None,
              tags: list[str] | tuple[str, ...] = (), build_args: dict[str, str] | None = None,
              no_cache: bool = False, progress: Progress | None = None) -> BuildResult:
        """Build ``context`` (a directory) with its Dockerfile; name the image ``tags``.

        dockerfile: path of the Dockerfile (default ``<context>/Dockerfile``);
        build_args: values for ARG (``--build-arg``); no_cache: run every step anew
        (the results still refresh the cache); progress: called with each output line.
        """
        started = time.monotonic()
        self._progress, self._output = progress, []
        context = Path(context).absolute()
        if not context.is_dir():
            raise BuildError(f"unable to prepare context: path {str(context)!r} not found")
        dockerfile_path = Path(dockerfile).absolute() if dockerfile else context / "Dockerfile"
        try:
            text = dockerfile_path.read_text()
        except FileNotFoundError:
            raise BuildError(f"cannot locate specified Dockerfile: {dockerfile_path}") from None
        name = dockerfile_path.name
        instructions = parse_dockerfile(text, name)
        if not any(inst.keyword == "FROM" for inst in instructions):
            raise BuildError(f"{name} has no FROM instruction: start with FROM <image> or FROM scratch")
        for tag in tags:                       # a bad name fails before any work, not after
            parse_reference(tag)
        ignore = DockerIgnore.from_context(context)
        build_args = dict(build_args or {})
        used_args: set[str] = set()

        state = _State(new_config(), [], "scratch")
        steps: list[BuildStep] = []
        try:
            for number, inst in enumerate(instructions, 1):
                step_started = time.monotonic()
                self._say(f"Step {number}/{len(instructions)} : {inst.original}")
                try:
                    cached, diff_id = self._step(state, inst, context, ignore, build_args, used_args, no_cache)
                except BuildError:
                    raise
                except TeachdockError as error:
                    raise inst.error(str(error)) from error
                steps.append(BuildStep(number, inst.original, inst.line, cached, diff_id,
                                       time.monotonic() - step_started))
            unused = sorted(set(build_args) - used_args - set(PREDEFINED_ARGS))
            if unused:
                self._say(f"[Warning] One or more build-args {unused} were not consumed")
            image = self._unchanged(state.config, tags) or self.store.add_image(state.config, state.layers, tags)
        finally:
            self.snapshots.prune()             # unpacked layers of a failed build go; an image's stay
        self._say(f"Successfully built {image.short_id}")
        for tag in tags:
            self._say(f"Successfully tagged {parse_reference(tag).familiar}")
        return BuildResult(image, steps, time.monotonic() - started, self._output)

    def _unchanged(self, config: dict, tags) -> Image | None:
        """The image already stored under these tags with exactly this config (an unchanged
        rebuild): nothing needs writing, which spares the store's fsyncs."""
        image_id = _config_id(config)
        try:
            images = [self.store.resolve(tag) for tag in tags] or [self.store.resolve(image_id)]
        except ImageNotFound:
            return None
        return images[0] if all(image.id == image_id for image in images) else None

    # ---- one step

    def _step(self, state: _State, inst: Instruction, context: Path, ignore: DockerIgnore,
              build_args: dict[str, str], used_args: set[str], no_cache: bool) -> tuple[bool, str | None]:
        """Run one instruction; returns (served from the cache?, diff_id of its layer or None)."""
        keyword = inst.keyword
        if keyword == "FROM":
            self._from(state, inst)
            return False, None
        if keyword == "ARG":
            self._arg(state, inst, build_args, used_args)
            if not state.from_seen:
                return False, None              # ARG before FROM only feeds FROM
            created_by = f"/bin/sh -c #(nop)  ARG {inst.args}"
            action = None
        elif not state.from_seen:
            raise inst.error(f"{keyword} before FROM: the first instruction must be FROM (or ARG)")
        elif keyword in METADATA:
            created_by = apply_metadata(state.config, inst, state.env(), cmd_set=state.cmd_set)
            state.cmd_set = state.cmd_set or keyword == "CMD"
            action = None
        elif keyword == "WORKDIR":
            settings = state.config["config"]
            path = workdir_path(inst, settings, state.env())
            created_by = apply_metadata(state.config, inst, state.env())
            action = lambda snapshot: make_directory(snapshot.rootfs, path)  # noqa: E731
        elif keyword == "RUN":
            created_by, action = self._run_step(state, inst)
        else:                                   # COPY, ADD
            created_by, action = self._copy_step(state, inst, context, ignore)

        key = sha256_digest(f"{state.key}\n{created_by}".encode())
        entry = None if no_cache else self.cache.get(key)
        if entry is not None:
            self._say(" ---> Using cache")
            layer = entry.get("layer")
            descriptor = Descriptor.from_json(layer) if layer else None
            diff_id = entry.get("diff_id")
            created = entry["created"]
        else:
            new_layer = self._in_snapshot(state, action) if action is not None else None
            descriptor = new_layer.descriptor if new_layer else None
            diff_id = new_layer.diff_id if new_layer else None
            created = timestamp()
            self.cache.put(key, new_layer, created)
        history = {"created": created, "created_by": created_by}
        if descriptor is None:
            history["empty_layer"] = True
        else:
            state.layers.append(descriptor)
            state.config["rootfs"]["diff_ids"].append(diff_id)
        state.config["history"].append(history)
        state.config["created"] = created
        state.key = key
        self._say(f" ---> {_config_id(state.config)[7:19]}")
        return entry is not None, diff_id

    def _from(self, state: _State, inst: Instruction) -> None:
        if state.from_seen:
            raise inst.error("a second FROM starts a multi-stage build, which teachdock's builder does not support")
        if inst.flags:
            raise inst.error(f"FROM --{next(iter(inst.flags))} is not supported (teachdock builds for this host)")
        parts = words(inst, {name: value for name, value in state.args.items() if value is not None})
        if len(parts) not in (1, 3) or (len(parts) == 3 and parts[1].lower() != "as"):
            raise inst.error("FROM needs one image: FROM <image> or FROM scratch")
        base = parts[0]
        state.from_seen = True
        state.args = {}                          # ARGs before FROM are out of scope after it
        if base == "scratch":
            state.config, state.layers, state.key = new_config(), [], "FROM scratch"
            self._say(" ---> (scratch: an empty image)")
            return
        try:
            image = self.store.resolve(base)
        except ImageNotFound:
            raise inst.error(f"No such image: {base} (teachdock builds do not pull: pull it first, or run "
                             "`teachdock store bootstrap busybox`)") from None
        state.config = copy.deepcopy(image.config)
        state.config["config"] = state.config.get("config") or {}        # some images have "config": null
        state.config["rootfs"] = {"type": "layers", "diff_ids": list(image.diff_ids)}
        state.config["history"] = state.config.get("history") or []
        state.layers = list(image.layers)
        state.key = f"FROM {image.id}"
        self._say(f" ---> {image.short_id}")

    def _arg(self, state: _State, inst: Instruction, build_args: dict[str, str], used_args: set[str]) -> None:
        env = state.env()
        try:
            for word in words(inst, env):
                name, equals, default = word.partition("=")
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                    raise inst.error(f"ARG: invalid name {name!r}")
                if name in build_args:
                    state.args[name] = build_args[name]
                    used_args.add(name)
                else:
                    state.args[name] = default if equals else None
        except InvalidConfig as error:
            if isinstance(error, BuildError):
                raise
            raise inst.error(str(error)) from None

    # ---- RUN

    def _run_step(self, state: _State, inst: Instruction):
        settings = state.config["config"]
        command = command_of(inst, settings)
        configured = config_env(state.config)
        args_env = {name: value for name, value in state.args.items() if value is not None and name not in configured}
        created_by = " ".join(command)
        if args_env:                              # Docker's way of recording build args in history
            created_by = f"|{len(args_env)} " + " ".join(f"{k}={v}" for k, v in args_env.items()) + " " + created_by
        env = {**args_env, **configured}

        def run_in(snapshot: Snapshot) -> None:
            self._run_container(snapshot, command, env, settings, inst)

        return created_by, run_in

    def _run_container(self, snapshot: Snapshot, command: list[str], env: dict, settings: dict,
                       inst: Instruction) -> None:
        from teachdock.runtime import DEVNULL, Container  # noqa: PLC0415 - the image layer needs the runtime only here

        rootfs = snapshot.rootfs
        cwd = settings.get("WorkingDir") or "/"
        missing = [name for name in RUNTIME_MOUNT_POINTS if not os.path.lexists(rootfs / name)]
        make_directory(rootfs, cwd)              # Docker creates a missing working directory too
        short = snapshot.container_id.rsplit("-", 1)[-1]
        self._say(f" ---> Running in {short}")
        output: list[str] = []
        read_end, write_end = os.pipe()
        try:
            container = Container.create(snapshot.container_id, rootfs=str(rootfs), args=command,
                                         state_root=self.state_root, stdin=DEVNULL, stdout=write_end,
                                         stderr=write_end, env=env, cwd=cwd,
                                         user=settings.get("User") or None,
                                         readonly=False, hostname=short)
        except TeachdockError as error:
            os.close(read_end)
            raise BuildStepFailed(f"the command {json.dumps(command)} could not start: {error}", inst, None,
                                  "") from error
        finally:
            os.close(write_end)
        try:
            try:
                container.start()
            except TeachdockError as error:
                raise BuildStepFailed(f"the command {json.dumps(command)} could not start: {error}", inst,
                                      None, "") from error
            with open(read_end, "rb", closefd=True) as reader:
                read_end = None
                for raw in reader:
                    line = raw.decode(errors="replace").rstrip("\n")
                    output.append(line)
                    self._say(line)
            exit_code = container.wait()
        finally:
            if read_end is not None:
                os.close(read_end)
            container.delete(force=True)
        if exit_code != 0:                        # docker build says "Removing ..." only on success
            shown = " ".join(command)
            raise BuildStepFailed(f"The command '{shown}' returned a non-zero code: {exit_code}"
                                  + ("\n" + "\n".join(output[-20:]) if output else ""), inst, exit_code,
                                  "\n".join(output))
        self._say(f"Removing intermediate container {short}")
        for name in missing:                      # mount points the runtime made are not the RUN's doing
            with contextlib.suppress(OSError):
                os.rmdir(rootfs / name)

    # ---- COPY and ADD

    def _copy_step(self, state: _State, inst: Instruction, context: Path, ignore: DockerIgnore):
        is_add = inst.keyword == "ADD"
        allowed = {"chown", "chmod"}
        for flag in inst.flags:
            if flag == "from":
                raise inst.error(f"{inst.keyword} --from needs a multi-stage build, which teachdock's builder "
                                 "does not support")
            if flag not in allowed:
                raise inst.error(f"{inst.keyword} --{flag} is not supported (only --chown and --chmod)")
        env = state.env()
        parts = words(inst, env)
        if len(parts) < 2:
            raise inst.error(f"{inst.keyword} requires at least two arguments: source(s) and destination")
        *requested, dest = parts
        sources = []
        for source in requested:
            if re.match(r"^[a-z][a-z0-9+.-]*://", source):
                raise inst.error(f"{inst.keyword} {source}: fetching URLs needs the network, which teachdock builds "
                                 "do not have; download it into the context and ADD the file")
            sources += context_sources(context, source, ignore, inst)
        settings = state.config["config"]
        workdir = settings.get("WorkingDir") or "/"
        dest_path = dest if dest.startswith("/") else posixpath.join(workdir, dest)
        dest_is_dir = dest.endswith("/") or dest in (".", "") or dest.endswith("/.")
        if len(sources) > 1 and not dest_is_dir:
            raise inst.error(f"When using {inst.keyword} with more than one source file, the destination must be a "
                             f"directory and end with a /")
        chmod = None
        if "chmod" in inst.flags:
            if not re.fullmatch(r"[0-7]{3,4}", inst.flags["chmod"]):
                raise inst.error(f"--chmod={inst.flags['chmod']}: give an octal mode such as 755")
            chmod = int(inst.flags["chmod"], 8)
        chown = process_word(inst.flags["chown"], env) if "chown" in inst.flags else None

        digest = sources_digest(context, sources, ignore)
        kind = "multi" if len(sources) > 1 else ("dir" if sources[0][1].is_dir() else "file")
        flags = "".join(f"--{name}={inst.flags[name]} " for name in sorted(inst.flags))
        shown = posixpath.normpath(dest_path) + ("/" if dest_is_dir and dest_path != "/" else "")
        created_by = f"/bin/sh -c #(nop) {inst.keyword} {flags}{kind}:{digest.removeprefix('sha256:')} in {shown} "

        def copy_in(snapshot: Snapshot) -> None:
            owner = (0, 0)
            if chown:
                owner = resolve_user(snapshot.rootfs, chown)
            for _, path in sources:
                if is_add and path.is_file() and archive_opener(path):
                    extract_archive(snapshot.rootfs, path, dest_path)
                else:
                    copy_source(context, path, snapshot.rootfs, dest_path, dest_is_dir, ignore, owner, chmod)

        return created_by, copy_in

    # ---- snapshots

    def _in_snapshot(self, state: _State, action: Callable[[Snapshot], None]) -> NewLayer | None:
        """Do ``action`` on a fresh snapshot of the current state; its changes, stored, are the layer."""
        container_id = f"{self.container_prefix}-{secrets.token_hex(6)}"
        snapshot = self.snapshots.prepare_layers(state.layers, state.diff_ids, container_id)
        try:
            action(snapshot)
            return store_layer(self.store, snapshot.diff)
        finally:
            self.snapshots.remove(container_id)

    def _say(self, line: str) -> None:
        self._output.append(line)
        if self._progress is not None:
            self._progress(line)


def _config_id(config: dict) -> str:
    """The image id this config would have: the digest of the JSON the store writes."""
    return sha256_digest(json.dumps(config, separators=(",", ":")).encode())
