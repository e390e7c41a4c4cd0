"""Detection models: mAP on hand-made boxes, targets checked, and a tiny detector project end to end."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from pytest_netzip.data.batches import EvalData
from pytest_netzip.data.detection import Detections
from pytest_netzip.data.predictions import Predictions
from pytest_netzip.errors import DataError, MetricUnavailable
from pytest_netzip.evaluation import Subject
from pytest_netzip.metrics import MetricRegistry
from pytest_netzip.metrics.detection import mean_average_precision
from tests.helpers import scripted_waits, write_test

TRUTH = [{"boxes": torch.tensor([[0.0, 0.0, 10.0, 10.0]]), "labels": torch.tensor([1])}]


def found(boxes: list[list[float]], scores: list[float], labels: list[int] | None = None) -> dict[str, torch.Tensor]:
    """One image's detections."""
    labels = [1] * len(boxes) if labels is None else labels
    return {
        "boxes": torch.tensor(boxes).reshape(-1, 4), "scores": torch.tensor(scores), "labels": torch.tensor(labels),
    }


def test_a_perfect_match_scores_one() -> None:
    assert mean_average_precision([found([[0, 0, 10, 10]], [0.9])], TRUTH) == {"map": 1.0, "map50": 1.0}


def test_a_box_with_iou_0_6_counts_at_two_of_ten_thresholds() -> None:
    # [0, 0, 10, 6] covers 60 of the 100 pixels of the truth: a hit at IoU 0.50 and 0.55 only
    values = mean_average_precision([found([[0, 0, 10, 6]], [0.9])], TRUTH)
    assert values["map"] == pytest.approx(2 / 10, abs=1e-6)
    assert values["map50"] == 1.0


def test_a_hit_and_a_near_miss_by_hand() -> None:
    # Two images: the surer detection is perfect, the other has IoU 0.6. At IoU 0.50 and 0.55 both
    # hit (AP 1); at the eight higher thresholds recall stops at 1/2 with precision 1, so 51 of
    # COCO's 101 recall points have precision 1 (AP 51/101).
    truth = TRUTH * 2
    detections = [found([[0, 0, 10, 10]], [0.9]), found([[0, 0, 10, 6]], [0.8])]
    values = mean_average_precision(detections, truth)
    assert values["map"] == pytest.approx((2 * 1 + 8 * 51 / 101) / 10, abs=1e-6)
    assert values["map50"] == 1.0


def test_a_wrong_label_and_no_detection_score_zero() -> None:
    assert mean_average_precision([found([[0, 0, 10, 10]], [0.9], [2])], TRUTH)["map"] == 0.0
    assert mean_average_precision([found([], [])], TRUTH) == {"map": 0.0, "map50": 0.0}


def test_without_ground_truth_map_is_unavailable() -> None:
    empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}]
    with pytest.raises(MetricUnavailable, match="the ground truth holds no box"):
        mean_average_precision([found([[0, 0, 10, 10]], [0.9])], empty)


def detector(label: str, detections: list[dict[str, torch.Tensor]], reference: Subject | None = None) -> Subject:
    """A subject whose detections are given rather than computed."""
    subject = Subject(label, nn.Identity(), EvalData([]), torch.device("cpu"), reference)
    subject.detections = Detections(detections, TRUTH * len(detections))
    return subject


def test_map_vs_reference() -> None:
    registry = MetricRegistry()
    reference = detector("reference", [found([[0, 0, 10, 10], [20, 20, 30, 30]], [0.9, 0.8])])
    same = detector("same", [found([[0, 0, 10, 10], [20, 20, 30, 30]], [0.7, 0.6])], reference)
    shrunk = detector("shrunk", [found([[0, 0, 10, 6], [20, 20, 30, 30]], [0.8, 0.9])], reference)
    assert same.measure(registry["map_vs_reference"], reference) == 1.0
    assert reference.measure(registry["map_vs_reference"], reference) == 1.0
    # the surer box matches, the other (IoU 0.6) at two thresholds only: above them recall 1/2 at precision 1
    assert shrunk.measure(registry["map_vs_reference"], reference) == pytest.approx((2 + 8 * 51 / 101) / 10, abs=1e-6)
    blind = detector("blind", [found([], [])])
    with pytest.raises(MetricUnavailable, match="the reference detects nothing"):
        detector("other", [found([[0, 0, 10, 10]], [0.9])], blind).measure(registry["map_vs_reference"], blind)


def test_metrics_of_the_other_task_are_unavailable_saying_why() -> None:
    registry = MetricRegistry()
    boxes = detector("detector", [found([[0, 0, 10, 10]], [0.9])])
    with pytest.raises(MetricUnavailable, match=r"^top1 needs a classification model; this model returns detections"):
        boxes.measure(registry["top1"], boxes)
    classifier = Subject("classifier", nn.Identity(), EvalData([]), torch.device("cpu"))
    classifier.predictions = Predictions.of(torch.eye(3), torch.arange(3))
    with pytest.raises(MetricUnavailable, match=r"^map needs a detection model; this model returns logits$"):
        classifier.measure(registry["map"], classifier)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ({"boxes": torch.zeros(1, 3), "labels": torch.tensor([1])}, r"image 1: boxes must be a float tensor of shape \(N, 4\)"),
        ({"boxes": torch.zeros(1, 4)}, "image 1: the dict lacks labels"),
        ({"boxes": torch.zeros(2, 4), "labels": torch.tensor([1])}, "image 1: 2 boxes but 1 labels"),
        ({"boxes": torch.zeros(1, 4), "labels": torch.tensor([0.5])}, "image 1: labels must be an integer tensor"),
        ({"boxes": torch.tensor([[5.0, 0, 1, 1]]), "labels": torch.tensor([1])}, "image 1: boxes must be .x1, y1, x2, y2. with x1 <= x2"),
        ("cat", "image 1: expected a dict with boxes, labels; got a str"),
    ],
)
def test_bad_detection_targets_are_data_errors(target: object, message: str) -> None:
    batches = [(torch.zeros(2, 3, 4, 4), [TRUTH[0], target])]
    with pytest.raises(DataError, match=f"netzip_data batch 0, {message}"):
        list(EvalData(batches))


def test_a_target_per_image() -> None:
    with pytest.raises(DataError, match="netzip_data batch 0: 2 images but 1 targets"):
        list(EvalData([(torch.zeros(2, 3, 4, 4), TRUTH)]))


#: A tiny detector repo: ``Boxer`` reads each sample's box and score (x1, y1, x2, y2, score) from its
#: input through mostly-zero weights, so fp16 and prune_l1 keep its detections; every fifth target is
#: moved away, so its map is below 1. The compressor ``stretch`` scales the boxes by 1.1 (IoU 0.83).
DETECTOR_CONFTEST = '''
import pytest
import torch
from torch import nn

from pytest_netzip import Compressor


class Boxer(nn.Module):
    def __init__(self, hidden=256):
        super().__init__()
        self.up = nn.Linear(5, hidden, bias=False)
        self.down = nn.Linear(hidden, 5, bias=False)
        with torch.no_grad():
            self.up.weight.zero_()
            self.down.weight.zero_()
            self.up.weight[:5] = torch.eye(5)
            self.down.weight[:, :5] = torch.eye(5)
            # the spare units get weights too small to move the output and larger than zero, so pruning changes it
            for spare, low, high in ((self.up.weight[5:], 5e-5, 1e-4), (self.down.weight[:, 5:], 1e-6, 2e-6)):
                spare.copy_(torch.linspace(low, high, spare.numel()).reshape(spare.shape))

    def forward(self, images):
        if isinstance(images, (list, tuple)):
            images = torch.stack(list(images))
        rows = self.down(torch.relu(self.up(images)))
        return [
            {"boxes": row[:4].reshape(1, 4), "scores": row[4:], "labels": torch.ones(1, dtype=torch.long)}
            for row in rows
        ]


class Stretch(Compressor):
    name = "stretch"

    def transform(self, model, ctx):
        with torch.no_grad():
            model.down.weight[:4] *= 1.1
        return model


@pytest.hookimpl(optionalhook=True)
def pytest_netzip_compressors():
    return [Stretch]


@pytest.fixture(scope="session")
def netzip_model():
    return Boxer().eval()


@pytest.fixture(scope="session")
def netzip_data():
    generator = torch.Generator().manual_seed(0)
    corner = torch.rand(40, 2, generator=generator) * 50
    size = torch.rand(40, 2, generator=generator) * 20 + 10
    samples = torch.cat([corner, corner + size, torch.rand(40, 1, generator=generator)], dim=1)
    truth = samples[:, :4].clone()
    truth[::5] += 100
    targets = [{"boxes": box.reshape(1, 4), "labels": torch.tensor([1])} for box in truth]
    return [(list(samples[i:i + 10]), targets[i:i + 10]) for i in range(0, 40, 10)]
'''


@pytest.fixture
def detector_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester dir holding the tiny detector repo's conftest.py."""
    pytester.makeconftest(DETECTOR_CONFTEST)
    return pytester


def test_map_drop_passes_and_fails(detector_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    scripted_waits(monkeypatch, 0.0)  # a quiet CPU, so that the latency budget is judged on a shared machine
    write_test(detector_project, """
        @pytest.mark.netzip(compressors=["fp16", "prune_l1", "stretch"])
        @pytest.mark.accuracy_drop(max=0.05, metric="map")
        @pytest.mark.size_ratio(min=0.9)
        @pytest.mark.latency_budget(p50_ms=1000)
        def test_detector(netzip_result):
            assert netzip_result.metrics["map_vs_reference"] >= 0.99
        """)
    result = detector_project.runpytest("--netzip", "--netzip-json", "out.json")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*netzip budgets of stretch on cpu: 1 of 3 failed*",
        "*accuracy_drop(max=0.05)*map drop <= 0.05*FAIL (drop 0.*)",
        "*= netzip =*",
        "Boxer on cpu*",
    ])
    records = {r["compressor"]: r for r in json.loads((detector_project.path / "out.json").read_text())["results"]}
    assert records["fp16"]["metrics"]["map"] == records["fp16"]["reference"]["metrics"]["map"] < 0.9
    assert records["prune_l1"]["metrics"]["map_vs_reference"] == 1.0
    assert records["fp16"]["metrics"]["latency_p50_ms"] > 0  # timed on one image of the list


def test_classifier_gates_on_a_detector_skip_saying_why(detector_project: pytest.Pytester) -> None:
    write_test(detector_project, """
        @pytest.mark.netzip(compressors=["fp16"])
        @pytest.mark.accuracy_drop(max=0.01)
        def test_detector():
            pass
        """)
    result = detector_project.runpytest("--netzip", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*netzip cannot measure top1 (top1 needs a classification model; this model returns detections*"])


def test_the_task_keyword(detector_project: pytest.Pytester) -> None:
    write_test(detector_project, """
        @pytest.mark.netzip(compressors=["fp16"], task="detection")
        @pytest.mark.accuracy_drop(max=0.01, metric="map50")
        def test_detector():
            pass

        @pytest.mark.netzip(compressors=["prune_l1"], task="classification")
        @pytest.mark.size_ratio(min=0.9)
        def test_as_classifier():
            pass
        """)
    result = detector_project.runpytest("--netzip")
    result.assert_outcomes(passed=1, failed=1)  # each test's declaration judged for that test alone
    result.stdout.fnmatch_lines(["*netzip: task='classification' was declared, but the model returns detections*"])
    write_test(detector_project, """
        @pytest.mark.netzip(compressors=["prune_l1"], task="classification")
        @pytest.mark.accuracy_drop(max=0.01)
        def test_as_classifier():
            pass
        """)
    result = detector_project.runpytest("--netzip")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*netzip: task='classification' was declared, but the model returns detections*"])


def test_an_unknown_task_is_a_usage_error(detector_project: pytest.Pytester) -> None:
    write_test(detector_project, """
        @pytest.mark.netzip(compressors=["fp16"], task="detector")
        @pytest.mark.size_ratio(min=1)
        def test_detector():
            pass
        """)
    result = detector_project.runpytest("--netzip")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*test_detector: @pytest.mark.netzip(task=...): unknown task 'detector': did you mean 'detection'? "
        "(valid: classification, detection, language_modeling, regression, segmentation)",
    ])
