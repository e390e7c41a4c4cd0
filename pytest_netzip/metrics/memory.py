"""Peak memory of inference: the model's tensors, the input batch, and the most activations alive at once."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from pytest_netzip.data.inputs import bound
from pytest_netzip.metrics.base import metric

if TYPE_CHECKING:
    import torch
    from torch import nn

    from pytest_netzip.data.workload import Workload
    from pytest_netzip.metrics.base import Subject


def storages(tensor: torch.Tensor) -> list[torch.UntypedStorage]:
    """The storages holding ``tensor``'s values: its own, or those inside a tensor subclass (torchao's)."""
    if hasattr(tensor, "__tensor_flatten__"):
        return [storage for name in tensor.__tensor_flatten__()[0] for storage in storages(getattr(tensor, name))]
    return [tensor.untyped_storage()]


def resident_storages(tensors: list[torch.Tensor]) -> dict[int, int]:
    """Bytes of the distinct storages behind ``tensors``, by address (shared storage counted once).

    An opaque tensor (oneDNN's packed weights) shows no storage: its elements are counted, keyed by the tensor.
    """
    resident: dict[int, int] = {}
    for tensor in tensors:
        if tensor.is_mkldnn:
            resident[id(tensor)] = tensor.numel() * tensor.element_size()
            continue
        resident.update((storage.data_ptr(), storage.nbytes()) for storage in storages(tensor))
    return resident


def held_tensors(model: nn.Module) -> list[torch.Tensor]:
    """Every tensor ``model`` keeps: its parameters and buffers, and the tensors its modules hold as plain
    attributes or in modules outside its tree (an int8 program's lowered graphs: packed weights, constants)."""
    import torch
    from torch import nn

    found: list[torch.Tensor] = []
    seen: set[int] = set()
    pending: list[object] = [model]
    while pending:
        value = pending.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, torch.Tensor):
            found.append(value)
        elif isinstance(value, nn.Module):
            pending.extend(vars(value).values())  # _parameters, _buffers and _modules among them
        elif isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, (list, tuple)):
            pending.extend(value)
    return found


def _live_bytes(resident: set[int]) -> Any:
    """A dispatch mode counting the bytes of storages that ops create while they are alive; ``peak`` is the most.

    Storages at the addresses in ``resident`` (weights, inputs) existed before and are not counted.
    """
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    class LiveBytes(TorchDispatchMode):  # type: ignore[no-untyped-call]  # torch leaves TorchDispatchMode.__init_subclass__ unannotated
        def __init__(self) -> None:
            super().__init__()  # type: ignore[no-untyped-call]  # torch leaves TorchDispatchMode.__init__ unannotated
            self.live = self.peak = 0
            self._alive: dict[int, weakref.ref[torch.UntypedStorage]] = {}

        def __torch_dispatch__(
            self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None,
        ) -> Any:
            out = func(*args, **(kwargs or {}))
            for leaf in tree_leaves(out):
                if hasattr(leaf, "untyped_storage"):
                    for storage in storages(leaf):
                        self._track(storage)
            return out

        def _track(self, storage: torch.UntypedStorage) -> None:
            key, size = storage.data_ptr(), storage.nbytes()
            if key in self._alive or key in resident or size == 0:
                return
            self._alive[key] = weakref.ref(storage, lambda _: self._free(key, size))
            self.live += size
            self.peak = max(self.peak, self.live)

        def _free(self, key: int, size: int) -> None:
            self._alive.pop(key, None)
            self.live -= size

    return LiveBytes()


def peak_memory_bytes(model: nn.Module, inputs: Any, device: torch.device) -> int:
    """Peak bytes of one ``model(inputs)`` call: every tensor the model keeps (:func:`held_tensors`) and the
    inputs, plus the activation peak.

    On CUDA the activation peak is the caching allocator's ``max_memory_allocated`` over the call;
    elsewhere it is the most bytes of tensor storage that the call's ops held alive at once (scratch
    space inside a kernel, which no tensor holds, is not seen). One call runs first, so lazily
    allocated workspaces are not counted.
    """
    import torch
    from torch.utils._pytree import tree_leaves

    leaves = [leaf for leaf in tree_leaves(inputs) if hasattr(leaf, "untyped_storage")]
    run = bound(model, inputs)
    with torch.inference_mode():
        run()  # first: what the model makes and keeps on its first call (a lowered program) is resident after it
        resident = resident_storages([*held_tensors(model), *leaves])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
            run()
            torch.cuda.synchronize(device)
            return sum(resident.values()) + torch.cuda.max_memory_allocated(device) - before
        with _live_bytes(set(resident)) as counter:
            run()
    peak: int = counter.peak
    return sum(resident.values()) + peak


@metric("peak_memory_mb", "peak memory of one call on a batch: weights, inputs and activations (MB = 1e6 bytes)",
        unit="MB", higher_is_better=False)
def peak_memory_mb(subject: Subject, reference: Subject, workload: Workload) -> float:
    """Peak megabytes of inference."""
    return peak_memory_of(subject, workload) / 1e6


MEMORY_METRICS = (peak_memory_mb,)


def peak_memory_of(subject: Subject, workload: Workload) -> int:
    """Peak bytes of one call of ``subject`` on a batch (tried once per workload)."""
    return subject.once(("memory", workload), lambda: subject.blamed(
        "measuring the memory of", lambda: peak_memory_bytes(subject.model, subject.batch(workload), subject.device)
    ))
