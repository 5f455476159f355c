#!/usr/bin/env bash
# The main job from a fresh clone: set up, pre-train SimCLR on Fashion-MNIST, evaluate, print the
# results table. Extra arguments go to `selfsup run` (e.g. --train.epochs 10).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec selfsup run "$@"
