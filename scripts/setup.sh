#!/usr/bin/env bash
# Set-up on a fresh Debian/Ubuntu machine, safe to run again: Fashion-MNIST from Debian's
# dataset-fashion-mnist package (when apt is there) and selfsup with its dev tools from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo="sudo"
  { $sudo apt-get update -qq && $sudo apt-get install -y -qq dataset-fashion-mnist; } >/dev/null 2>&1 \
    || echo "setup: could not install dataset-fashion-mnist; use --data.data_dir DIR or --data.download true"
fi
python3 -m pip install --quiet --disable-pip-version-check -e ".[dev]"
