"""Where an item's reference model and data are defined: what tells two models of one class apart in every run.

A model's name in the tables and the JSON is its class name, with the folder (or module) of the
conftest that defines ``netzip_model`` or ``netzip_data`` where that is below the rootdir, and the
ids of their parameters where they are parametrised: ``Sequential (vision)``,
``Sequential (vision)[wide]``. That depends on the item alone, not on what else was collected or in
which order, so a pytest-xdist worker, a shard and a run of one folder name a model as the whole run
does, and saved runs and merged shards pair the same models.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

#: The fixtures whose definitions make a model what it is.
_DEFINING = ("netzip_model", "netzip_data")


def _definitions(item: pytest.Item) -> dict[str, Any]:
    """The fixture definition each of ``_DEFINING`` takes for ``item``, the most specific of those visible.

    pytest has no public reader of an item's fixture definitions; ``_fixtureinfo`` is what plugins read.
    """
    info = getattr(item, "_fixtureinfo", None)
    chains = info.name2fixturedefs if info is not None else {}
    return {name: chains[name][-1] for name in _DEFINING if chains.get(name)}


def _parameter_id(definition: Any, item: pytest.Item, name: str) -> str | None:
    """The id pytest gives the parameter of fixture ``name`` that ``item`` takes, if the fixture is parametrised."""
    callspec = getattr(item, "callspec", None)
    if callspec is None or name not in callspec.params:
        return None
    index, value = callspec.indices[name], callspec.params[name]
    if isinstance(definition.ids, (list, tuple)) and definition.ids[index] is not None:
        return str(definition.ids[index])
    if callable(definition.ids) and (made := definition.ids(value)) is not None:
        return str(made)
    return str(value) if isinstance(value, (str, int, float, bool)) else f"{name}{index}"


def model_origin(item: pytest.Item) -> str:
    """Where ``item``'s model and data are defined (see the module's docstring); empty at the rootdir's top."""
    definitions = _definitions(item)
    where = max((definition.baseid for definition in definitions.values()), key=len, default="")
    ids = [made for name, definition in definitions.items() if (made := _parameter_id(definition, item, name))]
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
