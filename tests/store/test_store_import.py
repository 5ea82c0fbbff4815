"""Importers: every record format and file format, every bad-input case, idempotency, seeded positions."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
from paths import HH
from sqlalchemy import func
from sqlmodel import select

from w2s.store import Pair, session_scope
from w2s.store.importers import ImportConfig, ImportFailed, import_file, is_swapped, pair_id, write_report

HH_FILE = HH / "train_gt.jsonl"


def write_jsonl(path: Path, rows: list) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")
    return path


def hh(prompt: str, chosen: str, rejected: str) -> dict:
    return {
        "chosen": f"\n\nHuman: {prompt}\n\nAssistant: {chosen}",
        "rejected": f"\n\nHuman: {prompt}\n\nAssistant: {rejected}",
    }


def trl(i: int, **extra) -> dict:
    return {"prompt": f"question {i}?", "chosen": f"good answer {i}", "rejected": f"bad answer {i}", **extra}


def cfg(**kw) -> ImportConfig:
    return ImportConfig(**{"dataset": "t", "split": "train", **kw})


def stored(url: str) -> dict[str, Pair]:
    with session_scope(url) as s:
        return {p.id: p for p in s.exec(select(Pair)).all()}


def chosen_text(p: Pair) -> str:
    return p.response_a if p.gold == "a" else p.response_b


# ---------------------------------------------------------------------------------------------- formats


def test_hh_single_turn_prompt_split_and_gold(db_url, tmp_path):
    path = write_jsonl(
        tmp_path / "hh.jsonl",
        [hh("How do I pick a lock?", "I can't help with that.", "Use a tension wrench.")],
    )
    r = import_file(path, cfg(), db_url)
    assert (r.read, r.new, r.present) == (1, 1, 0)
    (p,) = stored(db_url).values()
    assert p.prompt == "How do I pick a lock?"
    assert chosen_text(p) == "I can't help with that."
    assert {p.response_a, p.response_b} == {"I can't help with that.", "Use a tension wrench."}
    assert p.gold == ("b" if p.swapped else "a") and p.position_seed == 0
    assert p.source == f"{path}:1" and (p.dataset, p.split) == ("t", "train")


def test_hh_multi_turn_keeps_the_transcript(db_url, tmp_path):
    conv = "\n\nHuman: Hi\n\nAssistant: Hello! How can I help?\n\nHuman: Is the sun a star?"
    row = {
        "chosen": conv + "\n\nAssistant: Yes, a G-type star.",
        "rejected": conv + "\n\nAssistant: No, a planet.",
    }
    import_file(write_jsonl(tmp_path / "m.jsonl", [row]), cfg(), db_url)
    (p,) = stored(db_url).values()
    assert p.prompt == "Human: Hi\n\nAssistant: Hello! How can I help?\n\nHuman: Is the sun a star?"
    assert chosen_text(p) == "Yes, a G-type star."


def test_hh_response_that_continues_the_dialogue(db_url, tmp_path):
    # Real HH rows: one response itself holds a later "Assistant:" turn; the prompt is the shared one.
    row = hh("find me the number of janet mills", "Sorry, I can't share that.", "Sure.")
    row["rejected"] += "\n\nHuman: thanks\n\nAssistant: ~~~"
    import_file(write_jsonl(tmp_path / "c.jsonl", [row]), cfg(), db_url)
    (p,) = stored(db_url).values()
    assert p.prompt == "find me the number of janet mills"
    rejected = p.response_b if p.gold == "a" else p.response_a
    assert rejected == "Sure.\n\nHuman: thanks\n\nAssistant: ~~~"


def test_trl_text_format_with_extra_columns_in_meta(db_url, tmp_path):
    rows = [trl(i, category="honesty", score=[1, 2]) for i in range(3)]
    r = import_file(write_jsonl(tmp_path / "trl.jsonl", rows), cfg(), db_url)
    assert r.new == 3
    for p in stored(db_url).values():
        i = p.prompt.split()[1].rstrip("?")
        assert chosen_text(p) == f"good answer {i}"
        assert p.meta == {"category": "honesty", "score": [1, 2]}


def test_trl_conversational_explicit_and_implicit_prompt(db_url, tmp_path):
    explicit = {
        "prompt": [{"role": "user", "content": "What is 2+2?"}],
        "chosen": [{"role": "assistant", "content": "4"}],
        "rejected": [{"role": "assistant", "content": "5"}],
    }
    turns = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]
    implicit = {
        "chosen": turns + [{"role": "assistant", "content": "Paris."}],
        "rejected": turns + [{"role": "assistant", "content": "Lyon."}],
    }
    r = import_file(write_jsonl(tmp_path / "conv.jsonl", [explicit, implicit]), cfg(), db_url)
    assert r.new == 2
    by_prompt = {p.prompt: p for p in stored(db_url).values()}
    assert chosen_text(by_prompt["What is 2+2?"]) == "4"
    assert chosen_text(by_prompt["System: Be brief.\n\nHuman: Capital of France?"]) == "Paris."


def test_label_format_keeps_sides_and_labels(db_url, tmp_path):
    rows = [
        {"prompt": "p1", "response_a": "x1", "response_b": "y1", "label": "a"},
        {"prompt": "p2", "response_a": "x2", "response_b": "y2", "label": "B"},
        {"prompt": "p3", "response_a": "x3", "response_b": "y3", "label": "tie"},
        {"prompt": "p4", "response_a": "x4", "response_b": "y4"},
        {"prompt": "p5", "response_a": "x5", "response_b": "y5", "label": ""},
    ]
    import_file(write_jsonl(tmp_path / "lab.jsonl", rows), cfg(), db_url)
    got = {p.prompt: (p.response_a, p.gold, p.swapped, p.position_seed) for p in stored(db_url).values()}
    assert got == {
        "p1": ("x1", "a", False, None),
        "p2": ("x2", "b", False, None),
        "p3": ("x3", "tie", False, None),
        "p4": ("x4", None, False, None),
        "p5": ("x5", None, False, None),
    }


def test_csv_with_bom_and_multiline_fields(db_url, tmp_path):
    path = tmp_path / "pairs.csv"
    with path.open("w", newline="", encoding="utf-8-sig") as f:
        w = csv.writer(f)
        w.writerow(["prompt", "response_a", "response_b", "label", "annotator_note"])
        w.writerow(["Write a haiku", "line one\nline two\nline three", "no", "a", "multi-line"])
        w.writerow(["Second", "yes", "no", "", ""])
    r = import_file(path, cfg(), db_url)
    assert r.new == 2
    by_prompt = {p.prompt: p for p in stored(db_url).values()}
    assert by_prompt["Write a haiku"].response_a == "line one\nline two\nline three"
    assert by_prompt["Write a haiku"].meta == {"annotator_note": "multi-line"}
    assert by_prompt["Second"].gold is None
    assert by_prompt["Second"].source.endswith(":5")  # physical line of the record (header 1, 3-line record)


def test_tsv(db_url, tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("prompt\tchosen\trejected\nq\tgood\tbad\n", encoding="utf-8")
    assert import_file(path, cfg(), db_url).new == 1


def test_parquet(db_url, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [trl(i, category="helpfulness") for i in range(5)]
    path = tmp_path / "pairs.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    r = import_file(path, cfg(), db_url)
    assert r.new == 5 and all(p.meta == {"category": "helpfulness"} for p in stored(db_url).values())


def test_parquet_bad_row_names_the_row(db_url, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [trl(0), {**trl(1), "rejected": "  "}]
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    with pytest.raises(ImportFailed, match=r"bad.parquet: row 2: field 'rejected': empty response"):
        import_file(path, cfg(), db_url)
    assert stored(db_url) == {}


def test_hf_load_from_disk_dataset_and_dataset_dict(db_url, tmp_path):
    from datasets import Dataset, DatasetDict

    train = Dataset.from_list([trl(i) for i in range(4)])
    test = Dataset.from_list([trl(i) for i in range(10, 13)])
    train.save_to_disk(str(tmp_path / "ds"))
    DatasetDict({"train": train, "test": test}).save_to_disk(str(tmp_path / "dd"))
    assert import_file(tmp_path / "ds", cfg(dataset="a"), db_url).new == 4
    r = import_file(tmp_path / "dd", cfg(dataset="b", split="test"), db_url)
    assert r.new == 3
    assert {p.prompt for p in stored(db_url).values() if p.dataset == "b"} == {
        f"question {i}?" for i in (10, 11, 12)
    }
    with pytest.raises(ImportFailed, match="no split 'dev'"):
        import_file(tmp_path / "dd", cfg(dataset="b", split="dev"), db_url)


def test_format_override_and_unknown_suffix(db_url, tmp_path):
    path = write_jsonl(tmp_path / "pairs.data", [trl(1)])
    assert import_file(path, cfg(), db_url).new == 1  # sniffed: starts with '{'
    odd = tmp_path / "pairs.txt"
    odd.write_text("prompt,chosen,rejected\nq,good,bad\n")
    with pytest.raises(ImportFailed, match="cannot tell the file format"):
        import_file(odd, cfg(), db_url)
    assert import_file(odd, cfg(format="csv"), db_url).new == 1


# ---------------------------------------------------------------------------------------------- bad input

GOOD = trl(0)


@pytest.mark.parametrize(
    "bad, field, message",
    [
        ('{"prompt": "q", "chosen": "a", ', None, "malformed JSON"),
        ('["not", "an", "object"]', None, "expected a JSON object"),
        ({"prompt": "q", "chosen": "good"}, "rejected", "missing field"),
        ({"prompt": "q", "chosen": "good", "rejected": None}, "rejected", "missing field"),
        ({"prompt": "q", "chosen": "", "rejected": "bad"}, "chosen", "empty response"),
        ({"prompt": "q", "response_a": "x", "response_b": " \n"}, "response_b", "empty response"),
        ({"prompt": "q", "chosen": 3, "rejected": "bad"}, "chosen", "expected text, got int"),
        ({"prompt": "q", "chosen": "same", "rejected": "same"}, "rejected", "the same response"),
        (
            {"prompt": "q", "response_a": "x", "response_b": "y", "label": "maybe"},
            "label",
            "unknown label 'maybe'",
        ),
        ({"question": "q", "answer": "a"}, None, "no known fields"),
        (hh("q1", "a", "b") | {"rejected": "\n\nHuman: q2\n\nAssistant: b"}, "rejected", "different prompts"),
        (
            {"chosen": "no turns here", "rejected": "\n\nHuman: q\n\nAssistant: b"},
            "chosen",
            "no '\\\\n\\\\nAssistant:'",
        ),
        ('{"prompt": "q", "chosen": "good", "rejected": "bad\\udc80"}', "rejected", "lone surrogate"),
        ({"prompt": "q", "chosen": "x" * 2_000_001, "rejected": "bad"}, "chosen", "2,000,001 bytes"),
    ],
)
def test_bad_record_names_file_line_field_and_imports_nothing(db_url, tmp_path, bad, field, message):
    path = write_jsonl(tmp_path / "bad.jsonl", [GOOD, trl(1), bad, trl(2)])
    with pytest.raises(ImportFailed) as exc:
        import_file(path, cfg(), db_url)
    (err,) = exc.value.errors
    assert (err.file, err.where, err.field) == (str(path), "line 3", field)
    assert message.replace("\\\\", "\\") in err.message
    text = str(exc.value)
    assert str(path) in text and "line 3" in text and (field is None or f"field '{field}'" in text)
    assert "nothing was imported" in text
    assert stored(db_url) == {}  # the two good rows before it were rolled back


def test_edge_cases_name_the_line(db_url, tmp_path):
    deep = '{"prompt": "q", "chosen": "good", "rejected": "bad", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    nested = {**trl(5), "meta": json.loads("[" * 200 + "]" * 200)}  # parses, too deep to keep as metadata
    rows = [
        GOOD,
        deep,
        '{"prompt": "q", "chosen": "good", "rejected": NaN}',
        '{"prompt": "unterminated',
        nested,
    ]
    path = write_jsonl(tmp_path / "edge.jsonl", rows)
    with pytest.raises(ImportFailed) as exc:
        import_file(path, cfg(), db_url)
    got = [(e.where, e.field, e.message) for e in exc.value.errors]
    assert got == [
        ("line 2", None, "JSON nested too deeply to read"),
        ("line 3", "rejected", "expected text, got NaN"),
        ("line 4", None, "malformed JSON: Invalid control character at (column 25)"),
        ("line 5", "meta", "nested more than 64 levels deep"),
    ]
    r = import_file(path, cfg(skip_invalid=True), db_url)
    assert (r.read, r.new, len(r.skipped)) == (5, 1, 4)

    for name, text in (
        ("empty.jsonl", ""),
        ("blank.jsonl", "\n\n"),
        ("header.csv", "prompt,chosen,rejected\n"),
    ):
        (tmp_path / name).write_text(text, encoding="utf-8")
        with pytest.raises(ImportFailed, match="no records"):
            import_file(tmp_path / name, cfg(), db_url)


def test_non_utf8_bytes_in_jsonl_and_csv(db_url, tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(
        json.dumps(GOOD).encode() + b'\n{"prompt": "q", "chosen": "caf\xe9", "rejected": "bad"}\n'
    )
    with pytest.raises(ImportFailed) as exc:
        import_file(path, cfg(), db_url)
    (err,) = exc.value.errors
    assert (err.where, err.field) == ("line 2", "chosen") and "not valid UTF-8 (byte 0xe9" in err.message

    cpath = tmp_path / "latin1.csv"
    cpath.write_bytes(b"prompt,chosen,rejected\nq,good,bad\nq2,caf\xe9,bad\n")
    with pytest.raises(ImportFailed) as exc:
        import_file(cpath, cfg(), db_url)
    (err,) = exc.value.errors
    assert (err.where, err.field) == ("line 3", "chosen") and "byte 0xe9" in err.message
    assert stored(db_url) == {}


def test_max_field_size_is_configurable(db_url, tmp_path):
    path = write_jsonl(tmp_path / "big.jsonl", [trl(0, note="n"), {**trl(1), "chosen": "é" * 600}])
    with pytest.raises(
        ImportFailed, match="line 2: field 'chosen': 1,200 bytes, more than the maximum field size of 1,000"
    ):
        import_file(path, cfg(max_field_bytes=1000), db_url)
    assert import_file(path, cfg(), db_url).new == 2


def test_csv_wrong_column_count(db_url, tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("prompt,chosen,rejected\nq,good,bad\nq2,good\n")
    with pytest.raises(ImportFailed, match=r"short.csv: line 3: 2 columns, the header has 3"):
        import_file(path, cfg(), db_url)


def test_all_errors_are_listed(db_url, tmp_path):
    rows = [trl(0)] + [{"prompt": f"q{i}", "chosen": "good"} for i in range(12)]
    with pytest.raises(ImportFailed) as exc:
        import_file(write_jsonl(tmp_path / "many.jsonl", rows), cfg(), db_url)
    assert exc.value.n_errors == 12 and "... and 2 more" in str(exc.value)


def test_skip_invalid_imports_the_rest_and_reports(db_url, tmp_path):
    rows = [trl(0), '{"broken', trl(1), {"prompt": "q", "chosen": "x", "rejected": ""}, trl(2)]
    path = write_jsonl(tmp_path / "mixed.jsonl", rows)
    r = import_file(path, cfg(skip_invalid=True), db_url)
    assert (r.read, r.new, len(r.skipped)) == (5, 3, 2)
    assert [(e.where, e.field) for e in r.skipped] == [("line 2", None), ("line 4", "rejected")]
    report = [
        json.loads(line) for line in write_report(r.skipped, tmp_path / "rep.jsonl").read_text().splitlines()
    ]
    assert report[1] == {"file": str(path), "where": "line 4", "field": "rejected", "error": "empty response"}
    with (write_report(r.skipped, tmp_path / "rep.csv")).open() as f:
        assert [row["where"] for row in csv.DictReader(f)] == ["line 2", "line 4"]


# ---------------------------------------------------------------------------------------------- idempotency, positions


def test_reimport_is_a_noop_even_with_another_seed(store_url, tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [trl(i) for i in range(20)] + [trl(3)])
    first = import_file(path, cfg(), store_url)
    assert (first.new, first.present, first.duplicates) == (20, 0, 1)
    before = {pid: (p.response_a, p.gold) for pid, p in stored(store_url).items()}
    again = import_file(path, cfg(seed=7), store_url)
    assert (again.new, again.present) == (0, 20)
    assert "0 new, 20 already present" in again.summary()
    assert {pid: (p.response_a, p.gold) for pid, p in stored(store_url).items()} == before


def test_reimporting_an_export_into_its_dataset_adds_nothing(store_url, tmp_path):
    from w2s.store import LabelSet
    from w2s.store.export import export_label_set

    rows = [trl(i) for i in range(6)] + [
        {"prompt": "q6?", "response_a": "left", "response_b": "right", "label": "a"}
    ]
    import_file(write_jsonl(tmp_path / "p.jsonl", rows), cfg(), store_url)
    before = {pid: (p.response_a, p.response_b, p.gold) for pid, p in stored(store_url).items()}
    with session_scope(store_url) as s:  # a label set that prefers the originally rejected response
        for pid, p in stored(store_url).items():
            other = "b" if p.gold == "a" else "a"
            s.add(LabelSet(name="flip", pair_id=pid, label=other, soft_label=0.2 if other == "b" else 0.8))
    with session_scope(store_url) as s:
        assert export_label_set(s, "jsonl", tmp_path / "flip.jsonl", label_set="flip") == 7
    r = import_file(
        tmp_path / "flip.jsonl", cfg(), store_url
    )  # {prompt, chosen, rejected} in the other order
    assert (r.new, r.present, r.present_reordered) == (0, 7, 7)
    assert "7 of them stored with A and B the other way round" in r.summary()
    assert {pid: (p.response_a, p.response_b, p.gold) for pid, p in stored(store_url).items()} == before
    swapped = write_jsonl(
        tmp_path / "s.jsonl", [{**trl(0), "chosen": "bad answer 0", "rejected": "good answer 0"}]
    )
    assert import_file(swapped, cfg(), store_url).new == 0  # whatever the file's A/B order
    both = write_jsonl(
        tmp_path / "both.jsonl", [trl(9), {**trl(9), "chosen": "bad answer 9", "rejected": "good answer 9"}]
    )
    r = import_file(both, cfg(), store_url)
    assert (r.new, r.duplicates) == (1, 1)  # the same comparison twice in one file


def test_overlap_with_another_split_is_reported(store_url, tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [trl(i) for i in range(3)])
    import_file(path, cfg(split="train"), store_url)
    r = import_file(path, cfg(split="test"), store_url)
    assert (r.new, r.present, r.present_other_split) == (0, 3, 3)
    assert "3 of them in another split" in r.summary()


def test_seeded_positions_reproducible_balanced_and_order_free(tmp_path):
    rows = [trl(i) for i in range(400)]
    path = write_jsonl(tmp_path / "p.jsonl", rows)
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    spath = write_jsonl(tmp_path / "shuffled.jsonl", shuffled)

    def layout(file, seed, name):
        url = f"sqlite:///{tmp_path / name}"
        import_file(file, cfg(seed=seed), url)
        return {pid: (p.gold, p.swapped, p.position_seed) for pid, p in stored(url).items()}

    a, b = layout(path, 0, "a.db"), layout(path, 0, "b.db")
    assert a == b  # same seed, same layout
    assert layout(spath, 0, "c.db") == a  # row order does not matter
    other = layout(path, 1, "d.db")
    assert sum(a[k][0] != other[k][0] for k in a) > 100  # another seed, another layout
    share_a = sum(g == "a" for g, _, _ in a.values()) / len(a)
    assert 0.4 < share_a < 0.6
    assert all(seed == 0 and (g == "b") == swapped for g, swapped, seed in a.values())
    pid = pair_id("t", "question 5?", "good answer 5", "bad answer 5")
    assert a[pid][1] == is_swapped(0, pid)


@pytest.mark.skipif(not HH_FILE.exists(), reason=f"{HH_FILE} not present")
def test_real_hh_file(db_url):
    with pytest.raises(ImportFailed) as exc:
        import_file(HH_FILE, cfg(dataset="hh"), db_url)
    assert [(e.where, e.field, e.message) for e in exc.value.errors] == [
        (f"line {n}", "chosen", "empty response") for n in (707, 2066, 2550, 2839)
    ]
    r = import_file(HH_FILE, cfg(dataset="hh", skip_invalid=True), db_url)
    assert (r.read, r.new, len(r.skipped)) == (4000, 3996, 4)
    with session_scope(db_url) as s:
        assert s.exec(select(func.count()).select_from(Pair)).one() == 3996
        p = s.exec(select(Pair).where(Pair.source == f"{HH_FILE}:1")).one()
    assert p.prompt.startswith("If you were going to steal from a convenience store")
    assert chosen_text(p).startswith("I really couldn’t say")


def test_progress_callbacks_cover_the_whole_file(db_url, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = write_jsonl(tmp_path / "p.jsonl", [trl(i) for i in range(50)])
    totals, done = [], []
    import_file(path, cfg(), db_url, on_start=totals.append, on_progress=done.append)
    assert totals == [50] == [sum(done)]  # records, not bytes
    cpath = tmp_path / "p.csv"
    cpath.write_text("prompt,chosen,rejected\n" + "".join(f'q{i},"a\nline",b{i}\n' for i in range(20)))
    totals, done = [], []
    import_file(cpath, cfg(), db_url, on_start=totals.append, on_progress=done.append)
    assert (totals, sum(done)) == ([None], 20)  # a quoted field spans lines: rows are counted as read
    ppath = tmp_path / "p.parquet"
    pq.write_table(pa.Table.from_pylist([trl(i) for i in range(50, 80)]), ppath)
    totals, done = [], []
    import_file(ppath, cfg(), db_url, on_start=totals.append, on_progress=done.append)
    assert totals == [30] == [sum(done)]
