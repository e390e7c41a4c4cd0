"""Compute per sample: MACs from torch's FLOP formulas and netzip's, NetZIP's CHATS, and MACs that skip zeros."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_netzip.data.inputs import call
from pytest_netzip.errors import MetricUnavailable
from pytest_netzip.metrics.base import metric
from pytest_netzip.metrics.mac_formulas import FORMULAS, Product, bits, products
from pytest_netzip.metrics.size import dense

if TYPE_CHECKING:
    import torch
    from torch import nn

    from pytest_netzip.metrics.base import Subject


@dataclass(frozen=True)
class Compute:
    """One forward pass counted: multiply-accumulates, bit-weighted MACs, and MACs on non-zero weights."""

    macs: int
    chats: int
    effective_macs: float


def _torch_formulas() -> dict[Any, Any]:
    """torch's FLOP formulas, plus integer matmul, which torch.utils.flop_counter does not count."""
    import torch
    from torch.utils.flop_counter import flop_registry

    return {**flop_registry, torch.ops.aten._int_mm: flop_registry[torch.ops.aten.mm]}


def _operand_positions(packet: Any) -> tuple[int, int] | None:
    """Where a counted op keeps its input and its weight (x @ W, conv(x, W)); None for other ops."""
    import torch

    aten = torch.ops.aten
    if packet in (aten.addmm, aten.baddbmm):
        return 1, 2
    if packet in (aten.mm, aten.bmm, aten._int_mm, aten._scaled_mm, aten.convolution, aten._convolution,
                  aten.cudnn_convolution, aten.convolution_overrideable, aten._slow_conv2d_forward):
        return 0, 1
    return None


def _torch_product(formula: Any, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Product:
    """The one product that torch's ``formula`` counts in ``func``: FLOPs / 2, weighed by its operands."""
    import torch

    macs = formula(*args, **kwargs, out_val=out) // 2
    positions = _operand_positions(func._overloadpacket)
    if positions is None:
        return Product(macs, bits(*(a for a in args if isinstance(a, torch.Tensor))))
    return Product(macs, bits(*(args[i] for i in positions)), args[positions[1]])


#: Ops that multiply-accumulate but have no formula: met in a model, they make its count unavailable.
_UNCOUNTED = re.compile(
    r"^(quantized::|.*(mm|conv|linear|matmul|attention|einsum|transformer|lstm|gru|rnn))", re.IGNORECASE
)


def _storages(model: nn.Module) -> set[int]:
    """Data pointers of the model's parameters and buffers, and of the tensors inside tensor subclasses."""
    pointers: set[int] = set()
    for tensor in (*model.parameters(), *model.buffers()):
        inner = tensor.__tensor_flatten__()[0] if hasattr(tensor, "__tensor_flatten__") else ()
        pointers.update(getattr(tensor, name).data_ptr() for name in inner)
        if not inner:
            pointers.add(tensor.data_ptr())
    return pointers


def _nonzero_share(weight: torch.Tensor) -> float:
    import torch

    values = dense(weight)
    if values.element_size() == 1 and values.is_floating_point():  # float8 has no count_nonzero
        values = values.float()
    return torch.count_nonzero(values).item() / values.numel()


def count_compute(model: nn.Module, example_input: Any) -> Compute:
    """Count ``model`` run on ``example_input`` (as :func:`pytest_netzip.data.inputs.call` passes it) op by op.

    MACs are torch.utils.flop_counter's FLOPs / 2 (integer matmuls included), and the formulas of
    :mod:`pytest_netzip.metrics.mac_formulas` for the fused ops torch does not count (attention,
    recurrent layers, int8 kernels), each counted as a whole and not also through its parts. CHATS
    weigh each product's MACs by the wider bit width of its operands (the NetZIP paper's CHATS);
    effective MACs weigh them by the share of non-zero values in the weight when it is one of the
    model's own tensors, what a sparse kernel would do. Raises MetricUnavailable when the model
    runs an op that multiplies but has no formula (a higher-order op, an unknown fused kernel, ...).
    """
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    formulas = _torch_formulas()
    weights = _storages(model)

    def own(weight: torch.Tensor | None) -> bool:
        return weight is not None and weight.layout == torch.strided and weight.data_ptr() in weights

    class Counter(TorchDispatchMode):  # type: ignore[no-untyped-call]  # torch leaves TorchDispatchMode.__init_subclass__ unannotated
        supports_higher_order_operators = True

        def __init__(self) -> None:
            super().__init__()  # type: ignore[no-untyped-call]  # torch leaves TorchDispatchMode.__init__ unannotated
            self.macs, self.chats, self.effective = 0, 0, 0.0
            self.uncounted: set[str] = set()

        def __torch_dispatch__(
            self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None,
        ) -> Any:
            kwargs = kwargs or {}
            if func is torch.ops.higher_order.out_dtype:  # torchao's int8 matmul on CUDA: (op, dtype, *operands)
                out = func(*args, **kwargs)
                self.count(args[0], args[2:], {}, out)
                return out
            if isinstance(func, torch._ops.HigherOrderOperator):
                self.uncounted.add(str(func.name()))  # type: ignore[no-untyped-call]  # torch leaves HigherOrderOperator.name unannotated
                return func(*args, **kwargs)
            if func.name() not in FORMULAS and func._overloadpacket not in formulas:
                with self:  # composite ops (linear, conv2d) decompose into ones with formulas
                    decomposed = func.decompose(*args, **kwargs)
                if decomposed is not NotImplemented:
                    return decomposed
                if _UNCOUNTED.match(func.name()):
                    self.uncounted.add(func.name())
                return func(*args, **kwargs)
            out = func(*args, **kwargs)  # counted as a whole: what it runs inside is not seen
            self.count(func, args, kwargs, out)
            return out

        def count(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
            found = products(func, args, kwargs, out)
            if found is None:
                formula = formulas.get(func._overloadpacket)
                if formula is None:
                    self.uncounted.add(func.name())
                    return
                found = [_torch_product(formula, func, args, kwargs, out)]
            for product in found:
                self.macs += product.macs
                self.chats += product.macs * product.bits
                share = _nonzero_share(product.weight) if product.weight is not None and own(product.weight) else 1.0
                self.effective += product.macs * share

    counter = Counter()
    with torch.inference_mode(), counter:
        call(model, example_input)
    if counter.uncounted:
        raise MetricUnavailable(f"no MAC formula for {', '.join(sorted(counter.uncounted))}")
    return Compute(counter.macs, counter.chats, counter.effective)


def _compute(subject: Subject) -> Compute:
    compute = compute_of(subject)
    if compute.macs == 0:
        raise MetricUnavailable(f"no counted multiply-accumulate in {subject.label} (ops without a FLOP formula)")
    return compute


@metric("macs", "multiply-accumulates of one forward pass on the first sample of netzip_example_input", unit="ops",
        higher_is_better=False)
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


def compute_of(subject: Subject) -> Compute:
    """MACs, CHATS and effective MACs of one forward pass of ``subject`` on its example input (tried once)."""
    from pytest_netzip.data.workload import DEFAULT_WORKLOAD

    return subject.once("compute", lambda: subject.blamed(
        "counting the MACs of", lambda: count_compute(subject.model, subject.batch(DEFAULT_WORKLOAD))
    ))
