"""A detector's input as a list of images, one per sample: a pytree that keeps its kind through tree_map."""

from __future__ import annotations

from typing import Any

from torch.utils._pytree import register_pytree_node


class ImageList(list[Any]):  # Any: tree_map may fill it with leaves of any kind
    """One detector input given as a list of images, one per sample.

    Per-sample measurements (latency, MACs) cut and repeat it along the list, not along each image's
    channels, which is what they would do to a plain list of tensors (a model taking several inputs).
    """


register_pytree_node(
    ImageList, lambda images: (list(images), None), lambda images, _: ImageList(images),
    serialized_type_name="pytest_netzip.data.images.ImageList",
)
