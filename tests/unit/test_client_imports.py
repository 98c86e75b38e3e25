"""``teachdock run`` must stay light: the modules it loads are checked, not timed (the
benchmark times it). Anything heavy here costs every container start from the shell."""

import subprocess
import sys

HEAVY = ("rich", "ssl", "teachdock.image", "teachdock.runtime", "teachdock.daemon", "teachdock.lab", "http.client",
         "urllib", "email", "argparse", "subprocess", "dataclasses", "inspect", "asyncio")


def test_the_run_path_imports_nothing_heavy():
    code = ("import sys; from teachdock.cli import main\n"
            "try:\n    main(['run', '--help'])\nexcept SystemExit:\n    pass\n"
            "import teachdock.client.commands\n"
            f"print(sorted(m for m in sys.modules if m.startswith({HEAVY!r})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_importing_the_client_package_does_not_load_autostart():
    code = "import sys, teachdock.client; print('teachdock.client.autostart' in sys.modules, 'subprocess' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "False"]
    code = "from teachdock.client import start_daemon; print(start_daemon.__module__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "teachdock.client.autostart"
