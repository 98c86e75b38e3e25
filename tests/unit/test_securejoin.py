"""secure_join: every lookup stays inside the root, whatever links the tree holds.

Each test builds a small tree with hostile symlinks under tmp_path/root and checks the
exact host path returned: always ``root`` itself or below it.
"""

import os

import pytest

from teachdock.runtime.securejoin import MAX_SYMLINKS, SymlinkLoop, secure_join


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (root / "usr" / "bin").mkdir(parents=True)
    return str(root)


def link(root, name, target):
    path = os.path.join(root, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(target, path)


@pytest.mark.parametrize("path", ["etc/passwd", "/etc/passwd", "//etc//./passwd", "./etc/passwd/"])
def test_plain_paths_absolute_or_relative_join_under_the_root(root, path):
    assert secure_join(root, path) == root + "/etc/passwd"


@pytest.mark.parametrize("path", ["", "/", ".", "..", "/../../..", "etc/../.."])
def test_the_root_itself(root, path):
    assert secure_join(root, path) == root


@pytest.mark.parametrize("path, expected", [
    ("../../etc/passwd", "/etc/passwd"),
    ("usr/../../../usr/bin", "/usr/bin"),
    ("usr/bin/../../etc", "/etc"),
    ("/a/b/c/../../../../../x", "/x"),
])
def test_dotdot_chains_stop_at_the_root(root, path, expected):
    assert secure_join(root, path) == root + expected


def test_an_absolute_link_pointing_out_restarts_at_the_root(root, tmp_path):
    link(root, "abs", str(tmp_path))                     # a real host directory
    link(root, "etcl", "/etc")
    assert secure_join(root, "abs/pwned") == root + str(tmp_path) + "/pwned"
    assert secure_join(root, "etcl/passwd") == root + "/etc/passwd"


def test_a_relative_link_pointing_out_stops_at_the_root(root):
    link(root, "usr/bin/up", "../../../../../../../etc")
    link(root, "rootlink", "..")
    assert secure_join(root, "usr/bin/up/passwd") == root + "/etc/passwd"
    assert secure_join(root, "rootlink/rootlink/etc") == root + "/etc"


def test_a_relative_link_continues_from_its_own_directory(root):
    link(root, "bin", "usr/bin")                         # merged /usr, like Debian
    link(root, "usr/bin/sh", "busybox")
    assert secure_join(root, "/bin/sh") == root + "/usr/bin/busybox"
    assert secure_join(root, "/bin/../etc") == root + "/usr/etc"   # '..' after the link: the link's parent


def test_links_through_links(root):
    link(root, "a", "b/c")
    link(root, "b", "/usr")
    link(root, "usr/c", "../etc/")
    assert secure_join(root, "a/passwd") == root + "/etc/passwd"


def test_the_final_component_is_followed_by_default(root):
    link(root, "pw", "/etc/passwd")
    link(root, "out", "/../../../etc/shadow")
    assert secure_join(root, "pw") == root + "/etc/passwd"
    assert secure_join(root, "out") == root + "/etc/shadow"


def test_follow_final_false_keeps_a_final_link_but_follows_the_ones_before(root):
    link(root, "etcl", "/etc")
    link(root, "etc/pw", "/etc/passwd")
    assert secure_join(root, "etcl/pw", follow_final=False) == root + "/etc/pw"
    assert secure_join(root, "etcl", follow_final=False) == root + "/etcl"
    assert secure_join(root, "etcl/.", follow_final=False) == root + "/etc"       # link/. is the directory
    assert secure_join(root, "/..", follow_final=False) == root                    # never the root's parent
    assert secure_join(root, "etcl/..", follow_final=False) == root


def test_missing_components_are_kept_and_later_links_still_followed(root):
    link(root, "etc/l", "/usr")
    assert secure_join(root, "new/dir/file") == root + "/new/dir/file"
    assert secure_join(root, "etc/l/new") == root + "/usr/new"
    assert secure_join(root, "new/../etc/l") == root + "/usr"
    assert secure_join(root, "etc/passwd/below") == root + "/etc/passwd/below"   # below a file: ENOTDIR
    link(root, "dangling", "/nowhere/x")
    assert secure_join(root, "dangling/y") == root + "/nowhere/x/y"


@pytest.mark.parametrize("follow_final", [True, False])
def test_a_symlink_loop_is_refused(root, follow_final):
    link(root, "a", "b")
    link(root, "b", "/a")
    link(root, "self", "self")
    for path in ("a/x", "self/x"):
        with pytest.raises(SymlinkLoop, match="too many levels of symbolic links"):
            secure_join(root, path, follow_final=follow_final)
    assert secure_join(root, "a", follow_final=False) == root + "/a"


def test_a_long_chain_under_the_kernel_limit_is_not_a_loop(root):
    for i in range(MAX_SYMLINKS):
        link(root, f"l{i}", f"l{i + 1}")
    os.mkdir(os.path.join(root, f"l{MAX_SYMLINKS}"))
    assert secure_join(root, "l0/x") == root + f"/l{MAX_SYMLINKS}/x"
    os.rmdir(os.path.join(root, f"l{MAX_SYMLINKS}"))
    link(root, f"l{MAX_SYMLINKS}", "etc")                 # one link more than the kernel follows
    with pytest.raises(SymlinkLoop):
        secure_join(root, "l0/x")


def test_a_symlink_loop_is_an_invalid_config_for_the_daemon(root):
    from teachdock.errors import InvalidConfig
    link(root, "self", "self")
    with pytest.raises(InvalidConfig) as raised:
        secure_join(root, "self")
    assert raised.value.status == 400
