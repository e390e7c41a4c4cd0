"""The user's evaluation batches: split into inputs and targets, checked, bounded to ``--netzip-max-samples``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_netzip.data.inputs import as_pytree, batch_size, describe, take
from pytest_netzip.data.outputs import predictions_of, read_with
from pytest_netzip.data.space import InputSpace, on_unit_inputs
from pytest_netzip.errors import DataError

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class BatchFormat:
    """How batches and outputs are read: the key of the targets in a dict batch (``netzip_target_key``) and the
    function that reads a model's output as its predictions (``netzip_output``; None: the built-in reading)."""

    target_key: str = "labels"
    output: Callable[[Any], Any] | None = field(default=None, compare=False)

    def split(self, batch: Any, where: str) -> tuple[Any, Any]:
        """``(inputs, targets)`` of a batch: a pair, or a dict whose ``target_key`` holds the targets and whose
        other keys are the model's keyword arguments. A DataError says what the batch is instead."""
        if isinstance(batch, Mapping):
            if self.target_key not in batch:
                raise DataError(
                    f"{where} is {describe(batch)}, without {self.target_key!r}: put the targets under "
                    f"{self.target_key!r} (or name their key with a session fixture netzip_target_key), or yield "
                    "(inputs, targets) pairs"
                )
            return self._without_targets(batch), batch[self.target_key]
        if isinstance(batch, (tuple, list)) and len(batch) == 2:
            return as_pytree(batch[0]), batch[1]
        raise DataError(f"{where} is {describe(batch)}; expected (inputs, targets), or a dict holding the targets "
                        f"under {self.target_key!r}")

    def inputs_of(self, batch: Any) -> Any:
        """The model input of a batch that may lack targets (calibration): a pair's inputs, a dict without its
        targets, else the batch itself."""
        if isinstance(batch, Mapping):
            return self._without_targets(batch)
        if isinstance(batch, (tuple, list)) and len(batch) == 2:
            return as_pytree(batch[0])
        return as_pytree(batch)

    def _without_targets(self, batch: Mapping[str, Any]) -> Any:
        """A dict batch's keyword inputs: every key but ``target_key``."""
        return as_pytree({key: value for key, value in batch.items() if key != self.target_key})

    def read(self, output: Any) -> Any:
        """A model's predictions in ``output``: through ``netzip_output`` where defined, else as netzip reads them."""
        return predictions_of(output) if self.output is None else read_with(self.output, output)


@dataclass(frozen=True)
class EvalData:
    """The user's evaluation batches, bounded to ``max_samples`` samples, and the space their inputs lie in."""

    batches: Iterable[Any]
    max_samples: int | None = None
    example_input: Any = None
    space: InputSpace = InputSpace()
    format: BatchFormat = BatchFormat()

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
        """``(inputs, targets)`` per batch, both cut to ``max_samples`` in all; the targets are a tensor (one entry
        per sample along dimension 0) or a detector's list of dicts."""
        from pytest_netzip.data.detection import detection_targets, image_list, is_detection_batch

        remaining = self.max_samples
        for index, batch in enumerate(self.batches):
            if remaining is not None and remaining <= 0:
                return
            where = f"netzip_data batch {index}"
            inputs, targets = self.format.split(batch, where)
            inputs = image_list(inputs, targets)
            _check_tensors(inputs, where)
            samples = batch_size(inputs, where)
            if is_detection_batch(targets):
                targets = detection_targets(targets, samples, index)
            else:
                targets = _target_tensor(targets, samples, where)
            if remaining is not None:
                inputs, targets = take(inputs, remaining), targets[:remaining]
                remaining -= len(targets)
            yield inputs, targets

    def on_unit_inputs(self, model: nn.Module) -> nn.Module:
        """``model`` taking inputs in [0, 1] of this data's space and returning its predictions, as attacks expect."""
        return on_unit_inputs(model, self.space, self.format.read)

    def example(self) -> Any:
        """The input for per-sample measurements: ``example_input``, else the first sample."""
        if self.example_input is not None:
            return self.example_input
        from pytest_netzip.data.detection import image_list

        for batch in self.batches:  # the targets are not needed here, so not checked here
            inputs, targets = self.format.split(batch, "netzip_data batch 0")
            inputs = image_list(inputs, targets)
            _check_tensors(inputs, "netzip_data batch 0")
            batch_size(inputs, "netzip_data batch 0")
            return take(inputs, 1)
        raise DataError("netzip_data yielded no batches")


def _check_tensors(inputs: Any, where: str) -> None:
    """A DataError for inputs that hold arrays other than torch tensors (numpy's), which models cannot take."""
    from torch.utils._pytree import tree_leaves

    for leaf in tree_leaves(inputs):
        if hasattr(leaf, "__array__") and not hasattr(leaf, "storage_offset"):  # an array, not a torch.Tensor
            raise DataError(
                f"{where}: the inputs hold a {type(leaf).__module__}.{type(leaf).__name__}; "
                "models take torch tensors: convert it with torch.as_tensor(...) in netzip_data"
            )


def _target_tensor(targets: Any, samples: int, where: str) -> Any:
    """The targets as a tensor with one entry per sample along dimension 0, or a DataError saying why not."""
    import torch

    try:
        tensor = torch.as_tensor(targets)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise DataError(f"{where}: targets must be a tensor, or a detector's list of dicts; got {describe(targets)} "
                        f"({exc})") from None
    if tensor.ndim == 0 or len(tensor) != samples:
        raise DataError(f"{where}: {samples} samples in the inputs but targets of shape {tuple(tensor.shape)} "
                        "(dimension 0 of the targets is the batch)")
    return tensor
