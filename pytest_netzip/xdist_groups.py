"""Where pytest-xdist puts netzip items: a model's group under ``--dist loadgroup``, and node ids without it."""

from __future__ import annotations

import pytest


def model_group(item: pytest.Item, device: str) -> str:
    """The xdist group of an item's model and device: where its ``netzip_model`` fixture is defined (and which
    of its parameters), ``netzip:tests/vision:cuda``; ``netzip:cuda`` for a model of the root conftest."""
    fixture_info = getattr(item, "_fixtureinfo", None)
    definitions = fixture_info.name2fixturedefs.get("netzip_model", ()) if fixture_info is not None else ()
    where = definitions[-1].baseid if definitions else ""
    callspec = getattr(item, "callspec", None)
    parameter = callspec.indices.get("netzip_model") if callspec is not None else None
    model = f"{where}#{parameter}" if parameter is not None else where
    return ":".join(part for part in ("netzip", model, device) if part)


def test_id(item: pytest.Item) -> str:
    """The item's node id less the ``@group`` that ``--dist loadgroup`` appends: what records and saved runs
    are keyed by, the same in every run."""
    groups = sorted({
        str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
        for mark in item.iter_markers("xdist_group")
    })
    if groups and item.config.getoption("loadgroup", False):
        return item.nodeid.removesuffix("@" + "_".join(groups))
    return item.nodeid
