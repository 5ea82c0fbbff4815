#!/usr/bin/env bash
# Installs w2s, then runs the whole flow on the demo pairs with the embedded default models.
# Everything it writes goes to out/demo/. Safe to run again: every step is idempotent, so a second run
# adds nothing and finishes quickly. N (default 12) pairs get trees and weak-model labels: on 2 CPU cores
# the strong model takes about 15 s a tree.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

mkdir -p out/demo
export W2S_DB="sqlite:///$PWD/out/demo/w2s.db"
WEAK=${WEAK:-transformers:smollm2}
STRONG=${STRONG:-transformers:smollm2}   # a real strong model: w2s models fetch qwen2.5-coder-1.5b, then
N=${N:-12}                               # STRONG=llamacpp:qwen2.5-coder-1.5b (pip install 'w2s[llamacpp]')

run() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

run w2s import data/demo_pairs.jsonl --dataset demo --split test
run w2s pairs stats
run w2s trees build --strong "$STRONG" --dataset demo --limit "$N"
run w2s annotate --annotator naive --weak "$WEAK" --dataset demo --limit "$N"
run w2s annotate --annotator seam --weak "$WEAK" --strong "$STRONG" --dataset demo --limit "$N"
run w2s eval annotations --out out/demo/eval.json
run w2s labels build --methods seam --method soft --weights softmax:0.2
run w2s export --format jsonl --out out/demo/labels.jsonl
run w2s export --raw --format jsonl --out out/demo/annotations.jsonl
run w2s labels report --out out/demo/report
printf '\nDone. Label set: out/demo/labels.jsonl; evaluation: out/demo/eval.json; annotate by hand: w2s --db %s serve\n' "$W2S_DB"
