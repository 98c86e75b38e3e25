"""Chapter 05's lab pieces on real images: a build with whiteouts and an opaque directory seen
in the layer viewer, an overlay mount's options, disk sharing measured with real snapshots, and
each exercise check against the kernel, with the right answer and with the usual mistake."""

import pytest

from teachdock.image.overlay import mount_points
from teachdock.lab.images import checks as image_checks
from teachdock.lab.images.layers_view import LayerViewer, overlay_options, sharing_curve

pytestmark = [pytest.mark.root]

DOCKERFILE = """\
FROM busybox
RUN rm /bin/vi && mkdir /data && echo a > /data/a
RUN rm -rf /data && mkdir /data && echo b > /data/b
COPY hello.txt /hello.txt
CMD ["cat", "/hello.txt"]
"""


def test_the_viewer_shows_what_each_built_layer_adds_and_removes(data_roots, context):
    images = data_roots()
    images.build(context(Dockerfile=DOCKERFILE, **{"hello.txt": "hello\n"}), tags=["viewed:1"])
    viewer = LayerViewer(images)
    viewer.image.value = "viewed:1"
    assert len(viewer.layers) == 4 and viewer.layer.value == 4
    assert [row[:2] for row in viewer.rows] == [("added", "/hello.txt")]
    viewer.layer.value = 2
    assert ("removed", "/bin/vi") in [row[:2] for row in viewer.rows]
    assert ("added", "/data/a") in [row[:2] for row in viewer.rows]
    viewer.layer.value = 3
    kinds = [row[:2] for row in viewer.rows]
    assert ("added", "/data/b") in kinds
    # rm -rf + mkdir of a directory from a lower layer: overlayfs marks the new one opaque
    assert ("emptied", "/data") in kinds and ("removed", "/data/a") not in kinds
    viewer.layer.value = 1
    assert ("added", "/bin/busybox") in [row[:2] for row in viewer.rows]


def test_overlay_options_name_the_layers_top_first(data_roots, context):
    images = data_roots()
    images.build(context(Dockerfile=DOCKERFILE, **{"hello.txt": "hello\n"}), tags=["viewed:1"])
    snapshot = images.prepare("viewed:1", "look")
    try:
        options = overlay_options(snapshot.rootfs)
        assert options["lowerdir"] == [str(p) for p in snapshot.lowers] and len(options["lowerdir"]) == 4
        assert options["upperdir"] == str(snapshot.upper) and options["workdir"] == str(snapshot.work)
    finally:
        images.release("look")


def test_sharing_curve_measures_and_releases_every_snapshot(data_roots):
    images = data_roots()
    points = sharing_curve(images, "busybox:latest", (1, 3), prefix="share")
    assert [p["n"] for p in points] == [1, 3]
    assert points[1]["full_copies"] >= 3 * points[0]["on_disk"] * 0.99
    assert points[1]["on_disk"] < 1.2 * points[0]["on_disk"] and points[1]["saved"] > 0
    assert not images.snapshots.list()
    assert not [p for p in mount_points() if p.startswith(f"{images.data_root}/")]


def test_deleted_file_cost_check_builds_and_measures(data_roots):
    images = data_roots()
    assert image_checks.check_deleted_file_cost(200, images).passed
    assert "rm cannot take the file out" in image_checks.check_deleted_file_cost(0, images).message


def test_deletion_marker_check_looks_in_a_real_upper_dir(data_roots):
    images = data_roots()
    assert image_checks.check_deletion_marker("bin/vi", images).passed
    assert "tarball" in image_checks.check_deletion_marker("bin/.wh.vi", images).message
    assert not images.snapshots.list()


def test_top_layer_check_reads_the_built_top_layer(data_roots, context):
    images = data_roots()
    good = "FROM busybox\nRUN echo built > /built.txt\nCOPY hello.txt /hello.txt\nCMD [\"cat\", \"/hello.txt\"]\n"
    images.build(context(Dockerfile=good, **{"hello.txt": "hello\n"}), tags=["ex3:latest"])
    assert image_checks.check_top_layer_adds("ex3:latest", images).passed
    late = good.replace("CMD", "RUN wc -c /hello.txt > /size.txt\nCMD")
    images.build(context(Dockerfile=late), tags=["ex3:late"])
    assert "not the top layer" in image_checks.check_top_layer_adds("ex3:late", images).message


def test_first_cache_miss_check_builds_twice(data_roots):
    images = data_roots()
    assert image_checks.check_first_cache_miss(3, images).passed
    assert "does not read" in image_checks.check_first_cache_miss(2, images).message
