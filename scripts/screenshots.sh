#!/usr/bin/env bash
# Refresh the README's screenshots (docs/annotator.png, docs/admin.png) with the browser tests that take
# them (the whole file: the admin view shows what the earlier tests labelled and pruned). A plain test
# run writes them to a temporary folder instead, so it never changes tracked files. The other pictures in
# docs/ come from scripts/screenshots.py.
set -euo pipefail
cd "$(dirname "$0")/.."
W2S_SCREENSHOTS="$PWD/docs" python3 -m pytest -q tests/app/test_browser.py "$@"
