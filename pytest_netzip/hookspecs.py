"""Hooks through which conftests and plugins extend pytest-netzip (added in ``pytest_addhooks``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_netzip.compressors import Compressor
    from pytest_netzip.evaluation import Result
    from pytest_netzip.metrics import Metric


@pytest.hookspec
def pytest_netzip_compressors() -> list[Compressor | type[Compressor]]:
    """Return compressors to make available by name to ``@pytest.mark.netzip(compressors=[...])``.

    Called for each test directory, so a conftest's compressors serve the tests below it.
    """


@pytest.hookspec
def pytest_netzip_metrics() -> list[Metric]:
    """Return extra metrics, usable in the body (``netzip_result.metrics[name]``) and in tables."""


@pytest.hookspec
def pytest_netzip_result(item: pytest.Item, result: Result, record: dict) -> None:
    """See each finished item's result and its JSON record (``record`` may be amended)."""
