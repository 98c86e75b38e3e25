"""tests/unit must pass for a contributor without root: run it once more, unprivileged.

The suite runs in a new user namespace with no id mapped (``unshare --user``): there
``os.geteuid()`` is 65534, as for ``nobody``, and the process holds no capability on the
host, so every mount, cgroup write or namespace a unit test reached for by mistake would
fail here. (Its files stay readable because the kernel still checks them against our real
uid — which is what lets this run from a clone under /root, where ``nobody`` could not read.)
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1) from util-linux")
def test_the_unit_tests_pass_without_root():
    # A short path of its own: some unit tests bind Unix sockets, whose paths must stay under
    # 108 bytes, and pytest's own tmp_path is already half of that.
    scratch = Path(tempfile.mkdtemp(prefix="td-unpriv-"))
    try:
        scratch.chmod(0o777)  # as uid 65534 we are no one's owner here
        _run_unprivileged(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run_unprivileged(scratch: Path) -> None:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(scratch),
           "TEACHDOCK_STATE_ROOT": str(scratch / "state"), "XDG_RUNTIME_DIR": str(scratch)}
    check = subprocess.run(["unshare", "--user", sys.executable, "-c", "import os; print(os.geteuid())"],
                           capture_output=True, text=True, timeout=60)
    assert check.stdout.strip() == "65534", check.stderr
    done = subprocess.run(["unshare", "--user", sys.executable, "-m", "pytest", "tests/unit", "-q",
                           "-p", "no:cacheprovider", f"--basetemp={scratch / 'pytest'}"],
                          cwd=REPOSITORY, env=env, capture_output=True, text=True, timeout=900)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-2000:]
    assert done.returncode == 0, f"tests/unit without root: {summary}\n{done.stdout[-6000:]}"
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
