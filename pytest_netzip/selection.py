"""``--netzip-compressors``: which netzip items a run keeps, and the names in it that are no compressor's."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_netzip.markers import compressor_registry
from pytest_netzip.variant import Variant

if TYPE_CHECKING:
    from pytest_netzip.compressors import CompressorRegistry


def select_compressors(
    config: pytest.Config, items: list[pytest.Item], wanted: tuple[str, ...]
) -> tuple[list[pytest.Item], list[pytest.Item], list[str]]:
    """The items to keep (those not netzip's, and netzip items whose compressor's name or id is ``wanted``), those to
    deselect, and the wanted names that no item matched.

    An id is matched as the test ids write it, whatever its spelling: ``prune_l1(amount=0.5)``, the default, is
    ``prune_l1``'s.
    """
    registry = compressor_registry(config)
    ids = {name: _canonical_id(registry, name) for name in wanted}
    selected: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    matched: set[str] = set()
    for item in items:
        variant = Variant.of(item)
        if variant is None:
            selected.append(item)
            continue
        compressor = variant.compressor
        hits = {name for name, made in ids.items() if made == compressor.id or name in (compressor.name, compressor.id)}
        matched |= hits
        (selected if hits else deselected).append(item)
    return selected, deselected, [name for name in wanted if name not in matched]


def _canonical_id(registry: CompressorRegistry, name: str) -> str | None:
    """The id of the compressor ``name`` writes with parameters or as a pipeline; None for a plain name or one that
    makes no compressor (``unknown_compressors`` says why)."""
    if "(" not in name and "+" not in name:
        return None
    try:
        return registry.resolve(name).id
    except Exception:  # a compressor's own __post_init__ may raise anything; unknown_compressors reports it
        return None


def unknown_compressors(config: pytest.Config, names: list[str]) -> dict[str, str]:
    """The usage error of each of ``names`` that is no compressor's (``int8_dynamc``): it would select nothing, and
    make a green run that tested nothing."""
    from pytest_netzip.compressors import Distill, Pipeline
    from pytest_netzip.naming import unknown_name_message

    registry = compressor_registry(config)
    known = [*registry.names, Distill.name, Pipeline.name]  # the last two are made with arguments only, never by name
    errors: dict[str, str] = {}
    for name in names:  # an id, prune_l1(amount=0.75), or a pipeline's, prune_structured+int8_static
        for part in name.split("+"):
            if part.split("(")[0].strip() not in known:
                errors.setdefault(name, f"--netzip-compressors: {unknown_name_message('compressor', part, known)}")
        if name not in errors and "(" in name:  # known names: parameters a marker would refuse
            try:
                registry.resolve(name)
            except Exception as exc:  # a compressor's own __post_init__ may raise anything
                errors[name] = f"--netzip-compressors: {exc}"
    return errors
