"""What one netzip test item measures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_netzip.compressors import Compressor

if TYPE_CHECKING:
    import pytest


@dataclass(frozen=True)
class Variant:
    """A compressor on a device: the parameter of one netzip item."""

    compressor: Compressor
    device: str

    @staticmethod
    def of(item: pytest.Item) -> Variant | None:
        """The variant ``item`` was parametrised with (``_netzip_variant``), or None for an item that is not netzip's."""
        callspec = getattr(item, "callspec", None)
        variant = callspec.params.get("_netzip_variant") if callspec is not None else None
        return variant if isinstance(variant, Variant) else None

    @property
    def id(self) -> str:
        """The item's id suffix, such as ``int8_dynamic-cpu``."""
        return f"{self.compressor.id}-{self.device}"
