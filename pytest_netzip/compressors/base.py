"""The compressor contract: a frozen value that turns a reference model into a compressed one."""

from __future__ import annotations

import copy
import dataclasses
import sysconfig
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import torch
    from torch import nn
from pytest_netzip.data.batches import BatchFormat
from pytest_netzip.errors import CompressionError, CompressorUnsupported


def _silent(message: str) -> None:
    """Where a context without a terminal sends progress messages."""


@dataclass(frozen=True)
class CompressionContext:
    """What a compressor may use besides the model.

    The target device, the session seed, an example input (one sample), the training batches of
    ``netzip_train_data`` (None if the repo defines none), the batches of
    ``netzip_calibration_data`` that static quantisation observes, how batches and outputs are read
    (``format``: the targets' key of dict batches, the reader of outputs), and ``report``, which shows a
    progress message on the terminal.
    """

    device: torch.device
    seed: int = 0
    example_input: Any = None
    train_data: Any = None
    calibration_data: Any = None
    format: BatchFormat = BatchFormat()
    report: Callable[[str], None] = _silent


#: Where library code lives (the standard library, installed packages, this package): not the user's.
_LIBRARY_PATHS = tuple(
    {str(Path(sysconfig.get_paths()[key]).resolve()) for key in ("stdlib", "purelib", "platlib")}
    | {str(Path(__file__).resolve().parents[1])}
)


def describe_failure(error: BaseException) -> str:
    """``RuntimeError: bad shape (at model.py:42, in forward)``: the cause, and the user's line it came from."""
    described = f"{type(error).__name__}: {error}"
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        path = Path(frame.filename).resolve()
        if frame.filename.startswith("<") or str(path).startswith(_LIBRARY_PATHS):
            continue
        try:
            shown = path.relative_to(Path.cwd())
        except ValueError:
            shown = path
        return f"{described} (at {shown}:{frame.lineno}, in {frame.name})"
    return described


def tied_elsewhere(model: nn.Module, layers: dict[str, nn.Module]) -> dict[str, str]:
    """Each of ``layers`` (by name) whose weight a module of ``model`` outside them holds too, saying what it is
    tied to: GPT-2's ``lm_head`` and its token embedding. A compressor that changes such a layer changes the other
    module with it, or stores the weight twice."""
    from torch import nn

    holders = {id(parameter): (name, module) for name, module in model.named_modules() if name not in layers
               for parameter in module.parameters(recurse=False)}
    tied: dict[str, str] = {}
    for name, layer in layers.items():
        if id(layer.weight) in holders:
            owner, module = holders[id(layer.weight)]
            kind = "an embedding" if isinstance(module, nn.Embedding) else f"a {type(module).__name__}"
            tied[name] = f"{name} left whole: its weight is tied to {owner}, {kind}"
    return tied


def report_partial(ctx: CompressionContext, did: str, model: nn.Module, changed: int, why: str,
                   name: str | None = None) -> None:
    """Say so where a compressor changed layers holding under half of ``model``'s parameter values (``changed``):
    its ratios then measure little of the model (int8_dynamic quantises one nn.Linear of a CNN). ``name``: the
    model's, where ``model`` is the program made of it."""
    total = sum(parameter.numel() for parameter in model.parameters())
    if total and changed < total / 2:
        ctx.report(f"{did} only layers holding {100 * changed / total:.2g}% of {name or type(model).__name__}'s "
                   f"parameters: {why}")


def output_shapes(output: Any) -> tuple[Any, list[Any]]:
    """What a compressor that reshapes layers must keep of a model's output: its pytree structure, the shape of
    each tensor, and the type of any other leaf.

    A leaf that is no tensor (transformers' DynamicCache, with ``use_cache=True``) is compared by type alone:
    its value is a new object on every call.
    """
    import torch
    from torch.utils._pytree import tree_flatten

    leaves, spec = tree_flatten(output)
    return spec, [tuple(leaf.shape) if isinstance(leaf, torch.Tensor) else
                  leaf if isinstance(leaf, (bool, int, float, str, type(None))) else type(leaf).__name__
                  for leaf in leaves]


def outputs_on(model: nn.Module, example_input: Any) -> tuple[Any, list[Any]]:
    """The :func:`output_shapes` of ``model`` run on ``example_input``."""
    import torch

    from pytest_netzip.data.inputs import call

    with torch.no_grad():
        return output_shapes(call(model, example_input))


def require_outputs(model: nn.Module, example_input: Any, expected: tuple[Any, list[Any]], refusal: str) -> None:
    """CompressorUnsupported, beginning with ``refusal`` (``lowrank cannot factor BertModel``), unless the reshaped
    ``model`` runs on ``example_input`` giving outputs of the ``expected`` shapes."""
    try:
        found = outputs_on(model, example_input)
    except Exception as exc:
        raise CompressorUnsupported(
            f"{refusal}: the compressed model fails on the example input ({describe_failure(exc)})"
        ) from exc
    if found != expected:
        raise CompressorUnsupported(f"{refusal}: the compressed model's outputs are {found[1]}, the reference's "
                                    f"{expected[1]}")


def run_observed(model: nn.Module, example_input: Any, modules: Iterable[nn.Module],
                 observe: Callable[[nn.Module, tuple[Any, ...]], object]) -> None:
    """Run ``model`` on ``example_input``, calling ``observe(module, args)`` before each of ``modules`` runs; the
    hooks are removed whatever happens."""
    import torch

    from pytest_netzip.data.inputs import call

    hooks = [module.register_forward_pre_hook(observe) for module in modules]
    try:
        with torch.no_grad():
            call(model, example_input)
    finally:
        for hook in hooks:
            hook.remove()


@dataclass(frozen=True)
class Compressor:
    """Base class of every compressor.

    A subclass is a frozen dataclass whose fields are its parameters, sets ``name`` and implements
    :meth:`transform`. :meth:`apply` hands ``transform`` a private deep copy, so the reference model
    is never mutated whatever the subclass does, and refuses (``CompressorUnsupported``, so that the
    items skip saying why) a result equal to the reference unless ``allow_noop=True``::

        @dataclass(frozen=True)
        class HalfLinear(Compressor):
            name: ClassVar[str] = "half_linear"

            def transform(self, model, ctx):
                for module in model.modules():
                    if isinstance(module, nn.Linear):
                        module.half()
                return model
    """

    name: ClassVar[str] = ""
    #: Accept a compressed model equal to the reference (otherwise ``apply`` refuses it as unsupported).
    allow_noop: bool = dataclasses.field(default=False, kw_only=True)

    def transform(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
        """Compress ``model`` (a copy the caller owns, free to modify) and return the result."""
        raise NotImplementedError(f"{type(self).__name__} must implement transform(model, ctx)")

    def apply(self, model: nn.Module, ctx: CompressionContext) -> nn.Module:
        """Return a compressed copy of ``model``; ``model`` itself is left untouched."""
        try:
            compressed = self.transform(copy.deepcopy(model), ctx)
        except CompressionError:
            raise
        except Exception as exc:
            raise CompressionError(
                f"compressor {self.id} failed on {type(model).__name__}: {describe_failure(exc)}"
            ) from exc
        from torch import nn

        if not isinstance(compressed, nn.Module):
            raise CompressionError(
                f"compressor {self.id} returned {type(compressed).__name__}, not an nn.Module: its transform must "
                "return the compressed model"
            )
        if not self.allow_noop and same_model(model, compressed) and same_outputs(model, compressed, ctx.example_input):
            raise CompressorUnsupported(self.unchanged(model))
        return compressed.eval()

    def unchanged(self, model: nn.Module) -> str:
        """Why the compressed model equals ``model``: the message of the items' skip (a subclass says more)."""
        return (
            f"{self.id} changed nothing in {type(model).__name__}: no layer, weight or output on the example input "
            "differs from the reference's (allow_noop=True accepts that)"
        )

    @property
    def id(self) -> str:
        """The test id: the name, followed by the parameters that differ from their defaults."""
        changed = [
            f"{field.name}={self._shown(field.name)}"
            for field in dataclasses.fields(self)
            if field.default is dataclasses.MISSING or getattr(self, field.name) != field.default
        ]
        return f"{self.name}({', '.join(changed)})" if changed else self.name

    def _shown(self, name: str) -> str:
        """How the parameter ``name`` appears in the id: its repr (a subclass may show a function by name)."""
        return repr(getattr(self, name))

    def __str__(self) -> str:
        return self.id


def same_model(first: nn.Module, second: nn.Module) -> bool:
    """Whether two models are one model: the same module types under the same names, and equal state.

    Every parameter and buffer must have the same name, tensor type (a quantised tensor subclass is a
    change), dtype, shape, device and values, and every module the same plain settings (numbers, strings,
    flags: ``num_heads``, a scale a compressor sets).
    """
    import torch

    modules, others = list(first.named_modules()), list(second.named_modules())
    if [(name, type(module)) for name, module in modules] != [(name, type(module)) for name, module in others]:
        return False
    if any(_settings(module) != _settings(other) for (_, module), (_, other) in zip(modules, others)):
        return False
    state, other = first.state_dict(keep_vars=True), second.state_dict(keep_vars=True)
    if state.keys() != other.keys():  # in any order: torch's pruning re-registers a weight after its bias
        return False
    for key, value in state.items():
        theirs = other[key]
        if not (isinstance(value, torch.Tensor) and isinstance(theirs, torch.Tensor)):
            if not _equal_leaves(value, theirs):  # extra state: any pytree, tensors and arrays inside
                return False
        elif (type(value), value.dtype, value.shape, value.device) != (type(theirs), theirs.dtype, theirs.shape,
                                                                       theirs.device):
            return False
        else:
            try:
                if not torch.equal(value.detach(), theirs.detach()):
                    return False
            except (NotImplementedError, RuntimeError, TypeError):  # a tensor subclass that cannot compare
                return False
    return True


def same_outputs(first: nn.Module, second: nn.Module, example_input: Any) -> bool:
    """Whether the two models give equal outputs on ``example_input`` (True without one): what a hook, a replaced
    ``forward`` or a non-persistent buffer changes, which the state does not show."""
    if example_input is None:
        return True
    import torch

    from pytest_netzip.data.inputs import call

    try:
        with torch.no_grad():
            return _equal_leaves(call(first, example_input), call(second, example_input))
    except Exception:  # the compressed model runs differently (another device, another dtype): a change
        return False


def _equal_leaves(first: object, second: object) -> bool:
    """Whether two pytrees hold equal leaves: tensors by ``torch.equal`` (dtype and shape too), the rest by ``==``."""
    import torch
    from torch.utils._pytree import tree_flatten

    (left, left_spec), (right, right_spec) = tree_flatten(first), tree_flatten(second)
    if left_spec != right_spec:
        return False
    for a, b in zip(left, right):
        if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
            if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
                    and a.shape == b.shape and torch.equal(a.detach().cpu(), b.detach().cpu())):
                return False
            continue
        try:
            if not bool(a == b):
                return False
        except Exception:  # an array's elementwise == or an object without one: not shown equal
            return False
    return True


def _settings(module: nn.Module) -> dict[str, object]:
    """A module's public attributes that are plain values (what ``==`` compares meaningfully after a deep copy)."""
    plain = (bool, int, float, str, type(None))
    return {
        name: value for name, value in vars(module).items()
        if not name.startswith("_") and name != "training"
        and (isinstance(value, plain) or isinstance(value, tuple) and all(isinstance(v, plain) for v in value))
    }


def check_compressor(compressor: object) -> Compressor:
    """``compressor`` if its parameters are fields that its id and the session caches can see."""
    if not isinstance(compressor, Compressor):
        raise TypeError(f"not a Compressor: {compressor!r}")
    kind = type(compressor).__name__
    if not compressor.name:
        raise TypeError(f"{kind} must set a name: name: ClassVar[str] = '...'")
    hidden = sorted(set(vars(compressor)) - {field.name for field in dataclasses.fields(compressor)})
    if hidden:
        raise TypeError(
            f"{kind} keeps {', '.join(hidden)} outside dataclass fields: decorate it with "
            "@dataclass(frozen=True) and declare its parameters as fields, so that test ids and caches tell "
            "its variants apart"
        )
    try:
        hash(compressor)
    except TypeError:
        raise TypeError(f"{compressor.id} is not hashable: use hashable parameters (a tuple, not a list)") from None
    return compressor
