"""Chapter 09's exercises: each ``check_*`` gathers facts from real state (compose's own reading
of the learner's file, a real ``up``, the daemons' containers), and a pure ``judge_*`` turns
them into a CheckResult with a hint for the likely mistake (the judges are unit-tested with
made-up facts).

1. ``check_reach_by_name(text, host)``: a compose file whose client reaches the server by name.
2. ``check_waits_until_healthy(text, host)``: the client starts only once the server is healthy.
3. ``check_scale_prediction(answer, socket, project_dir)``: what ``up -d --scale web=1`` creates
   and removes while three web replicas run.
4. ``check_moved_with_data(source, target)``: the container ``notes`` moved from daemon a to
   daemon b, running, with the file it wrote.

The compose files are read by compose itself (``docker compose config --format json``): its
model of the file, with every short form written out, is what the judges look at. Reading needs
no daemon, so without root (``host=None``) checks 1 and 2 still judge the file, and say that the
run needs root; checks 3 and 4 return ``root_needed()``.
"""

from __future__ import annotations

import json
import re
import secrets
import tempfile
from pathlib import Path

from teachdock.lab.applications.compose_trace import compose, trace_compose, write_project
from teachdock.lab.common.checks import not_answered_yet, CheckResult, as_int, not_answered
from teachdock.lab.common.language import say
from teachdock.lab.common.root import is_root

#: Exercise 1 and 2's server: busybox httpd on port 8080, the page says who answered.
SERVER_COMMAND = ["sh", "-c", "echo hello from the server > /index.html && exec httpd -f -p 8080 -h /"]
#: Exercise 2's server comes up slowly: four seconds before httpd listens.
SLOW_SERVER_COMMAND = ["sh", "-c", "echo hello from the server > /index.html && sleep 4 && exec httpd -f -p 8080 -h /"]
GREETING = "hello from the server"
NOTES = "notes"
NOTES_FILE = "/data/notes.txt"
_ADDRESS = re.compile(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b")
NO_DAEMON = "unix:///nonexistent"  # compose config reads the file only: it never connects


def root_needed() -> CheckResult:
    """Checks 3 and 4 without root: they need the chapter's daemons."""
    return CheckResult(False, say("This check needs root: it runs containers on the chapter's daemons, which "
                                  "need root for their bridges, nftables tables and cgroups. Start the lab as "
                                  "root (sudo scripts/lab) to check your answer."))


def judged_without_a_daemon(facts: dict) -> CheckResult | None:
    """The file passed compose's reading, but there was no daemon to run it on (no root)."""
    if not facts.get("no_daemon"):
        return None
    return CheckResult(False, say("compose reads your file, and it has none of the mistakes its model shows. "
                                  "Whether the client really gets the page needs a run on daemon a, and without "
                                  "root there is no daemon (its bridge, nftables table and cgroups belong to root). "
                                  "Start the lab as root (sudo scripts/lab) to run it."))


def _model(host: str, text: str, directory: Path, project: str) -> tuple[dict | None, str]:
    """Compose's own reading of the file: (the model as JSON, "") or (None, compose's error)."""
    write_project(directory, text)
    done = compose(host, directory, "config", "--format", "json", project=project)
    if done.returncode != 0:
        return None, (done.stderr or done.stdout).strip()
    return json.loads(done.stdout), ""


def _command_text(service: dict) -> str:
    command = service.get("command") or []
    return " ".join(command) if isinstance(command, list) else str(command)


def _networks(service: dict) -> set[str]:
    return set(service.get("networks") or {"default": None})


def _run_and_read(host: str, directory: Path, project: str, service: str, wait: float = 20) -> dict:
    """``up -d``, wait for ``service``'s container to exit, read its logs, then ``down -v``."""
    from teachdock.client import Client  # noqa: PLC0415

    facts: dict = {}
    try:
        up = compose(host, directory, "up", "-d", project=project, timeout=120)
        facts["up_code"], facts["up_output"] = up.returncode, (up.stdout + up.stderr).strip()
        with Client(host, autostart=False) as client:
            found = [summary for summary in client.containers(all=True, filters={
                "label": [f"com.docker.compose.project={project}"]})
                if (summary.get("Labels") or {}).get("com.docker.compose.service") == service]
            if found:
                facts["exit_code"] = _wait(client, found[0]["Id"], wait)
                facts["logs"] = client.logs(found[0]["Id"])
                facts["started"] = client.inspect(found[0]["Id"])["State"].get("StartedAt")
    finally:
        compose(host, directory, "down", "-v", "-t", "1", project=project, timeout=120)
    return facts


def _wait(client, container: str, seconds: float) -> int | None:
    import time  # noqa: PLC0415

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = client.inspect(container)["State"]
        if not state.get("Running") and state.get("Status") != "created":
            return state.get("ExitCode")
        time.sleep(0.3)
    return None


# ------------------------------------------------------------------ 1. reach the server by name


def reach_by_name_facts(text: str, host: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="td09-ex1-") as directory:
        model, error = _model(host or NO_DAEMON, text, Path(directory), "td09-ex1")
        facts = {"error": error, "services": (model or {}).get("services", {})}
        if model is not None and host is None:
            facts["no_daemon"] = True
        elif model is not None and judge_reach_by_name_statically(facts) is None:
            facts.update(_run_and_read(host, Path(directory), "td09-ex1", "client"))
    return facts


def judge_reach_by_name_statically(facts: dict) -> CheckResult | None:
    """The mistakes compose's model already shows; None when the file is worth running."""
    if facts.get("error"):
        return CheckResult(False, say("compose cannot read the file: {error}", error=facts["error"].splitlines()[-1]))
    services = facts.get("services", {})
    for needed in ("server", "client"):
        if needed not in services:
            return CheckResult(False, say("There is no service {needed}: the file needs both services, "
                                          "'server' (given) and 'client' (yours). Found: {found}.",
                                          needed=repr(needed), found=sorted(services)))
    if services["server"].get("command") != SERVER_COMMAND:
        return CheckResult(False, say("Leave the server as it is given (busybox httpd on port 8080): the exercise "
                                      "is the client."))
    command = _command_text(services["client"])
    if _ADDRESS.search(command):
        return CheckResult(False, say("The client's command has an address ({address}). Addresses are handed out "
                                      "at each up; ask for the server by its service name.",
                                      address=_ADDRESS.search(command).group(0)))
    if "server" not in command:
        return CheckResult(False, say("The client's command never names 'server': the name to ask for is the "
                                      "service's name, which the daemon's DNS answers on the project's network."))
    if not _networks(services["client"]) & _networks(services["server"]):
        return CheckResult(False, say("client is on {client} and server on {server}: they share no network, so "
                                      "the name does not resolve. Put them on one network (or leave both on "
                                      "'default').", client=sorted(_networks(services["client"])),
                                      server=sorted(_networks(services["server"]))))
    return None


def judge_reach_by_name(facts: dict) -> CheckResult:
    static = judge_reach_by_name_statically(facts) or judged_without_a_daemon(facts)
    if static is not None:
        return static
    if facts.get("up_code"):
        return CheckResult(False, say("docker compose up failed: {output}",
                                      output=facts.get("up_output", "").splitlines()[-1:]))
    logs = facts.get("logs")
    if logs is None:
        return CheckResult(False, say("compose started no container for 'client'. Did it get a command?"))
    if GREETING in logs:
        return CheckResult(True, say("The client asked for 'server' by name and got: {greeting}. The daemon's "
                                     "DNS at 127.0.0.11 answered the service name with the server's address.",
                                     greeting=repr(GREETING)))
    if "bad address" in logs or "can't resolve" in logs:
        return CheckResult(False, say("The name did not resolve ({line}). Is it exactly 'server', the service's "
                                      "name?", line=logs.strip().splitlines()[-1]))
    if "refused" in logs.lower() or not logs.strip():
        return CheckResult(False, say("The name resolved but nobody answered (connection refused, or no output): "
                                      "the server listens on port 8080, not 80; and the client may have asked "
                                      "before httpd was up: retry a few times (a shell loop), or see exercise 2."))
    if facts.get("exit_code") is None:
        return CheckResult(False, say("The client was still running after 20 s: let it ask once (or a few times) "
                                      "and exit."))
    return CheckResult(False, say("The client ran but did not get the page. Its output: {output}",
                                  output=repr(logs.strip()[-200:])))


def check_reach_by_name(text, host: str | None) -> CheckResult:
    """``host``: daemon a (``unix://…``), or None without root: then compose's reading only."""
    if not_answered(text):
        return not_answered_yet()
    return judge_reach_by_name(reach_by_name_facts(text, host))


# ------------------------------------------------------------------ 2. wait until healthy


def waits_until_healthy_facts(text: str, host: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="td09-ex2-") as directory:
        model, error = _model(host or NO_DAEMON, text, Path(directory), "td09-ex2")
        facts = {"error": error, "services": (model or {}).get("services", {})}
        if model is not None and host is None:
            facts["no_daemon"] = True
        elif model is not None and judge_waits_statically(facts) is None:
            facts.update(_run_and_read(host, Path(directory), "td09-ex2", "client"))
    return facts


def judge_waits_statically(facts: dict) -> CheckResult | None:
    if facts.get("error"):
        return CheckResult(False, say("compose cannot read the file: {error}", error=facts["error"].splitlines()[-1]))
    services = facts.get("services", {})
    if "server" not in services or "client" not in services:
        return CheckResult(False, say("Keep both services, 'server' and 'client'. Found: {found}.",
                                      found=sorted(services)))
    if services["server"].get("command") != SLOW_SERVER_COMMAND:
        return CheckResult(False, say("Leave the server's command as it is given: its slow start is the point."))
    if "sh" in _command_text(services["client"]).split()[:1] and ("sleep" in _command_text(services["client"])
                                                                   or "for " in _command_text(services["client"])):
        return CheckResult(False, say("The client sleeps or loops: that guesses how long the server needs. Let "
                                      "compose wait for the server's health instead, and keep the client's one "
                                      "request."))
    depends = services["client"].get("depends_on") or {}
    if "server" not in depends:
        return CheckResult(False, say("client does not depend on server: compose starts both at once, and the "
                                      "client asks before httpd listens. Add depends_on."))
    condition = depends["server"].get("condition")
    if condition != "service_healthy":
        return CheckResult(False, say("client waits for condition {condition}: that is only 'the server's "
                                      "container has started', 4 s before httpd listens. Use the long form: "
                                      "depends_on: {{server: {{condition: service_healthy}}}}.",
                                      condition=repr(condition)))
    check = services["server"].get("healthcheck") or {}
    test = check.get("test") or []
    if not test or test[0] == "NONE" or check.get("disable"):
        return CheckResult(False, say("service_healthy needs a health check on server (a healthcheck: with a test "
                                      "that passes once httpd answers on port 8080)."))
    if "8080" not in " ".join(test):
        return CheckResult(False, say("The server's health check ({test}) never asks port 8080: it says "
                                      "nothing about whether httpd answers. Ask the server itself, e.g. with nc.",
                                      test=" ".join(test)))
    return None


def judge_waits_until_healthy(facts: dict) -> CheckResult:
    static = judge_waits_statically(facts) or judged_without_a_daemon(facts)
    if static is not None:
        return static
    output = facts.get("up_output", "")
    if facts.get("up_code"):
        if "unhealthy" in output:
            return CheckResult(False, say("compose gave up: the server became unhealthy, so the client never "
                                          "started. Run the health check's command in the server yourself (docker "
                                          "exec) and allow for the 4 s start: more retries, or a start_period."))
        if "no healthcheck" in output.lower() or "healthcheck" in output.lower():
            return CheckResult(False, say("compose could not use the health check: {line}",
                                          line=output.splitlines()[-1]))
        return CheckResult(False, say("docker compose up failed: {output}", output=output.splitlines()[-1:]))
    if GREETING in (facts.get("logs") or ""):
        return CheckResult(True, say("compose held the client back until the server's health check passed, then "
                                     "started it, and its one request got {greeting}.", greeting=repr(GREETING)))
    return CheckResult(False, say("The client started but did not get the page: {output}. Does the health check "
                                  "pass only once httpd really answers?",
                                  output=repr((facts.get("logs") or "")[-200:])))


def check_waits_until_healthy(text, host: str | None) -> CheckResult:
    """``host``: daemon a (``unix://…``), or None without root: then compose's reading only."""
    if not_answered(text):
        return not_answered_yet()
    return judge_waits_until_healthy(waits_until_healthy_facts(text, host))


# ------------------------------------------------------------------ 3. predict what --scale does


def _as_pair(answer) -> tuple[int, int] | None:
    if isinstance(answer, (tuple, list)) and len(answer) == 2:
        first, second = as_int(answer[0]), as_int(answer[1])
        if first is not None and second is not None:
            return first, second
    return None


def judge_scale_prediction(answer, facts: dict) -> CheckResult:
    """``answer``: (containers created, containers removed) by ``up -d --scale web=1`` while three
    web replicas run. ``facts``: created, removed (counted in the trace), left (web containers after)."""
    guess = _as_pair(answer)
    if guess is None:
        return CheckResult(False, say("Answer with two whole numbers: (created, removed)."))
    if facts.get("code"):
        return CheckResult(False, say("up --scale failed here: {output}",
                                      output=facts.get("output", "").splitlines()[-1:]))
    created, removed, left = facts["created"], facts["removed"], facts["left"]
    if guess == (created, removed):
        return CheckResult(True, say("{created} created, {removed} removed: compose listed the project's "
                                     "containers by their labels, kept the replica with the lowest number (its "
                                     "config-hash label still matches the file) and removed the others; {left} web "
                                     "container(s) now.", created=created, removed=removed, left=left))
    if guess[0] > created:
        return CheckResult(False, say("Nothing needs creating ({created} created): compose recreates a container "
                                      "only when its configuration changed, and the com.docker.compose.config-hash "
                                      "label on each one says it did not.", created=created))
    if guess[1] == removed + 1:
        return CheckResult(False, say("One too many removed: scaling to 1 keeps one replica, web-1 (compose "
                                      "removes the highest container-numbers first)."))
    if guess[1] < removed:
        return CheckResult(False, say("Scaling down removes containers ({removed} here), it does not only stop "
                                      "them: a stopped replica would come back at the next up.", removed=removed))
    return CheckResult(False, say("Not quite: count the web replicas before (compose ps web) and after (1). "
                                  "{created} created, {removed} removed is the truth; think about which ones and "
                                  "why.", created=created, removed=removed))


def scale_facts(socket_path: str, project_dir, project: str = "td09", directory=None) -> dict:
    trace = trace_compose(socket_path, project_dir, "up", "-d", "--scale", "web=1", project=project,
                          directory=directory)
    after = compose(f"unix://{socket_path}", project_dir, "ps", "-q", "web", project=project)
    return {"created": trace.count("POST /containers/create"), "removed": trace.count("DELETE /containers/{id}"),
            "left": len(after.stdout.split()), "code": trace.returncode, "output": trace.output, "trace": trace}


def check_scale_prediction(answer, socket_path: str, project_dir, project: str = "td09", directory=None):
    """Runs ``up -d --scale web=1`` through a tracer, then judges (created, removed)."""
    if not_answered(answer):
        return not_answered_yet()
    if not is_root():
        return root_needed()
    return judge_scale_prediction(answer, scale_facts(socket_path, project_dir, project, directory))


# ------------------------------------------------------------------ 4. a container moved, with its data


def start_notes(client, name: str = NOTES) -> str:
    """Exercise 4's container on the source daemon: ``sleep``, and a line with a random word
    written by an exec into its own writable layer (not a volume, not the image). Returns the line."""
    line = f"notes of {secrets.token_hex(4)}"
    try:
        client.remove(name, force=True)
    except Exception:  # noqa: BLE001 — there was none
        pass
    client.run("busybox", ["sleep", "3600"], name=name, detach=True)
    client.exec(name, ["sh", "-c", f"mkdir -p /data && echo '{line}' > {NOTES_FILE}"])
    return line


def _epoch(stamp: str) -> float:
    """An RFC 3339 time as the daemon writes it ("2026-12-07T06:43:42.108484824Z") -> Unix seconds."""
    from datetime import datetime  # noqa: PLC0415

    whole, _, fraction = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(whole + "+00:00").timestamp() + float(f"0.{fraction or 0}")


def moved_facts(source, target, name: str = NOTES) -> dict:
    """What b holds: its images made since ``name`` was created on a (the learner's), and the
    container ``name`` there: running? its command, and the file's content."""
    try:
        since = _epoch(source.inspect(name)["Created"]) - 1
    except Exception:  # noqa: BLE001 — the learner removed it on a, which is allowed: count every image
        since = 0.0
    facts: dict = {"target_images": sorted(tag for image in target.images() if image.get("Created", 0) >= since
                                           for tag in image.get("RepoTags") or [])}
    found = [c for c in target.containers(all=True) if f"/{name}" in c.get("Names", [])]
    facts["exists"] = bool(found)
    if found:
        details = target.inspect(found[0]["Id"])
        facts["running"] = bool(details["State"].get("Running"))
        facts["image"] = details["Config"].get("Image")
        facts["cmd"] = details["Config"].get("Cmd")
        if facts["running"]:
            done = target.exec(found[0]["Id"], ["cat", NOTES_FILE])
            facts["content"] = done.stdout.strip() if done.exit_code == 0 else None
    return facts


def judge_moved_with_data(facts: dict, expected_line: str) -> CheckResult:
    if not facts.get("exists"):
        extra = [tag for tag in facts.get("target_images", []) if tag != "busybox:latest"]
        if extra:
            return CheckResult(False, say("Daemon b has the image {image} now, but no container named 'notes': "
                                          "run one from it, with --name notes (and a command that keeps running).",
                                          image=extra[0]))
        return CheckResult(False, say("Daemon b has no container named 'notes' and no new image: first carry the "
                                      "container's filesystem over (commit + save/load, or export + import)."))
    if not facts.get("running"):
        if not facts.get("cmd"):
            return CheckResult(False, say("'notes' exists on b but is not running: start it. An image made by "
                                          "import has no command of its own: give one yourself (sleep 3600)."))
        if facts["cmd"] != ["sleep", "3600"]:
            return CheckResult(False, say("'notes' exists on b but is not running: start it. Its command is "
                                          "{command}, which ends at once here: give it the command a's container "
                                          "ran (sleep 3600) when you run it.", command=facts["cmd"]))
        return CheckResult(False, say("'notes' exists on b but is not running: start it."))
    if facts.get("content") is None:
        return CheckResult(False, say("'notes' runs on b, but {file} is not in it. It was written into the "
                                      "container's writable layer on a, which is not part of the image busybox: "
                                      "move the container (commit or export it), not the image it came from.",
                                      file=NOTES_FILE))
    if facts["content"] != expected_line:
        return CheckResult(False, say("{file} on b says {content}, not {expected}: the file must come from a's "
                                      "container, not be written again.", file=NOTES_FILE,
                                      content=repr(facts["content"]), expected=repr(expected_line)))
    return CheckResult(True, say("'notes' runs on b with {file} = {expected}. Its files moved; its process did "
                                 "not: the sleep on b is a new process, started from the beginning.",
                                 file=NOTES_FILE, expected=repr(expected_line)))


def check_moved_with_data(source, target, expected_line, name: str = NOTES) -> CheckResult:
    """``source``, ``target``: teachdock.client.Client of daemons a and b."""
    if not_answered(expected_line):
        return not_answered_yet()
    if not is_root():
        return root_needed()
    return judge_moved_with_data(moved_facts(source, target, name), expected_line)


__all__ = ["GREETING", "NOTES", "NOTES_FILE", "SERVER_COMMAND", "SLOW_SERVER_COMMAND", "check_moved_with_data",
           "check_reach_by_name", "check_scale_prediction", "check_waits_until_healthy", "judge_moved_with_data",
           "judge_reach_by_name", "judge_scale_prediction", "judge_waits_until_healthy", "start_notes"]
