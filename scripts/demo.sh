#!/usr/bin/env bash
# Installs w2s, then runs SEAM end to end on the demo code pairs (data/demo-code/): import the pairs and
# their committed trees (built by Qwen2.5-Coder-1.5B), train an aligned master and its no-tree twin on
# the train split, label the test split with naive, aligned and seam-aligned, score them against gold,
# then build, export and report a label set. Everything it writes goes to out/demo/; a rerun adds nothing.
#
#   bash scripts/demo.sh                                          # committed trees: no strong model needed
#   STRONG=llamacpp:qwen2.5-coder-1.5b bash scripts/demo.sh       # build the trees fresh (out/demo-fresh/)
#
# The fresh build needs `w2s models fetch qwen2.5-coder-1.5b` and `pip install 'w2s[llamacpp]'`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

TREES_BY=llamacpp:qwen2.5-coder-1.5b   # the strong model that built data/demo-code/trees-*.jsonl.gz
WEAK=${WEAK:-transformers:smollm2}
STRONG=${STRONG:-}
OUT=out/demo
[ -n "$STRONG" ] && OUT=out/demo-fresh
mkdir -p "$OUT"
export W2S_DB="sqlite:///$PWD/$OUT/w2s.db"
DATA=(--dataset demo-code)

run() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

run w2s import data/demo-code/train.jsonl --dataset demo-code --split train
run w2s import data/demo-code/test.jsonl --dataset demo-code --split test
run w2s pairs stats
if [ -z "$STRONG" ]; then
  run w2s trees import data/demo-code/trees-train.jsonl.gz
  run w2s trees import data/demo-code/trees-test.jsonl.gz
else
  # The committed corpus's tree config (code library, B = 2, D = 3), so the fresh trees are comparable.
  start=$(date +%s)
  run w2s trees build --strong "$STRONG" "${DATA[@]}" --principles correctness -B 2 -D 3
  echo "trees built in $(( $(date +%s) - start )) s"
  TREES_BY=$STRONG
fi
# The master is saved in the store as "demo" (and written as a run directory, its export format).
MASTER=demo
if w2s master show "$MASTER" >/dev/null 2>&1; then
  run w2s master show "$MASTER"
elif [ -f "$OUT/master/master.json" ]; then
  run w2s master import "$OUT/master" --name "$MASTER"
else
  run w2s master train --strong "$TREES_BY" --weak "$WEAK" "${DATA[@]}" --split train --name "$MASTER" --out "$OUT/master"
fi
run w2s annotate -a naive --weak "$WEAK" "${DATA[@]}" --split test
run w2s annotate -a aligned --master "$MASTER" "${DATA[@]}" --split test
run w2s annotate -a seam-aligned --master "$MASTER" "${DATA[@]}" --split test
run w2s eval annotations "${DATA[@]}" --out "$OUT/eval.json"
run w2s labels build --master "$MASTER" --methods seam-aligned --method soft --weights none --name seam
run w2s export --label-set seam --format jsonl --out "$OUT/labels.jsonl"
run w2s export --raw --format jsonl --out "$OUT/annotations.jsonl"
run w2s labels report --name seam --out "$OUT/report"
printf '\nDone. Label set: %s/labels.jsonl; evaluation: %s/eval.json; annotate by hand: w2s --db %s serve\n' \
  "$OUT" "$OUT" "$W2S_DB"
