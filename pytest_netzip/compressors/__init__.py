"""Built-in compressors and the registry that resolves marker entries to ``Compressor`` values."""

from __future__ import annotations

import ast
import dataclasses
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
from pytest_netzip.compressors.quantize import Float8, Int8Dynamic, Int8QAT, Int8Static
from pytest_netzip.compressors.sparse import Sparse24
from pytest_netzip.compressors.weight_only import Float8WeightOnly, Int4WeightOnly, Int8WeightOnly
from pytest_netzip.errors import CompressionError, CompressorUnsupported
from pytest_netzip.registry import Registry

BUILTIN_COMPRESSORS: tuple[type[Compressor], ...] = (
    FP16, BF16, Int8Dynamic, Int8Static, Int8QAT, PruneL1, PruneRandom, PruneStructured, LowRank,
    Int8WeightOnly, Float8WeightOnly, Int4WeightOnly, Float8, Sparse24,
)


class CompressorRegistry(Registry[Compressor]):
    """Compressors known by name, resolving marker entries to ``Compressor`` values.

    ``CompressorRegistry()`` holds the built-ins (:data:`BUILTIN_COMPRESSORS`, each with its default
    parameters); ``CompressorRegistry(compressors)`` holds exactly ``compressors`` (instances, or classes
    made with their defaults). Under pytest those are what every ``pytest_netzip_compressors``
    implementation returns: the plugin's own (``pytest_netzip.builtins``, called first) gives the built-ins.
    """

    kind = "compressor"

    def __init__(self, compressors: Iterable[Compressor | type[Compressor]] | None = None) -> None:
        super().__init__(BUILTIN_COMPRESSORS if compressors is None else compressors)

    def check(self, entry: object) -> Compressor:
        """``entry`` (a class is made with its defaults) if it is a well-formed compressor; TypeError otherwise."""
        return check_compressor(entry() if isinstance(entry, type) else entry)

    def resolve(self, spec: str | Compressor) -> Compressor:
        """The compressor for a marker entry: a registered name, an id with parameters (``prune_l1(amount=0.6)``),
        those joined by ``+``, or a ``Compressor``."""
        if isinstance(spec, Compressor):
            return check_compressor(spec)
        if isinstance(spec, str) and spec in self:
            return self[spec]
        if isinstance(spec, str) and "+" in spec:
            return check_compressor(Pipeline(*(self.resolve(part.strip()) for part in spec.split("+"))))
        if isinstance(spec, str) and "(" in spec and spec.endswith(")"):
            return self._with_parameters(spec)
        raise LookupError(self.unknown(spec))

    def _with_parameters(self, spec: str) -> Compressor:
        """The compressor of an id such as ``prune_l1(amount=0.6)``: the registered one with those fields."""
        name, _, arguments = spec.partition("(")
        if name.strip() not in self:
            raise LookupError(self.unknown(name.strip()))
        registered = self[name.strip()]
        fields = [field.name for field in dataclasses.fields(registered) if field.init]
        example = f"{registered.name}({fields[-1]}={getattr(registered, fields[-1])!r})"
        wrong = ValueError(
            f"compressor {spec!r}: {type(registered).__name__} takes {', '.join(fields)}, as keywords with plain "
            f"values ({example}); or give the object, {type(registered).__name__}(...)"
        )
        try:
            call = ast.parse(f"_({arguments}", mode="eval").body
            assert isinstance(call, ast.Call)
            parameters = {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords}
        except (SyntaxError, ValueError, AssertionError):
            raise wrong from None
        if call.args or any(key not in fields for key in parameters):
            raise wrong
        declared = {field.name: field.default for field in dataclasses.fields(registered)}
        for key, value in parameters.items():  # against the class's default: a registered instance may hold another
            default = declared[str(key)]
            if default is dataclasses.MISSING:
                continue
            number = isinstance(default, (int, float)) and not isinstance(default, bool)
            if number and (isinstance(value, bool) or not isinstance(value, (int, float))) or (
                default is not None and not number and not isinstance(value, type(default))
            ):
                kind = type(default).__name__
                raise ValueError(f"compressor {spec!r}: {key} takes {'an' if kind[0] in 'aeiou' else 'a'} {kind} "
                                 f"(its default is {default!r}), got {value!r}")
        try:
            made = dataclasses.replace(registered, **parameters)  # type: ignore[arg-type]  # fields checked above
        except TypeError as exc:  # a field without a default, whose __post_init__ could not read the value
            raise ValueError(f"compressor {spec!r}: {exc}") from None
        return check_compressor(made)


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
    "Float8",
    "Float8WeightOnly",
    "Int4WeightOnly",
    "Int8Dynamic",
    "Int8QAT",
    "Int8Static",
    "Int8WeightOnly",
    "LowRank",
    "Pipeline",
    "PruneL1",
    "PruneRandom",
    "PruneStructured",
    "Sparse24",
]
