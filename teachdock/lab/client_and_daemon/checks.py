"""Exercise checks for the client-and-daemon chapter (07); each one looks at real state.

- ``check_name_conflict``: predict the status code of a create whose name is taken; the check
  sends that request to the daemon now, by hand, and compares;
- ``check_call_count``: how many API calls does a docker command make? The check runs the
  command through an ApiTracer itself, now, and counts;
- ``check_docker_host``: the DOCKER_HOST value that points a client at the second daemon;
  the check compares it with that daemon's socket, then pings the daemon through it;
- ``check_log_file``: where on disk is a container's log? The check knows the daemon's data
  root and reads the file the learner named.

As in teachdock.lab.common.checks, a ``judge_*`` function holds the verdict and the hints. It is
pure, so the unit tests feed it every likely mistake. A check never raises for a wrong
answer: it returns a CheckResult (green, red, or grey while the cell still holds ...).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from teachdock.lab.common.checks import not_answered_yet, CheckResult, as_int, not_answered
from teachdock.lab.common.language import say
from teachdock.lab.common.root import is_root
from teachdock.paths import DEFAULT_SOCKET

_HEX64 = re.compile(r"^[0-9a-f]{64}$")

# --------------------------------------------------------------------------------------------
# Exercise 1: predict the status code of a create with a name that is taken
# --------------------------------------------------------------------------------------------


def judge_name_conflict(answer, status: int, message: str = "") -> CheckResult:
    """``status``/``message``: what the daemon really answered a second create with a used name."""
    if not_answered(answer):
        return not_answered_yet()
    given = as_int(answer)
    if given is None or not 100 <= given <= 599:
        return CheckResult(False, say("Answer with an HTTP status code, a number like 404 (you gave {answer!r}).",
                                      answer=answer))
    said = [say('The daemon said: "{message}"', message=message)] if message else []
    if given == status:
        return CheckResult(True, " ".join([say("Right: {status}.", status=status), *said, say(
            "409 Conflict: the request is well-formed, but it clashes with the daemon's state. The docker CLI "
            "prints the message as `Error response from daemon: Conflict. …`, and `docker run --name` with a used "
            "name stops there, before anything runs.")]))
    if status != 409:
        return CheckResult(False, " ".join([say("The daemon answered {status} here.", status=status), *said]))
    if 200 <= given < 300:
        return CheckResult(False, say("No second container is made: a name is unique per daemon (it is how "
                                      "`docker start taken` finds exactly one container), so the daemon refuses."))
    if given == 404:
        return CheckResult(False, say("404 Not Found says something is missing. Here it is the opposite: the name "
                                      "is already there."))
    if given == 400:
        return CheckResult(False, say("400 Bad Request is for a request the daemon cannot read (bad JSON, an "
                                      "unknown flag value). This one is well-formed; it clashes with what already "
                                      "exists."))
    if given >= 500:
        return CheckResult(False, say("5xx would mean the daemon failed. It did not: the client asked for "
                                      "something the daemon's state forbids, and client mistakes are 4xx."))
    if given in (401, 403):
        return CheckResult(False, say("The socket's file mode is the only permission check: whoever can connect "
                                      "may do anything. The refusal is about the name, not about you."))
    return CheckResult(False, say("A 4xx is right in spirit: the client asked for something the daemon will not "
                                  "do. Which 4xx means 'conflicts with the current state'?"))


def check_name_conflict(answer, daemon, name: str) -> CheckResult:
    """Exercise: which status does ``daemon`` (a LabDaemon) answer to ``POST /containers/create?name=NAME``
    when a container ``name`` exists? The check sends that request now, by hand."""
    if not_answered(answer):
        return not_answered_yet()
    from teachdock.lab.client_and_daemon.daemon_lab import API, raw_request

    try:
        existing = raw_request(daemon.socket_path, "GET", f"{API}/containers/{name}/json")
        if existing.status == 404:
            return CheckResult(False, say("There is no container named {name} on daemon {daemon}: run the "
                                          "exercise cell from its first line.", name=name, daemon=daemon.name),
                               answered=False)
        second = raw_request(daemon.socket_path, "POST", f"{API}/containers/create?name={name}",
                             body={"Image": "busybox", "Cmd": ["true"]})
        if second.status == 201:          # not expected; leave nothing behind
            raw_request(daemon.socket_path, "DELETE", f"{API}/containers/{second.json()['Id']}?force=1")
    except OSError as error:
        return CheckResult(False, say("Could not reach daemon {daemon} ({error}): is it still running?",
                                      daemon=daemon.name, error=error))
    try:
        message = second.json().get("message", "")
    except ValueError:
        message = second.body.decode(errors="replace")
    return judge_name_conflict(answer, second.status, message)


# --------------------------------------------------------------------------------------------
# Exercise 2: how many calls does a command make?
# --------------------------------------------------------------------------------------------


def _as_count(answer) -> int | None:
    if isinstance(answer, bool):
        return None
    if isinstance(answer, int):
        return answer
    if isinstance(answer, str) and answer.strip().isdigit():
        return int(answer.strip())
    return None


def judge_call_count(answer, calls: list[str], command: str = "the command") -> CheckResult:
    """``calls``: the calls the command really made, as ``"POST /containers/create"`` strings."""
    if not_answered(answer):
        return not_answered_yet()
    n, truth = _as_count(answer), len(calls)
    if n is None:
        return CheckResult(False, say("Answer with a whole number, like 7 (you gave {answer!r}).", answer=answer))
    listing = ", ".join(calls)
    if n == truth:
        return CheckResult(True, say("Right: {count} calls for `{command}`: {listing}. One command is a small "
                                     "conversation; the CLI itself holds no state, the daemon does.",
                                     count=truth, command=command, listing=listing))
    attach = any(call.endswith("/attach") for call in calls)
    if n <= 1:
        return CheckResult(False, say("One command, but not one call: the CLI first makes sure a daemon answers, "
                                      "then creates the container and starts it as separate calls."))
    if n == 2 * truth:
        return CheckResult(False, say("Did you count each answer as a call too? Count requests only: one request "
                                      "and its response make one call."))
    if n == truth - 1 and calls and calls[0].endswith("/_ping"):
        return CheckResult(False, say("Almost. Did you leave out the very first call, HEAD /_ping? The CLI asks "
                                      "it before anything else, to learn the daemon's API version."))
    if n == truth + 1 and not attach:
        return CheckResult(False, say("One too many. Did you count an attach? Nobody reads a detached container's "
                                      "output, so the CLI does not attach."))
    if n > truth and "--rm" in command:
        return CheckResult(False, say("Too many. With --rm the CLI sends no DELETE: AutoRemove in the create body "
                                      "tells the daemon to remove the container when it exits."))
    if n > truth:
        return CheckResult(False, say("Too many. Trace the command yourself with ApiTracer and count the rows."))
    return CheckResult(False, say("Too few. Besides create and start, which calls prepare for the output and "
                                  "the exit status? Trace the command yourself with ApiTracer and count the rows."))


def check_call_count(answer, host: str, args: list[str]) -> CheckResult:
    """Exercise: how many API calls does ``docker ARGS`` make? Runs it through a tracer, now,
    against ``host``, then removes the containers it created."""
    if not_answered(answer):
        return not_answered_yet()
    from teachdock.lab.client_and_daemon.api_tracer import ApiTracer
    from teachdock.lab.client_and_daemon.daemon_lab import API, docker_cli, raw_request, socket_path

    command = "docker " + " ".join(args)
    if not is_root():
        return CheckResult(False, say("This check runs `{command}`, and a container needs root here. Start the lab "
                                      "as root (sudo scripts/lab) to check your answer.", command=command),
                           answered=False)
    if docker_cli() is None:
        return CheckResult(False, say("The docker CLI is not installed here, so the check cannot trace it "
                                      "(apt-get install docker.io)."), answered=False)
    import subprocess
    import tempfile

    try:
        with tempfile.TemporaryDirectory(prefix="check-07-") as directory, ApiTracer(host, directory) as tracer:
            env = {**tracer.env(), "DOCKER_CLI_HINTS": "false", "DOCKER_CONFIG": os.path.join(directory, "config")}
            env.pop("DOCKER_API_VERSION", None)
            subprocess.run([docker_cli(), *args], env=env, capture_output=True, timeout=60,
                           stdin=subprocess.DEVNULL)
            tracer.wait_idle()
            calls = tracer.calls()
            made = [json.loads(e.response_body).get("Id") for e in tracer.entries
                    if e.call == "POST /containers/create" and e.status == 201]
    except Exception as error:  # the check must explain, not crash the exercise cell
        return CheckResult(False, say("Could not trace `{command}` ({kind}: {error}). Is the chapter's daemon "
                                      "still running?", command=command, kind=type(error).__name__, error=error))
    for container in filter(None, made):
        try:
            raw_request(socket_path(host), "DELETE", f"{API}/containers/{container}?force=1", timeout=30)
        except OSError:
            pass
    return judge_call_count(answer, calls, command)


# --------------------------------------------------------------------------------------------
# Exercise 3: DOCKER_HOST for the second daemon
# --------------------------------------------------------------------------------------------


def judge_docker_host(answer, socket: str, other_socket: str, data_root: str = "", exec_root: str = "",
                      default_socket: str = DEFAULT_SOCKET) -> CheckResult:
    """``socket``: the second daemon's socket path; ``other_socket``: the first one's."""
    if not_answered(answer):
        return not_answered_yet()
    if isinstance(answer, os.PathLike):
        answer = os.fspath(answer)
    if not isinstance(answer, str):
        return CheckResult(False, say('Answer with a string like "unix:///some/path.sock" (you gave {answer!r}).',
                                      answer=answer))
    given = answer.strip()
    truth = f"unix://{socket}"
    if given == truth:
        return CheckResult(True, say("Right: {address}. A client knows a daemon only by its address; the same "
                                     "docker binary talks to either daemon depending on DOCKER_HOST (or -H, or a "
                                     "docker context). Each daemon has its own socket, data root and objects.",
                                     address=truth))
    scheme, _, path = given.partition("://") if "://" in given else ("", "", given)
    if given == socket:
        return CheckResult(False, say("That is the right socket, but DOCKER_HOST is an address with a scheme: "
                                      "put unix:// in front (three slashes in all, since the path starts with /)."))
    if scheme == "unix" and path == socket.lstrip("/"):
        return CheckResult(False, say("Almost: after unix:// comes the absolute path, with its own leading /. "
                                      "So there are three slashes: unix:///tmp/…"))
    if scheme in ("tcp", "http", "https"):
        return CheckResult(False, say("{scheme}:// would need the daemon to listen on a TCP port; teachdockd "
                                      "listens only on a Unix socket (TCP without TLS would give root to the "
                                      "network).", scheme=scheme))
    if path in (other_socket, "/" + other_socket.lstrip("/")):
        if not scheme:
            return CheckResult(False, say("That is the *first* daemon's socket. Look at daemon b's socket_path, "
                                          "and put unix:// in front."))
        return CheckResult(False, say("That is the *first* daemon's socket. Look at daemon b's socket_path."))
    if path == default_socket:
        return CheckResult(False, say("{socket} is the default, where a daemon started without -H listens. The "
                                      "chapter's daemons have sockets of their own.", socket=default_socket))
    if data_root and path.rstrip("/") == str(data_root).rstrip("/"):
        return CheckResult(False, say("That is daemon b's data root, a directory of files. A client connects to "
                                      "the daemon's socket, and only the daemon reads the data root."))
    if exec_root and path.rstrip("/") == str(exec_root).rstrip("/"):
        return CheckResult(False, say("That is daemon b's exec root (runtime state). The socket is another file."))
    if scheme and scheme != "unix":
        return CheckResult(False, say("{scheme}:// is not a scheme the docker CLI knows for this. Use unix://.",
                                      scheme=scheme))
    return CheckResult(False, say("{given} is not daemon b's socket. Print b.socket_path, or look at "
                                  "socket_info() of section 3.", given=given))


def check_docker_host(answer, daemon, other) -> CheckResult:
    """Exercise: the DOCKER_HOST that reaches ``daemon`` (a LabDaemon); ``other`` is the
    first daemon, the usual mix-up. When right, the check also pings the daemon through it."""
    if not_answered(answer):
        return not_answered_yet()
    result = judge_docker_host(answer, daemon.socket_path, other.socket_path, str(daemon.data_root),
                               str(daemon.exec_root))
    if result.passed:
        from teachdock.lab.client_and_daemon.daemon_lab import raw_request, socket_path

        try:
            pong = raw_request(socket_path(answer.strip()), "GET", "/_ping", timeout=5)
        except OSError as error:
            return CheckResult(False, say("Right address, but nothing answers there now ({error}): is daemon "
                                          "{daemon} still running?", error=error, daemon=daemon.name))
        result.message += " " + say("(Checked: GET /_ping through it answered {status} {body}.)",
                                    status=pong.status, body=pong.body.decode())
    return result


# --------------------------------------------------------------------------------------------
# Exercise 4: the container's log file on disk
# --------------------------------------------------------------------------------------------


def judge_log_file(answer, container_id: str, data_root: str, exec_root: str = "",
                   other_ids: list[str] | None = None) -> CheckResult:
    """Where the daemon keeps ``container_id``'s log under ``data_root``; existence is not
    looked at here (check_log_file does that)."""
    if not_answered(answer):
        return not_answered_yet()
    if isinstance(answer, os.PathLike):
        answer = os.fspath(answer)
    if not isinstance(answer, str) or not answer.strip():
        return CheckResult(False, say("Answer with a path, as a string or a Path (you gave {answer!r}).",
                                      answer=answer))
    given = Path(answer.strip())
    data_root = Path(data_root)
    record_dir = data_root / "daemon" / "containers" / container_id
    truth = record_dir / f"{container_id}-json.log"
    if given == truth:
        return CheckResult(True, say("Right: …/daemon/containers/{short}…/{short}…-json.log under the data root. "
                                     "One JSON object per line ({{\"log\": …, \"stream\": \"stdout\", \"time\": "
                                     "…}}); `docker logs` reads this file through the daemon. Docker keeps it at "
                                     "/var/lib/docker/containers/<id>/<id>-json.log.", short=container_id[:12]))
    if not given.is_absolute():
        return CheckResult(False, say("Give the whole path, from / : the data root, then the daemon's containers "
                                      "directory, then the container's id."))
    if str(given).startswith("/var/lib/docker"):
        return CheckResult(False, say("That is where Docker's dockerd keeps it. This daemon's data root is "
                                      "{data_root}: the same layout, another root.", data_root=data_root))
    if given == record_dir:
        return CheckResult(False, say("That is the container's directory; the log is one of the files in it."))
    if given == record_dir / "container.json":
        return CheckResult(False, say("container.json is the daemon's record of the container (its configuration "
                                      "and state). The output went to another file beside it."))
    if given.parent == record_dir:
        return CheckResult(False, say("Right directory, wrong file: {name} is not there. The log file is named "
                                      "after the container's full id, with -json.log at the end.", name=given.name))
    for other in other_ids or []:
        if other != container_id and other in str(given):
            return CheckResult(False, say("That is the log of another container ({other}). Use the id of the "
                                          "container the exercise ran.", other=other[:12]))
    if exec_root and str(given).startswith(str(Path(exec_root))):
        return CheckResult(False, say("The exec root holds the runtime's state while the container exists (like "
                                      "/run/runc); it lives in memory and dies with the container. A log must "
                                      "survive both: it is under the data root."))
    if given.parent.name != container_id and container_id.startswith(given.parent.name) and given.parent.name:
        return CheckResult(False, say("The directory is named with the container's full 64-digit id, not the "
                                      "12-digit short form docker ps shows."))
    if str(given).startswith(str(data_root / "containers")):
        return CheckResult(False, say("{directory} holds the containers' root filesystems (overlay upper, work, "
                                      "merged), not the daemon's records. Look under daemon/.",
                                      directory=data_root / "containers"))
    return CheckResult(False, say("Not there. Start from the daemon's data root ({data_root}) and look at "
                                  "disk_map() of section 9.", data_root=data_root))


def check_log_file(answer, container_id: str, daemon, expected_text: str | None = None) -> CheckResult:
    """Exercise: the path of ``container_id``'s log on ``daemon`` (a LabDaemon). When the path
    is right, the check also reads it and looks for ``expected_text``."""
    if not_answered(answer):
        return not_answered_yet()
    container_dir = Path(daemon.data_root) / "daemon" / "containers"
    others = [p.name for p in container_dir.iterdir()] if container_dir.is_dir() else []
    result = judge_log_file(answer, container_id, str(daemon.data_root), str(daemon.exec_root), others)
    if result.passed:
        path = Path(os.fspath(answer).strip())
        if not path.exists():
            return CheckResult(False, say("That is where the log belongs, but the file is not there: was the "
                                          "container removed? Run the exercise's first cell again."))
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if expected_text is not None and not any(expected_text in line.get("log", "") for line in lines):
            return CheckResult(False, say("The file exists but does not hold {expected!r}. Did the container "
                                          "run? Run the exercise's first cell again.", expected=expected_text))
        if lines:
            result.message += " " + say("Its first line: {line}", line=json.dumps(lines[0]))
    return result


__all__ = ["check_call_count", "check_docker_host", "check_log_file", "check_name_conflict", "judge_call_count",
           "judge_docker_host", "judge_log_file", "judge_name_conflict"]
