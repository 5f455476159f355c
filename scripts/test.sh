#!/usr/bin/env bash
# Set up, then lint and run the whole test suite (this is what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ruff check src tests benchmarks
lint-imports  # the layering contract in pyproject.toml: no upward import
python3 -m pytest -o addopts="--import-mode=importlib --doctest-modules" -ra "$@"
