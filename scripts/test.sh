#!/usr/bin/env bash
# Sets up what is missing and runs the whole test suite (Swift Testing), including the
# differential tests against the Python oracles. Extra arguments go to `swift test`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh
swift build --build-tests 2>&1 | { grep -vE '^\[|prohibited flag' || true; }
swift test --skip-build --disable-xctest "$@"
