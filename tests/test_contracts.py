"""Every registered built-in compressor and metric against its contract (pytest_netzip.testing), and a user's too."""

from __future__ import annotations

import itertools
import platform

import pytest
import torch
from torch import nn

from pytest_netzip.builtins import pytest_netzip_compressors, pytest_netzip_metrics
from pytest_netzip.compressors import CompressionContext, Compressor, CompressorRegistry
from pytest_netzip.metrics import Metric, MetricRegistry
from pytest_netzip.testing import CompressorTester, MetricTester
from tests.helpers import PROJECT_CONFTEST

COMPRESSORS = CompressorRegistry(pytest_netzip_compressors())
METRICS = MetricRegistry(pytest_netzip_metrics())
#: Metrics of a classifier's predictions, unavailable for a detector.
CLASSIFICATION = {
    "top1", "top5", "precision", "recall", "f1", "class_accuracy", "agreement", "negative_flip_rate",
    "performance_ratio", "robust_accuracy", "perturbation_drop", "perturbation_agreement",
}
#: Metrics of a detector's boxes, unavailable for a classifier.
DETECTION = {"map", "map50", "map_vs_reference"}


def small_cnn(batch_norm: bool = True) -> nn.Module:
    """Convolution, batch norm and linear layers: something for every built-in compressor to change."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), *([nn.BatchNorm2d(8)] if batch_norm else []), nn.ReLU(), nn.Flatten(),
        nn.Linear(8 * 8 * 8, 32), nn.ReLU(), nn.Linear(32, 10),
    ).eval()


def images(seed: int, count: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(count, 1, 8, 8, generator=generator), torch.randint(0, 10, (count,), generator=generator)


BATCHES = [images(seed) for seed in range(2)]
#: One sample: the example input, and the shape an int8 program is lowered for once (a second shape lowers again).
EXAMPLE = BATCHES[0][0][:1]
#: The least that exercises calibration and training: one batch of four samples, one epoch (Int8QAT's default).
FEW = [images(2, count=4)]


class Detector(nn.Module):
    """Two fixed boxes per image, in torchvision's format: what no classification metric can score."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        boxes = torch.tensor([[0.0, 0.0, 4.0, 4.0], [2.0, 2.0, 8.0, 8.0]]) * self.scale
        return [{"boxes": boxes, "scores": torch.tensor([0.9, 0.6]), "labels": torch.tensor([1, 2])} for _ in x]


DETECTOR_BATCHES = [
    (torch.rand(2, 1, 8, 8), [{"boxes": torch.tensor([[0.0, 0.0, 4.0, 4.0]]), "labels": torch.tensor([1])}] * 2)
]


def _compressor_params() -> list[object]:
    """Every built-in on the small CNN (int8_qat's without batch norm), and int8_qat's batch-norm folding, marked slow.

    QAT folds batch norm into the convolutions by matching some 120 exported patterns: half a minute a
    compression on two cores, and the contract compresses five times.
    """
    quick = [pytest.param(COMPRESSORS[name], name != "int8_qat", id=name) for name in COMPRESSORS]
    return [*quick, pytest.param(COMPRESSORS["int8_qat"], True, id="int8_qat-batchnorm", marks=pytest.mark.models)]


def test_the_builtins_are_what_the_plugins_own_hooks_return() -> None:
    assert list(COMPRESSORS) == list(CompressorRegistry()) and list(METRICS) == list(MetricRegistry())
    assert CompressorRegistry([]).names == [] and MetricRegistry([]).names == []  # nothing implicit


@pytest.mark.parametrize(("compressor", "batch_norm"), _compressor_params())
def test_a_builtin_compressor_keeps_the_contract(compressor: Compressor, batch_norm: bool) -> None:
    if compressor.name in {"int8_static", "int8_qat"} and platform.machine().lower() not in {"x86_64", "amd64"}:
        pytest.skip(f"{compressor.name} needs an x86 CPU")
    context = CompressionContext(
        device=torch.device("cpu"), seed=0, example_input=EXAMPLE, calibration_data=FEW, train_data=FEW,
    )
    unsupported = CompressorTester.check(compressor, lambda: small_cnn(batch_norm), EXAMPLE, context)
    if unsupported is not None:
        pytest.skip(unsupported)


@pytest.mark.parametrize("metric", [METRICS[name] for name in METRICS], ids=list(METRICS))
def test_a_builtin_metric_keeps_the_contract(metric: Metric) -> None:
    def half() -> nn.Module:
        return small_cnn().half().float()  # rounded weights: a model that differs from the reference a little

    if metric.name in DETECTION:
        skipped = MetricTester.check(metric, Detector().eval, Detector().eval, DETECTOR_BATCHES, (small_cnn(), BATCHES))
    else:
        unmeasurable = (Detector().eval(), DETECTOR_BATCHES) if metric.name in CLASSIFICATION else None
        skipped = MetricTester.check(metric, small_cnn, half, BATCHES, unmeasurable)
    # a clause skips where the metric is unavailable here (timing on a contended CPU, no energy counter): say why once
    reasons: dict[str, list[str]] = {}
    for clause, reason in (skip.split(": ", 1) for skip in skipped if not skip.startswith("test_is_unavailable")):
        reasons.setdefault(reason, []).append(clause)
    if reasons:
        pytest.skip("; ".join(f"{', '.join(clauses)} skipped: {reason}" for reason, clauses in reasons.items()))


class TestMetricTesterSubclassed(MetricTester):
    metric = METRICS["agreement"]

    def make_reference(self) -> nn.Module:
        return small_cnn()

    def data(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return BATCHES


def test_the_testers_catch_a_broken_contract() -> None:
    class Mutates(Compressor):
        name = "mutates"

        def apply(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
            with torch.no_grad():
                model[0].weight.zero_()  # the reference itself: what apply's copy would have prevented
            return model

    class TestMutates(CompressorTester):
        compressor = Mutates()
        make_model = staticmethod(small_cnn)

        def example_input(self) -> torch.Tensor:
            return BATCHES[0][0]

    with pytest.raises(AssertionError, match="mutates changed the model it was given"):
        TestMutates().test_leaves_its_input_model_untouched()
    with pytest.raises(AssertionError, match="changed nothing"):
        CompressorTester.check(type("Same", (Compressor,), {"name": "same", "transform": lambda s, m, c: m})(),
                               small_cnn, BATCHES[0][0])
    readings = itertools.count()  # not torch.rand: each model factory reseeds torch, so it would repeat itself
    drifting = Metric("drift", lambda subject, reference: float(next(readings)), "a new number at each reading")
    with pytest.raises(AssertionError, match="drift is not deterministic"):
        MetricTester.check(drifting, small_cnn, small_cnn, BATCHES)


def test_a_users_compressor_from_a_conftest_passes_the_tester(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(PROJECT_CONFTEST)
    pytester.makepyfile(test_contract='''
        import torch

        from pytest_netzip.testing import CompressorTester

        from conftest import Negate, Signed


        class TestNegate(CompressorTester):
            compressor = Negate()

            def make_model(self):
                return Signed(hidden=32).eval()

            def example_input(self):
                return torch.randn(4, 6)
    ''')
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*test_contract.py ....*"])
