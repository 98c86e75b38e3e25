"""The ``teachdock`` command's groups: which ones talk to the daemon, and what each imports."""

import subprocess
import sys

from teachdock.cli import main
from teachdock.client.commands_images import IMAGE_GROUP, VERBS


def test_image_group_is_the_daemon_verbs_under_docker_management_names(capsys):
    for sub, verb in IMAGE_GROUP.items():
        assert VERBS[f"image {sub}"][1] is VERBS[verb][1]          # `image ls` runs what `images` runs
    assert main(["image", "--help"]) == 0
    text = capsys.readouterr().out
    assert "through the daemon" in text and "`teachdock store" in text and "without a daemon" in text
    assert "ls, prune, pull, rm" in text
    assert main(["image", "ls", "--help"]) == 0
    assert "The same as `teachdock images`" in capsys.readouterr().out


def test_bootstrap_lives_only_in_the_daemonless_store(capsys):
    assert main(["image", "bootstrap", "busybox"]) == 125
    assert "unknown command 'bootstrap'" in capsys.readouterr().err
    try:
        main(["store", "--help"])
    except SystemExit as done:
        assert done.code == 0
    text = capsys.readouterr().out
    assert "usage: teachdock store" in text and "without a daemon" in text and "bootstrap" in text


def loaded_after(argv: list[str]) -> str:
    code = ("import sys; from teachdock.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith(('teachdock', 'argparse'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_each_group_imports_only_its_own_layer():
    runtime_help = loaded_after(["runtime", "--help"])
    assert "teachdock.runtime" not in runtime_help and "teachdock.client" not in runtime_help
    store_help = loaded_after(["store", "--help"])
    assert "teachdock.image.store" not in store_help and "teachdock.runtime" not in store_help
    assert "argparse" not in loaded_after(["image", "ls", "--help"])
