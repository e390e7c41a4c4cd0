"""Where an item's reference model and data are defined: what tells two models of one class apart in every run.

A model's name in the tables and the JSON is its class name, with the folder of the conftest (or the
test module) that defines ``netzip_model`` or ``netzip_data`` where that is below the rootdir, and
the parameters of the fixtures they are made from where those are parametrised:
``Sequential (vision)``, ``Sequential (vision)[wide]``. That depends on the item alone, not on what else was collected or in
which order, so a pytest-xdist worker, a shard and a run of one folder name a model as the whole run
does, and saved runs and merged shards pair the same models.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

#: The fixtures whose definitions make a model what it is.
_DEFINING = ("netzip_model", "netzip_data")


def _chains(item: pytest.Item) -> dict[str, Any]:
    """The fixture definitions visible to ``item`` by name, the most specific last.

    pytest has no public reader of an item's fixture definitions; ``_fixtureinfo`` is what plugins read.
    """
    info = getattr(item, "_fixtureinfo", None)
    return dict(info.name2fixturedefs) if info is not None else {}


def _definitions(item: pytest.Item) -> dict[str, Any]:
    """The definition each of ``_DEFINING`` takes for ``item``, except pytest's own stand-in for a fixture the test
    parametrises directly."""
    chains = _chains(item)
    return {name: chains[name][-1] for name in _DEFINING if chains.get(name) and not _pytests(chains[name][-1])}


def _pytests(definition: Any) -> bool:
    return str(getattr(definition.func, "__module__", "")).startswith("_pytest")


def _closure(item: pytest.Item) -> list[str]:
    """``_DEFINING`` and every fixture they depend on, in the order found."""
    chains, found, pending = _chains(item), [], list(_DEFINING)
    while pending:
        name = pending.pop(0)
        if name not in found and chains.get(name):
            found.append(name)
            pending.extend(chains[name][-1].argnames)
    return found


def _parameter_ids(item: pytest.Item) -> list[str]:
    """The parameters ``item`` takes of the fixtures that make its model and data: a value that names itself
    (a string, a number), else the fixture's name and the parameter's index, as pytest's ids write them."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return []
    ids = []
    for name in _closure(item):
        if name in callspec.params:
            value = callspec.params[name]
            ids.append(str(value) if isinstance(value, (str, int, float, bool)) else f"{name}{callspec.indices[name]}")
    return ids


def model_origin(item: pytest.Item) -> str:
    """Where ``item``'s model and data are defined (see the module's docstring); empty at the rootdir's top."""
    where = max((definition.baseid for definition in _definitions(item).values()), key=len, default="")
    ids = _parameter_ids(item)
    return (f"({where})" if where else "") + (f"[{'-'.join(ids)}]" if ids else "")


def function_scoped(item: pytest.Item) -> list[str]:
    """A note per fixture of ``_DEFINING`` that ``item`` takes function-scoped: each test then gets a model (or
    data) of its own, evaluated again, with a table of its own."""
    notes = []
    for name, definition in _definitions(item).items():
        code = getattr(definition.func, "__code__", None)
        if definition.scope != "function" or code is None:
            continue
        where = os.path.relpath(code.co_filename, item.config.rootpath)
        notes.append(f"{name} is function-scoped ({where}:{code.co_firstlineno}): each test gets its own, evaluated "
                     "again and in a table of its own; give it scope=\"session\"")
    return notes
