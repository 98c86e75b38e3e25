"""Fixtures for the browser tests: JupyterLab serving copies of the notebooks, and Debian's
Chromium driven by python Playwright (recipe A of the project's Jupyter notes).

- ``lab``: one JupyterLab per test module, on 127.0.0.1 and a free port, with a login
  token passed in the environment (``ps`` would show a command-line token). It serves
  COPIES of notebooks/ from a temporary directory: Lab autosaves, and must never write
  outputs into the repository's notebooks. Its settings and workspaces are temporary too,
  so no earlier session's layout, and no "Jupyter news?" toast, gets in the way. The
  kernels it starts inherit ``TEACHDOCK_STATE_ROOT``: every container they make is recorded
  under our own state root, which the tests then check is empty.
- ``chromium``: /usr/bin/chromium, launched by Playwright (no browser download).
- ``open_notebook``: opens a notebook in a new page and waits for its kernel; at the end of
  the test the page is closed and the notebook's kernel shut down.

Why the temporary directory is made with ``tempfile`` and opened to mode 0755 rather than
pytest's ``tmp_path``: a container with a user namespace runs as uid 100000 on the host and
must walk down to its state directory (its /etc/hostname is bind-mounted from there), and
pytest's temporary directories sit under a 0700 directory.

Everything started here is stopped by its own PID or process group, never by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"  # git-ignored, for humans to review
CHROMIUM = Path("/usr/bin/chromium")
#: Headless Chromium on a closed network: no sandbox (we are root), no GPU, and none of the
#: background traffic (updates, sync, QUIC probes) that would only hit a firewall.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

#: JupyterLab user settings: every cell in the DOM (windowing would leave far-away cells
#: unrendered, so locators would not find them), no news or update checks, no autosave.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}


def skip_reason() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root: the notebooks start containers with namespaces and cgroups"
    if not CHROMIUM.exists():
        return f"Debian's Chromium is missing at {CHROMIUM}: apt-get install -y chromium"
    try:
        import playwright.sync_api  # noqa: F401, PLC0415
    except ImportError:
        return "python Playwright is missing: pip install playwright (never `playwright install`: we use /usr/bin/chromium)"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def children_of(pid: int) -> list[int]:
    """PIDs whose parent is ``pid`` (from /proc; a process may vanish while we look)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
            found.append(int(entry))
    return found


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


class Lab:
    """A running JupyterLab: its address, token, directories, and the REST calls the tests need."""

    def __init__(self, base: Path, port: int, token: str):
        self.base = base
        self.root = base / "notebooks"  # what Lab serves: copies of notebooks/
        self.state_root = base / "state"  # TEACHDOCK_STATE_ROOT of every kernel
        self.runtime_dir = base / "jupyter-runtime"  # kernels' connection files
        self.log = base / "lab.log"
        self.url = f"http://127.0.0.1:{port}"
        self.token = token
        self.process: subprocess.Popen | None = None

    def api(self, method: str, path: str, timeout: float = 10):
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def page_url(self, notebook: str) -> str:
        """The notebook in a workspace of its own, so that Lab does not reopen earlier tabs."""
        workspace = Path(notebook).stem.replace("_", "-")
        return f"{self.url}/lab/workspaces/{workspace}/tree/{notebook}?token={self.token}"

    artifacts = ARTIFACTS

    def kernel_pids(self) -> list[int]:
        """Host PIDs of the kernels this Lab started (its children running ipykernel)."""
        if self.process is None:
            return []
        return [pid for pid in children_of(self.process.pid) if "ipykernel_launcher" in cmdline(pid)]

    @staticmethod
    def argv(pid: int) -> list[str]:
        return cmdline(pid)

    def teachdock(self, *args: str) -> subprocess.CompletedProcess:
        """The ``teachdock`` command on this Lab's state root, e.g. ``lab.teachdock("runtime", "list")``."""
        if args[:1] == ("runtime",):
            args = ("runtime", "--root", str(self.state_root), *args[1:])
        return teachdock_cli(*args)

    def shutdown_kernel_of(self, notebook: str) -> None:
        """Delete the notebook's session, which shuts its kernel down."""
        for session in self.api("GET", "/api/sessions"):
            if session.get("path") == notebook:
                self.api("DELETE", f"/api/sessions/{session['id']}", timeout=30)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _start(lab: Lab, **environment: str) -> None:
    """Start JupyterLab on copies of notebooks/; ``environment`` holds extra environment variables for it
    and its kernels (``TEACHDOCK_LANG="ko"``, as ``scripts/lab --lang ko`` sets)."""
    for notebook in sorted(NOTEBOOKS.glob("*.ipynb")):
        shutil.copy2(notebook, lab.root)
    settings = lab.base / "lab-settings"
    for name, values in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = dict(
        os.environ,
        JUPYTER_TOKEN=lab.token,
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(lab.base / "workspaces"),
        # No user-level Jupyter config, data (kernelspecs) or IPython profile from this machine's
        # home directory: the kernel is the venv's python3, the one pytest runs in.
        JUPYTER_CONFIG_DIR=str(lab.base / "jupyter-config"),
        JUPYTER_DATA_DIR=str(lab.base / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(lab.runtime_dir),
        IPYTHONDIR=str(lab.base / "ipython"),
        TEACHDOCK_STATE_ROOT=str(lab.state_root),
        **environment,
    )
    env.pop("JUPYTER_PATH", None)
    port = lab.url.rsplit(":", 1)[1]
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
               f"--ServerApp.root_dir={lab.root}", f"--LabApp.workspaces_dir={lab.base / 'workspaces'}",
               "--LabApp.expose_app_in_browser=True"]
    with open(lab.log, "wb") as log:
        lab.process = subprocess.Popen(command, cwd=lab.root, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while True:
        if lab.process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {lab.process.returncode}:\n{lab.log_tail()}")
        try:
            lab.api("GET", "/api/status", timeout=2)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not answer on {lab.url} within 60 s:\n{lab.log_tail()}") from None
            time.sleep(0.2)


def _stop(lab: Lab) -> list[str]:
    """Stop Lab by its process group, then any kernel that outlived it; return what had to be forced."""
    problems = []
    process = lab.process
    if process is None:
        return problems
    kernels = lab.kernel_pids()  # before Lab goes: afterwards they would be orphans
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # Lab shuts its kernels down on SIGTERM
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            problems.append("JupyterLab ignored SIGTERM for 20 s; killed its process group")
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    with contextlib_suppress_process_gone():
        os.killpg(process.pid, signal.SIGKILL)  # whatever else is left in its group
    deadline = time.monotonic() + 10
    for pid in kernels:  # kernels run in sessions of their own; ours name our runtime dir
        while any(str(lab.runtime_dir) in arg for arg in cmdline(pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        if any(str(lab.runtime_dir) in arg for arg in cmdline(pid)):
            problems.append(f"kernel {pid} outlived JupyterLab; killed")
            with contextlib_suppress_process_gone():
                os.kill(pid, signal.SIGKILL)
    return problems


class contextlib_suppress_process_gone:
    """``with`` block that ignores ProcessLookupError (the process already ended)."""

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        return kind is not None and issubclass(kind, ProcessLookupError)


def _leftover_containers(state_root: Path) -> list[str]:
    return sorted(entry.name for entry in state_root.iterdir() if entry.is_dir()) if state_root.exists() else []


def teachdock_cli(*args: str) -> subprocess.CompletedProcess:
    """Run the ``teachdock`` command of the python that runs pytest (the venv's)."""
    command = [sys.executable, "-c", "import sys; from teachdock.cli import main; sys.exit(main())", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def _delete_containers(state_root: Path, ids: list[str]) -> None:
    for container_id in ids:
        teachdock_cli("runtime", "--root", str(state_root), "delete", "--force", container_id)


@pytest.fixture(scope="module")  # not "session": Lab and Chromium must not idle through the rest of the suite
def lab():
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    base = Path(tempfile.mkdtemp(prefix="teachdock-browser-"))
    base.chmod(0o755)
    lab = Lab(base, free_port(), secrets.token_hex(24))
    for directory in (lab.root, lab.state_root):
        directory.mkdir()
        directory.chmod(0o755)
    try:
        _start(lab)
        yield lab
    finally:
        problems = _stop(lab)
        leftovers = _leftover_containers(lab.state_root)
        _delete_containers(lab.state_root, leftovers)
        shutil.rmtree(base, ignore_errors=True)
        if leftovers:
            problems.append(f"containers left under the state root: {leftovers}")
        assert not problems, "; ".join(problems)


@contextlib.contextmanager
def launched_chromium():
    """Debian's Chromium, driven by Playwright, closed at the end of the block."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - optional dependency

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def chromium(lab):
    with launched_chromium() as browser:
        yield browser


def load_notebook(page, url: str) -> None:
    """Go to a notebook's page and wait until JupyterLab shows it with its session ready."""
    page.goto(url)
    # The first page of a fresh lab loads JupyterLab's whole bundle: on a busy 2-core machine
    # that took over 60 s once (a CI run with other work on the machine). A wait, not a figure.
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                           " && window.jupyterapp.shell.currentWidget.sessionContext", timeout=180_000)
    # The toolbar's indicator says idle while the kernel still starts: wait for the session itself.
    page.evaluate("async () => { const w = window.jupyterapp.shell.currentWidget;"
                  " await w.context.ready; await w.sessionContext.ready; }")


@pytest.fixture
def open_notebook(lab, chromium):
    """``open_notebook("03_cgroups.ipynb")`` -> a Playwright page with the notebook open and its kernel idle."""
    opened = []

    def open_(notebook: str):
        page = chromium.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        page.page_errors = []  # uncaught JavaScript errors, for the test to report
        page.on("pageerror", lambda error: page.page_errors.append(str(error)))
        opened.append((notebook, page))
        load_notebook(page, lab.page_url(notebook))
        from playwright.sync_api import expect  # noqa: PLC0415

        expect(page.locator("#jp-main-statusbar")).to_contain_text("Idle", timeout=60_000)
        return page

    yield open_
    for notebook, page in opened:
        page.close()
        try:
            lab.shutdown_kernel_of(notebook)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # Lab is gone: its own teardown reports what it had to kill
