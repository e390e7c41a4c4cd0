"""Device names a marker may use, and whether this machine has them."""

from __future__ import annotations

import contextlib
import copy
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

_DEVICE = re.compile(r"auto|cpu|cuda(?::(\d+))?|mps")
VALID_DEVICES = "auto, cpu, cuda, cuda:N, mps"

#: The highest device index torch can hold (its DeviceIndex is a signed 8-bit integer).
MAX_DEVICE_INDEX = 127


def check_device_name(name: object) -> str:
    """``name`` if it names a device pytest-netzip can run on; ValueError otherwise."""
    match = _DEVICE.fullmatch(name) if isinstance(name, str) else None
    if match is None or not isinstance(name, str):  # a match means a str; this narrows name
        raise ValueError(f"unknown device {name!r} (valid: {VALID_DEVICES})")
    if match.group(1) is not None and int(match.group(1)) > MAX_DEVICE_INDEX:
        raise ValueError(f"device {name!r} is out of range: torch numbers devices from 0 to {MAX_DEVICE_INDEX}")
    return name


def expand(names: list[str]) -> list[str]:
    """``names`` with ``auto`` replaced by every device this machine has (torch is imported only then)."""
    if "auto" not in names:
        return names
    import torch

    present = ["cpu"]
    if torch.cuda.is_available():
        present.append("cuda")
    if torch.backends.mps.is_available():
        present.append("mps")
    expanded = [device for name in names for device in (present if name == "auto" else [name])]
    return list(dict.fromkeys(expanded))


def missing_reason(device: torch.device) -> str | None:
    """Why ``device`` cannot be used on this machine, or None when it can."""
    import torch

    if device.type == "cuda":
        if not torch.cuda.is_available():
            return f"{device} is not available on this machine (torch.cuda.is_available() is False)"
        if device.index is not None and device.index >= torch.cuda.device_count():
            return f"{device} is not available: this machine has {torch.cuda.device_count()} CUDA device(s)"
    if device.type == "mps" and not torch.backends.mps.is_available():
        return "mps is not available on this machine"
    return None


def device_of(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter; the CPU for a model without parameters."""
    import torch

    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def to_device(tree: Any, device: torch.device) -> Any:
    """``tree`` (a tensor, or any pytree of them) with every leaf that moves (``.to``) on ``device``, such as a
    tensor or a ``BatchEncoding``; other leaves as they are."""
    from torch.utils._pytree import tree_map

    return tree_map(lambda leaf: leaf.to(device) if hasattr(leaf, "to") else leaf, tree)


def on_device(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in eval mode on ``device``: the model itself when it already is, else a copy."""
    if not model.training and (next(model.parameters(), None) is None or device_of(model) == device):
        return model
    return copy.deepcopy(model).to(device).eval()


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device``; a no-op on the CPU, whose calls return when done."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | None = None) -> Iterator[None]:
    """torch's CPU generator (and ``device``'s, for CUDA) seeded with ``seed`` inside, restored after."""
    import torch

    with torch.random.fork_rng(devices=[device] if device is not None and device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield
