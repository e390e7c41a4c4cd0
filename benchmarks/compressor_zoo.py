"""What each built-in compressor does to size, speed and accuracy: the README's compressor table.

Every compressor is applied to example_project's trained DigitsCNN (scored on its 360 held-out
digits) and to torchvision's ResNet-18 (random weights, so only size and speed mean anything; 3x224x224
inputs; MobileNetV2 too, under int8_static only), then measured through the public ``evaluate``: ``size_ratio``, ``macs`` against the
reference, ``speedup`` (median of per-round time ratios, the compressed model interleaved with the
reference, batch 1) with its 95% interval, top-1 and the seconds compression took. Two sequence models
with random weights stand for transformers and recurrent networks: a tiny BERT (transformers'
BertConfig: 2 layers, 128 wide, 4 heads; 16-token inputs as dicts) and a two-layer bidirectional LSTM
classifier; their top-1 is against random labels, so only its change means anything. A compressor that
does not apply prints its reason.

    python benchmarks/compressor_zoo.py [--models digits,resnet18,mobilenet_v2,bert,lstm] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset

from pytest_netzip import (
    BF16,
    FP16,
    CompressionContext,
    CompressorUnsupported,
    Distill,
    Int8Dynamic,
    Int8QAT,
    Int8Static,
    LowRank,
    Pipeline,
    PruneL1,
    PruneStructured,
    evaluate,
)
from pytest_netzip.compressors import Float8, Float8WeightOnly, Int4WeightOnly, Int8WeightOnly, Sparse24
from pytest_netzip.data.inputs import take

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"
sys.path.insert(0, str(EXAMPLE))
from digits_model import load_digits_split, load_model, mlp_student  # noqa: E402

METRICS = ("top1", "size_ratio", "macs", "speedup", "speedup_interval")


def digits() -> tuple[Any, ...]:
    """The example project's model, evaluation, training and calibration batches, and its compressors."""
    train, val = load_digits_split()
    compressors = [
        FP16(), BF16(), Int8Dynamic(), Int8WeightOnly(), Float8WeightOnly(), Int8Static(), Int8QAT(), PruneL1(),
        PruneStructured(), LowRank(), Distill(student=mlp_student, epochs=30, lr=0.01), Pipeline(PruneStructured(), Int8Static()),
    ]
    return (load_model(), list(DataLoader(val, batch_size=64)), list(DataLoader(train, batch_size=64)),
            list(DataLoader(Subset(train, range(256)), batch_size=64)), compressors)


def resnet18() -> tuple[Any, ...]:
    """Random-weight ResNet-18 on 32 random images; the compressors that need no training."""
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    data = [(torch.rand(8, 3, 224, 224), torch.randint(0, 1000, (8,))) for _ in range(4)]
    compressors = [
        FP16(), BF16(), Int8Dynamic(), Int8Static(), PruneL1(), PruneStructured(), LowRank(energy=0.6),
        Pipeline(PruneStructured(), Int8Static()),
    ]
    return model, data, None, data, compressors


def mobilenet_v2() -> tuple[Any, ...]:
    """Random-weight MobileNetV2 on 32 random images, statically quantised."""
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2().eval()
    data = [(torch.rand(8, 3, 224, 224), torch.randint(0, 1000, (8,))) for _ in range(4)]
    return model, data, None, data, [Int8Static()]


#: The compressors of torchao's that work on nn.Linear layers, for the sequence models.
LINEAR_COMPRESSORS = [
    FP16(), Int8Dynamic(), Int8WeightOnly(), Float8WeightOnly(), Int4WeightOnly(), Float8(), Sparse24(),
    PruneStructured(), LowRank(rank=16),
]


def bert() -> tuple[Any, ...]:
    """A tiny random BERT classifier on 64 random 16-token sequences (dict batches)."""
    import transformers

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=1000, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=512, max_position_embeddings=64, num_labels=4)
    model = transformers.BertForSequenceClassification(config).eval()
    data = []
    for _ in range(4):
        ids = torch.randint(0, 1000, (16, 16))
        data.append(({"input_ids": ids, "attention_mask": torch.ones_like(ids)}, torch.randint(0, 4, (16,))))
    return model, data, None, data, LINEAR_COMPRESSORS


def vit() -> tuple[Any, ...]:
    """A tiny random HuggingFace ViT classifier (4 layers of width 128, 4 heads, 8x8 patches of 64x64 images) on 64
    random images, fed as its Trainer feeds it (dict batches)."""
    import transformers

    torch.manual_seed(0)
    config = transformers.ViTConfig(image_size=64, patch_size=8, hidden_size=128, num_hidden_layers=4,
                                    num_attention_heads=4, intermediate_size=512, num_labels=4)
    model = transformers.ViTForImageClassification(config).eval()
    data = [({"pixel_values": torch.rand(16, 3, 64, 64)}, torch.randint(0, 4, (16,))) for _ in range(4)]
    return model, data, None, data, LINEAR_COMPRESSORS


class LSTMClassifier(torch.nn.Module):
    """A two-layer bidirectional LSTM (32 features in, 128 hidden) read at its last step by a Linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = torch.nn.LSTM(32, 128, num_layers=2, batch_first=True, bidirectional=True)
        self.head = torch.nn.Linear(256, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.lstm(x)
        return self.head(outputs[:, -1])


def lstm() -> tuple[Any, ...]:
    """The random LSTM classifier on 64 random sequences of 20 steps."""
    torch.manual_seed(0)
    data = [(torch.randn(16, 20, 32), torch.randint(0, 5, (16,))) for _ in range(4)]
    return LSTMClassifier().eval(), data, None, data, LINEAR_COMPRESSORS


MODELS: dict[str, Callable[[], tuple[Any, ...]]] = {
    "digits": digits, "resnet18": resnet18, "mobilenet_v2": mobilenet_v2, "bert": bert, "vit": vit, "lstm": lstm,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="digits,resnet18")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads")
    for name in args.models.split(","):
        model, data, train, calibration, compressors = MODELS[name]()
        example = take(data[0][0], 1)
        context = CompressionContext(device=torch.device("cpu"), example_input=example, train_data=train,
                                     calibration_data=calibration)
        unavailable: dict[str, list[str]] = {}
        print(f"\n{name}\n{'compressor':40} {'size':>7} {'MACs':>6} {'speedup [95% CI]':>22} {'top-1':>7} {'took':>6}")
        for compressor in compressors:
            start = time.perf_counter()
            try:
                compressed = compressor.apply(model, context)
            except CompressorUnsupported as unsupported:
                print(f"{compressor.id:40} unsupported: {unsupported}")
                continue
            took = time.perf_counter() - start
            measured = evaluate(model, compressed, data, METRICS)
            ours, reference = measured["compressed"], measured["reference"]
            macs = (f"{ours['macs'] / reference['macs']:.2f}x" if isinstance(ours["macs"], int) else "n/a")
            if not isinstance(ours["macs"], int):
                unavailable.setdefault(f"MACs: {ours['macs']}", []).append(compressor.id)
            interval = ours["speedup_interval"]
            speedup = (f"{ours['speedup']:6.2f}x [{interval['low']:.2f}, {interval['high']:.2f}]"
                       if isinstance(ours["speedup"], float) else f"{'n/a':>22}")
            if not isinstance(ours["speedup"], float):
                unavailable.setdefault(f"speedup: {ours['speedup']}", []).append(compressor.id)
            print(
                f"{compressor.id:40} {ours['size_ratio']:6.2f}x {macs:>6} {speedup} "
                f"{(ours['top1'] - reference['top1']) * 100:+6.1f} {took:5.1f}s"
            )
        for reason, which in unavailable.items():
            print(f"n/a for {', '.join(which)}: {reason}")


if __name__ == "__main__":
    main()
