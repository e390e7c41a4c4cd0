"""The metric contract (:class:`MetricTester`): what every metric, built-in or a user's, must hold."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from pytest_netzip.data.batches import EvalData
from pytest_netzip.data.workload import DEFAULT_WORKLOAD, Workload
from pytest_netzip.errors import MetricUnavailable
from pytest_netzip.evaluation import Subject
from pytest_netzip.metrics import Metric, MetricValue
from pytest_netzip.testing.contract import Contract

if TYPE_CHECKING:
    import torch
    from torch import nn


def _jsonable(value: MetricValue) -> bool:
    """Whether ``value`` survives strict JSON unchanged (no NaN, no infinity, plain keys)."""
    try:
        return bool(json.loads(json.dumps(value, allow_nan=False)) == value)
    except (TypeError, ValueError):
        return False


def _kind(value: MetricValue) -> Any:
    """What a timed value must keep between measurements: its type, and its keys for a dict."""
    return sorted(value) if isinstance(value, dict) else type(value)


class MetricTester(Contract):
    """The metric contract: a JSON-serialisable value, the same when read twice, the same from a fresh
    measurement (for timed metrics, which read the ``workload`` or are in seconds, a value of the same kind),
    and MetricUnavailable rather than a wrong number on a model it cannot measure.

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
