"""``teachdock``: one command, docker-like verbs grouped by the layer that does the work.

    teachdock run|ps|logs|images|...   the docker verbs, through the daemon (teachdock.client)
    teachdock image ls|rm|pull|...     docker's management forms of the image verbs, through the daemon
    teachdock store ...                the image store on this machine, without a daemon (cli/store.py)
    teachdock runtime ...              the OCI runtime (runc's verbs): run a bundle (cli/runtime.py)
    teachdock daemon ...               run teachdockd in the foreground (same flags as dockerd)
    teachdock doctor [--room] [--json] [--lang ko]
                                       what this machine offers for the course; --room: can every chapter run

This package is the top layer: it may import every other one. Each group lives in its own
module and is imported only when used, so that starting a container from the shell does
not pay for the rest (``teachdock run`` imports the client and nothing of the runtime or
the image store; ``teachdock runtime run`` imports the runtime and not the client).
"""

from __future__ import annotations

import sys

USAGE = """\
usage: teachdock [-H HOST] [--tlsverify --tlscacert CA --tlscert CERT --tlskey KEY] COMMAND [ARGS...]

A small, real container engine for learning how Docker works.

Through the daemon (teachdockd; HOST from -H, $TEACHDOCK_HOST, the current context,
or unix:///run/teachdock/teachdock.sock; started for you if none answers on a unix
socket, with $TEACHDOCK_DATA_ROOT as its data root, unless TEACHDOCK_AUTOSTART=0;
TLS to a tcp:// HOST as the docker CLI: --tlsverify/$DOCKER_TLS_VERIFY, files from
$DOCKER_CERT_PATH or ~/.docker, or --tls to encrypt without checking the daemon):
  run       create and run a container        ps        list containers
  logs      a container's output              inspect   an object as JSON
  start     start containers                  stop      stop containers
  kill      signal containers                 rm        remove containers
  exec      run a command in a container      wait      wait for containers to stop
  pause     freeze containers (unpause)       restart   stop, then start again
  top       a container's processes           rename    give a container another name
  cp        copy files in or out              port      where its ports are published
  stats     CPU, memory and pids (live)       events    what happens, as it happens
  images    list images                       pull      pull an image from a registry
  rmi       remove images                     tag       name an image
  build     build an image from a Dockerfile  commit    a container's changes as an image
  save      images to a tar archive           load      images from a tar archive
  export    a container's files as a tar      import    a tar of files as an image
  image     the same as docker's `image` group: ls (= images), rm (= rmi), inspect, history,
            pull, tag, build, save, load, import, prune
  network   ls, create, rm                    volume    ls, create, rm
  context   create, ls, use, rm: name daemons system    prune: remove what is not used;
            reset: everything teachdock made on this machine but the base (stops the daemon)
  checkpoint create, ls, rm: a running container's processes saved with CRIU (start --checkpoint)
  info      about the daemon                  version   client and daemon versions

Without a daemon:
  store     the image store on this machine, read and written directly (like containerd's
            `ctr images`): ls, inspect, history, tag, rm, build, pull, push, save, load,
            prune, df, bootstrap busybox
  runtime   run OCI bundles with runc's verbs (run, create, start, state, kill, delete, list)
  daemon    run the daemon, teachdockd (-H unix://PATH --data-root DIR ...), in the foreground
  doctor    check what this machine offers: namespaces, cgroups, overlayfs, busybox;
            --room: can every chapter run here (exit 1 if not), --json for scripts,
            --lang ko: the report in Korean (TEACHDOCK_LANG decides without it)

Run `teachdock COMMAND --help` for the details of one command, and the API calls it makes.
"""

# verb -> the module that has it (imported only when that verb runs)
CLIENT_VERBS = {
    **dict.fromkeys(["run", "ps", "inspect", "logs", "start", "stop", "kill", "rm", "wait", "exec", "pause",
                     "unpause", "restart", "rename", "top", "cp", "port"], "teachdock.client.commands"),
    **dict.fromkeys(["images", "pull", "rmi", "tag", "build", "commit", "save", "load", "image", "export", "import"],
                    "teachdock.client.commands_images"),
    **dict.fromkeys(["info", "version", "events", "stats", "volume", "context", "system"],
                    "teachdock.client.commands_system"),
    "network": "teachdock.client.commands_networks",
    "checkpoint": "teachdock.client.commands_checkpoints",
}
GROUPS = {  # verb groups, each with the one sentence its --help opens with
    "image": "Images through the daemon, as `docker image ...`: `teachdock image ls` is `teachdock images`.\n"
             "(`teachdock store ...` works on this machine's image store directly, without a daemon.)",
    "network": "Networks, through the daemon.",
    "checkpoint": "Checkpoints of running containers, saved and restored with CRIU (dockerd's experimental API).",
    "volume": "Named volumes, through the daemon.",
    "context": "Named daemons to talk to (kept in ~/.teachdock/contexts.json; no daemon needed).",
    "system": "The daemon as a whole (`system reset`: everything teachdock made on this machine, but the base).",
}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    host, tls = None, {}
    while argv and (argv[0].split("=", 1)[0] in _VALUE_FLAGS or argv[0] in ("--tls", "--tlsverify")):
        flag = argv.pop(0)
        if flag in ("--tls", "--tlsverify"):
            tls[flag[2:].replace("tlsverify", "verify")] = True
            continue
        name, _, value = flag.partition("=")
        if not value:
            if not argv:
                print(f"teachdock: {name} needs a value ({_VALUE_FLAGS[name]})", file=sys.stderr)
                return 125
            value = argv.pop(0)
        if name in ("-H", "--host"):
            host = value
        else:
            tls[{"--tlscacert": "ca", "--tlscert": "cert", "--tlskey": "key"}[name]] = value
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "system" and rest[:1] == ["reset"]:  # on this machine itself, not only through the API
        return _system_reset(rest[1:], host, tls)
    if command in CLIENT_VERBS:
        return _client_verb(command, rest, host, tls)
    if host or tls:
        print(f"teachdock: -H and the TLS flags are for the client verbs, not {command!r}", file=sys.stderr)
        return 125
    if command == "runtime":
        from teachdock.cli.runtime import main as runtime_main  # noqa: PLC0415

        return runtime_main(rest)
    if command == "store":
        from teachdock.cli.store import main as store_main  # noqa: PLC0415

        return store_main(rest)
    if command == "daemon":
        from teachdock.daemon.__main__ import main as daemon_main  # noqa: PLC0415

        return daemon_main(rest)
    if command == "doctor":
        from teachdock.cli.doctor import main as doctor_main  # noqa: PLC0415

        try:
            return doctor_main(rest)
        except SystemExit as stop:  # argparse: --help (0) or a flag it refused (2)
            return stop.code if isinstance(stop.code, int) else 2
    if command == "--version":
        from teachdock import __version__  # noqa: PLC0415

        print(f"teachdock {__version__}")
        return 0
    print(f"teachdock: unknown command {command!r}\n\n{USAGE}", file=sys.stderr, end="")
    return 2


# sub-verbs of a client group that the CLI itself runs on this machine (listed in the group's --help)
MACHINE_SUBVERBS = {"system": ["reset"]}

_VALUE_FLAGS = {"-H": "unix:///path/to/sock or tcp://HOST:PORT", "--host": "unix:///path/to/sock or tcp://HOST:PORT",
                "--tlscacert": "a PEM file", "--tlscert": "a PEM file", "--tlskey": "a PEM file"}


def _system_reset(rest: list[str], host: str | None, tls: dict) -> int:
    if tls:
        print("teachdock system reset: works on this machine's data root; the TLS flags are for a remote daemon",
              file=sys.stderr)
        return 125
    from teachdock.cli.reset import main as reset_main  # noqa: PLC0415

    try:
        return reset_main(rest, host)
    except SystemExit as stop:  # argparse: --help (0) or a flag it refused (2)
        return stop.code if isinstance(stop.code, int) else 2


def _client_verb(command: str, rest: list[str], host: str | None, tls: dict) -> int:
    import importlib  # noqa: PLC0415

    module = importlib.import_module(CLIENT_VERBS[command])
    name = command
    if command in GROUPS:
        subverbs = sorted([v.split(" ", 1)[1] for v in module.VERBS if v.startswith(command + " ")]
                          + MACHINE_SUBVERBS.get(command, []))
        if not rest or rest[0] in ("-h", "--help", "help"):
            print(f"usage: teachdock {command} COMMAND\n\n{GROUPS[command]}\n\ncommands: {', '.join(subverbs)}\n\n"
                  f"Run `teachdock {command} COMMAND --help` for one of them.")
            return 0 if rest else 2
        name, rest = f"{command} {rest[0]}", rest[1:]
        if name not in module.VERBS:
            print(f"teachdock {command}: unknown command {name.split(' ', 1)[1]!r}; one of: {', '.join(subverbs)}",
                  file=sys.stderr)
            return 125
    from teachdock.client.commands import dispatch  # noqa: PLC0415

    return dispatch(module.VERBS, name, rest, host, tls)
