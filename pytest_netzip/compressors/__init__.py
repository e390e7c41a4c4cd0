"""Built-in compressors and the registry that resolves marker entries to ``Compressor`` values."""

from __future__ import annotations

from collections.abc import Iterable

from pytest_netzip.compressors.base import (
    CompressionContext,
    Compressor,
    check_compressor,
)
from pytest_netzip.compressors.cast import BF16, FP16
from pytest_netzip.compressors.distill import Distill
from pytest_netzip.compressors.lowrank import LowRank
from pytest_netzip.compressors.pipeline import Pipeline
from pytest_netzip.compressors.prune import PruneL1, PruneRandom, PruneStructured
from pytest_netzip.compressors.quantize import Int8Dynamic, Int8QAT, Int8Static
from pytest_netzip.errors import CompressionError, CompressorUnsupported
from pytest_netzip.naming import unknown_name_message

BUILTIN_COMPRESSORS: tuple[type[Compressor], ...] = (
    FP16, BF16, Int8Dynamic, Int8Static, Int8QAT, PruneL1, PruneRandom, PruneStructured, LowRank,
)


class CompressorRegistry:
    """Compressors known by name: the built-ins plus those contributed through hooks."""

    def __init__(self, extra: Iterable[Compressor | type[Compressor]] = ()) -> None:
        self._by_name: dict[str, Compressor] = {}
        for entry in (*BUILTIN_COMPRESSORS, *extra):
            compressor = check_compressor(entry() if isinstance(entry, type) else entry)
            self._by_name[compressor.name] = compressor

    @property
    def names(self) -> list[str]:
        """Every name a marker may use, sorted."""
        return sorted(self._by_name)

    def resolve(self, spec: str | Compressor) -> Compressor:
        """The compressor for a marker entry: a registered name, names joined by ``+``, or a ``Compressor``."""
        if isinstance(spec, Compressor):
            return check_compressor(spec)
        if isinstance(spec, str) and spec in self._by_name:
            return self._by_name[spec]
        if isinstance(spec, str) and "+" in spec:
            return check_compressor(Pipeline(*(self.resolve(part.strip()) for part in spec.split("+"))))
        raise LookupError(unknown_name_message("compressor", spec, self.names))


__all__ = [
    "BF16",
    "BUILTIN_COMPRESSORS",
    "CompressionContext",
    "CompressionError",
    "Compressor",
    "CompressorRegistry",
    "CompressorUnsupported",
    "Distill",
    "check_compressor",
    "FP16",
    "Int8Dynamic",
    "Int8QAT",
    "Int8Static",
    "LowRank",
    "Pipeline",
    "PruneL1",
    "PruneRandom",
    "PruneStructured",
]
