"""Device names a marker may use, whether this machine has them, and which GPU a pytest-xdist worker owns."""

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
#: pytest-xdist's worker ids: ``gw0``, ``gw1``, ...
_WORKER = re.compile(r"gw(\d+)")

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


def cuda_index(name: str) -> int | None:
    """The index of a device name written ``cuda:N``; None for a bare ``cuda`` and every other device."""
    match = _DEVICE.fullmatch(name)
    return int(match.group(1)) if match is not None and match.group(1) is not None else None


def worker_gpu(worker_id: str, gpu_count: int) -> int | None:
    """The CUDA device xdist worker ``worker_id`` owns: ``gwK`` owns K mod ``gpu_count``, counted among the
    devices torch sees (so ``CUDA_VISIBLE_DEVICES`` is respected); None without a GPU, or for a worker named
    otherwise (``--tx popen//id=NAME``)."""
    match = _WORKER.fullmatch(worker_id)
    return int(match.group(1)) % gpu_count if match is not None and gpu_count > 0 else None


def shared_gpu_reason(device: str, worker_id: str, worker_count: int, gpu_count: int) -> str | None:
    """Why CUDA ``device`` cannot be timed on xdist worker ``worker_id`` of ``worker_count``: another worker
    may run on that GPU meanwhile. None where this worker has it alone, or where there is no GPU (the item
    then skips for want of it)."""
    if gpu_count == 0:
        return None
    own = worker_gpu(worker_id, gpu_count)
    if own is None:
        return f"xdist worker {worker_id!r} is not named gwN, so netzip cannot tell which GPU it has to itself"
    index = cuda_index(device)
    if index is not None and index != own:
        return (
            f"{device} is named explicitly, and this xdist worker ({worker_id}) owns cuda:{own}: "
            f"the worker that owns {device} may be running on it"
        )
    sharing = [f"gw{number}" for number in range(own, worker_count, gpu_count)]
    if len(sharing) > 1:
        return (
            f"{worker_count} xdist workers share {gpu_count} GPU{'s' if gpu_count > 1 else ''}: "
            f"{', '.join(sharing[:-1])} and {sharing[-1]} run on cuda:{own}"
        )
    return None


def claim_gpu(worker_id: str) -> int | None:
    """Make the GPU xdist worker ``worker_id`` owns the current CUDA device of this process, so that a bare
    ``cuda`` means it; that device's index, or None where there is none to claim."""
    import torch

    index = worker_gpu(worker_id, torch.cuda.device_count()) if torch.cuda.is_available() else None
    if index is not None:
        torch.cuda.set_device(index)
    return index


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
