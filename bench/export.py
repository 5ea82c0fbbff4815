"""Export benchmark: N label-set rows to Parquet and JSONL, streamed in chunks (w2s.store.export), against a
naive baseline that loads every ORM row into a pandas DataFrame first.

    nice -n 10 python bench/export.py [--rows 100000]

Prints the machine, the seconds and rows/s of each, and the peak RSS growth of each (tracemalloc-free:
resource.getrusage is process-wide, so the baseline runs last)."""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert
from sqlmodel import select

from w2s.machine import machine


def populate(url: str, n: int) -> None:
    from w2s.store import LabelSet, Pair, get_engine

    engine = get_engine(url)
    text = "lorem ipsum dolor sit amet " * 8
    with engine.begin() as conn:
        for start in range(0, n, 20000):
            ids = range(start, min(n, start + 20000))
            conn.execute(
                insert(Pair),
                [
                    dict(
                        id=f"p{i:07d}",
                        dataset="bench",
                        split="train",
                        prompt=f"Q{i} {text}",
                        response_a=f"A{i} {text}",
                        response_b=f"B{i} {text}",
                        meta={},
                    )
                    for i in ids
                ],
            )
            conn.execute(
                insert(LabelSet),
                [
                    dict(
                        name="default",
                        pair_id=f"p{i:07d}",
                        label="ab"[i % 2],
                        soft_label=0.8 if i % 2 == 0 else 0.2,
                        entropy=0.5,
                        weight=0.73,
                        n_votes=5,
                        method="majority",
                        params={},
                    )
                    for i in ids
                ],
            )


def naive_export(url: str, out: Path) -> int:
    """Baseline: every LabelSet and Pair ORM object in memory, one DataFrame, then to_parquet."""
    import pandas as pd

    from w2s.store import LabelSet, Pair, session_scope

    with session_scope(url) as s:
        recs = s.exec(
            select(LabelSet, Pair).join(Pair, Pair.id == LabelSet.pair_id).order_by(LabelSet.pair_id)
        ).all()
        rows = []
        for ls, p in recs:
            a = ls.label == "a"
            rows.append(
                {
                    "prompt": p.prompt,
                    "chosen": p.response_a if a else p.response_b,
                    "rejected": p.response_b if a else p.response_a,
                    "weight": ls.weight,
                    "soft_label": ls.soft_label if a else 1 - ls.soft_label,
                    "entropy": ls.entropy,
                    "n_votes": ls.n_votes,
                    "pair_id": ls.pair_id,
                    "source": p.dataset,
                }
            )
    pd.DataFrame(rows).to_parquet(out)
    return len(rows)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    from w2s.store import session_scope
    from w2s.store.export import export_label_set

    print(machine())
    import pandas  # noqa: F401  (imports outside the timings)
    import pyarrow.parquet  # noqa: F401

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        t = time.perf_counter()
        populate(url, args.rows)
        print(f"populate {args.rows} pairs + label-set rows: {time.perf_counter() - t:.1f} s")
        results = []
        for fmt in ("parquet", "jsonl"):
            before = rss_mb()
            t = time.perf_counter()
            with session_scope(url) as s:
                n = export_label_set(s, fmt, Path(tmp) / f"out.{fmt}")
            dt = time.perf_counter() - t
            results.append((f"w2s export --format {fmt} (streamed)", n, dt, rss_mb() - before))
        before = rss_mb()
        t = time.perf_counter()
        n = naive_export(url, Path(tmp) / "naive.parquet")
        results.append(
            ("baseline: ORM rows -> DataFrame -> parquet", n, time.perf_counter() - t, rss_mb() - before)
        )
        size = (Path(tmp) / "out.parquet").stat().st_size / 1e6
    print(f"{'what':<46} {'rows':>8} {'seconds':>8} {'rows/s':>9} {'peak RSS +MB':>13}")
    for what, n, dt, mem in results:
        print(f"{what:<46} {n:>8} {dt:>8.2f} {n / dt:>9.0f} {mem:>13.0f}")
    print(f"parquet file: {size:.1f} MB")


if __name__ == "__main__":
    main()
