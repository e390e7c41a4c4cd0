"""The user's evaluation batches: checked, bounded to ``--netzip-max-samples``, fingerprinted."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_netzip.data.space import InputSpace

if TYPE_CHECKING:
    import torch
from pytest_netzip.errors import DataError


@dataclass(frozen=True)
class EvalData:
    """The user's evaluation batches, bounded to ``max_samples`` samples, and the space their inputs lie in."""

    batches: Iterable[Any]
    max_samples: int | None = None
    example_input: Any = None
    space: InputSpace = InputSpace()

    def __post_init__(self) -> None:
        if not isinstance(self.batches, Iterable):
            raise DataError(
                f"netzip_data returned {type(self.batches).__name__} {self.batches!r:.40}; it must return a "
                "re-iterable of (inputs, targets) batches, such as a list or a DataLoader"
            )
        if isinstance(self.batches, Iterator):
            raise DataError(
                "netzip_data must be iterable more than once (a list or a DataLoader), not a "
                f"one-shot {type(self.batches).__name__}: each model is evaluated on the same samples"
            )

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        from pytest_netzip.data.detection import image_list

        remaining = self.max_samples
        for index, batch in enumerate(self.batches):
            if remaining is not None and remaining <= 0:
                return
            inputs, targets = _pair(batch, index)
            _check_tensors(inputs, index)
            targets = _targets(targets, len(inputs), index)
            if remaining is not None:
                inputs, targets = inputs[:remaining], targets[:remaining]
                remaining -= len(targets)
            yield image_list(inputs, targets), targets

    def example(self) -> Any:
        """The input for per-sample measurements: ``example_input``, else the first sample."""
        if self.example_input is not None:
            return self.example_input
        from torch.utils._pytree import tree_map

        from pytest_netzip.data.detection import image_list
        from pytest_netzip.data.images import ImageList

        for batch in self.batches:  # the targets are not needed here, so not checked here
            inputs = image_list(*_pair(batch, 0))
            _check_tensors(inputs, 0)
            if isinstance(inputs, ImageList):
                return ImageList(inputs[:1])
            try:
                return tree_map(lambda value: value[:1], inputs)
            except Exception as exc:
                raise DataError(
                    f"cannot take the first sample of {type(inputs).__name__} inputs ({exc}): "
                    "define a fixture netzip_example_input returning one model input"
                ) from exc
        raise DataError("netzip_data yielded no batches")


def _pair(batch: Any, index: int) -> tuple[Any, Any]:
    """``(inputs, targets)`` of a batch, or a DataError saying what the batch is instead."""
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        raise DataError(f"netzip_data batch {index} is a {type(batch).__name__}; expected (inputs, targets)")
    return batch[0], batch[1]


def _check_tensors(inputs: Any, index: int) -> None:
    """A DataError for inputs that hold arrays other than torch tensors (numpy's), which models cannot take."""
    from torch.utils._pytree import tree_leaves

    for leaf in tree_leaves(inputs):
        if hasattr(leaf, "__array__") and not hasattr(leaf, "storage_offset"):  # an array, not a torch.Tensor
            raise DataError(
                f"netzip_data batch {index}: the inputs hold a {type(leaf).__module__}.{type(leaf).__name__}; "
                "models take torch tensors: convert it with torch.as_tensor(...) in netzip_data"
            )


def _targets(targets: Any, batch_size: int, index: int) -> torch.Tensor | list[dict[str, torch.Tensor]]:
    """A classifier's class indices, or a detector's ``{boxes, labels}`` dicts, checked; a DataError if neither."""
    from pytest_netzip.data.detection import detection_targets, is_detection_batch

    if is_detection_batch(targets):
        return detection_targets(targets, batch_size, index)
    return _class_indices(targets, batch_size, index)


def _class_indices(targets: Any, batch_size: int, index: int) -> torch.Tensor:
    """Targets as a 1-D integer tensor of class indices, one per input, or a DataError saying why not."""
    import torch

    indices = torch.as_tensor(targets)
    if indices.ndim == 2 and indices.shape[1] == 1:
        indices = indices[:, 0]
    if indices.ndim != 1 or indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
        raise DataError(
            f"netzip_data batch {index}: targets must be class indices, a 1-D integer tensor; "
            f"got {indices.dtype} of shape {tuple(indices.shape)} (one-hot targets: use .argmax(dim=1))"
        )
    if len(indices) != batch_size:
        raise DataError(f"netzip_data batch {index}: {batch_size} inputs but {len(indices)} targets")
    return indices
