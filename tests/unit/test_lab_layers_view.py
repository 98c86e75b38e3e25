"""The layer viewer, its plots and the chapter 05 judges, on a hand-made image store (no root,
no container): layer tarballs written in memory, so every kind of change is known exactly."""

import io
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from teachdock.image.digest import sha256_digest
from teachdock.image.manifest import OCI_LAYER
from teachdock.image.store import ImageStore
from teachdock.lab.images import checks as image_checks
from teachdock.lab.images.layers_view import (
    ADDED,
    CHANGED,
    EMPTIED,
    REMOVED,
    LayerViewer,
    classify,
    image_names,
    overlay_options,
    plot_layer_sizes,
    plot_sharing,
    steps_table,
)
from tests.support.korean import reads_korean


def tar_of(*entries) -> bytes:
    """entries: ("dir", name) | ("file", name, bytes) | ("link", name, target)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, *rest in entries:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, rest[0]
                tar.addfile(info)
            else:
                data = rest[0] if rest else b""
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def members(data: bytes):
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


BASE = tar_of(("dir", "bin"), ("file", "bin/busybox", b"x" * 100), ("link", "bin/ls", "busybox"),
              ("link", "bin/vi", "busybox"), ("dir", "etc"), ("file", "etc/passwd", b"root\n"),
              ("dir", "etc/x"), ("file", "etc/x/a", b"a"))
TOP = tar_of(("dir", "bin"), ("file", "bin/.wh.vi"), ("dir", "etc"), ("file", "etc/passwd", b"root\nme\n"),
             ("dir", "etc/x"), ("file", "etc/x/.wh..wh..opq"), ("file", "etc/x/b", b"b"),
             ("file", "./hello.txt", b"hello\n"), ("file", ".hidden", b"h"))


def test_a_layer_adds_changes_and_removes_against_the_layers_below():
    below: set[str] = set()
    base = classify(members(BASE), below)
    assert {c.kind for c in base} == {ADDED} and len(base) == 8
    top = [(c.kind, c.path) for c in classify(members(TOP), below)]
    assert top == [(REMOVED, "/bin/vi"), (CHANGED, "/etc/passwd"), (EMPTIED, "/etc/x"), (ADDED, "/etc/x/b"),
                   (ADDED, "/hello.txt"), (ADDED, "/.hidden")]
    # directories that only lead to a change are not listed; the tree below is updated
    assert "/bin/vi" not in below and "/etc/x/a" not in below and "/etc/x/b" in below and "/bin/ls" in below


def test_a_whiteout_is_described_by_its_tar_name_and_a_link_by_its_target():
    below: set[str] = set()
    described = {c.path: c.what for c in classify(members(BASE), below)}
    assert described["/bin/ls"] == "symlink -> busybox" and described["/bin"] == "directory"
    assert described["/bin/busybox"] == "file, 100B"
    assert classify(members(TOP), below)[0].what == "whiteout .wh.vi"


def add_image(store, name, layers, history):
    descriptors = [store.put_blob(data, media_type=OCI_LAYER) for data in layers]
    config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
              "rootfs": {"type": "layers", "diff_ids": [sha256_digest(data) for data in layers]},
              "history": history}
    return store.add_image(config, descriptors, [name])


@pytest.fixture
def images(tmp_path):
    store = ImageStore(tmp_path / "images")
    add_image(store, "base:1", [BASE], [{"created_by": "import base"},
                                        {"created_by": "CMD [\"sh\"]", "empty_layer": True}])
    add_image(store, "top:1", [BASE, TOP], [{"created_by": "import base"},
                                            {"created_by": "CMD [\"sh\"]", "empty_layer": True},
                                            {"created_by": "RUN change things"}])
    return SimpleNamespace(store=store, get=store.resolve, list=store.list_images)


def test_the_viewer_lists_images_and_shows_the_top_layer_first(images):
    viewer = LayerViewer(images)
    assert list(viewer.image.options) == ["base:1", "top:1"] == image_names(images)
    viewer.image.value = "top:1"
    assert [info.created_by for info in viewer.layers] == ["import base", "RUN change things"]
    assert viewer.layer.value == 2 and (REMOVED, "/bin/vi", "whiteout .wh.vi") in viewer.rows
    assert "RUN change things" in viewer.summary.value and "/etc/x/b" in viewer.table.value
    viewer.layer.value = 1
    assert len(viewer.rows) == 8 and {row[0] for row in viewer.rows} == {ADDED}


def test_the_viewer_counts_per_layer_and_refresh_finds_new_images(images):
    viewer = LayerViewer(images, "top:1")
    top = viewer.layers[-1]
    assert (top.count(ADDED), top.count(CHANGED), top.count(REMOVED), top.count(EMPTIED)) == (3, 1, 1, 1)
    add_image(images.store, "later:1", [BASE], [{"created_by": "import base"}])
    assert "later:1" not in viewer.image.options
    viewer.refresh()
    assert "later:1" in viewer.image.options and viewer.image.value == "top:1"


def test_history_that_does_not_match_the_layers_leaves_created_by_empty(images):
    add_image(images.store, "odd:1", [BASE, TOP], [{"created_by": "only one line"}])
    viewer = LayerViewer(images, "odd:1")
    assert [info.created_by for info in viewer.layers] == ["", ""] and len(viewer.rows) == 6


def test_plots_are_figures(images):
    fig = plot_layer_sizes(images, ["base:1", "top:1"])
    assert fig.axes[0].get_xticklabels()[1].get_text() == "top:1"
    points = [{"n": 1, "on_disk": 10, "full_copies": 10, "saved": 0},
              {"n": 2, "on_disk": 11, "full_copies": 20, "saved": 9}]
    assert plot_sharing(points).axes[0].get_legend() is not None


def test_steps_table_marks_cache_hits():
    steps = [SimpleNamespace(number=1, instruction="FROM busybox", cached=False, diff_id=None, seconds=0.0),
             SimpleNamespace(number=2, instruction="RUN true", cached=True, diff_id="sha256:" + "ab" * 32,
                             seconds=0.001)]
    table = steps_table(SimpleNamespace(steps=steps))
    assert "Using cache" in repr(table) and "abababababab" in repr(table) and "(config only)" in repr(table)
    assert "#e3f4e8" in table._repr_html_()


def test_overlay_options_of_a_path_that_is_no_overlay():
    with pytest.raises(LookupError, match="no overlay is mounted"):
        overlay_options("/nonexistent/merged")


# ---- the judges: every likely mistake gets its own hint --------------------------------------

# The layers DOCKERFILE_1 adds, as measured on a test machine: the random file gzipped, a whiteout.
ADDED_SIZES = [200_313, 141]


def test_deleted_file_cost_judge_right_answers():
    judge = image_checks.judge_deleted_file_cost
    for answer in (200, "200", 180, 230.5):
        result = judge(answer, ADDED_SIZES)
        assert result.passed, answer
    assert "whiteout, .wh.big.bin (141 bytes)" in judge(200, ADDED_SIZES).message


@pytest.mark.parametrize("answer, hint", [
    (0, "rm cannot take the file out of the layer below"),
    (1, "rm cannot take the file out of the layer below"),
    (400, "holds no copy of the file"),
    (50, "random bytes do not compress"),
    (200_000, "did you answer in bytes"),
    (280, "Not quite"),
    ("lots", "Answer with a number of kB"),
    (-3, "Answer with a number of kB"),
])
def test_deleted_file_cost_judge_names_each_mistake(answer, hint):
    result = image_checks.judge_deleted_file_cost(answer, ADDED_SIZES)
    assert not result.passed and hint in result.message, result.message


def test_deleted_file_cost_check_builds_the_dockerfile(images, monkeypatch):
    built = []

    def build(context):
        built.append((Path(context) / "Dockerfile").read_text())
        layers = images.get("base:1").layers + [SimpleNamespace(size=size) for size in ADDED_SIZES]
        return SimpleNamespace(image=SimpleNamespace(layers=layers))

    monkeypatch.setattr(images, "build", build, raising=False)
    assert image_checks.check_deleted_file_cost(200, images).passed is False  # busybox:latest is not in this store
    monkeypatch.setattr(images, "get", lambda name: images.store.resolve("base:1" if name == "busybox:latest" else name))
    assert image_checks.check_deleted_file_cost(200, images).passed
    assert not image_checks.check_deleted_file_cost(0, images).passed
    assert built and built[-1] == image_checks.DOCKERFILE_1 and "rm /big.bin" in built[-1]


def test_deletion_marker_judge():
    judge = image_checks.judge_deletion_marker
    markers = {"bin": "dir", "bin/vi": "whiteout"}
    upper = "/data/containers/x/upper"
    assert judge("bin/vi", "/bin/vi", markers, upper).passed
    assert judge(f"{upper}/bin/vi", "/bin/vi", markers, upper).passed
    assert "tarball" in judge("bin/.wh.vi", "/bin/vi", markers, upper).message
    assert "read-only" in judge("/data/snapshots/abc/bin/vi", "/bin/vi", markers, upper).message
    assert "Nothing is at" in judge("etc/vi", "/bin/vi", markers, upper).message
    assert "path" in judge(3, "/bin/vi", markers, upper).message


def test_top_layer_judge():
    judge = image_checks.judge_top_layer
    good = [("base", [(ADDED, "/bin")]), ("COPY hello.txt /hello.txt", [(ADDED, "/hello.txt")])]
    assert judge("x", good, "/hello.txt", b"hello\n", b"hello\n").passed
    assert "holds" in judge("x", good, "/hello.txt", b"bye\n", b"hello\n").message
    late_run = good + [("RUN wc -c /hello.txt", [(ADDED, "/size.txt")])]
    assert "Layer 2 adds" in judge("x", late_run, "/hello.txt", None, b"hello\n").message
    removed = good + [("RUN rm /hello.txt", [(REMOVED, "/hello.txt")])]
    assert "removes" in judge("x", removed, "/hello.txt", None, b"hello\n").message
    assert "No layer adds" in judge("x", good[:1], "/hello.txt", None, b"hello\n").message


def test_first_cache_miss_judge():
    judge = image_checks.judge_first_cache_miss
    assert judge(3, 3, 3, 5).passed
    assert "FROM" in judge(1, 3, 3, 5).message
    assert "does not read" in judge(2, 3, 3, 5).message
    assert "not the first" in judge(5, 3, 3, 5).message
    assert "earlier step" in judge(4, 3, 3, 5).message


def test_checks_answer_a_placeholder_and_a_missing_image_without_work(images):
    assert not image_checks.check_deleted_file_cost(..., images).answered
    assert not image_checks.check_deletion_marker(..., images).answered
    assert not image_checks.check_first_cache_miss(..., images).answered
    assert "no image 'nope:1'" in image_checks.check_top_layer_adds("nope:1", images).message.replace('"', "'")


def test_a_huge_layer_shows_part_of_its_table_but_every_row_in_rows(images, monkeypatch):
    monkeypatch.setattr("teachdock.lab.images.layers_view.MAX_TABLE_ROWS", 3)
    viewer = LayerViewer(images, "base:1")
    assert len(viewer.rows) == 8 and "and 5 more" in viewer.table.value
    assert viewer.table.value.count("<tr") == 4  # the header and three rows


# ---- in Korean (TEACHDOCK_LANG=ko): the verdicts, the viewer and the steps table ---------------------


def test_the_images_judges_speak_korean(korean):
    deleted = image_checks.judge_deleted_file_cost
    marker = image_checks.judge_deletion_marker
    markers, upper = {"bin": "dir", "bin/vi": "whiteout"}, "/data/containers/x/upper"
    results = [deleted(200, ADDED_SIZES), deleted(0, ADDED_SIZES), deleted(200_000, ADDED_SIZES),
               marker("bin/vi", "/bin/vi", markers, upper), marker("bin/.wh.vi", "/bin/vi", markers, upper),
               marker("etc/vi", "/bin/vi", markers, upper), image_checks.judge_first_cache_miss(3, 3, 3, 5),
               image_checks.judge_first_cache_miss(1, 3, 3, 5), image_checks.judge_first_cache_miss(5, 3, 3, 5)]
    for result in results:
        assert reads_korean(result.message), result.message
    assert results[0].passed and "200313" in results[0].message and not results[1].passed


def test_the_viewer_and_the_steps_table_speak_korean(korean, images):
    viewer = LayerViewer(images, "top:1")
    assert viewer.image.description == "이미지" and "레이어 2개, 베이스부터" in viewer.summary.value
    assert "화이트아웃 .wh.vi" in viewer.table.value and "삭제" in viewer.table.value
    assert (REMOVED, "/bin/vi", "whiteout .wh.vi") in viewer.rows  # the data stays English: code compares it
    steps = [SimpleNamespace(number=2, instruction="RUN true", cached=True, diff_id=None, seconds=0.001)]
    table = steps_table(SimpleNamespace(steps=steps))
    assert "캐시 사용" in repr(table) and "(설정만)" in repr(table) and "#e3f4e8" in table._repr_html_()
    assert plot_layer_sizes(images, ["base:1"]).axes[0].get_ylabel() == "저장소의 kB (gzip 블롭)"
