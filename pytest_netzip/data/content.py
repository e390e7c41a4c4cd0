"""What a cache key is made of: digests of models, batches and code that mean the same in the next run.

A digest reads a value's content, never its address: tensors by their bytes, containers by their items, classes
and functions by their source. A value shown only by its address (``<object at 0x...>``) has no content to read:
a TypeError says so, and whatever needed the digest is not cached.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pytest_netzip.data.batches import EvalData

if TYPE_CHECKING:
    import torch
    from torch import nn


class Digest:
    """SHA-256 of values that mean the same in the next run: tensors by their bytes, containers by their items,
    classes and functions by their source. A value shown only by its address is a TypeError: it has no content."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def hexdigest(self) -> str:
        """The digest of everything fed so far, in hexadecimal."""
        return self._hash.hexdigest()

    def text(self, *parts: str) -> None:
        """Feed strings, each with its length, so that ``("ab", "c")`` and ``("a", "bc")`` differ."""
        for part in parts:
            encoded = part.encode()
            self._hash.update(len(encoded).to_bytes(8, "little") + encoded)

    def feed(self, value: Any) -> None:
        """Feed a value: a scalar, tensor, model, mapping, sequence, dataclass, class or function."""
        import torch

        if value is None or isinstance(value, (bool, int, float, str, bytes, torch.dtype, torch.device, torch.Size)):
            self.text(type(value).__name__, repr(value))
        elif isinstance(value, torch.Tensor):
            self.tensor(value)
        elif isinstance(value, torch.nn.Module):
            self.text("module", model_digest(value))
        elif isinstance(value, Mapping):
            self.text("mapping", type(value).__qualname__, str(len(value)))
            for key, item in value.items():
                self.feed(key)
                self.feed(item)
        elif isinstance(value, (list, tuple)):
            self.text("sequence", type(value).__qualname__, str(len(value)))
            for item in value:
                self.feed(item)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            self.code(type(value))
            for item in dataclasses.fields(value):
                self.text(item.name)
                self.feed(getattr(value, item.name))
        elif inspect.isfunction(value) or inspect.ismethod(value) or inspect.isclass(value):
            self.code(value)
        else:
            self.text(type(value).__qualname__, _shown(value))

    def tensor(self, tensor: torch.Tensor) -> None:
        """A tensor's type, dtype, shape and bytes; a subclass (torchao's) by its inner tensors and settings, a
        quantised tensor by its integers and scales."""
        import torch

        tensor = tensor.detach()
        flatten = getattr(tensor, "__tensor_flatten__", None)
        if flatten is not None:
            names, context = flatten()
            self.text("subclass", type(tensor).__qualname__, _shown(context), str(tensor.dtype), str(tensor.shape))
            for name in names:
                self.tensor(getattr(tensor, name))
            return
        if tensor.is_quantized:
            self.text("quantized", str(tensor.qscheme()))
            if tensor.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
                self.feed((tensor.q_scale(), tensor.q_zero_point()))
            else:
                self.feed((tensor.q_per_channel_scales(), tensor.q_per_channel_zero_points(),
                           tensor.q_per_channel_axis()))
            tensor = tensor.int_repr()
        elif tensor.layout != torch.strided or tensor.is_mkldnn:
            self.text("dense of", str(tensor.layout))
            tensor = tensor.to_dense()
        flat = tensor.cpu().contiguous().reshape(-1)
        self.text("tensor", str(flat.dtype), str(tuple(tensor.shape)))
        self._hash.update(flat.view(torch.uint8).numpy().data)  # the bytes, not copied

    def code(self, code: Any) -> None:
        """A class or function by its qualified name and source (its name alone where the source is not on disk)."""
        self.text("code", f"{getattr(code, '__module__', '')}.{getattr(code, '__qualname__', type(code).__qualname__)}")
        with contextlib.suppress(OSError, TypeError):
            self.text(inspect.getsource(code))


def _shown(value: object) -> str:
    """``repr(value)``; a TypeError where it shows an address, which the next run will not share."""
    text = repr(value)
    if " at 0x" in text or " object at " in text:
        raise TypeError(f"{type(value).__qualname__} has no content to key a cache entry by: {text:.80}")
    return text


def model_digest(model: nn.Module) -> str:
    """The content of a model: the source of each of its module classes, its printed structure and its state."""
    digest = Digest()
    for kind in dict.fromkeys(type(module) for module in model.modules()):
        digest.code(kind)
    digest.text(repr(model))
    digest.feed(model.state_dict())
    return digest.hexdigest()


def batches_digest(batches: Any) -> str:
    """The content of every batch of ``batches`` (an EvalData's inputs and targets, as bounded, and how it reads
    them); a TypeError for a one-shot iterator, which hashing would use up."""
    if isinstance(batches, Iterator):
        raise TypeError(f"{type(batches).__name__} is a one-shot iterator: hashing it would use it up")
    digest = Digest()
    if isinstance(batches, EvalData):  # its samples, as bounded, tell max_samples
        digest.feed((batches.format.target_key, batches.format.output))
        batches = iter(batches)  # the pairs the models see, bounded to max_samples
    for batch in batches:
        digest.feed(batch)
    return digest.hexdigest()


def value_digest(value: Any) -> str:
    """The digest of any value :meth:`Digest.feed` reads (an example input, a compressor)."""
    digest = Digest()
    digest.feed(value)
    return digest.hexdigest()
