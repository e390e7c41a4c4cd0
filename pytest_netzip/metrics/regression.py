"""Regression quality from one streamed pass: errors against the targets, r2, and fidelity to the reference."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pytest_netzip.errors import MetricUnavailable
from pytest_netzip.metrics.base import metric

if TYPE_CHECKING:
    from pytest_netzip.data.regression import RegressionOutputs
    from pytest_netzip.metrics.base import Subject


def r2_score(outputs: RegressionOutputs) -> float:
    """The coefficient of determination, averaged over outputs (columns) as scikit-learn's ``r2_score`` does.

    An output whose targets are constant scores 1 if predicted exactly, else 0 (scikit-learn's ``force_finite``).
    """
    scores = [
        1.0 - float(residual) / float(spread) if spread > 0 else (1.0 if residual == 0 else 0.0)
        for residual, spread in zip(outputs.residual, outputs.spread)
    ]
    return sum(scores) / len(scores)


@metric("mae", "mean absolute error against the targets, over every output", higher_is_better=False)
def mae(subject: Subject, reference: Subject) -> float:
    """Mean absolute error."""
    outputs = subject.regression
    return outputs.absolute / outputs.scored


@metric("rmse", "root mean squared error against the targets, every output's errors pooled", higher_is_better=False)
def rmse(subject: Subject, reference: Subject) -> float:
    """Root mean squared error."""
    outputs = subject.regression
    return math.sqrt(float(outputs.residual.sum()) / outputs.scored)


@metric("r2", "coefficient of determination, averaged over outputs (1: exact, 0: the targets' mean)", unit="points")
def r2(subject: Subject, reference: Subject) -> float:
    """r2 against the targets."""
    outputs = subject.regression
    if outputs.samples < 2:
        raise MetricUnavailable("r2 needs at least two samples (one has no variance to explain)")
    return r2_score(outputs)


@metric("output_rmse_vs_reference", "root mean squared difference between this model's values and the reference's",
        higher_is_better=False, relative=True)
def output_rmse_vs_reference(subject: Subject, reference: Subject) -> float:
    """How far the values moved from the reference's (compared batch by batch, as the two models ran)."""
    outputs = subject.regression
    return math.sqrt(outputs.moved / outputs.scored)


REGRESSION_METRICS = (mae, rmse, r2, output_rmse_vs_reference)
