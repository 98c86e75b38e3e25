"""Every chapter runs top to bottom for a learner without root, under nbval.

The notebook is copied into a scratch directory owned by ``nobody`` (as a learner's own clone
would be theirs) and run there by pytest/nbval as ``nobody`` (setpriv), with the repository's
Python environment. A cell that needs root must print its one sentence and go on; anything
that raises fails the chapter here. Cells tagged ``raises-exception`` may still raise, as for root.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPOSITORY / "notebooks").glob("*.ipynb"))
#: One Korean chapter too, in Korean (TEACHDOCK_LANG=ko): its code is an English chapter's, but
#: every needs-root cell's sentence now comes from the Korean catalogue. 08 has the most (29).
KOREAN_SAMPLE = REPOSITORY / "notebooks" / "ko" / "08_networks.ipynb"
NOBODY = 65534

pytestmark = [pytest.mark.root, pytest.mark.slow]  # root, to become nobody


@pytest.fixture
def scratch():
    # Short and world-searchable: nobody must reach it, and Unix socket paths stay short.
    path = Path(tempfile.mkdtemp(prefix="td-learner-"))
    path.chmod(0o755)
    os.chown(path, NOBODY, NOBODY)
    try:
        yield path
    finally:
        _end_what_nobody_left(path)
        shutil.rmtree(path, ignore_errors=True)


def _end_what_nobody_left(path: Path) -> None:
    """Kernels that outlived a failed run: only processes of nobody whose cwd is our scratch dir."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == NOBODY and os.readlink(entry / "cwd").startswith(str(path)):
                os.kill(int(entry.name), 9)
        except OSError:
            continue


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is needed to become nobody")
@pytest.mark.parametrize("notebook", [*NOTEBOOKS, KOREAN_SAMPLE],
                         ids=lambda path: path.stem if path.parent.name == "notebooks" else f"ko-{path.stem}")
def test_the_chapter_runs_without_root(notebook, scratch):
    copy = scratch / notebook.name
    shutil.copy(notebook, copy)
    os.chown(copy, NOBODY, NOBODY)
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(scratch),
           "XDG_RUNTIME_DIR": str(scratch), "PYTHONPATH": str(REPOSITORY), "PYTHONDONTWRITEBYTECODE": "1",
           "MPLBACKEND": "agg", "LANG": "C.UTF-8", "TEACHDOCK_LANG": "ko" if notebook == KOREAN_SAMPLE else "en"}
    done = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
         sys.executable, "-m", "pytest", "-c", "/dev/null", "--rootdir", str(scratch), "-p", "no:cacheprovider",
         "--nbval-lax", "--nbval-current-env", "--nbval-cell-timeout=180", "-q", copy.name],
        cwd=scratch, env=env, capture_output=True, text=True, timeout=1800)
    lines = done.stdout.strip().splitlines()
    summary = lines[-1] if lines else done.stderr[-2000:]
    assert done.returncode == 0, f"{notebook.name} as nobody: {summary}\n{done.stdout[-8000:]}\n{done.stderr[-2000:]}"
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
