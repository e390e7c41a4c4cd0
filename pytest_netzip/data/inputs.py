"""A model's inputs as a pytree: how they are passed, the batch size their leaves share, and slices of them.

One convention everywhere a model runs (evaluation, latency, MACs, memory, calibration, tracing): a
tensor is one argument, a tuple or list holds positional arguments, a dict (or any mapping, such as
``transformers.BatchEncoding``) holds keyword arguments. A detector's list of images
(:class:`~pytest_netzip.data.images.ImageList`) is one argument. Nothing here imports torch before it runs.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pytest_netzip.errors import DataError

if TYPE_CHECKING:
    import torch
    from torch import nn


def _is_image_list(inputs: Any) -> bool:
    """Whether ``inputs`` is a detector's :class:`~pytest_netzip.data.images.ImageList`."""
    images = sys.modules.get("pytest_netzip.data.images")  # not imported yet: no ImageList exists
    return images is not None and isinstance(inputs, images.ImageList)


def as_pytree(inputs: Any) -> Any:
    """``inputs`` with every mapping that torch's pytree does not know (``BatchEncoding``, ``UserDict``) as a dict."""
    if isinstance(inputs, Mapping):
        return {key: as_pytree(value) for key, value in inputs.items()}
    if _is_image_list(inputs):
        return inputs
    if isinstance(inputs, (tuple, list)) and not hasattr(inputs, "_fields"):  # a namedtuple keeps its type
        return type(inputs)(as_pytree(value) for value in inputs)
    return inputs


def arguments(inputs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The positional and keyword arguments that ``inputs`` stand for."""
    if isinstance(inputs, Mapping):
        return (), dict(inputs)
    if isinstance(inputs, (tuple, list)) and not _is_image_list(inputs) and not hasattr(inputs, "_fields"):
        return tuple(inputs), {}  # a namedtuple (a PackedSequence) is one argument
    return (inputs,), {}


def call(model: nn.Module | Any, inputs: Any) -> Any:
    """``model`` run on ``inputs``: ``model(x)``, ``model(*inputs)`` or ``model(**inputs)``.

    A DataError explains the convention where the model's ``forward`` cannot take the arguments so made.
    """
    args, kwargs = arguments(inputs)
    try:
        return model(*args, **kwargs)
    except TypeError as exc:
        if len(args) == 1 and not kwargs or _takes(model, args, kwargs):
            raise
        raise convention_error(type(model).__name__, args, kwargs, exc) from exc


def convention_error(model: str, args: tuple[Any, ...], kwargs: dict[str, Any], error: Exception) -> DataError:
    """What to tell a user whose ``model``'s ``forward`` cannot take the arguments netzip made of the inputs."""
    passed = f"{len(args)} positional arguments" if args else f"keyword arguments {', '.join(kwargs)}"
    return DataError(
        f"{model}.forward cannot take the inputs as {passed} ({error}): netzip passes a tuple or list "
        "of inputs as positional arguments and a dict as keyword arguments; to pass one tuple, list or dict as a "
        "single argument, wrap it in a 1-tuple: (inputs,)"
    )


def _takes(model: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether ``model``'s signature accepts ``args`` and ``kwargs`` (True where it cannot be read)."""
    import inspect

    try:
        inspect.signature(getattr(model, "forward", model)).bind(*args, **kwargs)
    except TypeError:
        return False
    except ValueError:  # a builtin without a signature
        return True
    return True


def bound(model: nn.Module | Any, inputs: Any) -> Callable[[], Any]:
    """``call(model, inputs)`` as a function of nothing, its arguments unpacked once: what a timer calls."""
    args, kwargs = arguments(inputs)
    return functools.partial(model, *args, **kwargs)


def batched_leaves(inputs: Any) -> list[tuple[str, torch.Tensor]]:
    """The tensors of ``inputs`` with a batch dimension (dimension 0), each with its path (``['input_ids']``)."""
    import torch
    from torch.utils._pytree import keystr, tree_flatten_with_path

    if _is_image_list(inputs):
        return []
    leaves, _ = tree_flatten_with_path(inputs)
    return [(keystr(path), leaf) for path, leaf in leaves if isinstance(leaf, torch.Tensor) and leaf.ndim >= 1]


def batch_size(inputs: Any, where: str) -> int:
    """The number of samples in ``inputs``: the length of dimension 0, which every batched tensor must share.

    A DataError (``where`` says which batch) names the tensor that disagrees, or says that none is batched.
    """
    if _is_image_list(inputs):
        return len(inputs)
    leaves = batched_leaves(inputs)
    if not leaves:
        raise DataError(f"{where}: the inputs hold no tensor with a batch dimension; got {describe(inputs)}")
    first_path, first = leaves[0]
    for path, leaf in leaves[1:]:
        if len(leaf) != len(first):
            raise DataError(
                f"{where}: the inputs disagree on the batch size: inputs{first_path} has {len(first)} samples, "
                f"inputs{path} has {len(leaf)} (dimension 0 of every tensor is the batch)"
            )
    return len(first)


def take(inputs: Any, count: int) -> Any:
    """The first ``count`` samples of ``inputs``: each batched tensor cut along dimension 0, the rest as it is."""
    import torch
    from torch.utils._pytree import tree_map

    if _is_image_list(inputs):
        return type(inputs)(inputs[:count])
    return tree_map(lambda leaf: leaf[:count] if isinstance(leaf, torch.Tensor) and leaf.ndim >= 1 else leaf, inputs)


def describe(inputs: Any) -> str:
    """What ``inputs`` are, in words: ``a float32 tensor of shape (8, 3)``, ``a dict of input_ids, attention_mask``."""
    if hasattr(inputs, "shape") and hasattr(inputs, "dtype"):
        dtype = str(inputs.dtype).removeprefix("torch.")
        return f"{'an' if dtype.startswith('int') else 'a'} {dtype} tensor of shape {tuple(inputs.shape)}"
    if isinstance(inputs, Mapping):
        return f"a {type(inputs).__name__} of {', '.join(map(str, inputs)) or 'nothing'}"
    if isinstance(inputs, (tuple, list)):
        return f"a {type(inputs).__name__} of {len(inputs)}"
    return f"a {type(inputs).__name__}"
