"""Exercise checks for the images chapter (05): each one looks at real images and layers.

- ``check_deleted_file_cost``: a Dockerfile writes 200 kB of random bytes in one step and deletes
  them in the next; how many kB do its new layers add to the store? (the check builds it and
  adds up the new layers' sizes; the usual mistake is 0: a later ``rm`` frees nothing);
- ``check_deletion_marker``: a container deletes a file; which entry in its upper dir marks
  the deletion? (the check deletes the file in a fresh snapshot and looks in upper);
- ``check_top_layer_adds``: build an image whose last layer adds /hello.txt (the check opens
  the image's top layer tarball);
- ``check_first_cache_miss``: which build step is the first to miss the cache after a file
  changes? (the check builds twice and reads the steps).

As in teachdock.lab.common.checks, each ``judge_*`` function is pure and holds the hints, so the
unit tests can feed it every likely mistake; a check never raises for a wrong answer.
"""

from __future__ import annotations

import os
import posixpath
import secrets
import shutil
import stat
import tarfile
import tempfile
from pathlib import Path

from teachdock.lab.common.checks import not_answered_yet, CheckResult, as_number, not_answered
from teachdock.lab.common.language import say
from teachdock.lab.images.layers_view import ADDED, CHANGED, REMOVED, image_layers


def _cannot_check(error: Exception) -> CheckResult:
    return CheckResult(False, say("Could not check your answer ({kind}: {error}).", kind=type(error).__name__,
                                  error=error))


def _whole(answer) -> int | None:
    number = as_number(answer)
    return int(number) if number is not None and number == int(number) else None


# ---- exercise 1: what does a file deleted in a later step cost? ----------------------------

DELETED_FILE_BYTES = 200_000

DOCKERFILE_1 = f"""\
FROM busybox
RUN head -c {DELETED_FILE_BYTES} /dev/urandom > /big.bin
RUN rm /big.bin
"""


def judge_deleted_file_cost(answer, added_sizes: list[int], written: int = DELETED_FILE_BYTES) -> CheckResult:
    """``answer`` in kB (1000 bytes); ``added_sizes``: the stored (gzip) size in bytes of each layer
    the Dockerfile added on top of busybox, in order; ``written``: the bytes the first step wrote."""
    if not_answered(answer):
        return not_answered_yet()
    kb = as_number(answer)
    if kb is None or kb < 0:
        return CheckResult(False, say("Answer with a number of kB, like 50 (you gave {answer}).", answer=repr(answer)))
    truth = sum(added_sizes) / 1000
    if 0.75 * truth <= kb <= 1.25 * truth:
        return CheckResult(True, say("Right: the new layers take {total:.0f} kB here. The RUN that wrote /big.bin "
                                     "holds all of it ({file_bytes} bytes: random bytes do not compress); the rm "
                                     "step's layer holds only a whiteout, .wh.big.bin ({whiteout_bytes} bytes). A "
                                     "later step never makes an image smaller: delete in the same RUN "
                                     "(RUN ... && rm ...) or copy only what you need in a multi-stage build.",
                                     total=truth, file_bytes=added_sizes[0], whiteout_bytes=added_sizes[-1]))
    if kb > 100 * truth:
        return CheckResult(False, say("{kb:g} kB is far too much: did you answer in bytes? 1 kB is 1000 bytes.",
                                      kb=kb))
    if kb < 0.1 * truth:
        return CheckResult(False, say("The rm cannot take the file out of the layer below: that layer is read-only "
                                      "and already stored. rm adds a layer of its own, holding only a whiteout "
                                      "that hides the file (section 3). What does the first RUN's layer still "
                                      "hold?"))
    if kb > 1.6 * truth:
        return CheckResult(False, say("The rm step's layer holds no copy of the file: a deletion is recorded as a "
                                      "whiteout entry, a name with no content. Only one layer holds the bytes."))
    if kb < 0.75 * truth:
        return CheckResult(False, say("Less than the file: but the {kb_written} kB come from /dev/urandom, and "
                                      "random bytes do not compress (section 6), so gzip keeps them at about "
                                      "their size. And the rm frees nothing.", kb_written=written // 1000))
    return CheckResult(False, say("Not quite. Add up what each new layer holds: the file, then a whiteout."))


def check_deleted_file_cost(answer, images) -> CheckResult:
    """Exercise: build DOCKERFILE_1; how many kB do its new layers add to busybox's?"""
    if not_answered(answer):
        return not_answered_yet()
    if as_number(answer) is None:
        return judge_deleted_file_cost(answer, [1])
    context = Path(tempfile.mkdtemp(prefix="chk-deleted-"))
    try:
        (context / "Dockerfile").write_text(DOCKERFILE_1)
        base = len(images.get("busybox:latest").layers)
        built = images.build(context).image
    except Exception as error:  # the check must explain, not crash the exercise cell
        return _cannot_check(error)
    finally:
        shutil.rmtree(context, ignore_errors=True)
    return judge_deleted_file_cost(answer, [layer.size for layer in built.layers[base:]])


# ---- exercise 2: which entry in upper marks a deletion? ------------------------------------


def _as_path(answer) -> str | None:
    if not isinstance(answer, (str, os.PathLike)):
        return None
    text = os.fspath(answer).strip()
    return text or None


def judge_deletion_marker(answer, deleted: str, markers: dict[str, str], upper: str) -> CheckResult:
    """``markers``: path relative to upper -> "whiteout" (0/0 char device), "file" or "dir"."""
    if not_answered(answer):
        return not_answered_yet()
    path = _as_path(answer)
    if path is None:
        return CheckResult(False, say("Answer with a path, like \"etc/motd\" (you gave {answer}).",
                                      answer=repr(answer)))
    if path.startswith(upper.rstrip("/") + "/"):
        path = path[len(upper.rstrip("/")) + 1:]
    relative = path.lstrip("/")
    whiteouts = [p for p, kind in markers.items() if kind == "whiteout"]
    if relative in whiteouts:
        return CheckResult(True, say("Right: upper/{path} is a character device with device number 0/0, "
                                     "overlayfs' whiteout. The file in the lower layer is still there, untouched; "
                                     "the whiteout hides it from the merged view.", path=relative))
    name = posixpath.basename(relative)
    if name.startswith(".wh."):
        return CheckResult(False, say("{name} is how the deletion is written in a layer *tarball* (the OCI "
                                      "whiteout). overlayfs' upper dir uses another sign, under the file's own "
                                      "name: list upper and look at the file type.", name=name))
    if "/snapshots/" in path:
        return CheckResult(False, say("{deleted} in the lower layer is read-only and stays as it was. The deletion "
                                      "is recorded in the container's upper dir: what is there now?",
                                      deleted=deleted))
    return CheckResult(False, say("Nothing is at upper/{path}. The marker has the deleted file's own path "
                                  "(relative to upper), e.g. \"bin/ls\" for /bin/ls.", path=relative))


def _deletion_markers(upper: Path) -> dict[str, str]:
    found = {}
    for path in upper.rglob("*"):
        st = path.lstat()
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            kind = "whiteout"
        else:
            kind = "dir" if stat.S_ISDIR(st.st_mode) else "file"
        found[str(path.relative_to(upper))] = kind
    return found


def check_deletion_marker(answer, images, deleted: str = "/bin/vi", image: str = "busybox:latest") -> CheckResult:
    """Exercise: a container of ``image`` deletes ``deleted``; which path in its upper dir
    marks the deletion? The check makes a fresh snapshot, deletes the file, and looks."""
    if not_answered(answer):
        return not_answered_yet()
    container_id = f"chk-wh-{secrets.token_hex(4)}"
    try:
        snapshot = images.prepare(image, container_id)
    except Exception as error:
        return _cannot_check(error)
    try:
        if snapshot.upper is None:
            return CheckResult(False, say("This check needs root: without it (or without overlayfs) the data "
                                          "root uses the copy driver, which keeps no upper dir to look in. Start "
                                          "the lab as root (sudo scripts/lab) to check your answer."))
        os.unlink(snapshot.rootfs / deleted.lstrip("/"))
        markers = _deletion_markers(snapshot.upper)
        return judge_deletion_marker(answer, deleted, markers, str(snapshot.upper))
    except Exception as error:
        return _cannot_check(error)
    finally:
        images.release(container_id)


# ---- exercise 3: an image whose last layer adds /hello.txt ----------------------------------


def judge_top_layer(answer, layers: list[tuple[str, list[tuple[str, str]]]], wanted: str,
                    content: bytes | None, expected: bytes) -> CheckResult:
    """``layers``: (created_by, [(kind, path), ...]) base first; ``content``: the file as the
    top layer holds it (None if the top layer does not hold it)."""
    if not layers:
        return CheckResult(False, say("That image has no layers at all. Start from FROM busybox."))
    made_by, top = layers[-1]
    top_kinds = {path: kind for kind, path in top}
    if top_kinds.get(wanted) == REMOVED:
        return CheckResult(False, say("Your top layer ({made_by}) *removes* {wanted}: it holds a whiteout. Move "
                                      "the step that deletes it, or drop it.", made_by=made_by, wanted=wanted))
    if top_kinds.get(wanted) in (ADDED, CHANGED):
        if content is not None and content.strip() != expected.strip():
            return CheckResult(False, say("The top layer adds {wanted}, but it holds {content}, not {expected}.",
                                          wanted=wanted, content=repr(content[:40]), expected=repr(expected)))
        return CheckResult(True, say("Right: the top layer ({made_by}) adds {wanted}. Steps such as CMD or ENV "
                                     "after it only change the config, so they make no layer of their own.",
                                     made_by=made_by, wanted=wanted))
    lower = [number for number, (_by, changes) in enumerate(layers[:-1], 1)
             if any(path == wanted and kind in (ADDED, CHANGED) for kind, path in changes)]
    if lower:
        return CheckResult(False, say("Layer {number} adds {wanted}, but it is not the top layer: the top one "
                                      "comes from {made_by}. Make the step that writes {wanted} the last one that "
                                      "changes files.", number=lower[-1], wanted=wanted, made_by=repr(made_by)))
    return CheckResult(False, say("No layer adds {wanted}. Use COPY hello.txt /hello.txt (the file is in the "
                                  "context), or RUN echo hello > /hello.txt.", wanted=wanted))


def check_top_layer_adds(answer, images, wanted: str = "/hello.txt", expected: bytes = b"hello\n") -> CheckResult:
    """Exercise: ``answer`` names an image whose top layer adds ``wanted`` with ``expected``."""
    if not_answered(answer):
        return not_answered_yet()
    if not isinstance(answer, str):
        return CheckResult(False, say("Answer with the image's name, like \"ex3:latest\" (you gave {answer}).",
                                      answer=repr(answer)))
    try:
        img = images.get(answer)
    except Exception:
        return CheckResult(False, say("There is no image {name} in this chapter's data root. Build it with "
                                      "images.build(context, tags=[{name}]) first.", name=repr(answer)))
    try:
        layers = image_layers(images, answer)
        content = None
        if img.layers:
            for member_name, data in _regular_files(images.store, img.layers[-1].digest):
                if member_name == wanted:
                    content = data
    except Exception as error:
        return _cannot_check(error)
    summary = [(info.created_by, [(c.kind, c.path) for c in info.changes]) for info in layers]
    return judge_top_layer(answer, summary, wanted, content, expected)


def _regular_files(store, digest: str):
    with store.open_blob(digest) as blob, tarfile.open(fileobj=blob, mode="r|*") as tar:
        for member in tar:
            if member.isreg() and member.size < 1 << 16:
                yield "/" + member.name.removeprefix("./").lstrip("/"), tar.extractfile(member).read()


# ---- exercise 4: the first step that misses the cache ---------------------------------------


def judge_first_cache_miss(answer, first_miss: int, changed_step: int, steps: int) -> CheckResult:
    if not_answered(answer):
        return not_answered_yet()
    n = _whole(answer)
    if n is None:
        return CheckResult(False, say("Answer with a step number, like 2 (you gave {answer}).", answer=repr(answer)))
    if n == first_miss:
        return CheckResult(True, say("Right: step {step}. Its cache key includes the digest of the files it copies, "
                                     "so a new hello.txt means a new key; every step after it misses too, because "
                                     "each key also includes the layer below.", step=first_miss))
    if n == 1:
        return CheckResult(False, say("Step 1 is FROM: it only picks the base image, which did not change."))
    if n < first_miss:
        return CheckResult(False, say("Step {step} does not read hello.txt, and nothing below it changed, so it "
                                      "still hits the cache. Which step reads the file?", step=n))
    if n == steps:
        return CheckResult(False, say("The last step misses too, but it is not the first. A miss starts at the "
                                      "step whose input changed, and carries on to the end."))
    return CheckResult(False, say("Step {step} does miss the cache, but an earlier step misses first: the one "
                                  "whose input (the copied file) changed.", step=n))


DOCKERFILE_4 = """\
FROM busybox
RUN echo base > /base.txt
COPY hello.txt /hello.txt
RUN wc -c /hello.txt > /size.txt
CMD ["cat", "/hello.txt"]
"""


def check_first_cache_miss(answer, images) -> CheckResult:
    """Exercise: build DOCKERFILE_4, change hello.txt, build again: which step misses first?"""
    if not_answered(answer):
        return not_answered_yet()
    context = Path(tempfile.mkdtemp(prefix="chk-cache-"))
    try:
        (context / "Dockerfile").write_text(DOCKERFILE_4)
        (context / "hello.txt").write_text("hello\n")
        images.build(context)
        (context / "hello.txt").write_text(f"hello again {secrets.token_hex(4)}\n")
        result = images.build(context)
    except Exception as error:
        return _cannot_check(error)
    finally:
        shutil.rmtree(context, ignore_errors=True)
    misses = [step.number for step in result.steps if not step.cached and not step.instruction.startswith("FROM")]
    return judge_first_cache_miss(answer, misses[0], 3, len(result.steps))

