"""The saved run a session compares with: its values per test, and how its machine differed."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pytest_netzip.budgets import RegressionRule, Threshold
from pytest_netzip.metrics import is_number
from pytest_netzip.storage import StorageError, read_document


class Baseline:
    """A saved run, read once: ``--netzip-compare-fail`` rules become thresholds against its values."""

    def __init__(self, path: Path) -> None:
        document = read_document(path)
        self.path = path
        self.name = path.stem
        self.machine: dict[str, Any] = document.get("machine") or {}
        self._records: dict[str, dict[str, Any]] = {}
        for record in document["results"]:
            if not (isinstance(record, dict) and isinstance(record.get("test"), str)
                    and isinstance(record.get("metrics"), dict)):
                raise StorageError(f"{path} holds a result without a test id and metrics: {str(record)[:80]}")
            self._records[record["test"]] = record

    def thresholds(self, test: str, rules: Iterable[RegressionRule]) -> list[Threshold]:
        """A threshold per rule whose metric the saved run measured for ``test`` (a number)."""
        saved = self._records.get(test, {}).get("metrics", {})
        return [
            rule.threshold(float(saved[rule.metric]))
            for rule in rules
            if is_number(saved.get(rule.metric))
        ]

    def knows(self, test: str) -> bool:
        """Whether the saved run has a result for ``test``."""
        return test in self._records

    def machine_differences(self, current: dict[str, Any]) -> list[str]:
        """``torch 2.14.1 here, 2.13.0 saved`` for each machine property that differs."""
        return [
            f"{key} {current.get(key)!r} here, {self.machine.get(key)!r} saved"
            for key in sorted(set(current) | set(self.machine))
            if current.get(key) != self.machine.get(key)
        ]
