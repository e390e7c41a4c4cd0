"""Marker keyword values checked: a share, a positive, non-negative or whole number, a finite number."""

from __future__ import annotations

import math

from pytest_netzip.errors import BudgetError
from pytest_netzip.metrics.base import is_number, is_whole

#: The largest count a marker takes (batch size, samples, steps): more would not fit a machine's memory or time.
MAX_COUNT = 2**20


def _share(marker: str, keyword: str, value: object) -> float:
    number = _number(marker, keyword, value)
    if not 0.0 <= number <= 1.0:
        raise BudgetError(f"{marker}({keyword}={value!r}) is impossible: a share must lie in [0, 1]")
    return number


def _positive(marker: str, keyword: str, value: object) -> float:
    number = _number(marker, keyword, value)
    if number <= 0:
        raise BudgetError(f"{marker}({keyword}={value!r}) is impossible: it must be positive")
    return number


def _non_negative(marker: str, keyword: str, value: object) -> float:
    number = _number(marker, keyword, value)
    if number < 0:
        raise BudgetError(f"{marker}({keyword}={value!r}) is impossible: it must be at least 0")
    return number


def _whole(marker: str, keyword: str, value: object) -> int:
    if not (is_whole(value) and 1 <= value <= MAX_COUNT):
        raise BudgetError(f"{marker}({_shown(keyword, value)}) must be a whole number from 1 to {MAX_COUNT:,}")
    return value


def _number(marker: str, keyword: str, value: object) -> float:
    if not is_number(value):
        raise BudgetError(f"{marker}({keyword}={value!r}) must be a number")
    try:
        number = float(value)
    except OverflowError:  # an int beyond float's range, such as 10**400
        number = math.inf
    if not math.isfinite(number):
        raise BudgetError(f"{marker}({_shown(keyword, value)}) must be a finite number")
    return number


def _shown(keyword: str, value: object) -> str:
    """``keyword=value`` as a message shows it, a huge number cut short."""
    text = repr(value)
    return f"{keyword}={text if len(text) <= 20 else text[:8] + '...' + f' ({len(text)} digits)'}"
