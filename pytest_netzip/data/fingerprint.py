"""A cheap fingerprint of a batch's inputs, to tell when two passes over the data saw different samples."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def fingerprint(inputs: Any, count: int) -> torch.Tensor:
    """Per sample of a batch, the float64 sum and position-weighted sum of each batched tensor of ``inputs``.

    Cheap (one pass over the inputs), and changed by shuffling, noise, crops and flips alike.
    """
    import torch
    from torch.utils._pytree import tree_leaves

    from pytest_netzip.data.images import ImageList

    def sums(values: torch.Tensor) -> torch.Tensor:
        flat = (values.flatten(1) if values.ndim > 1 else values[:, None]).detach().double()
        weights = torch.arange(1, flat.shape[1] + 1, dtype=torch.float64, device=flat.device)
        return torch.stack([flat.sum(dim=1), flat @ weights], dim=1).cpu()

    if isinstance(inputs, ImageList):
        return torch.cat([sums(image[None]) for image in inputs]) if inputs else torch.zeros(0, 2, dtype=torch.float64)
    leaves = [
        leaf for leaf in tree_leaves(inputs)
        if isinstance(leaf, torch.Tensor) and leaf.ndim and len(leaf) == count and not leaf.is_complex()
    ]
    return torch.cat([sums(leaf) for leaf in leaves], dim=1) if leaves else torch.zeros(count, 0, dtype=torch.float64)


def same_inputs(first: torch.Tensor | None, second: torch.Tensor | None) -> bool:
    """Whether two fingerprints of the evaluation inputs match (None: outputs made by hand, without inputs)."""
    import torch

    if first is None or second is None:
        return first is second
    # float64 sums of equal inputs agree to rounding however they are reduced; any change moves them far more
    return first.shape == second.shape and torch.allclose(first, second, rtol=1e-9, atol=0, equal_nan=True)
