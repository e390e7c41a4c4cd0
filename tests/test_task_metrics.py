"""The metrics of regression, segmentation and language models on hand-computed cases and against independent tools."""

from __future__ import annotations

import gc
import math
import weakref
from typing import Any, ClassVar

import pytest
import torch
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from torch import nn
from torch.utils._pytree import tree_leaves
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from pytest_netzip.data.batches import EvalData
from pytest_netzip.data.language import TokenOutputs
from pytest_netzip.data.predictions import Predictions
from pytest_netzip.data.scoring import predict
from pytest_netzip.errors import DataError, WrongTask
from pytest_netzip.evaluation import Subject
from pytest_netzip.results import evaluate

CPU = torch.device("cpu")
LANGUAGE = ("perplexity", "token_accuracy", "token_agreement", "kl_divergence")
SEGMENTATION = ("miou", "pixel_accuracy", "pixel_agreement")
REGRESSION = ("mae", "rmse", "r2", "output_rmse_vs_reference")


class Fixed(nn.Module):
    """Returns the stored output of each sample whose index is its input (a float column, so never token ids)."""

    outputs: torch.Tensor

    def __init__(self, outputs: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("outputs", outputs)

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        return self.outputs[index.long().flatten()]


class Shifted(nn.Module):
    """Returns its input plus ``amount``."""

    def __init__(self, amount: float) -> None:
        super().__init__()
        self.amount = amount

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.amount


def indices(count: int) -> torch.Tensor:
    """The inputs of ``Fixed``: sample indices as a float column."""
    return torch.arange(count, dtype=torch.float32)[:, None]


def softmax(*logits: float) -> list[float]:
    """A softmax by hand."""
    total = sum(math.exp(value) for value in logits)
    return [math.exp(value) / total for value in logits]


def kl(p: list[float], q: list[float]) -> float:
    """KL(p || q) by hand, in nats."""
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


# One sequence, three positions, vocabulary 3; the last position's target is -100, so its logits (huge) do
# not count. Reference probabilities at position 0: 1/6, 2/6, 3/6 (target 2: 1/2, top-1 right); at position 1:
# 4/6, 1/6, 1/6 (target 1: 1/6, top-1 wrong). Compressed: 1/4, 1/4, 2/4 (1/2, right; agrees) and 1/4, 2/4, 1/4
# (1/2, right; disagrees with the reference's 0).
REFERENCE_LOGITS = torch.tensor([[[0.0, math.log(2), math.log(3)], [math.log(4), 0.0, 0.0], [50.0, 0.0, 0.0]]])
COMPRESSED_LOGITS = torch.tensor([[[0.0, 0.0, math.log(2)], [0.0, math.log(2), 0.0], [0.0, 50.0, 0.0]]])
TOKEN_TARGETS = torch.tensor([[2, 1, -100]])


def test_language_metrics_by_hand() -> None:
    values = evaluate(Fixed(REFERENCE_LOGITS), Fixed(COMPRESSED_LOGITS), [(indices(1), TOKEN_TARGETS)], LANGUAGE)
    reference, compressed = values["reference"], values["compressed"]
    assert reference["perplexity"] == pytest.approx(math.exp((-math.log(1 / 2) - math.log(1 / 6)) / 2))  # sqrt(12)
    assert compressed["perplexity"] == pytest.approx(2.0)
    assert reference["token_accuracy"] == 0.5
    assert compressed["token_accuracy"] == 1.0
    assert reference["token_agreement"] == 1.0
    assert compressed["token_agreement"] == 0.5
    assert reference["kl_divergence"] == pytest.approx(0.0, abs=1e-7)
    by_hand = (kl(softmax(0, math.log(2), math.log(3)), softmax(0, 0, math.log(2)))
               + kl(softmax(math.log(4), 0, 0), softmax(0, math.log(2), 0))) / 2
    assert compressed["kl_divergence"] == pytest.approx(by_hand)
    assert by_hand != pytest.approx((kl([1 / 4, 1 / 4, 2 / 4], [1 / 6, 2 / 6, 3 / 6])
                                     + kl([1 / 4, 2 / 4, 1 / 4], [4 / 6, 1 / 6, 1 / 6])) / 2)  # the other way


def test_huggingface_labels_are_shifted_as_its_own_loss_shifts_them() -> None:
    ids = torch.tensor([[0, 2, 1]])  # labels == input_ids: the logits at t are scored against the token at t + 1

    class OnIds(nn.Module):
        def forward(self, input_ids: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"logits": REFERENCE_LOGITS.expand(len(input_ids), 3, 3)}

    batch = {"input_ids": ids, "labels": ids}
    values = evaluate(OnIds(), OnIds(), [batch], LANGUAGE)["reference"]
    # the loss of HuggingFace's causal LMs: the last position's logits and the first token dropped
    hf_loss = nn.functional.cross_entropy(REFERENCE_LOGITS[:, :-1].reshape(-1, 3), ids[:, 1:].reshape(-1))
    assert values["perplexity"] == pytest.approx(math.exp(float(hf_loss)))
    assert values["perplexity"] == pytest.approx(math.sqrt(12))  # targets 2 and 1 at positions 0 and 1, by hand
    assert values["token_accuracy"] == 0.5
    outputs, inferred = predict(OnIds(), EvalData([batch]), CPU)
    assert isinstance(outputs, TokenOutputs) and outputs.shifted and outputs.tokens == 2
    assert inferred == "language_modeling"


def test_ignored_positions_and_shifted_labels_together() -> None:
    ids = torch.tensor([[0, 2, 1, 1]])
    labels = torch.tensor([[0, 2, -100, 1]])  # the ids wherever scored: shifted, and position 1 -> 2 not scored
    logits = torch.randn(1, 4, 3, generator=torch.Generator().manual_seed(0))

    class OnIds(nn.Module):
        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            return logits.expand(len(input_ids), 4, 3)

    values = evaluate(OnIds(), OnIds(), [{"input_ids": ids, "labels": labels}], ["perplexity", "token_accuracy"])
    log_probs = torch.log_softmax(logits[0], dim=-1)
    nll = -(log_probs[0, 2] + log_probs[2, 1])  # positions 0 -> 2 and 2 -> 1
    assert values["reference"]["perplexity"] == pytest.approx(math.exp(float(nll) / 2), rel=1e-6)
    correct = int(log_probs[0].argmax() == 2) + int(log_probs[2].argmax() == 1)
    assert values["reference"]["token_accuracy"] == correct / 2


def test_no_scored_token_makes_the_language_metrics_unavailable() -> None:
    values = evaluate(Fixed(REFERENCE_LOGITS), Fixed(REFERENCE_LOGITS), [(indices(1), torch.full((1, 3), -100))],
                      LANGUAGE)
    assert values["compressed"]["perplexity"] == "unavailable: no token is scored: every target is -100"


# Two 2x3 masks (rows: target, columns: predicted; 255 and -100 not scored): class 0 has 3 pixels right, class
# 1 4 right and 1 predicted 2, class 2 2 right. Pixel accuracy 9/10; IoU 3/3, 4/(4 + 1), 2/(2 + 1).
PREDICTED = torch.tensor([[[0, 0, 1], [1, 2, 2]], [[2, 2, 0], [0, 1, 1]]])
MASKS = torch.tensor([[[0, 0, 1], [1, 1, 255]], [[2, 2, 0], [-100, 1, 1]]])


def one_hot(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """Per-pixel logits whose argmax is ``labels``."""
    return nn.functional.one_hot(labels, classes).permute(0, 3, 1, 2).float()


def test_segmentation_metrics_by_hand() -> None:
    swapped = PREDICTED.clone()
    swapped[PREDICTED == 0], swapped[PREDICTED == 1] = 1, 0
    compressed = Fixed(one_hot(swapped, 3))
    values = evaluate(Fixed(one_hot(PREDICTED, 3)), compressed, [(indices(2), MASKS)], SEGMENTATION)
    assert values["reference"]["miou"] == pytest.approx((1 + 4 / 5 + 2 / 3) / 3)
    assert values["reference"]["pixel_accuracy"] == pytest.approx(9 / 10)
    assert values["reference"]["pixel_agreement"] == 1.0
    # swapped: class 0 (3 pixels) predicted 1, class 1 (5 pixels) predicted 0 except one 2: IoU 0, 0, 2/3
    assert values["compressed"]["miou"] == pytest.approx((0 + 0 + 2 / 3) / 3)
    assert values["compressed"]["pixel_accuracy"] == pytest.approx(2 / 10)
    assert values["compressed"]["pixel_agreement"] == pytest.approx(3 / 10)


def test_a_class_absent_from_targets_and_predictions_is_left_out_of_miou() -> None:
    # classes 3 and 4 are never predicted nor present: miou stays that of classes 0, 1 and 2
    values = evaluate(Fixed(one_hot(PREDICTED, 5)), Fixed(one_hot(PREDICTED, 5)), [(indices(2), MASKS)], ["miou"])
    assert values["reference"]["miou"] == pytest.approx((1 + 4 / 5 + 2 / 3) / 3)


def test_with_more_than_255_classes_255_is_a_class() -> None:
    predicted = torch.tensor([[[255, 0, 255]]])
    values = evaluate(Fixed(one_hot(predicted, 256)), Fixed(one_hot(predicted, 256)),
                      [(indices(1), torch.tensor([[[255, 0, 0]]]))], ["pixel_accuracy", "miou"])
    assert values["reference"]["pixel_accuracy"] == pytest.approx(2 / 3)  # every pixel scored
    assert values["reference"]["miou"] == pytest.approx((1 / 2 + 1 / 2) / 2)  # classes 0 and 255: 1/2 each


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_segmentation_metrics_match_torchmetrics(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    classes = 6  # class 5 appears nowhere, class 4 only in the predictions
    logits = torch.randn(6, classes, 5, 7, generator=generator)
    logits[:, 5] = -10.0
    masks = torch.randint(0, 4, (6, 5, 7), generator=generator)
    masks[torch.rand(6, 5, 7, generator=generator) < 0.2] = 255
    batches = [(indices(6)[:4], masks[:4]), (indices(6)[4:], masks[4:])]
    values = evaluate(Fixed(logits), Fixed(logits), batches, ["miou", "pixel_accuracy"])["reference"]
    predicted = logits.argmax(dim=1)
    jaccard = MulticlassJaccardIndex(num_classes=classes, average="macro", ignore_index=255)
    accuracy = MulticlassAccuracy(num_classes=classes, average="micro", ignore_index=255)
    assert values["miou"] == pytest.approx(float(jaccard(predicted, masks)), rel=1e-6)
    assert values["pixel_accuracy"] == pytest.approx(float(accuracy(predicted, masks)), rel=1e-6)


def test_regression_matches_scikit_learn_with_a_constant_column() -> None:
    generator = torch.Generator().manual_seed(0)
    targets = torch.randn(20, 3, generator=generator, dtype=torch.float64)
    targets[:, 2] = 4.0  # constant: scikit-learn scores it 1 if predicted exactly, else 0
    values = targets + 0.3 * torch.randn(20, 3, generator=generator, dtype=torch.float64)
    exact = values.clone()
    exact[:, 2] = 4.0
    for predicted in (values, exact):
        batches = [(predicted[:12].float(), targets[:12]), (predicted[12:].float(), targets[12:])]
        result = evaluate(nn.Identity(), Shifted(0.5), batches, REGRESSION)
        as_float = predicted.float().double().numpy()  # the model's values are float32
        assert result["reference"]["r2"] == pytest.approx(r2_score(targets.numpy(), as_float), rel=1e-6)
        assert result["reference"]["mae"] == pytest.approx(mean_absolute_error(targets.numpy(), as_float), rel=1e-6)
        assert result["reference"]["rmse"] == pytest.approx(math.sqrt(mean_squared_error(targets.numpy(), as_float)),
                                                            rel=1e-6)
        shifted = as_float + 0.5
        assert result["compressed"]["r2"] == pytest.approx(r2_score(targets.numpy(), shifted), rel=1e-6)
        assert result["compressed"]["output_rmse_vs_reference"] == pytest.approx(0.5)
        assert result["reference"]["output_rmse_vs_reference"] == 0.0
    assert r2_score(targets.numpy(), exact.numpy()) > r2_score(targets.numpy(), values.numpy())  # 1 vs 0 for column 2


def test_regression_on_one_output_by_hand() -> None:
    # values 1, 2, 3, 4 against targets 1, 2, 3, 6: errors 0, 0, 0, -2; mean 3, squares about it 4 + 1 + 0 + 9
    x = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    result = evaluate(nn.Identity(), Shifted(-1.0), [(x, torch.tensor([1.0, 2.0, 3.0, 6.0]))], REGRESSION)
    assert result["reference"] == pytest.approx({"mae": 0.5, "rmse": 1.0, "r2": 1 - 4 / 14,
                                                 "output_rmse_vs_reference": 0.0})
    # shifted by -1: errors -1, -1, -1, -3: mae 6/4, rmse sqrt(12/4), r2 1 - 12/14
    assert result["compressed"] == pytest.approx({"mae": 1.5, "rmse": math.sqrt(3), "r2": 1 - 12 / 14,
                                                  "output_rmse_vs_reference": 1.0})


def test_output_rmse_vs_reference_by_hand() -> None:
    reference = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    compressed = torch.tensor([[1.0, 2.5], [2.0, 4.0]])  # differences 0, 0.5, -1, 0: sqrt(1.25 / 4)
    result = evaluate(Fixed(reference), Fixed(compressed), [(indices(2), torch.zeros(2, 2))],
                      ["output_rmse_vs_reference", "mae"])
    assert result["compressed"]["output_rmse_vs_reference"] == pytest.approx(math.sqrt(1.25 / 4))
    assert result["compressed"]["mae"] == pytest.approx((1 + 2.5 + 2 + 4) / 4)


def test_integer_targets_with_one_value_each_need_the_task_declared() -> None:
    x = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    data = [(x, torch.tensor([1, 2, 3, 6]))]
    with pytest.raises(DataError, match="Declare task='regression'"):
        evaluate(nn.Identity(), nn.Identity(), data, ["mae"])
    assert evaluate(nn.Identity(), nn.Identity(), data, ["mae"], task="regression")["reference"]["mae"] == 0.5


def test_a_metric_of_another_task_is_unavailable() -> None:
    x = torch.tensor([[1.0], [2.0]])
    values = evaluate(nn.Identity(), nn.Identity(), [(x, torch.tensor([1.0, 2.0]))], ["top1", "miou", "perplexity"])
    assert values["compressed"] == {
        "top1": "unavailable: top1 needs a classification model; this model returns values",
        "miou": "unavailable: miou needs a segmentation model; this model returns values",
        "perplexity": "unavailable: perplexity needs a language modeling model; this model returns values",
    }


def test_evaluate_reads_a_custom_target_key_and_output() -> None:
    class Boxed(nn.Module):
        def forward(self, features: torch.Tensor, scale: torch.Tensor) -> tuple[str, dict[str, torch.Tensor]]:
            return "ignored", {"values": features * scale}

    batch = {"features": torch.tensor([[1.0], [2.0]]), "scale": torch.ones(2, 1), "y": torch.tensor([1.0, 4.0])}
    values = evaluate(Boxed(), Boxed(), [batch], ["mae"], target_key="y", output=lambda out: out[1]["values"])
    assert values["reference"]["mae"] == pytest.approx(1.0)


class Tracked(torch.Tensor):
    """A tensor whose descendants (views, copies, results computed from it) are all remembered, weakly."""

    made: ClassVar[list[weakref.ref[torch.Tensor]]] = []

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        result = super().__torch_function__(func, types, args, kwargs or {})  # type: ignore[no-untyped-call]  # unannotated in torch
        for leaf in tree_leaves(result):
            if isinstance(leaf, Tracked):
                cls.made.append(weakref.ref(leaf))
        return result


class Random(nn.Module):
    """Returns random logits of ``shape`` per sample, as tracked tensors."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.randn(len(x), *self.shape).as_subclass(Tracked)
        Tracked.made.append(weakref.ref(logits))
        return logits


def alive_batches(shape: tuple[int, ...]) -> list[torch.Tensor]:
    """The tracked tensors still alive that are as large as a batch of four outputs of ``shape``."""
    gc.collect()
    batch_bytes = 4 * math.prod(shape) * 4  # one batch's float32 outputs
    with torch._C.DisableTorchFunctionSubclass():
        return [tensor for made in Tracked.made if (tensor := made()) is not None and tensor.nbytes >= batch_bytes]


@pytest.mark.parametrize(("shape", "targets"), [
    ((16, 50), lambda: torch.randint(0, 50, (4, 16))),  # language modelling: (positions, vocabulary)
    ((5, 8, 8), lambda: torch.randint(0, 5, (4, 8, 8))),  # segmentation: (classes, height, width)
    ((50,), lambda: torch.randint(0, 50, (4,))),  # classification: 40 x 50 logits
    ((6,), lambda: torch.randn(4, 6)),  # regression: six values per sample
], ids=["language_modeling", "segmentation", "classification", "regression"])
def test_evaluation_keeps_no_batch_of_outputs(shape: tuple[int, ...], targets: Any) -> None:
    batches = [(torch.randn(4, 3), targets()) for _ in range(10)]
    Tracked.made.clear()
    outputs, _ = predict(Random(shape), EvalData(batches), CPU)
    assert not alive_batches(shape)  # while the outputs live: nothing holds a batch of the model's outputs
    assert outputs.samples == 40


def test_whole_outputs_are_kept_only_when_a_metric_reads_them() -> None:
    batches = [(torch.randn(4, 3), torch.randint(0, 50, (4,))) for _ in range(10)]
    subject = Subject("model", Random((50,)), EvalData(batches), CPU)
    Tracked.made.clear()
    assert subject.predictions.samples == 40
    assert not alive_batches((50,))
    logits = subject.logits  # the control: what the tracking finds when the logits are kept
    assert logits.shape == (40, 50)
    assert alive_batches((50,))
    assert subject.logits is logits  # one more pass, once


def test_a_metric_reads_the_logits_and_values_of_every_sample() -> None:
    inputs = torch.randn(10, 4, generator=torch.Generator().manual_seed(0))
    head = nn.Linear(4, 3)
    classifier = Subject("classifier", head, EvalData([(inputs[:6], torch.zeros(6, dtype=torch.long)),
                                                      (inputs[6:], torch.ones(4, dtype=torch.long))]), CPU)
    with torch.no_grad():
        torch.testing.assert_close(classifier.logits, head(inputs))
    assert torch.equal(classifier.logits.argmax(dim=1), classifier.predictions.labels)
    with pytest.raises(AttributeError, match="Predictions keep no logits.*reads subject.logits"):
        classifier.predictions.logits  # noqa: B018 - an attribute of the first version, gone
    regressor = Subject("regressor", head, EvalData([(inputs, torch.zeros(10, 3))]), CPU)
    with torch.no_grad():
        torch.testing.assert_close(regressor.values, head(inputs).double())
    with pytest.raises(WrongTask, match="needs a classification model; this model returns values"):
        regressor.logits  # noqa: B018


def test_reading_every_output_needs_the_same_samples_again() -> None:
    class Shuffled:
        """Other noise on every pass."""

        def __iter__(self) -> Any:
            yield torch.randn(8, 4), torch.zeros(8, dtype=torch.long)

    subject = Subject("classifier", nn.Linear(4, 3), EvalData(Shuffled()), CPU)
    assert subject.predictions.samples == 8
    with pytest.raises(DataError, match=r"other samples on a second pass \(shuffle=True\?\)"):
        subject.logits  # noqa: B018


# Targets of a narrow integer dtype.


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16, torch.int32], ids=str)
def test_segmentation_masks_of_any_integer_dtype_score_alike(dtype: torch.dtype) -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 21, 6, 6, generator=generator)  # 21 classes, as VOC's
    masks = torch.randint(0, 21, (4, 6, 6), generator=generator)
    masks[0, 0] = 255
    wide = evaluate(Fixed(logits), Fixed(logits), [(indices(4), masks)], ["miou", "pixel_accuracy"])
    narrow = evaluate(Fixed(logits), Fixed(logits), [(indices(4), masks.to(dtype))], ["miou", "pixel_accuracy"])
    assert narrow == wide  # uint8 masks (VOC's PNGs) overflow targets * classes in the confusion matrix


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16], ids=str)
def test_class_indices_of_any_integer_dtype_score_alike(dtype: torch.dtype) -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(40, 6, generator=generator)
    targets = torch.randint(0, 6, (40,), generator=generator)
    wide = evaluate(Fixed(logits), Fixed(logits), [(indices(40), targets)], ["top1", "f1"])
    narrow = evaluate(Fixed(logits), Fixed(logits), [(indices(40), targets.to(dtype))], ["top1", "f1"])
    assert narrow == wide  # now: RuntimeError: gather(): Expected dtype int32/int64 for index, from top1


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16], ids=str)
def test_token_targets_of_any_integer_dtype_score_alike(dtype: torch.dtype) -> None:
    logits = torch.randn(2, 5, 7, generator=torch.Generator().manual_seed(0))
    targets = torch.randint(0, 7, (2, 5), generator=torch.Generator().manual_seed(1))
    wide = evaluate(Fixed(logits), Fixed(logits), [(indices(2), targets)], ["perplexity"])
    narrow = evaluate(Fixed(logits), Fixed(logits), [(indices(2), targets.to(dtype))], ["perplexity"])
    assert narrow == wide  # now: DataError "evaluating reference on cpu failed: RuntimeError: gather(): ..."


def test_the_training_loss_of_each_task_is_what_netzip_scores() -> None:
    import torch.nn.functional as F

    from pytest_netzip.data.losses import task_loss

    logits, classes = torch.randn(4, 3), torch.tensor([0, 2, 1, 1], dtype=torch.uint8)
    assert torch.allclose(task_loss(logits, classes, None), F.cross_entropy(logits, classes.long()))
    values, floats = torch.randn(4, 1), torch.randn(4)
    assert torch.allclose(task_loss(values, floats, None), F.mse_loss(values[:, 0], floats))
    pixels, masks = torch.randn(2, 3, 4, 4), torch.randint(0, 3, (2, 4, 4), dtype=torch.uint8)
    masks[:, 0] = 255  # not scored, as in the metrics
    expected = F.cross_entropy(pixels, masks.long().masked_fill(masks == 255, -100), ignore_index=-100)
    assert torch.allclose(task_loss(pixels, masks, None), expected)
    tokens, ids = torch.randn(2, 5, 7), torch.randint(0, 7, (2, 5))
    shifted = F.cross_entropy(tokens[:, :-1].reshape(-1, 7), ids[:, 1:].reshape(-1))  # HuggingFace-style labels
    assert torch.allclose(task_loss(tokens, ids, {"input_ids": ids}), shifted)
    assert torch.allclose(task_loss(tokens, ids, None), F.cross_entropy(tokens.reshape(-1, 7), ids.reshape(-1)))


def test_the_first_batch_decides_whether_labels_are_shifted() -> None:
    class Bigram(nn.Module):
        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.one_hot(input_ids, 5).float()

    ids = torch.tensor([[1, 2, 3, 4]])
    masked = torch.tensor([[-100, 2, -100, -100]])  # one scored position that kept its token, as MLM batches do
    shifted = [{"input_ids": ids, "labels": ids}, {"input_ids": ids, "labels": masked}]
    metrics = ["perplexity"]
    with pytest.raises(DataError, match="batch 1: its targets repeat the input ids wherever they are scored, but "
                                        "the first batch's targets do not repeat them"):
        evaluate(Bigram(), Bigram(), [{"input_ids": ids, "labels": torch.tensor([[2, 3, 4, -100]])}, shifted[0]],
                 metrics=metrics)
    assert isinstance(evaluate(Bigram(), Bigram(), shifted, metrics=metrics)["compressed"]["perplexity"], float)


def test_targets_that_cannot_be_judged_fail_naming_the_batch() -> None:
    regressor = nn.Linear(4, 1).eval()
    inputs, values = torch.rand(6, 4), torch.rand(6)
    values[2] = float("nan")
    with pytest.raises(DataError, match="batch 0: the targets hold NaN or infinite values"):
        evaluate(regressor, regressor, [(inputs, values)], metrics=["mae"])
    segmenter = nn.Conv2d(3, 4, 1).eval()
    masks = torch.randint(0, 4, (2, 5, 5)).float()  # as ToTensor() gives them
    with pytest.raises(DataError, match=r"class maps, an integer tensor: use \.long\(\)"):
        evaluate(segmenter, segmenter, [(torch.rand(2, 3, 5, 5), masks)], metrics=["miou"])
    depth = nn.Conv2d(3, 1, 1).eval()  # one value per pixel, integer targets: not a one-class segmentation
    pixels, levels = torch.rand(2, 3, 5, 5), torch.randint(0, 9, (2, 5, 5))
    with pytest.raises(DataError, match="one channel per pixel is no segmentation"):
        evaluate(depth, depth, [(pixels, levels)], metrics=["mae"])
    assert evaluate(depth, depth, [(pixels, levels)], metrics=["mae"], task="regression")["compressed"]["mae"] > 0
    one = evaluate(regressor, regressor, [(inputs[:1], torch.rand(1))], metrics=["r2"])
    assert one["compressed"]["r2"] == "unavailable: r2 needs at least two samples (one has no variance to explain)"


def test_empty_batches_are_scored_as_no_samples_and_only_empty_ones_are_an_error() -> None:
    x = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    y = torch.tensor([1.0, 2.0, 3.0, 6.0])
    batches = [(x[:0], y[:0]), (x[:2], y[:2]), (x[2:2], y[2:2]), (x[2:], y[2:])]
    assert evaluate(nn.Identity(), nn.Identity(), batches, ["mae", "r2"], task="regression")["reference"] == \
        pytest.approx({"mae": 0.5, "r2": 1 - 4 / 14})
    with pytest.raises(DataError, match=r"netzip_data yielded 2 batch\(es\), every one empty"):
        evaluate(nn.Identity(), nn.Identity(), [(x[:0], y[:0])] * 2, ["mae"], task="regression")


def test_old_readings_of_kept_outputs_say_where_they_went() -> None:
    subject = Subject("regressor", nn.Identity(), EvalData([(torch.tensor([[1.0], [2.0]]), torch.ones(2))]), CPU)
    with pytest.raises(AttributeError, match="keep sums, not values.*reads subject.values"):
        subject.regression.values  # noqa: B018 - an attribute of the first version, gone
    given = Subject("given", nn.Identity(), EvalData([]), CPU)
    given.predictions = Predictions.of(torch.eye(3), torch.arange(3))
    with pytest.raises(DataError, match="the outputs of given were given, not computed from netzip_data"):
        given.logits  # noqa: B018
