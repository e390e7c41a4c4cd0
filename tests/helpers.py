"""Helpers that several test modules share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_netzip.metrics import contention


def scripted_waits(monkeypatch: pytest.MonkeyPatch, waiting_share: float) -> None:
    """Make every read of the threads' schedstat show ``waiting_share`` of the time since the last one spent waiting."""

    def reads() -> Iterator[dict[str, tuple[int, int]]]:
        total = 0
        while True:
            yield {"1": (round(total * (1 - waiting_share)), round(total * waiting_share))}
            total += 1_000_000

    read = reads()
    monkeypatch.setattr(contention, "_scheduled", lambda tasks: next(read))
