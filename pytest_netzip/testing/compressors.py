"""The compressor contract (:class:`CompressorTester`): what every compressor, built-in or a user's, must hold."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from pytest_netzip.compressors import CompressionContext, Compressor
from pytest_netzip.errors import CompressorUnsupported
from pytest_netzip.testing.contract import Contract

if TYPE_CHECKING:
    from torch import nn


def _state(model: nn.Module) -> bytes:
    """The bytes ``torch.save`` writes for ``model``'s state dict and its structure: equal for equal models."""
    import torch

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return repr(model).encode() + buffer.getvalue()


def _run(model: nn.Module, example_input: Any) -> Any:
    """``model``'s outputs on ``example_input`` (a tensor, a tuple of arguments or a dict of keywords)."""
    import torch

    with torch.inference_mode():
        if isinstance(example_input, dict):
            return model(**example_input)
        if isinstance(example_input, (tuple, list)):
            return model(*example_input)
        return model(example_input)


def _same_outputs(first: Any, second: Any) -> bool:
    """Whether two outputs (any pytree of tensors) are equal, element for element."""
    import torch
    from torch.utils._pytree import tree_flatten

    leaves, spec = tree_flatten(first)
    others, other_spec = tree_flatten(second)
    return spec == other_spec and all(
        torch.equal(a, b) if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) else a == b
        for a, b in zip(leaves, others)
    )


class CompressorTester(Contract):
    """The compressor contract: deterministic given the seed, its input model untouched, an ``nn.Module``
    that runs on the example input, and something changed (or CompressorUnsupported, saying why not).

    A subclass sets ``compressor`` and implements :meth:`make_model` and :meth:`example_input`; it may
    override :meth:`context` (for calibration or training data) and set ``allow_noop`` for a compressor
    that may leave a model as it is.
    """

    compressor: ClassVar[Compressor]
    allow_noop: ClassVar[bool] = False

    def make_model(self) -> nn.Module:
        """A fresh reference model to compress (called for each clause)."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_model()")

    def example_input(self) -> Any:
        """An input the reference model runs on (one batch)."""
        raise NotImplementedError(f"{type(self).__name__} must implement example_input()")

    def context(self) -> CompressionContext:
        """The context the compressor gets: CPU, seed 0 and the example input unless overridden."""
        import torch

        return CompressionContext(device=torch.device("cpu"), seed=0, example_input=self.example_input())

    def _compress(self, model: nn.Module, context: CompressionContext | None = None) -> nn.Module:
        """``model`` compressed (in ``context``, by default a fresh one); a skip where the compressor does not apply here."""
        try:
            return self.compressor.apply(model, context or self.context())
        except CompressorUnsupported as unsupported:
            pytest.skip(f"{self.compressor.id}: {unsupported}")

    def test_returns_a_module_that_runs_on_the_example_input(self) -> None:
        """``apply`` returns an ``nn.Module`` in eval mode whose outputs have the reference's structure."""
        from torch import nn
        from torch.utils._pytree import tree_structure

        model = self.make_model()
        compressed = self._compress(model)
        assert isinstance(compressed, nn.Module), f"{self.compressor.id} returned {type(compressed).__name__}"
        assert not compressed.training, f"{self.compressor.id} returned a model in training mode"
        example_input = self.example_input()
        outputs, expected = _run(compressed, example_input), _run(model, example_input)
        assert tree_structure(outputs) == tree_structure(expected), (
            f"{self.compressor.id}'s model returns {tree_structure(outputs)}, the reference {tree_structure(expected)}"
        )

    def test_leaves_its_input_model_untouched(self) -> None:
        """The model handed to ``apply`` is as it was: weights, buffers, structure and mode."""
        model = self.make_model()
        before, training = _state(model), model.training
        self._compress(model)
        assert _state(model) == before and model.training == training, (
            f"{self.compressor.id} changed the model it was given"
        )

    def test_is_deterministic_given_the_seed(self) -> None:
        """Two compressions of one model with one context give equal models and equal outputs."""
        model, example_input, context = self.make_model(), self.example_input(), self.context()
        first, second = self._compress(copy.deepcopy(model), context), self._compress(copy.deepcopy(model), context)
        assert _same_outputs(_run(first, example_input), _run(second, example_input)), (
            f"{self.compressor.id} gave different outputs from two compressions with seed {context.seed}"
        )
        assert _state(first) == _state(second), (
            f"{self.compressor.id} gave different models from two compressions with seed {context.seed}"
        )

    def test_changes_something(self) -> None:
        """The compressed model differs from the reference (unless ``allow_noop``)."""
        if self.allow_noop:
            pytest.skip(f"{self.compressor.id} may leave a model unchanged (allow_noop)")
        model = self.make_model()
        try:  # transform itself: apply would refuse an unchanged model before this assertion could say so
            compressed = self.compressor.transform(copy.deepcopy(model), self.context())
        except CompressorUnsupported as unsupported:
            pytest.skip(f"{self.compressor.id}: {unsupported}")
        assert _state(compressed) != _state(model), f"{self.compressor.id} changed nothing in the model"

    @classmethod
    def check(
        cls,
        compressor: Compressor,
        model: nn.Module | Callable[[], nn.Module],
        example_input: Any,
        context: CompressionContext | None = None,
        allow_noop: bool = False,
    ) -> str | None:
        """Check every clause for ``compressor`` on ``model`` (a module, copied for each clause, or a factory).

        Returns None when every clause holds, or the reason the compressor gave for not applying here.
        """
        from torch import nn

        def make() -> nn.Module:
            return copy.deepcopy(model) if isinstance(model, nn.Module) else model()

        given_context = context

        class Tester(cls):  # type: ignore[valid-type, misc]
            def make_model(self) -> nn.Module:
                return make()

            def example_input(self) -> Any:
                return example_input

            def context(self) -> CompressionContext:
                return given_context or super().context()

        Tester.compressor = compressor
        Tester.allow_noop = allow_noop
        tester = Tester()
        for clause in cls.clauses():
            try:
                getattr(tester, clause)()
            except pytest.skip.Exception as skipped:
                if "allow_noop" not in str(skipped.msg):
                    return str(skipped.msg)
        return None
