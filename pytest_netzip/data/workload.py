"""How a model is run for latency, memory and energy: the batch, and pytest-benchmark's timing settings."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Workload:
    """The runs behind latency, memory and energy metrics.

    ``min_rounds``, ``max_time``, ``warmup_iterations``, ``timer`` and ``disable_gc`` mean what
    pytest-benchmark's options of the same names mean; ``disabled`` says why timing is off.
    """

    batch_size: int = 1
    min_rounds: int = 5
    max_time: float = 1.0
    warmup_iterations: int = 100_000
    timer: Callable[[], float] = time.perf_counter
    disable_gc: bool = False
    disabled: str | None = None

    def batch(self, example_input: Any) -> Any:
        """The model input: each tensor of ``example_input`` cut to its first sample, repeated ``batch_size`` times.

        Scalars (0-d tensors) and other values pass as they are; ValueError when ``batch_size`` > 1
        finds no tensor to repeat. A detector's list of images is cut and repeated along the list.
        """
        import torch
        from torch.utils._pytree import tree_flatten, tree_unflatten

        from pytest_netzip.data.images import ImageList

        if isinstance(example_input, ImageList):
            return ImageList(example_input[:1] * self.batch_size)

        leaves, spec = tree_flatten(example_input)
        batched = [isinstance(leaf, torch.Tensor) and leaf.ndim >= 1 for leaf in leaves]
        if self.batch_size > 1 and not any(batched):
            raise ValueError(f"batch_size={self.batch_size} needs a tensor with a batch dimension in the example input")
        return tree_unflatten([
            leaf[:1].repeat(self.batch_size, *[1] * (leaf.ndim - 1)) if is_batched else leaf
            for leaf, is_batched in zip(leaves, batched)
        ], spec)


#: Batch size 1 and pytest-benchmark's defaults: what a measurement outside pytest uses.
DEFAULT_WORKLOAD = Workload()
