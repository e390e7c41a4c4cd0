"""What an item's budgets decide: pass, fail or skip, with the message pytest shows.

The thresholds are judged before the test body runs (so that a failing body still shows them); once
the body has run, ``Judgement.decide`` weighs the verdicts, what could not be measured and
``--netzip-strict`` into one ``Decision``. The plugin only carries it out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pytest_netzip.budgets.thresholds import Verdict, explain

if TYPE_CHECKING:
    from pytest_netzip.results import Result


@dataclass(frozen=True)
class Decision:
    """The outcome the budgets give an item, and the message that says why (empty for a pass)."""

    outcome: Literal["pass", "fail", "skip"]
    message: str = ""


@dataclass(frozen=True)
class Judgement:
    """The verdicts of an item's thresholds and the table that explains them."""

    verdicts: tuple[Verdict, ...]
    explanation: str

    @classmethod
    def of(cls, verdicts: Iterable[Verdict], result: Result) -> Judgement:
        """The judgement of ``verdicts`` on ``result``, explained in one table titled by compressor and device."""
        verdicts = tuple(verdicts)
        failed = sum(verdict.passed is False for verdict in verdicts)
        title = f"netzip budgets of {result.compressor} on {result.device}: {failed} of {len(verdicts)} failed"
        return cls(verdicts, explain(list(verdicts), result.registry, title))

    @property
    def failed(self) -> tuple[Verdict, ...]:
        """The verdicts that failed."""
        return tuple(verdict for verdict in self.verdicts if verdict.passed is False)

    @property
    def unavailable(self) -> list[str]:
        """``metric (why)`` for each threshold whose metric could not be measured."""
        return [f"{verdict.threshold.metric} ({verdict.note})" for verdict in self.verdicts if verdict.passed is None]

    def decide(self, body_unavailable: str | None = None, strict: bool = False) -> Decision:
        """Fail on any failed threshold; else skip (fail when ``strict``) on what could not be measured,
        including ``body_unavailable``, the reason the test body raised MetricUnavailable; else pass.

        A gate never passes by accident: an unmeasured threshold is never a pass.
        """
        if self.failed:
            return Decision("fail", self.explanation)
        unavailable = list(dict.fromkeys([*self.unavailable, *([body_unavailable] if body_unavailable else [])]))
        if not unavailable:
            return Decision("pass")
        reason = f"netzip cannot measure {'; '.join(unavailable)}"
        if strict:
            return Decision("fail", f"{reason} (--netzip-strict)")
        return Decision("skip", reason)
