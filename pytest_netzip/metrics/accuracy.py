"""Classification quality from one streamed pass: top-k, macro P/R/F1, agreement, flips."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_netzip.data.predictions import confusion_matrix
from pytest_netzip.errors import MetricUnavailable
from pytest_netzip.metrics.base import metric

if TYPE_CHECKING:
    import torch

    from pytest_netzip.data.predictions import Predictions
    from pytest_netzip.metrics.base import Subject


def share(mask: torch.Tensor) -> float:
    """The share of true values in a boolean tensor, exact in float64."""
    return mask.sum().item() / mask.numel()


def topk_accuracy(predictions: Predictions, k: int) -> float:
    """Share of samples whose target is among the ``k`` highest logits.

    Tied logits rank by class index, lowest first, as ``argmax`` breaks ties: so top-1 is the accuracy of
    the labels that agreement, flips and P/R/F1 count. (scikit-learn's ``top_k_accuracy_score`` ranks ties
    highest index first instead.)
    """
    if predictions.num_classes <= k:
        raise MetricUnavailable(f"top{k} needs more than {k} classes, the model has {predictions.num_classes}")
    return share(predictions.ranks < k)


def _per_class(predicted: torch.Tensor, targets: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, ...]:
    """Precision, recall and F1 per class that occurs in targets or predictions (scikit-learn's macro)."""
    import torch

    matrix = confusion_matrix(predicted, targets, num_classes).double()
    true_positive = matrix.diagonal()
    predicted_count, actual_count = matrix.sum(dim=0), matrix.sum(dim=1)
    present = (predicted_count + actual_count) > 0
    precision = torch.where(predicted_count > 0, true_positive / predicted_count.clamp(min=1), 0.0)
    recall = torch.where(actual_count > 0, true_positive / actual_count.clamp(min=1), 0.0)
    total = precision + recall
    f1 = torch.where(total > 0, 2 * precision * recall / total.clamp(min=1e-300), 0.0)
    return precision[present], recall[present], f1[present]


def macro_precision(predicted: torch.Tensor, targets: torch.Tensor, num_classes: int) -> float:
    """Unweighted mean over classes of TP / (TP + FP); 0 for a class never predicted."""
    return _per_class(predicted, targets, num_classes)[0].mean().item()


def macro_recall(predicted: torch.Tensor, targets: torch.Tensor, num_classes: int) -> float:
    """Unweighted mean over classes of TP / (TP + FN)."""
    return _per_class(predicted, targets, num_classes)[1].mean().item()


def macro_f1(predicted: torch.Tensor, targets: torch.Tensor, num_classes: int) -> float:
    """Unweighted mean over classes of the harmonic mean of precision and recall."""
    return _per_class(predicted, targets, num_classes)[2].mean().item()


def class_accuracy(predicted: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """Accuracy within each class present in ``targets``, keyed by the class index."""
    return {
        str(label): share(predicted[targets == label] == label)
        for label in targets.unique().tolist()  # type: ignore[no-untyped-call]  # torch leaves Tensor.unique unannotated
    }


@metric("top1", "share of samples whose highest logit is the target", unit="share")
def top1(subject: Subject, reference: Subject) -> float:
    """Top-1 accuracy."""
    return topk_accuracy(subject.predictions, 1)


@metric("top5", "share of samples whose target is among the five highest logits", unit="share")
def top5(subject: Subject, reference: Subject) -> float:
    """Top-5 accuracy."""
    return topk_accuracy(subject.predictions, 5)


@metric("precision", "macro-averaged precision over classes", unit="share")
def precision(subject: Subject, reference: Subject) -> float:
    """Macro precision."""
    p = subject.predictions
    return macro_precision(p.labels, p.targets, p.num_classes)


@metric("recall", "macro-averaged recall over classes", unit="share")
def recall(subject: Subject, reference: Subject) -> float:
    """Macro recall."""
    p = subject.predictions
    return macro_recall(p.labels, p.targets, p.num_classes)


@metric("f1", "macro-averaged F1 score over classes", unit="share")
def f1(subject: Subject, reference: Subject) -> float:
    """Macro F1."""
    p = subject.predictions
    return macro_f1(p.labels, p.targets, p.num_classes)


@metric("class_accuracy", "top-1 accuracy within each class", unit="share")
def per_class_accuracy(subject: Subject, reference: Subject) -> dict[str, float]:
    """Accuracy per class."""
    return class_accuracy(subject.predictions.labels, subject.predictions.targets)


@metric(
    "agreement", "share of samples where the top-1 prediction equals the reference's", unit="share", relative=True
)
def agreement(subject: Subject, reference: Subject) -> float:
    """Agreement with the reference."""
    return share(subject.predictions.labels == reference.predictions.labels)


@metric(
    "negative_flip_rate",
    "share of samples the reference gets right and this model gets wrong",
    unit="share",
    higher_is_better=False,
    relative=True,
)
def negative_flip_rate(subject: Subject, reference: Subject) -> float:
    """Negative flips."""
    targets = subject.predictions.targets
    flipped = (reference.predictions.labels == targets) & (subject.predictions.labels != targets)
    return share(flipped)


@metric("performance_ratio", "top-1 accuracy relative to the reference's (NetZIP's P)", relative=True)
def performance_ratio(subject: Subject, reference: Subject) -> float:
    """Compressed over reference top-1."""
    reference_top1 = reference.measure(top1, reference)
    if reference_top1 == 0:
        raise MetricUnavailable("the reference's top1 is 0, so the ratio is undefined")
    return subject.measure(top1, reference) / reference_top1


ACCURACY_METRICS = (
    top1,
    top5,
    precision,
    recall,
    f1,
    per_class_accuracy,
    agreement,
    negative_flip_rate,
    performance_ratio,
)
