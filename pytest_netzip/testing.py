"""Contract tests for compressors and metrics, to run on the built-ins and on your own.

Subclass a tester in a test module (name the subclass ``Test...`` so pytest collects it) and say what
to check; each clause of the contract is then a test of its own::

    class TestHalfLinear(CompressorTester):
        compressor = HalfLinear()

        def make_model(self):
            return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).eval()

        def example_input(self):
            return torch.randn(1, 4)

or call one at once, as a parametrised test over many does: ``CompressorTester.check(HalfLinear(),
model, example_input)`` and ``MetricTester.check(metric, reference, compressed, data)``. A broken
clause fails with an AssertionError that names it; a compressor that says it does not apply here
(CompressorUnsupported) skips the subclass's tests, and ``check`` returns its reason.
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from pytest_netzip.compressors import CompressionContext, Compressor
from pytest_netzip.data.batches import EvalData
from pytest_netzip.data.workload import DEFAULT_WORKLOAD, Workload
from pytest_netzip.errors import CompressorUnsupported, MetricUnavailable
from pytest_netzip.evaluation import Subject
from pytest_netzip.metrics import Metric, MetricValue

if TYPE_CHECKING:
    import torch
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


class _Contract:
    """A contract whose clauses are its ``test_*`` methods."""

    @classmethod
    def clauses(cls) -> list[str]:
        """The names of the contract's clauses, the ``test_*`` methods."""
        return sorted(name for name in dir(cls) if name.startswith("test_"))


class CompressorTester(_Contract):
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


def _jsonable(value: MetricValue) -> bool:
    """Whether ``value`` survives strict JSON unchanged (no NaN, no infinity, plain keys)."""
    try:
        return bool(json.loads(json.dumps(value, allow_nan=False)) == value)
    except (TypeError, ValueError):
        return False


def _kind(value: MetricValue) -> Any:
    """What a timed value must keep between measurements: its type, and its keys for a dict."""
    return sorted(value) if isinstance(value, dict) else type(value)


class MetricTester(_Contract):
    """The metric contract: a JSON-serialisable value, the same when read twice, the same from a fresh
    measurement (for timed metrics, ``workload=True`` or in seconds, a value of the same kind), and MetricUnavailable
    rather than a wrong number on a model it cannot measure.

    A subclass sets ``metric`` and implements :meth:`make_reference`, :meth:`make_compressed` and
    :meth:`data`; it may implement :meth:`unmeasurable` (a model and data the metric cannot measure).
    """

    metric: ClassVar[Metric[Any]]
    workload: ClassVar[Workload] = DEFAULT_WORKLOAD

    def make_reference(self) -> nn.Module:
        """The reference model."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_reference()")

    def make_compressed(self) -> nn.Module:
        """The model measured against the reference (default: a copy of the reference)."""
        return copy.deepcopy(self.make_reference())

    def data(self) -> list[Any]:
        """Evaluation batches, ``(inputs, targets)`` each."""
        raise NotImplementedError(f"{type(self).__name__} must implement data()")

    def unmeasurable(self) -> tuple[nn.Module, list[Any]] | None:
        """A model and its data that the metric cannot measure (default: None, the clause is skipped)."""
        return None

    def device(self) -> torch.device:
        """Where the models are measured (default: the CPU)."""
        import torch

        return torch.device("cpu")

    def _subjects(self, compressed: nn.Module, data: list[Any]) -> tuple[Subject, Subject]:
        eval_data = EvalData(data)
        reference = Subject("reference", self.make_reference(), eval_data, self.device())
        return Subject("compressed", compressed, eval_data, self.device(), reference, 0.5), reference

    def _measure(self, subject: Subject, reference: Subject) -> MetricValue:
        try:
            value: MetricValue = subject.measure(self.metric, reference, self.workload)
        except MetricUnavailable as unavailable:
            pytest.skip(f"{self.metric.name} is unavailable here: {unavailable.reason}")
        return value

    def test_value_is_json_serialisable(self) -> None:
        """The value is a number, numbers by name or a label, and strict JSON keeps it as it is."""
        value = self._measure(*self._subjects(self.make_compressed(), self.data()))
        assert _jsonable(value), f"{self.metric.name} = {value!r} does not survive strict JSON"

    def test_reads_the_same_twice(self) -> None:
        """Reading the metric again from one measured model gives the same value."""
        subject, reference = self._subjects(self.make_compressed(), self.data())
        first = self._measure(subject, reference)
        assert self._measure(subject, reference) == first, f"{self.metric.name} changed between two reads"

    def test_is_deterministic(self) -> None:
        """Measuring fresh copies again gives the same value (a timed metric: a value of the same kind)."""
        first = self._measure(*self._subjects(self.make_compressed(), self.data()))
        second = self._measure(*self._subjects(self.make_compressed(), self.data()))
        if self.metric.workload or self.metric.unit == "s":  # timed: the run, or the seconds something took
            assert _kind(first) == _kind(second), f"{self.metric.name}: {first!r} then {second!r}"
        else:
            assert first == second, f"{self.metric.name} is not deterministic: {first!r} then {second!r}"

    def test_is_unavailable_where_it_cannot_measure(self) -> None:
        """On a model it cannot measure, the metric raises MetricUnavailable instead of giving a value."""
        given = self.unmeasurable()
        if given is None:
            pytest.skip(f"no model that {self.metric.name} cannot measure was given")
        model, data = given
        eval_data = EvalData(data)
        # a compressed row against a reference row, not the reference against itself: a relative metric's
        # reference row is its identity (agreement 1) without measuring anything
        reference = Subject("reference", copy.deepcopy(model), eval_data, self.device())
        subject = Subject("unmeasurable", model, eval_data, self.device(), reference, compress_seconds=0.5)
        with pytest.raises(MetricUnavailable):
            value = subject.measure(self.metric, reference, self.workload)
            pytest.fail(f"{self.metric.name} gave {value!r} for a model it cannot measure")

    @classmethod
    def check(
        cls,
        metric: Metric[Any],
        reference: Callable[[], nn.Module],
        compressed: Callable[[], nn.Module],
        data: list[Any],
        unmeasurable: tuple[nn.Module, list[Any]] | None = None,
    ) -> list[str]:
        """Check every clause for ``metric``: AssertionError for a broken one; returns why any were skipped."""
        given_unmeasurable = unmeasurable

        class Tester(cls):  # type: ignore[valid-type, misc]
            def make_reference(self) -> nn.Module:
                return reference()

            def make_compressed(self) -> nn.Module:
                return compressed()

            def data(self) -> list[Any]:
                return data

            def unmeasurable(self) -> tuple[nn.Module, list[Any]] | None:
                return given_unmeasurable

        Tester.metric = metric
        tester, skipped = Tester(), []
        for clause in cls.clauses():
            try:
                getattr(tester, clause)()
            except pytest.skip.Exception as skip:
                skipped.append(f"{clause}: {skip.msg}")
        return skipped
