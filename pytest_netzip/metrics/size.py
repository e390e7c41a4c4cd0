"""Model size: parameters, zeros among them, and the bytes of the serialised state dict."""

from __future__ import annotations

import io
import zlib
from typing import TYPE_CHECKING

from pytest_netzip.metrics.base import metric

if TYPE_CHECKING:
    import torch
    from torch import nn

    from pytest_netzip.metrics.base import Subject


def dense(tensor: torch.Tensor) -> torch.Tensor:
    """The plain values of a tensor, dequantising tensor subclasses such as torchao's Int8Tensor."""
    import torch

    if type(tensor) not in (torch.Tensor, torch.nn.Parameter) and hasattr(tensor, "dequantize"):
        return tensor.dequantize()
    return tensor


def count_params(model: nn.Module) -> int:
    """Number of parameter values (shared parameters counted once)."""
    return sum(parameter.numel() for parameter in model.parameters())


def count_nonzero_params(model: nn.Module) -> int:
    """Number of parameter values that are not zero."""
    import torch

    return sum(int(torch.count_nonzero(dense(parameter.detach()))) for parameter in model.parameters())


def serialized_state_dict(model: nn.Module) -> bytes:
    """The bytes ``torch.save(model.state_dict())`` writes: the model's size on disk."""
    import torch

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


def deflated_size(data: bytes) -> int:
    """Bytes after DEFLATE (zlib level 6): what runs of pruned zeros really save on disk."""
    return len(zlib.compress(data, 6))


@metric("params", "number of parameter values", unit="count", higher_is_better=False)
def params(subject: Subject, reference: Subject) -> int:
    """Parameter count."""
    return count_params(subject.model)


@metric("nonzero_params", "number of parameter values that are not zero", unit="count", higher_is_better=False)
def nonzero_params(subject: Subject, reference: Subject) -> int:
    """Non-zero parameter count."""
    return count_nonzero_params(subject.model)


@metric("sparsity", "share of parameter values that are zero", unit="share", higher_is_better=True)
def sparsity(subject: Subject, reference: Subject) -> float:
    """Zeros among parameters."""
    total = subject.measure(params, reference)
    return 1.0 - subject.measure(nonzero_params, reference) / total if total else 0.0


@metric("size_bytes", "bytes of the serialised state dict (torch.save)", unit="bytes", higher_is_better=False)
def size_bytes(subject: Subject, reference: Subject) -> int:
    """Size on disk."""
    return len(serialized_of(subject))


@metric(
    "size_zipped_bytes",
    "bytes of the serialised state dict after DEFLATE compression",
    unit="bytes",
    higher_is_better=False,
)
def size_zipped_bytes(subject: Subject, reference: Subject) -> int:
    """Size on disk, deflated."""
    return deflated_size(serialized_of(subject))


@metric(
    "size_ratio", "reference size_bytes / this model's size_bytes (NetZIP's compression ratio)", relative=True
)
def size_ratio(subject: Subject, reference: Subject) -> float:
    """How many times smaller than the reference."""
    return reference.measure(size_bytes, reference) / subject.measure(size_bytes, reference)


SIZE_METRICS = (params, nonzero_params, sparsity, size_bytes, size_zipped_bytes, size_ratio)


def serialized_of(subject: Subject) -> bytes:
    """``subject``'s serialised state dict (made once)."""
    return subject.once("serialized", lambda: serialized_state_dict(subject.model))
