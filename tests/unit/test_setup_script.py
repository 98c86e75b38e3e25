"""scripts/setup's package list on Debian and Ubuntu (`--print-packages`, no root, nothing installed),
and the scripts' promise that root never needs sudo (a fresh Debian has none)."""

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"


def packages(tmp_path, os_release: str) -> list[str]:
    release = tmp_path / "os-release"
    release.write_text(os_release)
    result = subprocess.run([str(SCRIPTS / "setup"), "--print-packages"], capture_output=True, text=True,
                            env={**os.environ, "TEACHDOCK_OS_RELEASE": str(release)}, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_debian_gets_debians_names(tmp_path):
    names = packages(tmp_path, 'ID=debian\nVERSION_ID="12"\n')
    assert {"linux-image-amd64", "chromium", "busybox-static", "python3", "cloud-init"} <= set(names)
    assert "linux-image-generic" not in names


def test_ubuntu_gets_its_kernel_and_no_chromium_deb(tmp_path):
    names = packages(tmp_path, 'ID=ubuntu\nVERSION_ID="24.04"\n')
    assert "linux-image-generic" in names
    assert "linux-image-amd64" not in names and "chromium" not in names  # chromium is a snap there
    assert len(names) == len(packages(tmp_path, "ID=debian\n")) - 1


def test_print_packages_needs_no_root_and_no_sudo(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "sudo").write_text("#!/bin/sh\necho sudo was called >&2\nexit 99\n")
    (fake / "sudo").chmod(0o755)
    result = subprocess.run([str(SCRIPTS / "setup"), "--print-packages"], capture_output=True, text=True,
                            env={**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}, timeout=30)
    assert result.returncode == 0 and "sudo was called" not in result.stderr


@pytest.mark.parametrize("name", ["setup", "lab", "test", "slides"])
def test_sudo_is_only_called_when_not_root(name):
    """Every command line that runs sudo sits inside `if [[ $EUID -ne 0 ]]; then ... fi`."""
    inside = False
    calls = 0
    for line in (SCRIPTS / name).read_text().splitlines():
        code = line.split("#", 1)[0] if not line.lstrip().startswith("#") else ""
        if re.match(r"if \[\[ \$EUID -ne 0 \]\]; then", code.strip()):
            inside = True
        elif code.strip() == "fi":
            inside = False
        if re.search(r"(^|[;&|]\s*|exec\s+)sudo\s", code.strip()):
            calls += 1
            assert inside, f"scripts/{name} calls sudo outside the not-root branch: {line.strip()}"
    assert calls == 1
