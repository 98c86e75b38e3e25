"""The bad requests of tests/integration/test_daemon_bad_requests.py sent to Debian's dockerd
too: the table of both answers is printed, and where dockerd's Go decoder names a field of the
wrong JSON kind, teachdockd names the same kind and field.

Where teachdockd is deliberately stricter than this dockerd (20.10), the difference is listed in
STRICTER with the reason; every other case must get the same class of answer (4xx) from both —
dockerd 20.10 answers a create body's decoding errors with 500, moby 23 and later with 400.
"""

from __future__ import annotations

import json
import re
import socket

import pytest

from tests.integration.test_daemon_bad_requests import bad_requests
from tests.support.daemons import running_daemon
from tests.support.dockerd import dockerd_missing, running_dockerd

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(dockerd_missing() is not None, reason=f"needs a private dockerd: {dockerd_missing()}"),
]

STRICTER = {  # what: why teachdockd refuses what dockerd 20.10 lets through (or never answers)
    "version too old": "API versions below 1.24 are refused (moby's current minimum; 20.10 still took 1.12)",
    "network name with ../": "network names are checked as container names are (20.10 accepts any)",
    "NUL in a path": "a NUL byte in a path is a 400 (dockerd: a 404 for that name)",
    "../ in a path": "the decoded name is looked up, a 404 (dockerd's router redirects the cleaned path, 301)",
    "archive path relative": "the archive API wants an absolute path (dockerd resolves it from /)",
    "archive upload climbing out": "a tar entry with .. is refused (dockerd confines it under the target)",
    "body of 500 MB": "a JSON body is refused past 16 MiB from its Content-Length (dockerd keeps reading)",
    "a chunk of 1 TB": "the same for a chunked body (dockerd keeps reading)",
    "bad chunk size": "the body is parsed before the Content-Type check",
    "archive path with NUL": "a NUL byte in a query value is a 400 (dockerd: a 500 from lstat)",
    "tag with ../": "an invalid reference is a 400 (dockerd 20.10: a 500)",
}
DECODING = re.compile(r"json: |unexpected EOF|invalid character")  # 20.10's 500s that moby 23+ answers with 400


def answer(socket_path: str, request: bytes) -> tuple[int | None, str]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(8)
    sock.connect(socket_path)
    data = b""
    try:
        sock.sendall(request)
        while chunk := sock.recv(65536):
            data += chunk
    except OSError:
        pass
    finally:
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    try:
        message = json.loads(body)["message"]
    except (ValueError, KeyError, TypeError):
        message = body[:120].decode(errors="replace")
    return (int(match.group(1)) if match else None), message


def test_the_same_bad_requests_against_dockerd(tmp_path):
    secret = tmp_path / "only-on-the-host"
    secret.write_text("secret\n")
    with running_daemon() as ours, running_dockerd(ours.data_root) as theirs:
        our_target = ours.create(["sleep", "60"], name="target")
        ours.json("POST", f"/v1.45/containers/{our_target}/start", expect=204)
        done = theirs.docker("run", "-d", "--network", "none", "--name", "target", "busybox", "sleep", "60")
        assert done.returncode == 0, done.stderr
        their_target = done.stdout.strip()
        rows, problems = [], []
        cases = zip(bad_requests(our_target, str(secret)), bad_requests(their_target, str(secret), "/v1.41/"))
        for (what, our_request, _, _), (_, their_request, _, _) in cases:
            our_status, our_message = answer(ours.socket_path, our_request)
            their_status, their_message = answer(theirs.socket_path, their_request)
            rows.append(f"{what:30} {our_status} {our_message[:60]!r:64} {their_status} {their_message[:60]!r}")
            if not 400 <= (our_status or 0) < 500:
                problems.append(f"{what}: teachdockd answered {our_status}")
            unmarshal = re.match(r"json: cannot unmarshal (\w+) into Go struct field \S*?\.(\w+) ", their_message)
            if unmarshal and "must be" not in our_message and not re.search(
                    rf"cannot unmarshal {unmarshal.group(1)} into Go struct field \S*\.{unmarshal.group(2)} ", our_message):
                problems.append(f"{what}: dockerd says {their_message!r}, teachdockd {our_message!r}")
            decoding = their_status == 500 and DECODING.match(their_message)
            if what not in STRICTER and not decoding and (their_status is None or their_status // 100 != 4):
                problems.append(f"{what}: dockerd answered {their_status} {their_message!r} (a new difference?)")
        ours.request("DELETE", f"/v1.45/containers/{our_target}?force=1")
        theirs.docker("rm", "-f", their_target)
    print("\nwhat                           teachdockd" + " " * 60 + "dockerd\n" + "\n".join(rows))
    assert problems == []
