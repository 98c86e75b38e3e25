"""Exercise checks for the registries chapter (06); each one looks at real state.

- ``check_blob_digest``: the learner computes the digest of a file's bytes; the check
  hashes the file itself, now;
- ``check_exists_request``: which request (method and status) tells a pushing client that
  the registry already has a blob? The check reads the real trace of a second push;
- ``check_pull_by_digest``: the learner pushes an image under a new tag and pulls it back
  by digest into an empty store; the check asks the registry what the tag points to, and
  looks at the names the store recorded.

As in teachdock.lab.common.checks, a ``judge_*`` function holds the verdict and the hints. It is
pure, so the unit tests feed it every likely mistake. A check never raises for a wrong
answer: it returns a CheckResult (green, red, or grey while the cell still holds ...).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from teachdock.errors import TeachdockError
from teachdock.lab.common.checks import NOT_ANSWERED, CheckResult, not_answered

# --------------------------------------------------------------------------------------------
# Exercise 1: the digest of a blob
# --------------------------------------------------------------------------------------------


def judge_blob_digest(answer, data: bytes) -> CheckResult:
    if not_answered(answer):
        return NOT_ANSWERED
    truth = "sha256:" + hashlib.sha256(data).hexdigest()
    if not isinstance(answer, str):
        return CheckResult(False, f"Answer with a string like 'sha256:3f5e…' (you gave a {type(answer).__name__}). "
                                  "hashlib's .hexdigest() gives the hex part as a string.")
    given = answer.strip()
    if given == truth:
        return CheckResult(True, f"Right: {truth[:19]}…. The digest is a name computed from the bytes alone: "
                                 "anyone holding the same bytes computes the same name, and any other bytes "
                                 "get a different one.")
    hexpart = given.partition(":")[2] if ":" in given else given
    if given == truth[7:]:
        return CheckResult(False, "The hex is right, but a digest names its algorithm: put 'sha256:' in front. "
                                  "Registries also accept sha512, so the prefix matters.")
    if given.lower() == truth and given != truth:
        return CheckResult(False, "Right hash, wrong case: OCI digests are lowercase hex, and a registry "
                                  "compares them as strings.")
    if len(hexpart) in (32, 40, 128):
        algorithm = {32: "MD5", 40: "SHA-1", 128: "SHA-512"}[len(hexpart)]
        return CheckResult(False, f"{len(hexpart)} hex digits is the length of {algorithm}. Image digests "
                                  "here are SHA-256: 64 hex digits (hashlib.sha256).")
    variants = {
        hashlib.sha256(data.strip()).hexdigest(): "You hashed the text with its surrounding whitespace "
        "(the final newline?) removed. A digest covers every byte, the newline too: read the file in "
        "binary mode ('rb') and hash exactly what you read.",
        hashlib.sha256(data.decode("utf-8", "replace").encode("utf-16")).hexdigest(): "You hashed the text in "
        "another encoding. Hash the bytes themselves: open the file with 'rb'.",
    }
    if hexpart in variants:
        return CheckResult(False, variants[hexpart])
    if len(hexpart) == 64:
        return CheckResult(False, "That is a SHA-256, but of other bytes. Did you hash the file's *name* or path "
                                  "instead of its content? hashlib.sha256(open(path, 'rb').read()).hexdigest()")
    return CheckResult(False, "Not a digest: the form is 'sha256:' followed by 64 lowercase hex digits.")


def check_blob_digest(answer, path: str | Path) -> CheckResult:
    """Exercise: what is the digest of the bytes in ``path``? (the check hashes the file now)"""
    if not_answered(answer):
        return NOT_ANSWERED
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        return CheckResult(False, f"Could not read {path} to check your answer ({error}). Run the cell that "
                                  "writes it again.")
    return judge_blob_digest(answer, data)


# --------------------------------------------------------------------------------------------
# Exercise 2: which request tells the client that a blob is already there?
# --------------------------------------------------------------------------------------------


def _method_and_status(answer) -> tuple[str | None, int | None]:
    """("HEAD", 200), "HEAD 200", "head" or 200 -> (method, status), either may be None."""
    if isinstance(answer, (tuple, list)):
        parts = [str(p) for p in answer]
    elif isinstance(answer, (str, int)) and not isinstance(answer, bool):
        parts = re.split(r"[\s,/]+", str(answer).strip())
    else:
        return None, None
    method = next((p.upper() for p in parts if p.isalpha()), None)
    status = next((int(p) for p in parts if p.isdigit()), None)
    return method, status


def judge_exists_request(answer, trace: list[dict]) -> CheckResult:
    """``trace`` is the real trace of a push of blobs the registry already holds."""
    if not_answered(answer):
        return NOT_ANSWERED
    seen = [(e["method"], e["status"]) for e in trace if "/blobs/" in e["url"] and "/uploads/" not in e["url"]]
    if not seen:
        return CheckResult(False, "The trace holds no blob requests: run the second push of section 4 again, "
                                  "with trace=second_trace.")
    truth = seen[0]
    method, status = _method_and_status(answer)
    if method is None and status is None:
        return CheckResult(False, f'Answer with a method and a status code, like ("GET", 404) (you gave {answer!r}).')
    if (method, status) == truth:
        return CheckResult(True, f"Right: {truth[0]} {truth[1]}. HEAD asks for the headers of GET "
                                 "/v2/<name>/blobs/<digest> without the body; 200 says the registry holds those "
                                 "bytes, so the client skips the upload. Docker prints 'Layer already exists'.")
    if method == "GET":
        return CheckResult(False, "A GET would download the whole blob (a megabyte here, gigabytes elsewhere) just "
                                  "to learn that it exists. Which method asks for the headers only?")
    if method == "POST":
        return CheckResult(False, "POST /blobs/uploads/ starts an upload: it is what the client does when the "
                                  "blob is *missing*. Look at the request before it.")
    if method in ("PUT", "PATCH"):
        return CheckResult(False, f"{method} sends bytes (a blob or the manifest). The question is what the "
                                  "client asks *before* deciding to send anything.")
    if method == truth[0] and status == 404:
        return CheckResult(False, "HEAD is right, but 404 means 'not here': that is what the first push saw, "
                                  "before it uploaded. What status says 'I have it'?")
    if method == truth[0] and status is None:
        return CheckResult(False, "HEAD is right. Add the status code that means 'I have it'.")
    if method == truth[0]:
        return CheckResult(False, f"HEAD is right, but the registry answered {truth[1]} in the trace, "
                                  f"not {status}. Look at the status column of the second push.")
    if method is None and status == truth[1]:
        return CheckResult(False, f"{status} is right. Which method? Look at the method column of the second push.")
    return CheckResult(False, "Look at the table of the second push: which request is made once per blob, "
                              "and what does the registry answer?")


def check_exists_request(answer, trace: list[dict]) -> CheckResult:
    """Exercise: which request, answered how, tells the client that a blob exists?"""
    return judge_exists_request(answer, trace)


# --------------------------------------------------------------------------------------------
# Exercise 3: push under a new tag, pull by digest
# --------------------------------------------------------------------------------------------


def judge_pull_by_digest(repository: str, tag: str, tag_digest: str | None, names: list[str]) -> CheckResult:
    """``tag_digest``: what the registry says ``repository:tag`` points to (None: no such tag);
    ``names``: the full names recorded in the learner's store."""
    if tag_digest is None and not names:
        return CheckResult(False, f"The registry has no {repository}:{tag} yet, and your store is empty. "
                                  f"Tag busybox:latest as {repository}:{tag}, push it, then pull "
                                  f"{repository}@<the digest push returned> into exercise_store.", answered=False)
    if tag_digest is None:
        return CheckResult(False, f"The registry has no tag {tag} in {repository}. push() uploads the tag you "
                                  f"give it: store.tag('busybox:latest', '{repository}:{tag}') first, then "
                                  f"push(store, '{repository}:{tag}').")
    wanted = f"{repository}@{tag_digest}"
    if not names:
        return CheckResult(False, f"The push worked ({repository}:{tag} is on the registry), but exercise_store "
                                  f"is empty. Pull it by digest: pull(exercise_store, '{wanted}').")
    if wanted not in names:
        return CheckResult(False, f"exercise_store holds {', '.join(names)}, but not {wanted}. Pull from "
                                  f"{repository}, by the digest the tag {tag} points to.")
    if f"{repository}:{tag}" in names:
        return CheckResult(False, f"You pulled by tag ({repository}:{tag}); pull records both names then. "
                                  f"Remove it (exercise_store.remove('{repository}:{tag}')) and pull "
                                  f"'{wanted}' instead.")
    return CheckResult(True, f"Right: exercise_store holds {wanted[:len(repository) + 20]}…, pulled by digest. "
                             "A tag is a pointer the registry may move; a digest names these exact bytes for "
                             "ever, which is why deployments pin images by digest.")


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
        return CheckResult(False, f"Could not ask the registry ({type(error).__name__}: {error}). Is the local "
                                  "registry of section 3 still running?")
    names = [name for image in store.list_images() for name in image.names]
    return judge_pull_by_digest(ref.name, tag, tag_digest, names)


__all__ = ["check_blob_digest", "check_exists_request", "check_pull_by_digest", "judge_blob_digest",
           "judge_exists_request", "judge_pull_by_digest"]
