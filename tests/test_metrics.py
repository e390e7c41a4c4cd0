"""Every metric on hand-computed cases, and macro P/R/F1 against scikit-learn's reference."""

from __future__ import annotations

import copy
import io
import zlib

import pytest
import torch
from sklearn.metrics import precision_recall_fscore_support
from torch import nn

from pytest_netzip.data.batches import EvalData
from pytest_netzip.data.predictions import Predictions
from pytest_netzip.data.workload import Workload
from pytest_netzip.errors import MetricUnavailable
from pytest_netzip.evaluation import Subject
from pytest_netzip.metrics import Metric, MetricRegistry, metric
from pytest_netzip.metrics.accuracy import (
    class_accuracy,
    confusion_matrix,
    macro_f1,
    macro_precision,
    macro_recall,
    topk_accuracy,
)
from pytest_netzip.metrics.combined import overall_success
from pytest_netzip.metrics.size import (
    count_nonzero_params,
    count_params,
    deflated_size,
    serialized_state_dict,
)
from pytest_netzip.results import evaluate

# Four samples, three classes: predicted 0, 2, 1, 0 for targets 0, 1, 1, 2.
LOGITS = torch.tensor([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0], [1.0, 3.0, 2.0], [3.0, 1.0, 2.0]])
TARGETS = torch.tensor([0, 1, 1, 2])
PREDICTED = torch.tensor([0, 2, 1, 0])


def test_topk_accuracy() -> None:
    assert topk_accuracy(Predictions.of(LOGITS, TARGETS), 1) == 2 / 4
    assert topk_accuracy(Predictions.of(LOGITS, TARGETS), 2) == 4 / 4  # each target is among the two highest


def test_topk_needs_more_classes_than_k() -> None:
    with pytest.raises(MetricUnavailable, match="top5 needs more than 5 classes, the model has 3"):
        topk_accuracy(Predictions.of(LOGITS, TARGETS), 5)


def test_confusion_matrix() -> None:
    assert confusion_matrix(PREDICTED, TARGETS, 3).tolist() == [[1, 0, 0], [0, 1, 1], [1, 0, 0]]


def test_macro_precision_recall_f1_by_hand() -> None:
    # class 0: P 1/2 R 1/1; class 1: P 1/1 R 1/2; class 2: P 0/1 R 0/1
    assert macro_precision(PREDICTED, TARGETS, 3) == pytest.approx((0.5 + 1 + 0) / 3)
    assert macro_recall(PREDICTED, TARGETS, 3) == pytest.approx((1 + 0.5 + 0) / 3)
    assert macro_f1(PREDICTED, TARGETS, 3) == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)


@pytest.mark.parametrize("seed", range(5))
def test_macro_metrics_match_scikit_learn(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, 7, (200,), generator=generator)
    predicted = torch.where(torch.rand(200, generator=generator) < 0.6, targets, torch.randint(0, 9, (200,), generator=generator))
    expected = precision_recall_fscore_support(targets, predicted, average="macro", zero_division=0)[:3]
    measured = (macro_precision(predicted, targets, 9), macro_recall(predicted, targets, 9), macro_f1(predicted, targets, 9))
    assert measured == pytest.approx(expected)


def test_class_accuracy_covers_the_classes_present() -> None:
    assert class_accuracy(PREDICTED, TARGETS) == {"0": 1.0, "1": 0.5, "2": 0.0}


def subjects(reference_logits: torch.Tensor, logits: torch.Tensor) -> tuple[Subject, Subject]:
    """Two subjects whose predictions are given rather than computed."""
    made = []
    for label, values in (("reference", reference_logits), ("compressed", logits)):
        subject = Subject(label, nn.Identity(), EvalData([]), torch.device("cpu"))
        subject.predictions = Predictions.of(values, TARGETS)
        made.append(subject)
    return made[0], made[1]


def test_agreement_negative_flips_and_performance_ratio() -> None:
    registry = MetricRegistry()
    # the compressed model predicts 0, 1, 1, 0: it fixes sample 1 and keeps the rest
    reference, compressed = subjects(LOGITS, torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 1, 0], [1, 0, 0]]))
    assert compressed.measure(registry["agreement"], reference) == 3 / 4
    assert compressed.measure(registry["negative_flip_rate"], reference) == 0.0
    assert compressed.measure(registry["performance_ratio"], reference) == pytest.approx((3 / 4) / (2 / 4))
    # the other way round, the fixed sample is a negative flip
    assert reference.measure(registry["negative_flip_rate"], compressed) == 1 / 4
    assert reference.measure(registry["agreement"], reference) == 1.0


def test_performance_ratio_is_unavailable_for_a_useless_reference() -> None:
    reference, compressed = subjects(torch.tensor([[0, 1.0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0]]), LOGITS)
    with pytest.raises(MetricUnavailable, match="the reference's top1 is 0"):
        compressed.measure(MetricRegistry()["performance_ratio"], reference)


def test_parameter_counts_and_sparsity() -> None:
    model = nn.Linear(4, 2)  # 8 weights + 2 biases
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 1, 0, 2], [0, 0, 0, 3]]))
        model.bias.zero_()
    assert count_params(model) == 10
    assert count_nonzero_params(model) == 3
    registry = MetricRegistry()
    subject = Subject("m", model, EvalData([]), torch.device("cpu"))
    assert subject.measure(registry["sparsity"], subject) == pytest.approx(0.7)


def test_sizes_are_the_bytes_torch_save_writes() -> None:
    model = nn.Linear(64, 64)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    data = serialized_state_dict(model)
    assert len(data) == len(buffer.getvalue())
    assert deflated_size(data) == len(zlib.compress(buffer.getvalue(), 6))
    with torch.no_grad():
        model.weight.zero_()
    assert deflated_size(serialized_state_dict(model)) < deflated_size(data) / 2  # zeros deflate away


def test_size_ratio_of_a_half_precision_copy() -> None:
    registry = MetricRegistry()
    reference_model = nn.Linear(256, 256)
    reference = Subject("reference", reference_model, EvalData([]), torch.device("cpu"))
    half = Subject("half", nn.Linear(256, 256).half(), EvalData([]), torch.device("cpu"))
    assert half.measure(registry["size_ratio"], reference) == pytest.approx(2.0, rel=0.01)
    assert reference.measure(registry["size_ratio"], reference) == 1.0


def test_evaluate_without_pytest() -> None:
    model = nn.Linear(6, 6)
    data = [(torch.randn(8, 6), torch.randint(0, 6, (8,))) for _ in range(3)]
    measured = evaluate(model, copy.deepcopy(model).half().float(), data, metrics=["agreement", "top5", "size_ratio"])
    assert measured["compressed"]["agreement"] == 1.0
    assert measured["compressed"]["top5"] == measured["reference"]["top5"]
    assert measured["reference"]["size_ratio"] == 1.0


def test_evaluate_reports_an_unavailable_metric() -> None:
    model = nn.Linear(3, 3)
    measured = evaluate(model, model, [(torch.randn(4, 3), torch.zeros(4, dtype=torch.long))], metrics=["top5"])
    assert measured["compressed"]["top5"] == "unavailable: top5 needs more than 5 classes, the model has 3"


def test_evaluate_leaves_the_models_as_they_were() -> None:
    reference, compressed = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5)), nn.Linear(3, 3)
    reference.train()
    evaluate(reference, compressed, [(torch.randn(4, 3), torch.zeros(4, dtype=torch.long))], metrics=["top1"])
    assert reference.training and compressed.training


def test_ocs_combines_the_ratios_measured() -> None:
    ratios = {"performance_ratio": 0.99, "speedup": 2.0, "size_ratio": 4.0}
    assert overall_success(ratios) == pytest.approx(0.99 * (-0.01 + 1.0 + 3.0))
    assert overall_success(ratios, (1.0, 0.0, 1.0, 1.0)) == pytest.approx(0.99 * (-0.01 + 3.0))
    assert overall_success({**ratios, "efficiency_ratio": 0.5}) == pytest.approx(0.99 * (-0.01 + 1.0 + 3.0 - 0.5))
    with pytest.raises(MetricUnavailable, match="OCS needs performance_ratio"):
        overall_success({"speedup": 2.0})


def test_a_tables_ocs_name_their_ratios_where_the_variants_differ() -> None:
    from pytest_netzip.output.tables import render_tables, variant_summaries

    def record(test: str, compressor: str, metrics: dict) -> dict:
        return {"test": test, "model": "M", "device": "cpu", "compressor": compressor, "metrics": metrics,
                "reference": {"metrics": {"top1": 1.0}}, "budgets": []}

    records = [
        record("test_size[fp16]", "fp16", {"top1": 0.9, "size_ratio": 2.0}),
        record("test_size[int8]", "int8", {"top1": 0.8, "size_ratio": 4.0}),
    ]
    summaries = {variant["compressor"]: variant for variant in variant_summaries(records)}
    assert summaries["fp16"]["ocs_ratios"] == summaries["int8"]["ocs_ratios"] == ["performance_ratio", "size_ratio"]
    assert "ocs_ratios" not in summaries["reference"]
    [table] = render_tables(records, MetricRegistry())
    assert "(P,C)" not in table and "ocs (P,S,C,E)" not in table  # the same ratios: nothing to say

    records.append(record("test_speed[fp16]", "fp16", {"speedup": 3.0}))  # int8's latency item skipped, say
    summaries = {variant["compressor"]: variant for variant in variant_summaries(records)}
    assert summaries["fp16"]["metrics"]["ocs"] == pytest.approx(0.9 * (-0.1 + 2.0 + 1.0))
    assert summaries["fp16"]["ocs_ratios"] == ["performance_ratio", "speedup", "size_ratio"]
    [table] = render_tables(records, MetricRegistry())
    rows = {line.split()[0]: line for line in table.splitlines()[3:5]}
    assert rows["fp16"].endswith(" 2.61 (P,S,C)") and rows["int8"].endswith(" 2.24 (P,C)")
    assert table.endswith("; ocs (P,S,C,E): which of the performance, speedup, compression and efficiency ratios "
                          "it combines, as the variants differ")


def test_what_comes_free_with_a_measurement() -> None:
    registry = MetricRegistry()
    assert registry.derived(["top1"]) == ["compress_seconds"]  # no ratio beside it: no P
    assert registry.derived(["top1", "size_ratio"]) == ["performance_ratio", "compress_seconds"]
    assert registry.derived(["latency_p95_ms"]) == [  # one timing loop; speedup needs another
        "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "latency_mean_ms", "throughput_per_s", "cpu_pressure",
        "compress_seconds",
    ]
    assert registry.derived(["speedup"]) == [
        "speedup", "speedup_interval", "speedup_cpu_pressure", "compress_seconds",
    ]
    assert registry.derived(["robust_accuracy"]) == [  # read against the clean top1
        "top1", "robust_accuracy", "attack_mode", "attack_detail", "attack_seconds", "compress_seconds",
    ]


def test_ocs_of_a_variant_combines_the_ratios_of_all_its_items() -> None:
    from pytest_netzip.output.tables import variant_summaries

    def record(test: str, metrics: dict, reference: dict) -> dict:
        return {"test": test, "model": "M", "device": "cpu", "compressor": "fp16", "metrics": metrics,
                "reference": {"metrics": reference}, "budgets": []}

    records = [
        record("test_z_size", {"top1": 0.9, "performance_ratio": 0.9, "size_ratio": 2.0}, {"top1": 1.0}),
        record("test_a_speed", {"speedup": 0.5}, {"speedup": 1.0}),
    ]
    merged = {variant["compressor"]: variant["metrics"] for variant in variant_summaries(records)}
    assert merged["fp16"]["ocs"] == pytest.approx(0.9 * (-0.1 + -0.5 + 1.0))  # P (P - 1 + S - 1 + C - 1)
    assert merged["reference"]["ocs"] == 0.0
    assert variant_summaries(records, (1.0, 0.0, 1.0, 0.0))[1]["metrics"]["ocs"] == pytest.approx(0.9 * (-0.1 + 1.0))
    # an item that could not measure (None) does not hide what another item of the variant measured
    records.append(record("test_zz_blur", {"top1": None, "size_ratio": None, "speedup": 0.8}, {"top1": None}))
    merged = {variant["compressor"]: variant["metrics"] for variant in variant_summaries(records)}
    assert (merged["fp16"]["top1"], merged["fp16"]["size_ratio"], merged["fp16"]["speedup"]) == (0.9, 2.0, 0.8)
    assert merged["reference"]["top1"] == 1.0


def test_a_metric_names_the_parts_of_the_measurement_it_reads() -> None:
    reference, compressed = subjects(LOGITS, LOGITS)

    @metric("samples", "evaluation samples")
    def samples(subject: Subject) -> float:  # neither the reference nor the workload
        return float(subject.predictions.samples)

    @metric("batch", "the workload's batch size")
    def batch(workload: Workload, subject: Subject) -> float:  # any order
        return float(workload.batch_size)

    assert samples.arguments == ("subject",) and not samples.workload
    assert batch.arguments == ("workload", "subject") and batch.workload
    assert compressed.measure(samples, reference) == 4.0
    # a metric that reads the workload is kept per workload; one that does not, once
    assert compressed.measure(batch, reference, Workload(batch_size=8)) == 8.0
    assert compressed.measure(batch, reference, Workload(batch_size=2)) == 2.0
    assert compressed.measured("samples", Workload(batch_size=8)) == 4.0


def test_a_metric_asking_for_anything_else_is_refused_when_defined() -> None:
    with pytest.raises(TypeError, match=r"metric 'm': compute takes, by name, any of subject, reference, workload; "
                                        r"it also asks for 'model', 'ref'"):
        metric("m", "a typo")(lambda model, ref: 0.0)
    assert metric("m", "a default is left alone")(lambda subject, scale=2.0: scale).arguments == ("subject",)


def test_a_metric_takes_its_parts_by_name_only() -> None:
    for compute in (lambda *parts: 0.0, lambda subject, **more: 0.0):
        with pytest.raises(TypeError, match=r"it also asks for '(\*parts|\*\*more)'"):
            metric("m", "parts it cannot name")(compute)
    with pytest.raises(TypeError, match="positional argument"):
        Metric("m", lambda subject: 0.0, "d", "share")  # what follows the description is keyword-only
