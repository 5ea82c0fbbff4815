"""Import speed (run: python bench/store_import.py): w2s.store.importers.import_file (batched INSERT ..
ON CONFLICT) vs a per-row ORM baseline, on SQLite and on a real PostgreSQL server, for HH train_gt (4000 records)."""

import os
import platform
import tempfile
import time
from pathlib import Path

from pg_server import throwaway

from w2s.store import Pair, session_scope
from w2s.store.importers import ImportConfig, import_file, read_jsonl, record_to_pair

ROOT = Path(__file__).resolve().parents[1]
HH = ROOT.parent / "shared/data/hh-harmless-single-turn/train_gt.jsonl"
cpu = next(
    (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
    platform.processor(),
)
print(
    f"machine: {os.cpu_count()} cores, {cpu}, python {platform.python_version()}, "
    f"sqlite {__import__('sqlite3').sqlite_version}"
)


def baseline(url):  # one ORM object per row, session.add each, one commit (the obvious way)
    cfg = ImportConfig(dataset="hh", split="base", skip_invalid=True)
    t = time.perf_counter()
    with session_scope(url) as s:
        for where, rec in read_jsonl(HH, str(HH), lambda n: None):
            try:
                row = record_to_pair(rec, file=str(HH), where=where, config=cfg)
            except Exception:
                continue
            if s.get(Pair, row["id"]) is None:
                s.add(Pair(**row))
                s.flush()
    return time.perf_counter() - t


def run(name, url_fn):
    u1, u2 = url_fn(), url_fn()
    r1 = import_file(HH, ImportConfig(dataset="hh", split="train", skip_invalid=True), u1)
    r2 = import_file(HH, ImportConfig(dataset="hh", split="train", skip_invalid=True), u1)
    b = baseline(u2)
    print(
        f"{name:10s} import {r1.new} new: {r1.seconds:.2f} s ({r1.read / r1.seconds:,.0f} records/s) | "
        f"re-import ({r2.new} new, {r2.present} present): {r2.seconds:.2f} s | baseline per-row ORM: {b:.2f} s "
        f"({b / r1.seconds:.1f}x slower)"
    )


tmp = Path(tempfile.mkdtemp())
n = iter(range(100))
run("sqlite", lambda: f"sqlite:///{tmp}/b{next(n)}.db")
with throwaway() as srv:
    run("postgresql", lambda: srv.create_database(f"bench{next(n)}"))
