"""Do trees help people? The report over evidence-first annotations on gold pairs.

In evidence-first mode an annotator reads the principles and thoughts, commits an initial label, then sees
the strong model's verdicts and gives the final label. On pairs with a gold label that gives, per
annotation, four labels: initial, final, the strong model's verdict, gold. From them:

- accuracy before and after seeing the verdicts;
- over-reliance: of the times the initial label disagreed with a *wrong* strong verdict, how often the
  annotator switched to it;
- useful reliance: of the times the initial label disagreed with a *right* strong verdict, how often the
  annotator switched to it.

Trees help when useful reliance is high and over-reliance low, and the final accuracy beats the initial one.
Pure functions of plain values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    """One evidence-first annotation of a gold pair."""

    initial: str
    final: str
    strong: str | None
    """The strong model's verdict ('a'/'b'/'tie'), None when its tree gave none."""
    gold: str


@dataclass(frozen=True)
class Rate:
    hits: int
    opportunities: int

    @property
    def rate(self) -> float | None:
        return self.hits / self.opportunities if self.opportunities else None

    def __str__(self) -> str:
        return f"{self.hits}/{self.opportunities}"


@dataclass(frozen=True)
class RelianceReport:
    n: int
    accuracy_initial: float | None
    accuracy_final: float | None
    changed: Rate
    """Final label differs from the initial one, over all decisions."""
    strong_accuracy: Rate
    """The strong verdict matches gold, over decisions with a strong verdict."""
    over_reliance: Rate
    """Switched to the strong verdict when it was wrong, over decisions whose initial label differed from a
    wrong strong verdict."""
    useful_reliance: Rate
    """Switched to the strong verdict when it was right, over decisions whose initial label differed from a
    right strong verdict."""

    @property
    def accuracy_gain(self) -> float | None:
        if self.accuracy_initial is None or self.accuracy_final is None:
            return None
        return self.accuracy_final - self.accuracy_initial


def switched_to_strong(d: Decision) -> bool:
    return d.strong is not None and d.initial != d.strong and d.final == d.strong


def reliance_report(decisions: Iterable[Decision]) -> RelianceReport:
    ds = list(decisions)
    n = len(ds)
    with_strong = [d for d in ds if d.strong is not None]
    strong_wrong = [d for d in with_strong if d.initial != d.strong and d.strong != d.gold]
    strong_right = [d for d in with_strong if d.initial != d.strong and d.strong == d.gold]
    return RelianceReport(
        n=n,
        accuracy_initial=sum(d.initial == d.gold for d in ds) / n if n else None,
        accuracy_final=sum(d.final == d.gold for d in ds) / n if n else None,
        changed=Rate(sum(d.initial != d.final for d in ds), n),
        strong_accuracy=Rate(sum(d.strong == d.gold for d in with_strong), len(with_strong)),
        over_reliance=Rate(sum(map(switched_to_strong, strong_wrong)), len(strong_wrong)),
        useful_reliance=Rate(sum(map(switched_to_strong, strong_right)), len(strong_right)),
    )


def report_row(name: str, report: RelianceReport) -> dict:
    """One row of the admin page's table."""

    def rnd(x):
        return None if x is None else round(x, 3)

    return {
        "annotator": name,
        "gold pairs": report.n,
        "accuracy before": rnd(report.accuracy_initial),
        "accuracy after": rnd(report.accuracy_final),
        "gain": rnd(report.accuracy_gain),
        "changed": str(report.changed),
        "strong accuracy": rnd(report.strong_accuracy.rate),
        "over-reliance (to wrong strong)": str(report.over_reliance),
        "over-reliance rate": rnd(report.over_reliance.rate),
        "useful reliance (to right strong)": str(report.useful_reliance),
        "useful reliance rate": rnd(report.useful_reliance.rate),
    }


COLUMNS = tuple(report_row("", reliance_report([])))
"""The table's columns (an empty table still shows them)."""
