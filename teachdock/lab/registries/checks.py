"""Exercise checks for the registries chapter (06); each one looks at real state.

- ``check_blob_digest``: the learner computes the digest of a file's bytes; the check
  hashes the file itself, now;
- ``check_upload_count``: predict how many blobs a push into a *new* repository of the same
  registry uploads; the check makes that push now, with a trace, and counts;
- ``check_pull_by_digest``: the learner pushes an image under a new tag and pulls it back
  by digest into an empty store; the check asks the registry what the tag points to, and
  looks at the names the store recorded.

As in teachdock.lab.common.checks, a ``judge_*`` function holds the verdict and the hints. It is
pure, so the unit tests feed it every likely mistake. A check never raises for a wrong
answer: it returns a CheckResult (green, red, or grey while the cell still holds ...).
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

from teachdock.errors import TeachdockError
from teachdock.lab.common.checks import not_answered_yet, CheckResult, as_int, not_answered
from teachdock.lab.common.language import say

# --------------------------------------------------------------------------------------------
# Exercise 1: the digest of a blob
# --------------------------------------------------------------------------------------------


def judge_blob_digest(answer, data: bytes) -> CheckResult:
    if not_answered(answer):
        return not_answered_yet()
    truth = "sha256:" + hashlib.sha256(data).hexdigest()
    if not isinstance(answer, str):
        return CheckResult(False, say("Answer with a string like 'sha256:3f5e…' (you gave a {kind}). "
                                      "hashlib's .hexdigest() gives the hex part as a string.",
                                      kind=type(answer).__name__))
    given = answer.strip()
    if given == truth:
        return CheckResult(True, say("Right: {digest}…. The digest is a name computed from the bytes alone: "
                                     "anyone holding the same bytes computes the same name, and any other bytes "
                                     "get a different one.", digest=truth[:19]))
    hexpart = given.partition(":")[2] if ":" in given else given
    if given == truth[7:]:
        return CheckResult(False, say("The hex is right, but a digest names its algorithm: put 'sha256:' in front. "
                                      "Registries also accept sha512, so the prefix matters."))
    if given.lower() == truth and given != truth:
        return CheckResult(False, say("Right hash, wrong case: OCI digests are lowercase hex, and a registry "
                                      "compares them as strings."))
    if len(hexpart) in (32, 40, 128):
        algorithm = {32: "MD5", 40: "SHA-1", 128: "SHA-512"}[len(hexpart)]
        return CheckResult(False, say("{digits} hex digits is the length of {algorithm}. Image digests "
                                      "here are SHA-256: 64 hex digits (hashlib.sha256).",
                                      digits=len(hexpart), algorithm=algorithm))
    variants = {
        hashlib.sha256(data.strip()).hexdigest(): say(
            "You hashed the text with its surrounding whitespace (the final newline?) removed. A digest covers "
            "every byte, the newline too: read the file in binary mode ('rb') and hash exactly what you read."),
        hashlib.sha256(data.decode("utf-8", "replace").encode("utf-16")).hexdigest(): say(
            "You hashed the text in another encoding. Hash the bytes themselves: open the file with 'rb'."),
    }
    if hexpart in variants:
        return CheckResult(False, variants[hexpart])
    if len(hexpart) == 64:
        return CheckResult(False, say("That is a SHA-256, but of other bytes. Did you hash the file's *name* or "
                                      "path instead of its content? "
                                      "hashlib.sha256(open(path, 'rb').read()).hexdigest()"))
    return CheckResult(False, say("Not a digest: the form is 'sha256:' followed by 64 lowercase hex digits."))


def check_blob_digest(answer, path: str | Path) -> CheckResult:
    """Exercise: what is the digest of the bytes in ``path``? (the check hashes the file now)"""
    if not_answered(answer):
        return not_answered_yet()
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        return CheckResult(False, say("Could not read {path} to check your answer ({error}). Run the cell that "
                                      "writes it again.", path=path, error=error))
    return judge_blob_digest(answer, data)


# --------------------------------------------------------------------------------------------
# Exercise 2: predict what a push into a new repository of the same registry uploads
# --------------------------------------------------------------------------------------------


def uploads_in(trace: list[dict]) -> list[str]:
    """The digests of the blobs a push really sent: each closing ``PUT …/uploads/…?digest=`` → 201."""
    return [e.get("digest") or "" for e in trace
            if e["method"] == "PUT" and "/blobs/uploads/" in e["url"] and e["status"] == 201]


def judge_upload_count(answer, trace: list[dict], blobs_before: int | None = None,
                       blobs_after: int | None = None) -> CheckResult:
    """``trace``: the real push of busybox into a repository new to a registry that already holds
    its blobs in another repository; ``blobs_before``/``after``: blobs in the registry's storage."""
    if not_answered(answer):
        return not_answered_yet()
    given = as_int(answer)
    if given is None:
        return CheckResult(False, say("Answer with a whole number of blobs, like 2 (you gave {answer!r}).",
                                      answer=answer))
    truth = len(uploads_in(trace))
    heads = [e["status"] for e in trace if e["method"] == "HEAD"]
    if given == truth:
        sentences = [say("Right: {count}. Each HEAD in the new repository answered {statuses}: a registry answers "
                         "for *this repository*, so the blobs went up again.",
                         count=truth, statuses=", ".join(map(str, heads)))]
        if blobs_before is not None and blobs_after is not None:
            sentences.append(say("On the registry's disk the blob files went from {before} to {after}: the bytes "
                                 "are stored once, by digest, whichever repositories link to them.",
                                 before=blobs_before, after=blobs_after))
        sentences.append(say("(Docker's client, which remembers where it pushed a blob before, would first try a "
                             "cross-repository mount, POST …/uploads/?mount=<digest>&from=<repo>, and send no "
                             "bytes; teachdock's push does not.)"))
        return CheckResult(True, " ".join(sentences))
    if given == 0:
        return CheckResult(False, say("The registry does hold these bytes, but HEAD /v2/<new repo>/blobs/<digest> "
                                      "asks about the new repository, and there a blob exists only once it was "
                                      "pushed (or mounted) into it. Otherwise anyone allowed to read one "
                                      "repository could probe another's blobs by digest."))
    if given == truth + 1:
        return CheckResult(False, say("One too many: the manifest is not a blob upload. It goes last, with "
                                      "PUT /v2/<name>/manifests/<tag>. Count only the blobs."))
    if given < truth:
        return CheckResult(False, say("Too few. Which blobs does an image have? The manifest names a config "
                                      "and each layer by digest; is any of them already in the new repository?"))
    return CheckResult(False, say("Too many. busybox here has one layer and one config; count the blobs the "
                                  "manifest names."))


def registry_blob_count(registry) -> int:
    """How many blobs a LocalRegistry keeps on disk (``blobs/sha256/<2 hex>/<hex>/data``)."""
    return sum(1 for _ in (Path(registry.storage) / "docker/registry/v2/blobs").glob("*/*/*/data"))


def check_upload_count(answer, store, registry, image: str = "busybox:latest") -> CheckResult:
    """Exercise: how many blobs does pushing ``image`` into a *new* repository of ``registry``
    upload, when the registry holds them in another one? The check pushes it now, with a
    trace, into a repository no one has used (team/copy-<random>), and counts."""
    if not_answered(answer):
        return not_answered_yet()
    import secrets

    from teachdock.image.registry import push

    name = f"{registry.host}/team/copy-{secrets.token_hex(3)}:1"
    trace: list[dict] = []
    try:
        before = registry_blob_count(registry)
        store.tag(image, name)
        push(store, name, trace=trace, docker_config=False)
        after = registry_blob_count(registry)
    except (TeachdockError, OSError) as error:
        return CheckResult(False, say("Could not push {name} to check your answer ({kind}: {error}). Is the "
                                      "registry of section 2 still running?",
                                      name=name, kind=type(error).__name__, error=error))
    finally:
        with contextlib.suppress(TeachdockError):
            store.remove(name)
    result = judge_upload_count(answer, trace, before, after)
    result.message += " " + say("(The check pushed {name} just now.)", name=name)
    return result


# --------------------------------------------------------------------------------------------
# Exercise 3: push under a new tag, pull by digest
# --------------------------------------------------------------------------------------------


def judge_pull_by_digest(repository: str, tag: str, tag_digest: str | None, names: list[str]) -> CheckResult:
    """``tag_digest``: what the registry says ``repository:tag`` points to (None: no such tag);
    ``names``: the full names recorded in the learner's store."""
    if tag_digest is None and not names:
        return CheckResult(False, say("The registry has no {repository}:{tag} yet, and your store is empty. "
                                      "Tag busybox:latest as {repository}:{tag}, push it, then pull "
                                      "{repository}@<the digest push returned> into exercise_store.",
                                      repository=repository, tag=tag), answered=False)
    if tag_digest is None:
        return CheckResult(False, say("The registry has no tag {tag} in {repository}. push() uploads the tag you "
                                      "give it: store.tag('busybox:latest', '{repository}:{tag}') first, then "
                                      "push(store, '{repository}:{tag}').", repository=repository, tag=tag))
    wanted = f"{repository}@{tag_digest}"
    if not names:
        return CheckResult(False, say("The push worked ({repository}:{tag} is on the registry), but "
                                      "exercise_store is empty. Pull it by digest: "
                                      "pull(exercise_store, '{wanted}').",
                                      repository=repository, tag=tag, wanted=wanted))
    if wanted not in names:
        return CheckResult(False, say("exercise_store holds {names}, but not {wanted}. Pull from {repository}, "
                                      "by the digest the tag {tag} points to.",
                                      names=", ".join(names), wanted=wanted, repository=repository, tag=tag))
    if f"{repository}:{tag}" in names:
        return CheckResult(False, say("You pulled by tag ({repository}:{tag}); pull records both names then. "
                                      "Remove it (exercise_store.remove('{repository}:{tag}')) and pull "
                                      "'{wanted}' instead.", repository=repository, tag=tag, wanted=wanted))
    return CheckResult(True, say("Right: exercise_store holds {name}…, pulled by digest. A tag is a pointer the "
                                 "registry may move; a digest names these exact bytes for ever, which is why "
                                 "deployments pin images by digest.", name=wanted[:len(repository) + 20]))


def check_pull_by_digest(store, repository: str, tag: str) -> CheckResult:
    """Exercise: ``repository:tag`` pushed, then pulled by digest into ``store`` (an ImageStore)."""
    from teachdock.image.reference import parse_reference
    from teachdock.image.registry_client import ManifestUnknown, RegistryClient

    ref = parse_reference(f"{repository}:{tag}")
    try:
        with RegistryClient.for_reference(ref, docker_config=False) as client:
            tag_digest = client.get_manifest(ref.path, tag).digest
    except ManifestUnknown:
        tag_digest = None
    except TeachdockError as error:
        return CheckResult(False, say("Could not ask the registry ({kind}: {error}). Is the local registry of "
                                      "section 2 still running?", kind=type(error).__name__, error=error))
    names = [name for image in store.list_images() for name in image.names]
    return judge_pull_by_digest(ref.name, tag, tag_digest, names)


__all__ = ["check_blob_digest", "check_pull_by_digest", "check_upload_count", "judge_blob_digest",
           "judge_pull_by_digest", "judge_upload_count", "registry_blob_count", "uploads_in"]
