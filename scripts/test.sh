#!/usr/bin/env bash
# Sets up what is missing and runs the whole test suite (Swift Testing), including the
# differential tests against the Python oracles. Extra arguments go to `swift test`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# What the build and the tests write to temporary files goes in a directory of this run's, as
# open to other users as /tmp is (tests run clients under other uids), and leaves with it.
TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/session-agent-tests.XXXXXX")
chmod 1777 "$TMPDIR"
export TMPDIR
# What the tests started runs with this directory on its command line (pcscd's configuration,
# the card and FIDO emulators' files, the agents' configurations). A test process that crashed
# stopped none of it, and a pcscd left over takes the next run's virtual readers: stop it too.
trap 'if command -v pkill >/dev/null; then pkill -u "$(id -u)" -f -- "$TMPDIR/" || true; fi; rm -rf "$TMPDIR"' EXIT
bash scripts/install-deps.sh
swift build --build-tests 2>&1 | { grep -vE '^\[|prohibited flag' || true; }
# Every agent the tests start leaves its log here; none may contain a secret the tests gave it.
logs=$(mktemp -d)
SESSION_AGENT_TEST_LOGS=$logs swift test --skip-build --disable-xctest "$@"
# Each test removes what it made (the stores, sockets and copies it needs go in a directory
# of its own: TestTraits' ScratchDirectory), so a bare `swift test` leaves nothing behind
# either. What SwiftPM and the compiler leave there (*.lock, TemporaryDirectory.*,
# swift-generated-sources) is not the tests'.
left=$(find "$TMPDIR" -mindepth 1 -maxdepth 1 ! -path "$logs" ! -name '*.lock' ! -name 'TemporaryDirectory.*' ! -name swift-generated-sources)
if [ -n "$left" ]; then
    echo "FAIL: the tests left these in the temporary directory:" >&2
    echo "$left" >&2
    exit 1
fi
if [ -f "$logs/secrets" ]; then
    count=$(ls "$logs"/agent-*.log 2>/dev/null | wc -l)
    if grep -F -l -f "$logs/secrets" "$logs"/agent-*.log; then
        echo "FAIL: a secret given to the test agents appears in their logs (files above)" >&2
        exit 1
    fi
    echo "no secret in the logs of the $count agents the suite ran"
    # Nor may one stopped with SIGTERM end any other way than with status 0 (a crash at exit,
    # in a C library's exit handler say, would show only here).
    if grep -v -x -H "exit 0" "$logs"/agent-*.stops; then
        echo "FAIL: an agent stopped with SIGTERM did not exit with status 0 (files above)" >&2
        exit 1
    fi
    echo "the $(cat "$logs"/agent-*.stops | wc -l) SIGTERM stops of those agents each ended with status 0"
fi
