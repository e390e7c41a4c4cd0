"""The plugin's own implementations of its extension hooks: the built-in compressors and metrics.

``pytest_netzip.plugin`` registers this module in ``pytest_addhooks``, so the built-ins reach the
registries the way a user's conftest does. Each implementation is ``tryfirst``: its entries come first
in the hook's results, so the built-ins lead the tables' columns and a user's entry of the same name
replaces a built-in one. Without pytest, ``MetricRegistry()`` and ``CompressorRegistry()`` hold the
same built-ins by themselves.

Blocking this module (``-p no:pytest_netzip.builtins``) leaves only what other plugins and conftests
contribute. Importing it does not import torch.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_netzip.compressors import BUILTIN_COMPRESSORS, Compressor
from pytest_netzip.metrics import BUILTIN_METRICS, Metric

#: The name this module is registered under.
PLUGIN_NAME = "pytest_netzip.builtins"


@pytest.hookimpl(tryfirst=True)
def pytest_netzip_compressors() -> list[Compressor | type[Compressor]]:
    """The built-in compressors, each with its default parameters."""
    return list(BUILTIN_COMPRESSORS)


@pytest.hookimpl(tryfirst=True)
def pytest_netzip_metrics() -> list[Metric[Any]]:
    """The built-in metrics."""
    return list(BUILTIN_METRICS)
