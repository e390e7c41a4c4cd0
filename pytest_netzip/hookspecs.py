"""Hooks through which conftests and plugins extend pytest-netzip (added in ``pytest_addhooks``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_netzip.compressors import Compressor
    from pytest_netzip.metrics import Metric
    from pytest_netzip.results import Result


@pytest.hookspec
def pytest_netzip_compressors() -> list[Compressor | type[Compressor]]:  # type: ignore[empty-body]  # a spec: pluggy calls the implementations
    """Return compressors to make available by name to ``@pytest.mark.netzip(compressors=[...])``.

    Called for each test directory, so a conftest's compressors serve the tests below it. The registry
    holds what the implementations return and nothing else: the built-ins come from the plugin's own
    implementation (``pytest_netzip.builtins``, ``tryfirst``), and a later entry of a name replaces it.
    Check a compressor with :class:`pytest_netzip.testing.CompressorTester`.
    """


@pytest.hookspec
def pytest_netzip_metrics() -> list[Metric[Any]]:  # type: ignore[empty-body]  # a spec: pluggy calls the implementations
    """Return metrics usable in the body (``netzip_result.metrics[name]``), in tables and in the JSON.

    As for compressors, the built-ins are the plugin's own implementation's (``pytest_netzip.builtins``),
    and a metric of a built-in's name replaces it. Check a metric with :class:`pytest_netzip.testing.MetricTester`.
    """


@pytest.hookspec
def pytest_netzip_result(item: pytest.Item, result: Result, record: dict[str, Any]) -> None:
    """See each finished item's result and its JSON record (``record`` may be amended)."""
