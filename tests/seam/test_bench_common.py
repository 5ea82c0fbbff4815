"""bench/common.py: the seeded sample every bench draws, and what it says of invalid records."""

import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_import_sample_names_invalid_records_by_their_line_in_the_pair_file(tmp_path, capsys):
    sys.path.insert(0, str(BENCH))
    from common import import_sample, sqlite_url

    rows = [
        {"prompt": f"Q{i}", "response_a": f"a{i}", "response_b": f"b{i}", "label": "a"} for i in range(12)
    ]
    rows[6]["response_b"] = ""  # line 7 of the file
    path = tmp_path / "demo" / "dev.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    url = sqlite_url(tmp_path / "s.db")
    ids = import_sample(path, url)
    out = capsys.readouterr().out
    assert f"skipped invalid record: {path}: line 7: field 'response_b'" in out
    assert len(ids) == 11 and ids == import_sample(path, url)  # the same seeded order again, nothing added
    assert import_sample(path, url, 4) == ids[:4]  # a sample of n is the first n of the whole order
