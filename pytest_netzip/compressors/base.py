"""The compressor contract: a frozen value that turns a reference model into a compressed one."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import torch
    from torch import nn


def _silent(message: str) -> None:
    """Where a context without a terminal sends progress messages."""


@dataclass(frozen=True)
class CompressionContext:
    """What a compressor may use besides the model.

    The target device, the session seed, an example input (one sample), the training batches of
    ``netzip_train_data`` (None if the repo defines none), the batches of
    ``netzip_calibration_data`` that static quantisation observes, and ``report``, which shows a
    progress message on the terminal.
    """

    device: torch.device
    seed: int = 0
    example_input: Any = None
    train_data: Any = None
    calibration_data: Any = None
    report: Callable[[str], None] = _silent


class CompressionError(RuntimeError):
    """A compressor could not be applied to a model."""


class CompressorUnsupported(CompressionError):
    """A compressor does not apply on this device or machine: its items skip with the message."""


@dataclass(frozen=True)
class Compressor:
    """Base class of every compressor.

    A subclass is a frozen dataclass whose fields are its parameters, sets ``name`` and implements
    :meth:`transform`. :meth:`apply` hands ``transform`` a private deep copy, so the reference model
    is never mutated whatever the subclass does::

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
            raise CompressionError(f"compressor {self.id} failed on {type(model).__name__}: {exc}") from exc
        return compressed.eval()

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
