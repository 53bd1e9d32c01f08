#!/usr/bin/env bash
# Prints the benchmark figures (release build).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product bench 2>&1 | { grep -vE '^\[|prohibited flag' || true; }
.build/release/bench
