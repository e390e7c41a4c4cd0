"""The training loss of each task, for the compressors that train (``int8_qat``): what netzip scores, as a loss."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_netzip.data.scoring import infer_task
from pytest_netzip.errors import DataError

if TYPE_CHECKING:
    import torch


def task_loss(predictions: Any, targets: torch.Tensor, inputs: Any) -> torch.Tensor:
    """The loss of ``predictions`` (a model's output, read) against ``targets``, by the task they show.

    Cross-entropy for classification; mean squared error for regression; per-pixel cross-entropy for
    segmentation and per-token for language modelling, the positions netzip does not score left out
    (HuggingFace-style labels shifted, as the scores are). DataError for a detector, whose training
    loss is the model's own, or where the task cannot be told.
    """
    import torch
    import torch.nn.functional as F

    from pytest_netzip.data.language import IGNORE_INDEX, targets_are_inputs
    from pytest_netzip.data.predictions import class_indices
    from pytest_netzip.data.segmentation import unscored

    task = infer_task(predictions, targets)
    if task == "classification":
        return F.cross_entropy(predictions, class_indices(targets, "netzip_train_data").to(predictions.device))
    if task == "regression":
        wanted = targets.reshape(len(targets), -1).to(predictions.device, predictions.dtype)
        return F.mse_loss(predictions.reshape(len(predictions), -1), wanted)
    if task == "segmentation":
        classes = targets.to(predictions.device, torch.long)
        classes = classes.masked_fill(unscored(classes, predictions.shape[1]), IGNORE_INDEX)
        return F.cross_entropy(predictions, classes, ignore_index=IGNORE_INDEX)
    if task == "language_modeling":
        tokens = targets.to(predictions.device, torch.long)
        if targets_are_inputs(tokens, inputs):
            predictions, tokens = predictions[:, :-1], tokens[:, 1:]
        return F.cross_entropy(predictions.reshape(-1, predictions.shape[-1]), tokens.reshape(-1),
                               ignore_index=IGNORE_INDEX)
    raise DataError(f"training on a {task} model's outputs needs its own loss, which netzip does not know")
