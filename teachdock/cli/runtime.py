"""``teachdock runtime``: the OCI runtime's command line, with runc's verbs.

    teachdock runtime spec --rootfs rootfs          write a default config.json (like `runc spec`)
    teachdock runtime run --bundle B ID             create + start + wait, in the foreground
    teachdock runtime create --bundle B ID          set up, then wait for `start`
    teachdock runtime start ID / state ID / kill ID [SIGNAL] / delete [--force] ID
    teachdock runtime list / ps ID / cleanup
    teachdock runtime checkpoint --image-path DIR [--leave-running] ID    criu dump (like `runc checkpoint`)
    teachdock runtime restore --image-path DIR --bundle B [-d] ID         criu restore (like `runc restore`)

Because the verbs match runc's, the same bundle can be run with ``runc run --bundle B ID``
to compare the two runtimes. State lives under ``--root`` (default /run/teachdock/runtime,
runc's is /run/runc).

Each verb imports only what it needs (``spec`` no lifecycle, only ``exec`` the exec code):
`teachdock runtime run` is timed against `runc run` (benchmarks/startup.py), and every
module imported is paid for on each container start.
"""

from __future__ import annotations

import signal
import sys

from teachdock.errors import TeachdockError

EPILOG = """\
A bundle is a directory with config.json and a root filesystem. Try:
  teachdock store bootstrap busybox
  mkdir -p /tmp/demo && cd /tmp/demo
  teachdock runtime spec --rootfs /var/lib/teachdock/rootfs/busybox -- sh -c 'echo hello from $(hostname); ps'
  teachdock runtime run --bundle /tmp/demo demo1
The same bundle runs under runc: runc run --bundle /tmp/demo demo1
"""


def _parser():
    import argparse  # noqa: PLC0415 - the common verbs take the short path below (_parse_common)

    parser = argparse.ArgumentParser(
        prog="teachdock runtime", description="Run OCI bundles: teachdock's runc (same verbs, same config.json).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", help="state directory (default: $TEACHDOCK_STATE_ROOT or /run/teachdock/runtime)")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")

    spec = verbs.add_parser("spec", help="write a default config.json into a bundle directory, with the "
                                         "container's own hostname, hosts and resolv.conf beside it")
    spec.add_argument("--bundle", "-b", default=".", help="bundle directory (default: current directory)")
    spec.add_argument("--rootfs", default="rootfs", help="root filesystem, relative to the bundle or absolute")
    spec.add_argument("--hostname", default="teachdock")
    spec.add_argument("--memory", "-m", help="memory limit, e.g. 64m")
    spec.add_argument("--cpus", type=float, help="CPU quota in CPUs, e.g. 0.5")
    spec.add_argument("--pids-limit", type=int, help="most processes the container may have")
    spec.add_argument("--user-namespace", action="store_true", help="map root in the container to host uid 100000")
    spec.add_argument("--writable", action="store_true", help="leave the root filesystem writable")
    spec.add_argument("--seccomp", default="default", metavar="default|unconfined|FILE",
                      help="Docker's default seccomp profile (the default), no filter, or a profile in Docker's "
                           "JSON format (as docker run --security-opt seccomp=FILE)")
    spec.add_argument("args", nargs="*", default=["sh"], help="the program to run and its arguments")

    for name, text in (("run", "create and start a container, wait for it, then delete it"),
                       ("create", "create a container; its program waits for `start`")):
        verb = verbs.add_parser(name, help=text)
        verb.add_argument("--bundle", "-b", default=".", help="bundle directory (default: current directory)")
        verb.add_argument("--pid-file", help="write the container's host PID here")
        if name == "run":
            verb.add_argument("--detach", "-d", action="store_true", help="do not wait; leave it running")
            verb.add_argument("--keep", action="store_true", help="do not delete the container after it exits")
        verb.add_argument("id", help="a name for the container")

    for name, text in (("start", "start a created container's program"), ("state", "print the OCI state as JSON"),
                       ("ps", "list the processes in a container (host PIDs)"),
                       ("pause", "freeze every process of a running container (the freezer cgroup)"),
                       ("resume", "thaw a paused container: its processes run on where they stood")):
        verbs.add_parser(name, help=text).add_argument("id")
    execute = verbs.add_parser("exec", help="run one more program inside a running container (joins its namespaces)")
    execute.add_argument("--env", "-e", action="append", default=[], metavar="KEY=VALUE", help="add to its environment")
    execute.add_argument("--cwd", help="working directory inside the container")
    execute.add_argument("--user", "-u", help="uid[:gid] to run as (default: the container's user)")
    execute.add_argument("id")
    execute.add_argument("args", nargs=argparse.REMAINDER, help="the program and its arguments")
    kill = verbs.add_parser("kill", help="send a signal to the container's PID 1 (default SIGTERM)")
    kill.add_argument("id")
    kill.add_argument("signal", nargs="?", default="SIGTERM", help="name (TERM, SIGKILL) or number")
    delete = verbs.add_parser("delete", help="delete a stopped container (its cgroup and state)")
    delete.add_argument("--force", "-f", action="store_true", help="kill it first if it still runs")
    delete.add_argument("id")
    checkpoint = verbs.add_parser("checkpoint", help="save a running container's processes with criu (it stops "
                                                     "unless --leave-running)")
    checkpoint.add_argument("--image-path", required=True, help="directory for criu's images (made; must be empty)")
    checkpoint.add_argument("--leave-running", action="store_true", help="keep the container running afterwards")
    checkpoint.add_argument("id")
    restore = verbs.add_parser("restore", help="a new container running the processes of a checkpoint")
    restore.add_argument("--image-path", required=True, help="the checkpoint's directory")
    restore.add_argument("--bundle", "-b", default=".", help="bundle directory: rootfs and mounts of the new "
                                                             "container (default: current directory)")
    restore.add_argument("--detach", "-d", action="store_true", help="do not wait; leave it running")
    restore.add_argument("id", help="a name for the new container")
    verbs.add_parser("list", help="list the containers under the state root")
    cleanup = verbs.add_parser("cleanup", help="remove what crashed or forgotten containers left behind")
    cleanup.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    return parser


def _signal_number(text: str) -> int:
    if text.isdigit():
        return int(text)
    name = text.upper()
    name = name if name.startswith("SIG") else f"SIG{name}"
    try:
        return int(getattr(signal.Signals, name))
    except AttributeError:
        raise TeachdockError(f"unknown signal {text!r} (try TERM, KILL, INT, HUP or a number)") from None


#: The flags of the verbs _parse_common understands: {verb: {flag: (attribute, takes a value)}}.
_COMMON_VERBS = {
    "run": {"--bundle": ("bundle", True), "-b": ("bundle", True), "--pid-file": ("pid_file", True),
            "--detach": ("detach", False), "-d": ("detach", False), "--keep": ("keep", False)},
    "create": {"--bundle": ("bundle", True), "-b": ("bundle", True), "--pid-file": ("pid_file", True)},
    "start": {}, "state": {}, "kill": {}, "delete": {"--force": ("force", False), "-f": ("force", False)},
}


def _parse_common(argv: list[str]):
    """The arguments of ``[--root DIR] run|create|start|state|kill|delete [flags] ID`` written
    plainly, or None for anything else (help, exec, spec, an unknown flag, a mistake), which
    argparse then parses and explains.

    Why: importing argparse and building its twelve sub-parsers costs ~15 ms, more than
    half of `runc run`'s whole time; the verbs scripts and benchmarks/startup.py call skip it.
    """
    from types import SimpleNamespace  # noqa: PLC0415 - types is loaded at start-up anyway

    tokens = list(argv)
    root = None
    if len(tokens) >= 2 and tokens[0] == "--root":
        root, tokens = tokens[1], tokens[2:]
    if not tokens or tokens[0] not in _COMMON_VERBS:
        return None
    verb, tokens = tokens[0], tokens[1:]
    flags = _COMMON_VERBS[verb]
    values = {"verb": verb, "root": root, "bundle": ".", "pid_file": None, "detach": False, "keep": False,
              "force": False}
    positional = []
    while tokens:
        token = tokens.pop(0)
        if not token.startswith("-"):
            positional.append(token)
        elif token in flags and flags[token][1] and tokens and not tokens[0].startswith("-"):
            values[flags[token][0]] = tokens.pop(0)
        elif token in flags and not flags[token][1]:
            values[flags[token][0]] = True
        else:
            return None  # --flag=value, -h, an unknown flag...: argparse's business
    wanted = (1, 2) if verb == "kill" else (1, 1)  # kill ID [SIGNAL]
    if not wanted[0] <= len(positional) <= wanted[1]:
        return None
    values["id"] = positional[0]
    if verb == "kill":
        values["signal"] = positional[1] if len(positional) == 2 else "SIGTERM"
    return SimpleNamespace(**values)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    arguments = _parse_common(argv) or _parser().parse_args(argv)
    try:
        return _dispatch(arguments)
    except TeachdockError as error:
        print(f"teachdock runtime: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _dispatch(arguments) -> int:
    if arguments.verb == "spec":
        return _spec(arguments)
    from teachdock.runtime import container as lifecycle  # noqa: PLC0415 - keeps `--help` and `spec` fast

    root = arguments.root
    verb = arguments.verb
    if verb in ("run", "create"):
        detach = verb == "create" or arguments.detach
        created = lifecycle.Container.create(arguments.id, arguments.bundle, state_root=root, detach=detach)
        if arguments.pid_file:
            with open(arguments.pid_file, "w") as f:
                f.write(f"{created.pid}\n")
        if verb == "create":
            return 0
        return _run_foreground(created, detach, arguments.keep)
    if verb == "restore":
        from teachdock.runtime import checkpoint  # noqa: PLC0415
        from teachdock.runtime.spec import load_bundle  # noqa: PLC0415

        config, rootfs = load_bundle(arguments.bundle)
        config["root"]["path"] = str(rootfs)  # criu restore --root wants it absolute
        restored = checkpoint.restore(arguments.id, arguments.image_path, config=config, state_root=root)
        if arguments.detach:
            return 0
        code = restored.wait()
        restored.delete()
        return 255 if code is None else code
    if verb == "list":
        return _list(lifecycle.list_containers(root))
    if verb == "cleanup":
        for line in lifecycle.cleanup(root, dry_run=arguments.dry_run):
            print(line)
        return 0
    container = lifecycle.Container.load(arguments.id, root)
    if verb == "start":
        container.start()
    elif verb == "state":
        import json  # noqa: PLC0415

        print(json.dumps(container.state(), indent=2))
    elif verb == "ps":
        print("PID")
        for pid in container.cgroup.processes():
            print(pid)
    elif verb == "exec":
        from teachdock.runtime.exec_process import exec_in  # noqa: PLC0415

        env = dict(item.partition("=")[::2] for item in arguments.env)
        return exec_in(container, arguments.args, env=env, cwd=arguments.cwd, user=arguments.user).wait()
    elif verb == "checkpoint":
        from teachdock.runtime import checkpoint  # noqa: PLC0415

        checkpoint.checkpoint(container, arguments.image_path, leave_running=arguments.leave_running)
    elif verb == "pause":
        container.pause()
    elif verb == "resume":
        container.resume()
    elif verb == "kill":
        container.kill(_signal_number(arguments.signal))
    elif verb == "delete":
        container.delete(force=arguments.force)
    return 0


def _run_foreground(container, detach: bool, keep: bool) -> int:
    """Start, pass Ctrl-C and friends on to the container, wait, and exit with its code."""
    def forward(number, _frame):
        try:
            container.kill(number)
        except TeachdockError:
            pass

    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(number, forward)
    try:
        container.start()
        if detach:
            return 0
        code = container.wait()
    except BaseException:
        if not keep:
            container.delete(force=True)
        raise
    if not keep:
        container.delete()
    return 255 if code is None else code


def _spec(arguments) -> int:
    from teachdock.runtime.spec import make_spec, write_bundle  # noqa: PLC0415

    namespaces = ("pid", "mount", "uts", "ipc", "network") + (("user",) if arguments.user_namespace else ())
    config = make_spec(arguments.args, arguments.rootfs, hostname=arguments.hostname, memory=arguments.memory,
                       cpus=arguments.cpus, pids_limit=arguments.pids_limit, namespaces=namespaces,
                       readonly=not arguments.writable, etc_directory=arguments.bundle,
                       seccomp=_seccomp_option(arguments.seccomp))
    path = write_bundle(arguments.bundle, config)
    print(f"wrote {path}")
    return 0


def _seccomp_option(value: str):
    """--seccomp default|unconfined|FILE -> make_spec's ``seccomp``."""
    from teachdock.runtime.seccomp_profile import parse_profile  # noqa: PLC0415

    if value in ("default", "unconfined"):
        return value
    try:
        text = open(value).read()
    except OSError as error:
        raise TeachdockError(f"--seccomp {value}: cannot read the profile: {error.strerror}") from None
    return parse_profile(text)


def _list(states: list[dict]) -> int:
    rows = [(s["id"], str(s.get("pid") or ""), s["status"], s.get("bundle") or s.get("rootfs", ""), s.get("created", "")[:19])
            for s in states]
    header = ("ID", "PID", "STATUS", "BUNDLE", "CREATED")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0
