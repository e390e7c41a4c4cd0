"""Device names a marker may use, and whether this machine has them."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

_DEVICE = re.compile(r"cpu|cuda(:\d+)?|mps")
VALID_DEVICES = "cpu, cuda, cuda:N, mps"


def check_device_name(name: object) -> str:
    """``name`` if it names a device pytest-netzip can run on; ValueError otherwise."""
    if not (isinstance(name, str) and _DEVICE.fullmatch(name)):
        raise ValueError(f"unknown device {name!r} (valid: {VALID_DEVICES})")
    return name


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
