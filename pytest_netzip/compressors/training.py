"""The training loop of the compressors that train: seeded Adam over ``netzip_train_data``, progress on the terminal."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pytest_netzip.compressors.base import CompressionContext
from pytest_netzip.data.inputs import batch_size
from pytest_netzip.devices import device_of, to_device
from pytest_netzip.errors import CompressionError

if TYPE_CHECKING:
    import torch
    from torch import nn


def require_train_data(ctx: CompressionContext, compressor: str) -> Any:
    """``ctx.train_data``, or a CompressionError saying which fixture ``compressor`` needs."""
    if ctx.train_data is None:
        raise CompressionError(
            f"{compressor} needs training data: define a session fixture netzip_train_data returning "
            "(inputs, targets) batches, as netzip_data does"
        )
    return ctx.train_data


def fit(
    model: nn.Module,
    loss: Callable[[Any, torch.Tensor], torch.Tensor],
    ctx: CompressionContext,
    compressor: str,
    epochs: int,
    lr: float,
) -> None:
    """Train ``model`` with Adam at ``lr`` for ``epochs`` passes over the training batches.

    ``loss(inputs, targets)`` runs the model and returns the batch's loss; batches are read as
    ``netzip_data``'s are (pairs, or dicts holding the targets). About five progress lines (epoch,
    mean loss) go to ``ctx.report``. Seed the caller's generator first: batches are taken as they come.
    """
    import torch

    data = require_train_data(ctx, compressor)
    device = device_of(model)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    for epoch in range(1, epochs + 1):
        total, count = 0.0, 0
        for index, batch in enumerate(data):
            where = f"netzip_train_data batch {index}"
            inputs, targets = ctx.format.split(batch, where)
            inputs, targets = to_device(inputs, device), torch.as_tensor(targets).to(device)
            samples = batch_size(inputs, where)
            value = loss(inputs, targets)
            optimizer.zero_grad()
            value.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
            optimizer.step()
            total, count = total + value.item() * samples, count + samples
        if count == 0:
            raise CompressionError(f"{compressor}: netzip_train_data yielded no batches")
        if epoch % max(1, epochs // 5) == 0 or epoch == epochs:
            ctx.report(f"{compressor}: epoch {epoch}/{epochs}, loss {total / count:.4f}")
