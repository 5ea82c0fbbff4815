"""data/demo-code: every correct response passes all its examples, every buggy one fails at least one, the
examples shown in each prompt agree with the correct response, and the JSONL files are up to date with
tasks.yaml. Python runs in one subprocess, JavaScript in one `node` subprocess (Debian's nodejs)."""

from __future__ import annotations

import json
import math
import runpy
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.paths import ROOT

DATA = ROOT / "data" / "demo-code"
SPLITS = ("train", "test")
BUG_TYPES = set(
    runpy.run_path(str(ROOT / "scripts" / "make_demo_code.py"))["BUG_TYPES"]
)  # one home: the writer
NODE_MISSING = (
    "`node` is not on PATH: the JavaScript pairs of data/demo-code cannot be checked. "
    "Install Debian's nodejs (apt-get install -y nodejs, or bash scripts/setup.sh --dev)."
)
RUN_TIMEOUT_S = 120

# Runs a batch of {code, entry_point, calls, shown} items; prints one JSON list of results. Each call runs
# under a 2 s alarm so that a looping solution fails its example instead of hanging the batch.
PY_RUNNER = r"""
import json, signal, sys

class Timeout(Exception):
    pass

def on_alarm(signum, frame):
    raise Timeout()

signal.signal(signal.SIGALRM, on_alarm)

def guarded(thunk):
    signal.alarm(2)
    try:
        value = thunk()
        json.dumps(value)
        return {"ok": True, "value": value}
    except BaseException as e:  # an exception, a timeout or an unserialisable value fails the example
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    finally:
        signal.alarm(0)

items = json.load(open(sys.argv[1], encoding="utf-8"))
results = []
for item in items:
    ns = {}
    loaded = guarded(lambda: exec(item["code"], ns))
    fn = ns.get(item["entry_point"])
    calls, shown = [], []
    for args in item["calls"]:
        if not loaded["ok"] or fn is None:
            calls.append({"ok": False, "error": loaded.get("error", "entry point not defined")})
        else:
            calls.append(guarded(lambda: fn(*json.loads(json.dumps(args)))))
    for expr, text in item["shown"]:
        got = guarded(lambda: eval(expr, ns))
        want = guarded(lambda: eval(text, {}))
        shown.append({"got": got, "want": want})
    results.append({"calls": calls, "shown": shown})
json.dump(results, sys.stdout)
"""

# The same for JavaScript. Non-finite numbers and undefined are turned into markers so that they cannot
# pass for the null that JSON.stringify would write for them.
JS_RUNNER = r"""
const fs = require('fs');
const items = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const mark = (k, v) => {
  if (v === undefined) return { __undefined__: true };
  if (typeof v === 'number' && !Number.isFinite(v)) return { __nonfinite__: String(v) };
  return v;
};
const guarded = (thunk) => {
  try {
    return { ok: true, value: JSON.parse(JSON.stringify(thunk(), mark)) };
  } catch (e) {
    return { ok: false, error: String(e) };
  }
};
const results = items.map((item) => {
  let fn = null;
  let loadError = null;
  try {
    fn = new Function(item.code + '\nreturn ' + item.entry_point + ';')();
  } catch (e) {
    loadError = String(e);
  }
  const calls = item.calls.map((args) =>
    fn === null ? { ok: false, error: loadError } : guarded(() => fn(...JSON.parse(JSON.stringify(args)))));
  const shown = item.shown.map(([expr, text]) => ({
    got: guarded(() => new Function(item.code + '\nreturn (' + expr + ');')()),
    want: guarded(() => new Function('return (' + text + ');')()),
  }));
  return { calls, shown };
});
process.stdout.write(JSON.stringify(results));
"""


def load_pairs() -> dict[str, list[dict]]:
    return {
        s: [json.loads(line) for line in (DATA / f"{s}.jsonl").read_text(encoding="utf-8").splitlines()]
        for s in SPLITS
    }


def all_pairs() -> list[dict]:
    pairs = load_pairs()
    return pairs["train"] + pairs["test"]


def task_of(pair: dict) -> str:
    return pair["id"].split("/", 1)[1]


def correct_and_buggy(pair: dict) -> tuple[str, str]:
    a, b = pair["response_a"], pair["response_b"]
    return (a, b) if pair["label"] == "a" else (b, a)


def shown_examples(prompt: str) -> list[tuple[str, str]]:
    """The `>>> call` lines of a prompt with the line after each (the result it shows)."""
    lines = prompt.splitlines()
    return [(line[4:], lines[i + 1]) for i, line in enumerate(lines) if line.startswith(">>> ")]


def same(got, want) -> bool:
    """JSON equality, with a tolerance for numbers and no bool standing in for a number or back."""
    if isinstance(got, bool) or isinstance(want, bool):
        return type(got) is type(want) and got == want
    if isinstance(got, (int, float)) and isinstance(want, (int, float)):
        return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(got, list) and isinstance(want, list):
        return len(got) == len(want) and all(same(g, w) for g, w in zip(got, want))
    if isinstance(got, dict) and isinstance(want, dict):
        return got.keys() == want.keys() and all(same(got[k], want[k]) for k in got)
    return type(got) is type(want) and got == want


def run_batch(lang: str, pairs: list[dict], tmp: Path) -> dict[str, dict]:
    """pair id -> {"correct": result, "buggy": result}, each result {"calls": [...], "shown": [...]}."""
    items = []
    for p in pairs:
        calls = [ex["args"] for ex in p["meta"]["examples"]]
        for code in correct_and_buggy(p):
            items.append(
                {
                    "code": code,
                    "entry_point": p["meta"]["entry_point"],
                    "calls": calls,
                    "shown": shown_examples(p["prompt"]),
                }
            )
    batch = tmp / f"{lang}-batch.json"
    batch.write_text(json.dumps(items), encoding="utf-8")
    if lang == "python":
        runner = tmp / "runner.py"
        runner.write_text(PY_RUNNER, encoding="utf-8")
        cmd = [sys.executable, str(runner), str(batch)]
    else:
        node = shutil.which("node")
        if node is None:
            pytest.fail(NODE_MISSING)
        runner = tmp / "runner.js"
        runner.write_text(JS_RUNNER, encoding="utf-8")
        cmd = [node, str(runner), str(batch)]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, cwd=tmp)
    assert proc.returncode == 0, f"{lang} runner failed:\n{proc.stderr[-3000:]}"
    results = json.loads(proc.stdout)
    assert len(results) == len(items)
    return {p["id"]: {"correct": results[2 * i], "buggy": results[2 * i + 1]} for i, p in enumerate(pairs)}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict]:
    tmp = tmp_path_factory.mktemp("demo-code")
    pairs = all_pairs()
    out: dict[str, dict] = {}
    for lang in ("python", "javascript"):
        out.update(run_batch(lang, [p for p in pairs if p["meta"]["language"] == lang], tmp))
    return out


def passes(result: dict, call: dict, expected) -> bool:
    return call["ok"] and same(call["value"], expected)


def test_node_is_installed():
    assert shutil.which("node"), NODE_MISSING


def test_jsonl_files_are_up_to_date():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_demo_code.py"), "--check"],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr


def test_correct_responses_pass_every_example(results):
    failures = []
    for p in all_pairs():
        res = results[p["id"]]["correct"]
        for ex, call in zip(p["meta"]["examples"], res["calls"]):
            if not passes(res, call, ex["expected"]):
                failures.append(f"{p['id']} {ex['args']}: want {ex['expected']!r}, got {call}")
    assert not failures, "\n".join(failures)


def test_buggy_responses_fail_an_example(results):
    survivors = []
    for p in all_pairs():
        res = results[p["id"]]["buggy"]
        if all(passes(res, call, ex["expected"]) for ex, call in zip(p["meta"]["examples"], res["calls"])):
            survivors.append(p["id"])
    assert not survivors, f"buggy responses that pass every example: {survivors}"


def test_prompt_examples_agree_with_the_correct_response(results):
    wrong = []
    for p in all_pairs():
        shown = results[p["id"]]["correct"]["shown"]
        assert len(shown) >= 2, f"{p['id']}: the prompt shows fewer than two examples"
        for (expr, text), r in zip(shown_examples(p["prompt"]), shown):
            if not (r["got"]["ok"] and r["want"]["ok"] and same(r["got"]["value"], r["want"]["value"])):
                wrong.append(f"{p['id']}: {expr} shows {text}, the correct response gives {r['got']}")
    assert not wrong, "\n".join(wrong)


def test_pairs_are_well_formed():
    pairs = load_pairs()
    for split, records in pairs.items():
        for p in records:
            lang, _ = p["id"].split("/", 1)
            meta = p["meta"]
            assert lang == meta["language"] in ("python", "javascript"), p["id"]
            assert meta["bug_type"] in BUG_TYPES, p["id"]
            assert p["label"] in ("a", "b"), p["id"]
            assert meta["position_seed"] == 0, p["id"]
            assert p["response_a"] != p["response_b"], p["id"]
            assert p["response_a"].endswith("\n") and p["response_b"].endswith("\n"), p["id"]
            assert 3 <= len(meta["examples"]) <= 6, p["id"]
            word = {"python": "Python", "javascript": "JavaScript"}[lang]
            opening = f"Write a {word} function `{meta['entry_point']}("
            assert p["prompt"].startswith(opening), p["id"]
        # every task gives one pair per language, in the same split
        per_task = Counter(task_of(p) for p in records)
        assert set(per_task.values()) == {2}, split


def test_ids_are_unique():
    ids = [p["id"] for p in all_pairs()]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 100


def test_no_task_in_both_splits():
    pairs = load_pairs()
    train = {task_of(p) for p in pairs["train"]}
    test = {task_of(p) for p in pairs["test"]}
    assert not train & test, f"tasks in both splits: {sorted(train & test)}"
    assert abs(len(train) - len(test)) <= 1


def test_gold_is_balanced_between_a_and_b():
    labels = Counter(p["label"] for p in all_pairs())
    total = sum(labels.values())
    assert max(labels.values()) / total <= 0.65, labels


def test_bug_types_vary():
    kinds = Counter(p["meta"]["bug_type"] for p in all_pairs())
    assert set(kinds) == BUG_TYPES, kinds
    # the two languages of a task usually have different bugs
    by_task: dict[str, set[str]] = {}
    for p in all_pairs():
        by_task.setdefault(task_of(p), set()).add(p["meta"]["bug_type"])
    differ = sum(len(kinds) == 2 for kinds in by_task.values())
    assert differ >= 0.8 * len(by_task), differ
