#!/usr/bin/env bash
# Fuzzes what the agent and the CLI read from people and programs they do not control (session
# requests, user operations against a session, userOp.signatures, ABI data, EIP-712 documents,
# PKCS#11 URIs, rules files, amounts) with libFuzzer, for SECONDS (default 60).
#   scripts/fuzz.sh [SECONDS]          FUZZ_ONLY=N: harness N alone (Sources/fuzz/Harnesses.swift)
# A trap is a finding: it lands in .build-fuzz/findings/, and `swift run fuzz FILE` replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
swift build -c release --product fuzz --scratch-path .build-fuzz --sanitize fuzzer -Xswiftc -DFUZZING 2>&1 | { grep -vE '^\[|prohibited flag' || true; }

# Seeds: the examples and fixtures, each behind its harness's number.
corpus=.build-fuzz/corpus
mkdir -p "$corpus" .build-fuzz/findings
python3 - "$corpus" <<'PY'
import glob, json, sys
out = sys.argv[1] + "/"
def seed(name, harness, data):
    open(out + name, "wb").write(bytes([harness]) + data)
for i, f in enumerate(glob.glob("docs/examples/*.json") + glob.glob("Tests/TestSupport/Fixtures/requests/*.json")):
    seed("request-%d" % i, 0, open(f, "rb").read())
for i, f in enumerate(sorted(glob.glob("Tests/TestSupport/Fixtures/cases/*.json"))):
    case = json.load(open(f))
    request = {"account": case["account"]["address"], "chains": [int(case["chainId"])], "session": case["session"]}
    for j, op in enumerate(case.get("userOps", [])[:3]):
        user_op = op.get("userOp", op)
        seed("userop-%d-%d" % (i, j), 1, json.dumps({"request": request, "userOp": user_op}).encode())
        if str(user_op.get("signature", "")).startswith("0x"):
            seed("signature-%d-%d" % (i, j), 2, bytes.fromhex(user_op["signature"][2:]))
        if str(user_op.get("callData", "")).startswith("0x"):
            # Harness 8's sessions: the example, four request fixtures, then these cases in order.
            seed("calldata-%d-%d" % (i, j), 8, bytes([5 + i]) + bytes.fromhex(user_op["callData"][2:]))
seed("abi", 3, b"(uint256,bytes,address[])\n" + bytes(63) + b"\x60" + bytes(128))
seed("typed-data", 4, open("Tests/TestSupport/Fixtures/multichain-session-typed-data.json", "rb").read())
seed("uri", 5, b"pkcs11:token=signer;object=owner;id=%01%02?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/x")
seed("rules", 6, open("docs/examples/rules.toml", "rb").read())
seed("amount", 7, b"100.5 USDC")
PY

SWIFT_BACKTRACE=enable=no .build-fuzz/release/fuzz "$corpus" -fork=1 -ignore_crashes=1 -artifact_prefix=.build-fuzz/findings/ \
    -max_total_time="$seconds" -max_len=16384 -timeout=10 2>&1 | grep -E '^(INFO: fuzzed|#[0-9]+:|==[0-9]+== ERROR|.*Assertion|Fatal error)' | tail -n 20
found=$(find .build-fuzz/findings -type f | wc -l)
echo "fuzz: $found finding(s) in .build-fuzz/findings"
[ "$found" -eq 0 ]
