"""Regression rules of ``--netzip-compare-fail`` and the saved run they compare with."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_netzip.budgets.thresholds import Regression, Threshold
from pytest_netzip.errors import BudgetError, StorageError
from pytest_netzip.metrics import is_number

#: The ``marker`` of thresholds that ``--netzip-compare-fail`` sets.
COMPARE_FAIL = "--netzip-compare-fail"


@dataclass(frozen=True)
class RegressionRule:
    """``metric:amount`` or ``metric:amount%`` from ``--netzip-compare-fail``."""

    text: str
    metric: str
    amount: float
    percent: bool

    @classmethod
    def parse(cls, text: str) -> RegressionRule:
        """The rule ``text`` spells; BudgetError saying how to write one."""
        metric, _, amount = text.partition(":")
        percent = amount.endswith("%")
        try:
            number = float(amount.removesuffix("%"))
        except ValueError:
            number = -1.0
        if not metric or number < 0 or math.isnan(number):
            raise BudgetError(
                f"--netzip-compare-fail {text!r}: write metric:amount (top1:0.01) or metric:percent% (latency_p95_ms:10%)"
            )
        return cls(text, metric, number, percent)

    def threshold(self, saved: float) -> Regression:
        """The threshold this rule sets for an item whose saved value is ``saved``."""
        return Regression(COMPARE_FAIL, self.text, self.metric, self.amount, baseline=saved, percent=self.percent)


class Baseline:
    """A saved run, read once: ``--netzip-compare-fail`` rules become thresholds against its values.

    ``document`` is the run read from ``path``; StorageError if it holds a result it cannot compare by.
    """

    def __init__(self, path: Path, document: dict[str, Any]) -> None:
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

    def machine_differences(self, current: dict[str, Any]) -> list[str]:
        """``torch 2.14.1 here, 2.13.0 saved`` for each machine property that differs."""
        return [
            f"{key} {current.get(key)!r} here, {self.machine.get(key)!r} saved"
            for key in sorted(set(current) | set(self.machine))
            if current.get(key) != self.machine.get(key)
        ]
