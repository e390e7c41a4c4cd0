"""Built-in compressors: same inputs as the reference, the reference untouched, the promised effect."""

from __future__ import annotations

import copy
import dataclasses
import json
import warnings
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
from torch import nn

from pytest_netzip import (
    BF16,
    FP16,
    CompressionContext,
    CompressionError,
    Compressor,
    CompressorUnsupported,
    Int8Dynamic,
    Int8QAT,
    Int8Static,
    PruneL1,
    PruneRandom,
    PruneStructured,
)
from pytest_netzip.compressors import BUILTIN_COMPRESSORS, CompressorRegistry
from pytest_netzip.metrics.size import count_nonzero_params, serialized_state_dict
from tests.helpers import PROJECT_CONFTEST, second_folder

CALIBRATION = [
    (torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(i)), torch.zeros(8, dtype=torch.long)) for i in range(2)
]
CONTEXT = CompressionContext(
    device=torch.device("cpu"), seed=0, example_input=torch.rand(1, 1, 8, 8), train_data=CALIBRATION,
    calibration_data=CALIBRATION,
)


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 32), nn.ReLU(), nn.Linear(32, 10)
    ).eval()


@pytest.mark.parametrize("compressor_type", BUILTIN_COMPRESSORS, ids=lambda kind: kind.name)
def test_a_compressor_takes_the_reference_inputs_and_leaves_it_untouched(compressor_type: type[Compressor]) -> None:
    model = small_cnn()
    before = copy.deepcopy(model.state_dict())
    inputs = torch.rand(4, 1, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation warning may reach the user
        try:
            compressed = compressor_type().apply(model, CONTEXT)
        except CompressorUnsupported as unsupported:  # a GPU-only compressor on this CPU: says why
            assert "needs a CUDA GPU" in str(unsupported)
            pytest.skip(str(unsupported))
        with torch.inference_mode():
            outputs, reference_outputs = compressed(inputs), model(inputs)
    assert outputs.dtype == torch.float32 and outputs.shape == reference_outputs.shape
    if compressor_type is not PruneRandom:  # random pruning may change any prediction
        assert (outputs.argmax(1) == reference_outputs.argmax(1)).float().mean() >= 0.75
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())
    assert not compressed.training


@pytest.mark.parametrize(("compressor", "ratio"), [(FP16(), 2.0), (BF16(), 2.0), (Int8Dynamic(), 3.0)])
def test_lower_precision_shrinks_the_state_dict(compressor: Compressor, ratio: float) -> None:
    model = small_cnn()
    compressed = compressor.apply(model, CONTEXT)
    assert len(serialized_state_dict(model)) / len(serialized_state_dict(compressed)) >= ratio * 0.9


@pytest.mark.parametrize("compressor_type", [PruneL1, PruneRandom])
@pytest.mark.parametrize("amount", [0.5, 0.8])
def test_pruning_zeroes_the_requested_share_of_weights(compressor_type: type[Compressor], amount: float) -> None:
    model = small_cnn()
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    biases = sum(m.bias.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    compressed = compressor_type(amount=amount).apply(model, CONTEXT)
    assert count_nonzero_params(compressed) == pytest.approx(round(weights * (1 - amount)) + biases, abs=1)
    assert not any(name.endswith("_orig") for name in compressed.state_dict())  # pruning made permanent


def test_l1_pruning_removes_the_smallest_weights_across_layers() -> None:
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.1, 0.2], [0.3, 0.4]]))
        model[1].weight.copy_(torch.tensor([[5.0, 6.0], [7.0, 8.0]]))
    compressed = PruneL1(amount=0.5).apply(model, CONTEXT)
    assert compressed[0].weight.count_nonzero() == 0 and compressed[1].weight.count_nonzero() == 4


def test_random_pruning_is_seeded_and_leaves_the_global_generator_alone() -> None:
    model = small_cnn()
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first = PruneRandom().apply(model, CONTEXT)
    assert torch.equal(torch.rand(1), expected_next)
    second = PruneRandom().apply(model, CONTEXT)
    other_seed = PruneRandom().apply(model, CompressionContext(device=torch.device("cpu"), seed=1))
    assert torch.equal(first[0].weight, second[0].weight)
    assert not torch.equal(first[0].weight, other_seed[0].weight)


def test_pruning_a_model_without_layers_names_the_problem() -> None:
    with pytest.raises(CompressionError, match="Sequential has no Conv or Linear layer to prune"):
        PruneL1().apply(nn.Sequential(nn.ReLU()), CONTEXT)


@pytest.mark.parametrize("amount", [-0.1, 1.0])
def test_an_impossible_amount_is_refused(amount: float) -> None:
    with pytest.raises(ValueError, match=r"prune_l1: amount must be in \[0, 1\)"):
        PruneL1(amount=amount)


def test_a_user_compressor_is_named_by_its_parameters_and_wraps_its_errors() -> None:
    @dataclass(frozen=True)
    class Scale(Compressor):
        name: ClassVar[str] = "scale"
        factor: float = 2.0

        def transform(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
            if self.factor < 0:
                raise ValueError("negative factor")
            with torch.no_grad():
                for parameter in model.parameters():
                    parameter.mul_(self.factor)
            return model

    assert (Scale().id, Scale(factor=3.0).id, str(PruneL1(amount=0.75))) == (
        "scale", "scale(factor=3.0)", "prune_l1(amount=0.75)"
    )
    model = nn.Linear(2, 2)
    assert torch.equal(Scale().apply(model, CONTEXT).weight, model.weight * 2)
    raised = r"compressor scale\(factor=-1\) failed on Linear: ValueError: negative factor"
    with pytest.raises(CompressionError, match=raised + r" \(at tests/test_compressors.py:\d+, in transform\)"):
        Scale(factor=-1).apply(model, CONTEXT)


def test_the_registry_resolves_names_and_suggests_close_ones() -> None:
    registry = CompressorRegistry()
    assert registry.resolve("prune_l1") == PruneL1()
    assert registry.resolve(PruneL1(amount=0.9)) == PruneL1(amount=0.9)
    with pytest.raises(LookupError, match="unknown compressor 'fp61': did you mean 'fp16'?"):
        registry.resolve("fp61")
    with pytest.raises(TypeError, match="not a Compressor"):
        CompressorRegistry([object()])


def test_a_pipeline_applies_its_steps_in_order_and_is_named_by_them() -> None:
    from pytest_netzip import Pipeline

    model = small_cnn()
    pipeline = Pipeline(PruneL1(amount=0.5), FP16())
    assert pipeline.id == "prune_l1+fp16"
    assert CompressorRegistry().resolve("prune_l1 + fp16") == pipeline
    compressed = pipeline.apply(model, CONTEXT)
    weights = [parameter for parameter in compressed.parameters() if parameter.ndim > 1]
    assert all(weight.dtype == torch.float16 for weight in weights)  # the last step's precision
    zeros = sum(int((weight == 0).sum()) for weight in weights) / sum(weight.numel() for weight in weights)
    assert zeros == pytest.approx(0.5, abs=0.01)  # the first step's zeros survived the cast
    assert len(serialized_state_dict(compressed)) < 0.6 * len(serialized_state_dict(model))
    with pytest.raises(TypeError, match="Pipeline takes one or more Compressor objects"):
        Pipeline("prune_l1")


def test_lowrank_factors_layers_exactly_at_their_rank_and_only_where_it_saves() -> None:
    from pytest_netzip import LowRank

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.Linear(64, 3))
    with torch.no_grad():  # rank-4 conv and rank-3 linear weights: their factors are exact
        model[0].weight.copy_((torch.randn(32, 4) @ torch.randn(4, 16 * 9)).reshape(32, 16, 3, 3))
        model[2].weight.copy_(torch.randn(64, 3) @ torch.randn(3, 32 * 4 * 4))
    inputs = torch.randn(2, 16, 4, 4)
    context = CompressionContext(device=torch.device("cpu"), example_input=inputs[:1])
    factored = LowRank(energy=0.999999).apply(model, context)
    assert torch.allclose(factored(inputs), model(inputs), atol=1e-3)
    assert [type(layer).__name__ for layer in factored] == ["Sequential", "Flatten", "Sequential", "Linear"]
    assert [layer.out_channels for layer in factored[0]] == [16, 4, 32]  # squeeze (the input mode is full rank), core, expand
    assert factored[2][0].out_features == 3  # the 64x3 output layer would not get smaller: left whole
    assert sum(p.numel() for p in factored.parameters()) < sum(p.numel() for p in model.parameters()) / 4
    assert LowRank(rank=2).apply(model, context)[2][0].out_features == 2
    with pytest.raises(ValueError, match=r"lowrank: energy must be in \(0, 1\]"):
        LowRank(energy=0)
    with pytest.raises(CompressorUnsupported, match="factored no layer of Sequential"):
        LowRank().apply(nn.Sequential(nn.Linear(2, 2)), CompressionContext(device=torch.device("cpu")))


def test_static_int8_saves_int8_weights_and_runs_any_batch_size() -> None:
    model = small_cnn()
    quantized = Int8Static().apply(model, CONTEXT)
    weights = [parameter for parameter in quantized.parameters() if parameter.dtype == torch.int8]
    assert len(weights) == 3 and all(not parameter.requires_grad for parameter in weights)
    assert sum(p.numel() for p in quantized.parameters()) == sum(p.numel() for p in model.parameters())
    assert len(serialized_state_dict(model)) / len(serialized_state_dict(quantized)) >= 3.0  # measured: 3.21
    with torch.inference_mode():
        for batch in (1, 5):
            inputs = torch.rand(batch, 1, 8, 8)
            torch.testing.assert_close(quantized(inputs), model(inputs), atol=0.05, rtol=0.1)


def test_static_int8_says_where_it_does_not_apply() -> None:
    on_cuda = CompressionContext(device=torch.device("cuda"), calibration_data=CALIBRATION)
    with pytest.raises(CompressorUnsupported, match="int8_static runs oneDNN int8 kernels on x86 CPUs only, not on cuda"):
        Int8Static().apply(small_cnn(), on_cuda)
    no_batches = CompressionContext(device=torch.device("cpu"), example_input=torch.rand(1, 1, 8, 8), calibration_data=[])
    with pytest.raises(CompressionError, match="int8_static: netzip_calibration_data yielded no batches"):
        Int8Static().apply(small_cnn(), no_batches)

    class Meta(nn.Module):  # torch.export's graph nodes have a .meta: a submodule of that name is lost in capture
        def __init__(self) -> None:
            super().__init__()
            self.meta = nn.Linear(64, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.meta(x.flatten(1))

    with pytest.raises(CompressionError, match="torch.export could not capture Meta: .* references nonexistent "
                                               "attribute weight of meta .*a submodule named 'meta'.*: rename it"):
        Int8Static().apply(Meta().eval(), CONTEXT)


def test_quantisation_aware_training_is_seeded_and_needs_training_data() -> None:
    data = [(torch.rand(8, 1, 8, 8), torch.randint(0, 10, (8,))) for _ in range(3)]
    context = CompressionContext(device=torch.device("cpu"), seed=3, example_input=data[0][0][:1], train_data=data)
    qat = Int8QAT(epochs=2, lr=0.01)
    first, second = qat.apply(small_cnn(), context), qat.apply(small_cnn(), context)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    untrained = Int8QAT(epochs=2, lr=1e-9).apply(small_cnn(), context)  # a step this small moves no int8 weight
    trained_weights = [p for p in first.parameters() if p.dtype == torch.int8]
    untrained_weights = [p for p in untrained.parameters() if p.dtype == torch.int8]
    assert any(not torch.equal(a, b) for a, b in zip(trained_weights, untrained_weights))
    assert qat.id == "int8_qat(epochs=2, lr=0.01)"
    with pytest.raises(CompressionError, match="int8_qat needs training data: define a session fixture netzip_train_data"):
        Int8QAT().apply(small_cnn(), CompressionContext(device=torch.device("cpu"), example_input=data[0][0][:1]))
    with pytest.raises(ValueError, match="int8_qat: epochs must be a whole number >= 1"):
        Int8QAT(epochs=0)


@pytest.mark.models
@pytest.mark.parametrize(("architecture", "ratio"), [("resnet18", 3.8), ("mobilenet_v2", 3.5)])
def test_static_int8_quarters_torchvision_models(architecture: str, ratio: float) -> None:
    torchvision = pytest.importorskip("torchvision")

    model = getattr(torchvision.models, architecture)().eval()
    calibration = [(torch.rand(4, 3, 224, 224), torch.zeros(4)) for _ in range(2)]
    context = CompressionContext(device=torch.device("cpu"), example_input=torch.rand(1, 3, 224, 224),
                                 calibration_data=calibration)
    quantized = Int8Static().apply(model, context)
    # measured: ResNet-18 46.8 MB -> 11.8 MB (3.97x, the NetZIP paper: 44.7 -> 11.3); MobileNetV2 3.73x
    assert len(serialized_state_dict(model)) / len(serialized_state_dict(quantized)) >= ratio
    assert quantized(torch.rand(1, 3, 224, 224)).shape == (1, 1000)


@pytest.mark.models
def test_lowrank_shrinks_resnet18() -> None:
    torchvision = pytest.importorskip("torchvision")
    from pytest_netzip import LowRank

    model = torchvision.models.resnet18().eval()
    context = CompressionContext(device=torch.device("cpu"), example_input=torch.rand(1, 3, 224, 224))
    factored = LowRank(energy=0.6).apply(model, context)
    assert len(serialized_state_dict(model)) / len(serialized_state_dict(factored)) >= 2.5  # measured: 3.05
    assert factored(torch.rand(1, 3, 224, 224)).shape == (1, 1000)


DISTILLED = """
import pytest
import torch
from torch import nn

from pytest_netzip import Distill


def linear_student(reference):
    return nn.Linear(6, 6, bias=False)


{train_data}

@pytest.mark.netzip(compressors=[Distill(student=linear_student, epochs=5, lr=0.05)])
@pytest.mark.accuracy_drop(max=0.1)
@pytest.mark.size_ratio(min=10)
def test_student():
    pass
"""

TRAIN_DATA = """
@pytest.fixture(scope="session")
def netzip_train_data():
    inputs = torch.randn(200, 6, generator=torch.Generator().manual_seed(1))
    return [(inputs[i:i + 20], inputs[i:i + 20].argmax(dim=1)) for i in range(0, 200, 20)]
"""


def test_distillation_trains_a_student_on_the_training_data_and_reports_progress(project: pytest.Pytester) -> None:
    project.makepyfile(test_model=DISTILLED.format(train_data=TRAIN_DATA))
    result = project.runpytest("--netzip", "--netzip-json", "out.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["netzip: distill(student=linear_student, lr=0.05): epoch 5/5, loss *"])
    (record,) = json.loads((project.path / "out.json").read_text())["results"]
    metrics = record["metrics"]
    assert record["reference"]["metrics"]["top1"] == 0.9
    assert metrics["top1"] == pytest.approx(0.85, abs=0.03)  # trained (seeded): 34 of 40, give or take a sample
    assert metrics["performance_ratio"] == pytest.approx(metrics["top1"] / 0.9)
    assert metrics["size_ratio"] == pytest.approx(15, rel=0.05)  # 36 weights for 6144, and torch.save's overhead


def test_distillation_without_training_data_says_what_to_define(project: pytest.Pytester) -> None:
    project.makepyfile(test_model=DISTILLED.format(train_data=""))
    result = project.runpytest("--netzip")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*distill(student=linear_student, lr=0.05) needs training data: define a session fixture "
        "netzip_train_data returning (inputs, targets) batches, as netzip_data does*",
    ])


def test_distillation_is_seeded() -> None:
    from pytest_netzip import Distill

    data = [(torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))) for _ in range(3)]
    context = CompressionContext(device=torch.device("cpu"), seed=3, train_data=data)
    distill = Distill(student=lambda reference: nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), epochs=2)
    first, second = distill.apply(small_cnn(), context), distill.apply(small_cnn(), context)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    assert distill.id == "distill(student=<lambda>, epochs=2)"
    with pytest.raises(ValueError, match="distill: epochs must be a whole number >= 1"):
        Distill(student=small_cnn, epochs=0)


STATIC = """
import pytest
from pytest_netzip import Compressor, CompressorUnsupported


class GpuOnly(Compressor):
    name = "gpu_only"

    def transform(self, model, ctx):
        raise CompressorUnsupported("gpu_only needs a GPU")


@pytest.mark.netzip(compressors=["int8_static", GpuOnly()])
@pytest.mark.accuracy_drop(max=0.05)
@pytest.mark.size_ratio(min=1.5)  # measured: 1.75, per-channel scales weigh on 6 weights a channel
def test_static(netzip_result):
    pass
"""


def test_static_int8_calibrates_on_the_evaluation_data_by_default_and_unsupported_compressors_skip(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(test_model=STATIC)
    result = project.runpytest("--netzip", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines([
        "netzip: int8_static: calibrated on 40 samples",  # all of netzip_data: fewer than 256 samples
        "SKIPPED [[]1[]] * gpu_only needs a GPU",
    ])
    result.stdout.fnmatch_lines(["variant * top1 * size_bytes * size_ratio *", "reference * 0.9000 * kB * 1 *",
                                 "int8_static * 0.9000 * kB (0.57x) * 1.75 *"], consecutive=True)


def test_static_int8_calibrates_on_netzip_calibration_data(project: pytest.Pytester) -> None:
    project.makeconftest(PROJECT_CONFTEST + """
@pytest.fixture(scope="session")
def netzip_calibration_data():
    return [(torch.randn(12, 6), None)]
""")
    project.makepyfile(test_model=STATIC.replace(', GpuOnly()', ''))
    result = project.runpytest("--netzip")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["netzip: int8_static: calibrated on 12 samples"])
    # the size does not hang on the (unseeded) calibration samples; top1 may, within the budget
    result.stdout.fnmatch_lines(["variant * top1 * size_bytes * size_ratio *", "reference * 0.9000 * kB * 1 *",
                                 "int8_static * 0.* * kB (0.57x) * 1.75 *"], consecutive=True)


def test_each_folder_calibrates_on_its_own_netzip_data(project: pytest.Pytester) -> None:
    """The default netzip_calibration_data reads the netzip_data of the test's folder: a session-scoped default was
    made once, from the first folder's, and the zoo's segmenter was calibrated on an LSTM's token ids."""
    project.makepyfile(test_model=STATIC.replace(', GpuOnly()', ''))
    small = second_folder(project, "small", """
        @pytest.fixture(scope="session")
        def netzip_data():
            inputs = torch.randn(20, 6, generator=torch.Generator().manual_seed(1))
            return [(inputs[:10], inputs[:10].argmax(dim=1)), (inputs[10:], inputs[10:].argmax(dim=1))]
        """)
    (small / "test_small.py").write_text(STATIC.replace(', GpuOnly()', ''))
    result = project.runpytest("--netzip", "test_model.py", "small")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["netzip: int8_static: calibrated on 40 samples",
                                 "netzip: int8_static: calibrated on 20 samples"])
    result.stdout.fnmatch_lines(["Signed (small) on cpu*", "variant * top1 *", "reference * 1.0000 *",
                                 "int8_static * 1.0000 *"], consecutive=True)


def test_structured_pruning_keeps_only_the_output_layer_whole_every_time() -> None:
    """Which layers make the output is found once per compression; a freed hidden tensor's reused address must not
    make a hidden layer look like the output (it did: one compression in five kept ``Linear(16, 16)`` whole)."""
    from pytest_netzip.compressors.prune import PruneStructured

    def mlp() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4)
        ).eval()

    context = CompressionContext(device=torch.device("cpu"), example_input=torch.rand(4, 6))
    shapes = {
        tuple(layer.out_features for layer in PruneStructured(amount=0.5).apply(mlp(), context) if isinstance(layer, nn.Linear))
        for _ in range(40)
    }
    assert shapes == {(8, 8, 8, 4)}


def test_structured_pruning_keeps_the_classes_of_a_head_whose_output_a_function_resizes() -> None:
    """A segmentation model's output is ``F.interpolate`` of its classifier's: that layer's channels are the
    classes, and stay (they were pruned, 3 classes to 2, and the items skipped)."""
    from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large

    from pytest_netzip.compressors.prune import PruneStructured
    from pytest_netzip.data.batches import BatchFormat

    torch.manual_seed(0)
    model = deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=3).eval()
    images = torch.rand(1, 3, 64, 64)
    context = CompressionContext(device=torch.device("cpu"), example_input=images,
                                 format=BatchFormat(output=lambda output: output["out"]))
    pruned = PruneStructured().apply(model, context)
    assert pruned(images)["out"].shape == (1, 3, 64, 64)
    assert pruned.classifier[-1].out_channels == 3 and pruned.classifier[-1].in_channels < 256
    assert count_nonzero_params(pruned) < 0.6 * count_nonzero_params(model)  # measured: 0.49


def test_structured_pruning_that_torch_pruning_cannot_do_is_refused_saying_so() -> None:
    from pytest_netzip.compressors.prune import PruneStructured

    class ImageAndMeta(nn.Module):  # torch-pruning maps the concat of a flattened map and a Linear's output wrongly
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten())
            self.side = nn.Linear(4, 16)
            self.head = nn.Linear(8 * 16 + 16, 10)

        def forward(self, image: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
            return self.head(torch.cat([self.conv(image), torch.relu(self.side(side))], dim=1))

    context = CompressionContext(device=torch.device("cpu"), example_input=(torch.rand(1, 3, 32, 32), torch.rand(1, 4)))
    refused = (r"prune_structured cannot prune ImageAndMeta safely: (torch-pruning failed on its graph \(IndexError: "
               r"index 16 is out of bounds|the compressed model fails on the example input)")  # torch-pruning 1.6.1 | 1.4.0
    with pytest.raises(CompressorUnsupported, match=refused):
        PruneStructured().apply(ImageAndMeta().eval(), context)


def test_a_compressor_that_changes_layers_holding_little_of_the_model_says_so() -> None:
    from torchvision.models import resnet18

    from pytest_netzip import Int8Dynamic, PruneL1

    said: list[str] = []
    context = CompressionContext(device=torch.device("cpu"), example_input=torch.rand(1, 3, 32, 32), report=said.append)
    Int8Dynamic().apply(resnet18(num_classes=10).eval(), context)  # its one Linear: 5,130 of 11.2 M values
    # (of the rest, 9,600 are batch norms' scales and shifts, 0.0859%; the convolutions hold the others)
    PruneL1().apply(nn.Sequential(nn.Embedding(100, 64), nn.Flatten(), nn.Linear(64 * 4, 2)).eval(),
                    CompressionContext(device=torch.device("cpu"), example_input=torch.zeros(1, 4, dtype=torch.long),
                                       report=said.append))
    assert said == [
        "int8_dynamic: quantised only layers holding 0.046% of ResNet's parameters: the others stay float, most in "
        "Conv2d (99.9%), BatchNorm2d (0.0859%) (it quantises nn.Linear layers, recurrent layers and Conv1D; not "
        "convolutions, embeddings, norms or nn.MultiheadAttention's projections)",
        "prune_l1: pruned only layers holding 7.4% of Sequential's parameters: it prunes Conv and Linear weights, not "
        "recurrent layers, embeddings or norms",
    ]
    said.clear()
    layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=16, batch_first=True)
    encoder = nn.Sequential(nn.TransformerEncoder(layer, 1, enable_nested_tensor=False), nn.Flatten(), nn.Linear(64, 2))
    Int8Dynamic().apply(encoder.eval(), dataclasses.replace(context, example_input=torch.rand(1, 4, 16)))
    # of 1,826 values, the feed-forward and head weights (640) are quantised; the attention's in_proj (816) and
    # out_proj (272) stay float, as torchao leaves them (59.6%), and so do the norms' 64 (3.5%)
    assert said == ["int8_dynamic: quantised only layers holding 35% of Sequential's parameters: the others stay float, "
                    "most in MultiheadAttention (59.6%), LayerNorm (3.5%) (it quantises nn.Linear layers, recurrent "
                    "layers and Conv1D; not convolutions, embeddings, norms or nn.MultiheadAttention's projections)"]
    said.clear()

    class Recurrent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn, self.head = nn.LSTM(8, 64, batch_first=True), nn.Linear(64, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.rnn(x)[0][:, -1])

    sequences = [(torch.rand(8, 5, 8), torch.zeros(8, dtype=torch.long))]
    Int8Static().apply(Recurrent().eval(), CompressionContext(device=torch.device("cpu"), example_input=torch.rand(
        1, 5, 8), calibration_data=sequences, report=said.append))
    assert said[-1] == ("int8_static: quantised only layers holding 1% of Recurrent's parameters: the others stay "
                        "float (the x86 quantiser quantises convolutions and linear layers, not recurrent layers or "
                        "embeddings)")
    said.clear()
    PruneL1().apply(small_cnn(), dataclasses.replace(CONTEXT, report=said.append))
    Int8Dynamic().apply(small_cnn(), dataclasses.replace(CONTEXT, report=said.append))  # its Linears: 99.6%
    assert said == []  # Conv and Linear layers are all of it


@pytest.mark.parametrize("compressor", [PruneL1(amount=0.0), PruneRandom(amount=0.0), PruneStructured(amount=0.0)],
                         ids=str)
def test_pruning_nothing_is_no_change(compressor: Compressor) -> None:
    # torch's pruning re-registers each weight after its bias: the same state in another order is the same model
    with pytest.raises(CompressorUnsupported, match=r"prunes nothing of Sequential: its amount is 0 \(allow_noop"):
        compressor.apply(small_cnn(), CONTEXT)
