"""A gate never passes or fails on a wrong number: non-finite outputs, declared tasks in any order, ties,
data that changes between passes, NaN example inputs, and what a record holds beside a measurement."""

from __future__ import annotations

import json

import pytest
import torch
from sklearn.metrics import accuracy_score, top_k_accuracy_score
from torch import nn

from pytest_netzip.data.batches import EvalData
from pytest_netzip.data.predictions import Predictions
from pytest_netzip.errors import DataError
from pytest_netzip.evaluation import Subject
from pytest_netzip.metrics import MetricRegistry
from pytest_netzip.metrics.accuracy import class_accuracy, topk_accuracy
from pytest_netzip.session import _same
from tests.helpers import write_test
from tests.test_robustness import ROBUST_PROJECT

#: A compressor whose model fills with ``fill`` each row of the logits whose highest is class 0: NaN and
#: equal infinite rows have argmax 0 too, so the labels, top1 and agreement stay the reference's.
POISON = """
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from pytest_netzip import Compressor


class Poisoned(nn.Module):
    def __init__(self, model, fill):
        super().__init__()
        self.model, self.fill = model, fill

    def forward(self, x):
        logits = self.model(x).clone()
        logits[logits.argmax(1) == 0] = float(self.fill)
        return logits


@dataclass(frozen=True)
class Poison(Compressor):
    name: ClassVar[str] = "poison"
    fill: str = "nan"

    def transform(self, model, ctx):
        return Poisoned(model, self.fill)
"""


#: Samples of the project's data whose highest input (and logit) is feature 0.
POISONED = (torch.randn(40, 6, generator=torch.Generator().manual_seed(0)).argmax(dim=1) == 0).sum().item()


def test_nan_logits_in_some_rows_fail_every_gate_naming_the_model(project: pytest.Pytester) -> None:
    write_test(project, POISON + """
@pytest.mark.netzip(compressors=[Poison(), Poison(fill="inf")])
@pytest.mark.accuracy_drop(max=0)
@pytest.mark.agreement(min=1.0)
def test_deployable():
    pass
""")
    result = project.runpytest("--netzip")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        f"*netzip: poison returns NaN or infinite outputs for {POISONED} of 40 samples*",
        f"*netzip: poison(fill='inf') returns NaN or infinite outputs for {POISONED} of 40 samples*",
    ])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_a_reference_with_infinite_logits_fails_naming_the_reference(project: pytest.Pytester) -> None:
    write_test(project, POISON + """
@pytest.fixture(scope="session")
def netzip_model(netzip_model):
    return Poisoned(netzip_model, "-inf").eval()


@pytest.mark.netzip(compressors=["fp16"])
@pytest.mark.agreement(min=1.0)
def test_deployable():
    pass
""")
    result = project.runpytest("--netzip")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*netzip: reference returns NaN or infinite outputs for {POISONED} of 40 samples*"])


def test_a_model_that_ties_every_prediction_fails_where_argmax_would_score_its_class_order(
    project: pytest.Pytester,
) -> None:
    write_test(project, """
from torch import nn


class Tiny(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x) * 1e-12  # a float32 logit of 1e-12 is 0 in float16 (which stops at 6e-8): all tie


@pytest.fixture(scope="session")
def netzip_model(netzip_model):
    return Tiny(netzip_model).eval()


@pytest.mark.netzip(compressors=["fp16", "bf16"])
@pytest.mark.accuracy_drop(max=0.5)
def test_deployable():
    pass
""")
    result = project.runpytest("--netzip", "-rA")
    result.assert_outcomes(passed=1, failed=1)  # bf16 keeps float32's exponents
    result.stdout.fnmatch_lines([
        "*netzip: fp16 ties its highest logits on every one of its 40 samples (all equal? float16 or bfloat16 "
        "rounding tiny logits to zero, or a collapsed model)*",
        "PASSED test_model.py::test_deployable[[]bf16-cpu[]]",
    ])


class NaNScores(nn.Module):
    """A detector that finds one box per image, with a NaN score on the first image."""

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        scores = [torch.tensor([float("nan") if index == 0 else 0.5]) for index in range(len(images))]
        return [{"boxes": torch.tensor([[0.0, 0.0, 1.0, 1.0]]), "scores": score, "labels": torch.tensor([1])}
                for score in scores]


def test_a_nan_detection_score_fails_naming_the_model() -> None:
    truth = [{"boxes": torch.tensor([[0.0, 0.0, 1.0, 1.0]]), "labels": torch.tensor([1])}] * 3
    subject = Subject("nan_scores", NaNScores(), EvalData([(list(torch.zeros(3, 3, 2, 2)), truth)]), torch.device("cpu"))
    with pytest.raises(DataError, match="^nan_scores returns NaN or infinite outputs for 1 of 3 samples"):
        subject.detections  # noqa: B018 - computes them


PLAIN_THEN_DETECTION = """
@pytest.mark.netzip(compressors=["fp16"])
@pytest.mark.accuracy_drop(max=0.01)
def test_plain():
    pass


@pytest.mark.netzip(compressors=["fp16"], task="detection")
@pytest.mark.size_ratio(min=1.5)
def test_declared():
    pass
"""


@pytest.mark.parametrize("declared_first", [False, True])
def test_a_declared_task_is_judged_per_item_in_any_order(project: pytest.Pytester, declared_first: bool) -> None:
    plain, declared = PLAIN_THEN_DETECTION.split("\n\n\n")
    write_test(project, f"{declared}\n\n\n{plain}" if declared_first else PLAIN_THEN_DETECTION)
    result = project.runpytest("--netzip", "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_plain*fp16* PASSED*"])
    result.stdout.fnmatch_lines(["netzip: task='detection' was declared, but the model returns logits"])


#: Eight classes, every logit equal: each model predicts class 0 (argmax's first maximal index).
TIED = torch.zeros(50, 8)
TIED_TARGETS = torch.randint(0, 8, (50,), generator=torch.Generator().manual_seed(0))


def test_top1_breaks_ties_as_argmax_and_scikit_learn_do() -> None:
    expected = accuracy_score(TIED_TARGETS.numpy(), TIED.argmax(dim=1).numpy())
    assert expected == (TIED_TARGETS == 0).sum().item() / 50
    assert topk_accuracy(Predictions.of(TIED, TIED_TARGETS), 1) == expected
    subject = Subject("tied", nn.Identity(), EvalData([]), torch.device("cpu"))
    subject.predictions = Predictions.of(TIED, TIED_TARGETS)
    assert subject.measure(MetricRegistry()["top1"], subject) == expected
    per_class = class_accuracy(subject.predictions.labels, TIED_TARGETS)
    assert per_class == {str(label): float(label == 0) for label in TIED_TARGETS.unique().tolist()}


def test_topk_ranks_tied_logits_by_class_index() -> None:
    logits = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 2.0, 2.0, 2.0], [3.0, 1.0, 1.0, 1.0]])
    # the two highest: classes 0 and 1, then 1 and 2, then 0 and 1
    assert topk_accuracy(Predictions.of(logits, torch.tensor([1, 2, 1])), 2) == 1.0
    assert topk_accuracy(Predictions.of(logits, torch.tensor([2, 3, 2])), 2) == 0.0


@pytest.mark.parametrize("k", [1, 3])
def test_topk_matches_scikit_learn_without_ties(k: int) -> None:
    logits = torch.randn(200, 10, generator=torch.Generator().manual_seed(k))
    targets = torch.randint(0, 10, (200,), generator=torch.Generator().manual_seed(k + 1))
    expected = top_k_accuracy_score(targets.numpy(), logits.numpy(), k=k, labels=list(range(10)))
    assert topk_accuracy(Predictions.of(logits, targets), k) == pytest.approx(expected, abs=1e-12)


NOISY_DATA = """
import torch


class Noisy:
    '''The same targets every pass, inputs with fresh noise each pass (a random transform).'''

    def __init__(self, inputs, targets):
        self.inputs, self.targets, self.passes = inputs, targets, 0

    def __iter__(self):
        self.passes += 1
        noisy = self.inputs + 1e-3 * torch.randn(self.inputs.shape, generator=torch.Generator().manual_seed(self.passes))
        return iter([(noisy[i:i + 10], self.targets[i:i + 10]) for i in range(0, 40, 10)])


class Flipped(Noisy):
    '''Every other pass, each sample's features reversed (a random flip): the same values, in another order.'''

    def __iter__(self):
        self.passes += 1
        inputs = self.inputs.flip(1) if self.passes % 2 else self.inputs
        return iter([(inputs[i:i + 10], self.targets[i:i + 10]) for i in range(0, 40, 10)])


@pytest.fixture(scope="session")
def netzip_data():
    inputs = torch.randn(40, 6, generator=torch.Generator().manual_seed(0))
    return {data}


@pytest.mark.netzip(compressors=["fp16"])
@pytest.mark.agreement(min=0.5)
def test_deployable():
    pass
"""


@pytest.mark.parametrize(
    "data",
    [
        "torch.utils.data.DataLoader(list(zip(inputs, torch.zeros(40, dtype=torch.long))), batch_size=8, shuffle=True)",
        "Noisy(inputs, inputs.argmax(1))",
        "Flipped(inputs, inputs.argmax(1))",
    ],
    ids=["shuffled single class", "noise each pass", "flipped each other pass"],
)
def test_inputs_that_change_between_passes_are_refused(project: pytest.Pytester, data: str) -> None:
    write_test(project, NOISY_DATA.replace("{data}", data))
    result = project.runpytest("--netzip")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*netzip_data gave different samples to the reference and to fp16: shuffle=True, random transforms or sampling?*",
    ])
    assert not any(line.startswith("variant") for line in result.stdout.lines)  # nothing measured: no empty table


def test_example_inputs_holding_nan_are_compared_nan_aware() -> None:
    sample = torch.tensor([[float("nan"), 1.0]])
    assert _same(sample, sample.clone())
    assert _same({"x": sample, "n": float("nan")}, {"x": sample.clone(), "n": float("nan")})
    assert not _same(sample, torch.tensor([[1.0, float("nan")]]))
    assert not _same(sample, sample.double())


def test_a_nan_in_the_first_sample_is_not_a_second_example_input(project: pytest.Pytester) -> None:
    write_test(project, """
        import torch

        @pytest.fixture(scope="session")
        def netzip_data():
            inputs = torch.randn(20, 6, generator=torch.Generator().manual_seed(0))
            inputs[0, 0] = float("nan")
            return [(inputs, inputs.nan_to_num().argmax(1))]

        @pytest.mark.netzip(compressors=["fp16", "prune_l1"])
        @pytest.mark.size_ratio(min=0.9)
        @pytest.mark.compute_budget(max_ratio=1.0)
        def test_deployable():
            pass
        """)
    project.runpytest("--netzip").assert_outcomes(passed=2)


def test_accuracy_and_size_gates_record_the_sizes_the_ratio_measured(project: pytest.Pytester) -> None:
    write_test(project, """
        @pytest.mark.netzip(compressors=["fp16", "prune_l1"])
        @pytest.mark.accuracy_drop(max=0.01)
        @pytest.mark.size_ratio(min=0.9)
        def test_deployable():
            pass
        """)
    result = project.runpytest("--netzip", "--netzip-json", "out.json", "--netzip-report", "report")
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*accuracy-vs-size*")
    assert (project.path / "report" / "accuracy_vs_size_Signed_cpu.png").is_file()
    for record in json.loads((project.path / "out.json").read_text())["results"]:
        for metrics in (record["metrics"], record["reference"]["metrics"]):
            assert metrics["size_bytes"] > 0
        assert record["reference"]["metrics"]["size_bytes"] / record["metrics"]["size_bytes"] == pytest.approx(
            record["metrics"]["size_ratio"])


def test_a_robust_accuracy_is_recorded_with_the_clean_top1(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(ROBUST_PROJECT)
    write_test(pytester, """
        @pytest.mark.netzip(compressors=["prune_l1"])
        @pytest.mark.adversarial_robustness(attack="FGSM", eps=0.1, max_drop=0.05)
        def test_robust():
            pass
        """)
    pytester.runpytest("--netzip", "--netzip-json", "out.json").assert_outcomes(passed=1)
    (record,) = json.loads((pytester.path / "out.json").read_text())["results"]
    assert record["metrics"]["top1"] == record["reference"]["metrics"]["top1"] == 1.0  # a margin of 0.4 on every sample
    assert "robust_accuracy" in record["metrics"]


OFF_GRID = '''
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
from torch import nn

from pytest_netzip import Compressor


class NaNOffGrid(nn.Module):
    """NaN for inputs off the 1/8 grid of the clean data: for attacked or perturbed inputs only."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        out = self.inner(x)
        off = ((x * 8) - (x * 8).round()).abs().amax(dim=1) > 1e-4
        return torch.where(off[:, None], torch.full_like(out, float("nan")), out)


@dataclass(frozen=True)
class OffGrid(Compressor):
    name: ClassVar[str] = "offgrid"

    def transform(self, model, ctx):
        return NaNOffGrid(model)


@pytest.hookimpl(optionalhook=True)
def pytest_netzip_compressors():
    return [OffGrid]


@pytest.fixture(scope="session")
def netzip_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)).eval()


@pytest.fixture(scope="session")
def netzip_data():
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randint(1, 8, (64, 8), generator=generator) / 8
    return [(inputs, torch.randint(0, 4, (64,), generator=generator))]
'''


@pytest.mark.parametrize(
    "marker",
    ['adversarial_robustness(attack="FGSM", eps=0.05, max_drop=1.0)', "perturbation_robustness(kinds=['noise'], max_drop=1.0)"],
)
def test_nan_outputs_only_under_attack_fail_naming_the_model(pytester: pytest.Pytester, marker: str) -> None:
    pytester.makeconftest(OFF_GRID)
    pytester.makepyfile(f"""
        import pytest

        @pytest.mark.netzip(compressors=["offgrid"])
        @pytest.mark.{marker}
        def test_robust():
            pass
        """)
    result = pytester.runpytest("--netzip")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*offgrid returns NaN or infinite outputs for * of * attacked or perturbed samples*"])


def test_a_declared_task_is_judged_whatever_the_test_reads(project: pytest.Pytester) -> None:
    write_test(project, """
        @pytest.mark.netzip(compressors=["fp16"], task="detection")
        def test_empty():
            pass

        @pytest.mark.netzip(compressors=["fp16"], task="detection")
        def test_reads_no_metric(netzip_result):
            assert netzip_result.compressor == "fp16"
        """)
    result = project.runpytest("--netzip")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["netzip: task='detection' was declared, but the model returns logits"] * 2)
