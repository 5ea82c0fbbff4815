"""The evidence-first report on hand-made decisions: every count can be checked by eye."""

from __future__ import annotations

from w2s.labels.evidence_first import Decision, Rate, reliance_report, report_row

D = Decision


def test_over_and_useful_reliance_are_counted_against_their_opportunities():
    decisions = [
        D(initial="a", final="b", strong="b", gold="a"),  # switched to a wrong strong verdict: over-reliance
        D(initial="a", final="a", strong="b", gold="a"),  # resisted a wrong strong verdict
        D(initial="b", final="a", strong="a", gold="a"),  # switched to a right strong verdict: useful
        D(initial="b", final="b", strong="a", gold="a"),  # ignored a right strong verdict
        D(initial="a", final="a", strong="a", gold="a"),  # agreed from the start: no opportunity
        D(initial="a", final="b", strong=None, gold="b"),  # no strong verdict: counts for accuracy only
    ]
    r = reliance_report(decisions)
    assert r.n == 6
    assert r.accuracy_initial == 3 / 6 and r.accuracy_final == 4 / 6
    assert abs(r.accuracy_gain - 1 / 6) < 1e-12
    assert r.changed == Rate(3, 6)
    assert r.strong_accuracy == Rate(3, 5)
    assert r.over_reliance == Rate(1, 2) and r.over_reliance.rate == 0.5
    assert r.useful_reliance == Rate(1, 2)


def test_switching_away_from_the_strong_verdict_is_not_reliance():
    r = reliance_report([D(initial="b", final="a", strong="b", gold="a")])  # initial agreed; then left it
    assert r.over_reliance == Rate(0, 0) and r.useful_reliance == Rate(0, 0)
    assert r.accuracy_initial == 0.0 and r.accuracy_final == 1.0


def test_ties_are_labels_like_the_others():
    r = reliance_report([D(initial="a", final="tie", strong="tie", gold="a")])
    assert r.over_reliance == Rate(1, 1) and r.strong_accuracy == Rate(0, 1)


def test_no_decisions_give_no_rates():
    r = reliance_report([])
    assert r.n == 0 and r.accuracy_initial is None and r.accuracy_gain is None
    assert r.over_reliance.rate is None
    row = report_row("all", r)
    assert row["gold pairs"] == 0 and row["over-reliance (to wrong strong)"] == "0/0"
