"""Compute per sample: MACs from torch's FLOP formulas, NetZIP's CHATS, and MACs that skip zeros."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_netzip.metrics.base import MetricUnavailable, metric
from pytest_netzip.metrics.size import dense

if TYPE_CHECKING:
    import torch
    from torch import nn

    from pytest_netzip.evaluation import Subject


@dataclass(frozen=True)
class Compute:
    """One forward pass counted: multiply-accumulates, bit-weighted MACs, and MACs on non-zero weights."""

    macs: int
    chats: int
    effective_macs: float


def _formulas() -> dict[Any, Any]:
    """torch's FLOP formulas, plus integer matmul, which torch.utils.flop_counter does not count."""
    import torch
    from torch.utils.flop_counter import flop_registry

    return {**flop_registry, torch.ops.aten._int_mm: flop_registry[torch.ops.aten.mm]}


def _weight_position(packet: Any) -> int | None:
    """Which argument of a counted op holds the weight (x @ W, conv(x, W)); None where there is none."""
    import torch

    aten = torch.ops.aten
    if packet in (aten.addmm, aten.baddbmm):
        return 2
    if packet in (aten.mm, aten.bmm, aten._int_mm, aten._scaled_mm, aten.convolution, aten._convolution,
                  aten.cudnn_convolution, aten.convolution_overrideable, aten._slow_conv2d_forward):
        return 1
    return None


def count_compute(model: nn.Module, example_input: Any) -> Compute:
    """Count ``model(example_input)`` op by op.

    MACs are torch.utils.flop_counter's FLOPs / 2 (integer matmuls included); CHATS weigh each op's
    MACs by the widest bit width among its tensor operands (the NetZIP paper's CHATS); effective MACs
    weigh them by the share of non-zero values in the op's weight, what a sparse kernel would do.
    """
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    formulas = _formulas()

    class Counter(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.macs, self.chats, self.effective = 0, 0, 0.0

        def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
            kwargs = kwargs or {}
            formula = formulas.get(func._overloadpacket)
            if formula is None:
                with self:  # composite ops (linear, conv2d) decompose into ones with formulas
                    decomposed = func.decompose(*args, **kwargs)
                if decomposed is not NotImplemented:
                    return decomposed
                return func(*args, **kwargs)
            out = func(*args, **kwargs)
            macs = formula(*args, **kwargs, out_val=out) // 2
            tensors = [arg for arg in args if isinstance(arg, torch.Tensor)]
            self.macs += macs
            self.chats += macs * max(tensor.element_size() * 8 for tensor in tensors)
            position = _weight_position(func._overloadpacket)
            weight = dense(args[position]) if position is not None else None
            density = torch.count_nonzero(weight).item() / weight.numel() if weight is not None else 1.0
            self.effective += macs * density
            return out

    counter = Counter()
    with torch.inference_mode(), counter:
        model(example_input)
    return Compute(counter.macs, counter.chats, counter.effective)


def _compute(subject: Subject) -> Compute:
    compute = subject.compute
    if compute.macs == 0:
        raise MetricUnavailable(f"no counted multiply-accumulate in {subject.label} (ops without a FLOP formula)")
    return compute


@metric("macs", "multiply-accumulates of one forward pass on netzip_example_input", unit="ops", higher_is_better=False)
def macs(subject: Subject, reference: Subject) -> int:
    """MACs per sample."""
    return _compute(subject).macs


@metric("chats", "MACs weighted by the bit width of their operands (NetZIP's CHATS)", unit="ops",
        higher_is_better=False)
def chats(subject: Subject, reference: Subject) -> int:
    """Bit-weighted MACs per sample."""
    return _compute(subject).chats


@metric("effective_macs", "MACs on non-zero weights: what pruning saves with a sparse kernel", unit="ops",
        higher_is_better=False)
def effective_macs(subject: Subject, reference: Subject) -> float:
    """MACs per sample that touch a non-zero weight."""
    return _compute(subject).effective_macs


COMPUTE_METRICS = (macs, chats, effective_macs)
