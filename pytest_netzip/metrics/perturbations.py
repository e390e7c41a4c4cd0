"""Input perturbations for robustness checks: pure torch on batches in the unit space [0, 1].

Every kind takes a batch ``x`` (samples first, values in [0, 1]), a ``severity`` in [0, 1] and a
seeded ``generator``, and returns a new batch clamped to [0, 1]. Severity 0 leaves the batch as it
is; severity 1 is heavy but still recognisable to a person. Images are ``(N, C, H, W)``; noise,
brightness and contrast work on any shape, blur and shift need two trailing spatial dimensions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

Perturbation = Callable[["torch.Tensor", float, "torch.Generator"], "torch.Tensor"]


def noise(x: torch.Tensor, severity: float, generator: torch.Generator) -> torch.Tensor:
    """Gaussian noise of standard deviation 0.5 x severity."""
    import torch

    return (x + 0.5 * severity * torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)).clamp(0, 1)


def brightness(x: torch.Tensor, severity: float, generator: torch.Generator) -> torch.Tensor:
    """Every value raised by 0.5 x severity."""
    return (x + 0.5 * severity).clamp(0, 1)


def contrast(x: torch.Tensor, severity: float, generator: torch.Generator) -> torch.Tensor:
    """Each sample pulled towards its mean, keeping 1 - 0.9 x severity of its spread."""
    mean = x.flatten(1).mean(dim=1).view(-1, *[1] * (x.ndim - 1))
    return (mean + (x - mean) * (1 - 0.9 * severity)).clamp(0, 1)


def _spatial(x: torch.Tensor, kind: str) -> None:
    if x.ndim < 3:
        raise ValueError(f"{kind} needs images (samples, ..., height, width); the inputs have shape {tuple(x.shape)}")


def blur(x: torch.Tensor, severity: float, generator: torch.Generator) -> torch.Tensor:
    """Gaussian blur of sigma 2 x severity pixels (edges replicated)."""
    import torch
    import torch.nn.functional as F

    _spatial(x, "blur")
    sigma = 2.0 * severity
    if sigma < 1e-3:
        return x.clone()
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    images = x.reshape(-1, 1, *x.shape[-2:])
    images = F.pad(images, (radius, radius, radius, radius), mode="replicate")
    images = F.conv2d(images, kernel.view(1, 1, 1, -1))
    images = F.conv2d(images, kernel.view(1, 1, -1, 1))
    return images.reshape(x.shape).clamp(0, 1)


def shift(x: torch.Tensor, severity: float, generator: torch.Generator) -> torch.Tensor:
    """Translation right and down by severity x a quarter of the image, the uncovered border filled with 0."""
    import torch

    _spatial(x, "shift")
    height, width = x.shape[-2:]
    down, right = round(severity * height / 4), round(severity * width / 4)
    shifted = torch.zeros_like(x)
    shifted[..., down:, right:] = x[..., : height - down, : width - right]
    return shifted


#: The kinds that need images: two trailing spatial dimensions.
IMAGE_KINDS = frozenset({"blur", "shift"})

#: Perturbation kinds by the name markers use.
KINDS: dict[str, Perturbation] = {
    "noise": noise,
    "brightness": brightness,
    "contrast": contrast,
    "blur": blur,
    "shift": shift,
}
