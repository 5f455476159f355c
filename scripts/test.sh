#!/usr/bin/env bash
# Set up, then lint and run the whole test suite (this is what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The HTML report is tested in a real headless browser: Debian's chromium.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo="sudo"
  { $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium; } >/dev/null 2>&1 \
    || echo "test: could not install chromium; the report's browser test will fail"
fi
ruff check src tests benchmarks
lint-imports  # the layering contract in pyproject.toml: no upward import
python3 -m pytest -o addopts="--import-mode=importlib --doctest-modules" -ra "$@"
