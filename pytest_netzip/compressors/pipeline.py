"""Compressors applied one after another, as Deep Compression prunes and then quantises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from typing_extensions import override

from pytest_netzip.compressors.base import (
    CompressionContext,
    Compressor,
    describe_failure,
)
from pytest_netzip.errors import CompressionError

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True, init=False)
class Pipeline(Compressor):
    """``Pipeline(PruneL1(), Int8Dynamic())``: each step compresses what the one before left; id ``prune_l1+int8_dynamic``.

    In a marker list, ``"prune_l1+int8_dynamic"`` names the same pipeline.
    """

    name: ClassVar[str] = "pipeline"
    steps: tuple[Compressor, ...]

    def __init__(self, *steps: Compressor, allow_noop: bool = False) -> None:
        if not steps or not all(isinstance(step, Compressor) for step in steps):
            raise TypeError(f"Pipeline takes one or more Compressor objects, got {steps!r}")
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "allow_noop", allow_noop)

    @property
    @override
    def id(self) -> str:
        steps = "+".join(step.id for step in self.steps)
        return f"({steps})(allow_noop=True)" if self.allow_noop else steps

    @override
    def transform(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
        for step in self.steps:
            try:
                model = step.transform(model, ctx)
            except Exception as exc:
                raise CompressionError(
                    f"compressor {self.id} failed at its step {step.id} on {type(model).__name__}: "
                    f"{describe_failure(exc)}"
                ) from exc
        return model
