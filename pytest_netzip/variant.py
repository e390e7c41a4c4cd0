"""What one netzip test item measures."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_netzip.compressors import Compressor


@dataclass(frozen=True)
class Variant:
    """A compressor on a device: the parameter of one netzip item."""

    compressor: Compressor
    device: str

    @property
    def id(self) -> str:
        """The item's id suffix, such as ``int8_dynamic-cpu``."""
        return f"{self.compressor.id}-{self.device}"
