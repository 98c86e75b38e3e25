"""Chapter 05, images and layers: the layer viewer, the layer and sharing plots, and the exercises.
"""

from teachdock.lab.images.checks import (
    DOCKERFILE_1,
    DOCKERFILE_4,
    check_deleted_file_cost,
    check_deletion_marker,
    check_first_cache_miss,
    check_top_layer_adds,
)
from teachdock.lab.images.layers_view import (
    image_layers,
    layer_members,
    layer_viewer,
    overlay_options,
    plot_layer_sizes,
    plot_sharing,
    sharing_curve,
    steps_table,
)

__all__ = [
    "DOCKERFILE_1",
    "DOCKERFILE_4",
    "check_deleted_file_cost",
    "check_deletion_marker",
    "check_first_cache_miss",
    "check_top_layer_adds",
    "image_layers",
    "layer_members",
    "layer_viewer",
    "overlay_options",
    "plot_layer_sizes",
    "plot_sharing",
    "sharing_curve",
    "steps_table",
]
