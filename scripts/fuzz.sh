#!/usr/bin/env bash
# Fuzzes what the agent and the CLI read from people and programs they do not control (session
# requests, user operations and raw callData against sessions, userOp.signatures, ABI data,
# EIP-712 documents, PKCS#11 URIs, rules files, amounts, whole conversations with an agent, the
# configuration file, token lists, keystore files, the key data and signatures tokens return, the
# data objects OpenPGP cards return, what FIDO2 authenticators answer and passkey files, exported audit entries, and what a
# chain's JSON-RPC endpoint answers) with libFuzzer, for SECONDS
# (default 60) shared evenly by the harnesses of Sources/fuzz/Harnesses.swift, each on its own
# corpus: mixed in one run, the agent's conversations (milliseconds each) took nearly all the time.
#   scripts/fuzz.sh [SECONDS]          FUZZ_HARNESS="N …": those harnesses alone
# A trap is a finding: it lands in .build-fuzz/findings/harness-N-…, and
# `FUZZ_HARNESS=N swift run fuzz FILE` replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
swift build -c release --product fuzz --scratch-path .build-fuzz --sanitize fuzzer -Xswiftc -DFUZZING 2>&1 | { grep -vE '^\[|prohibited flag' || true; }
count=$(sed -n '/static let all/,/^    \]/p' Sources/fuzz/Harnesses.swift | grep -c '^        ("')
harnesses=${FUZZ_HARNESS:-$(seq 0 $((count - 1)))}
share=$(( seconds / $(wc -w <<< "$harnesses") ))
(( share >= 10 )) || share=10

# Seeds: the examples and fixtures, in .build-fuzz/corpus-N for harness N.
mkdir -p .build-fuzz/findings
python=.venv-oracle/bin/python; [ -x "$python" ] || python=python3
"$python" - .build-fuzz/corpus- <<'PY'
import glob, json, os, re, sys
def seed(name, harness, data):
    os.makedirs(sys.argv[1] + str(harness), exist_ok=True)
    open(sys.argv[1] + str(harness) + "/" + name, "wb").write(data)
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
# A conversation with the agent: the example approved by the rules and signed with, a larger
# one approved by the operator, listed, revoked; the store checked, the audit log pruned past the
# rules' entry, which the prune writes again. $S and $R are the last session and request ids.
request = json.load(open("docs/examples/usdc-transfers.json"))
larger = dict(request, permissions=[dict(request["permissions"][0], spendingLimit="500 USDC")])
op = {"sender": "0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6", "nonce": "0x0", "callGasLimit": "0x30000", "verificationGasLimit": "0x30000",
      "preVerificationGas": "0x10000", "maxFeePerGas": "0x3b9aca00", "maxPriorityFeePerGas": "0x3b9aca00", "signature": "0x",
      "callData": "0xe9ae5c53" + "00" * 63 + "40" + "00" * 31 + "78" + "1c7d4b196cb0c7b01d743fbc6116a902379c7238" + "00" * 32
                  + "a9059cbb" + "00" * 30 + "beef" + "00" * 29 + "4c4b40" + "00" * 8}
sign = lambda i, nonce: {"jsonrpc": "2.0", "id": i, "method": "session_signUserOperation", "params": {
    "sessionId": "$S", "chainId": 11155111, "entryPoint": "0x0000000071727De22E5E9d8BAf0edAc6f37da032", "userOperation": dict(op, nonce=nonce)}}
call = lambda i, method, params, control=False: ("!" if control else "") + json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params})
seed("agent", 9, "\n".join([
    call(1, "session_request", {"request": request}), json.dumps(sign(2, "0x0")), json.dumps(sign(3, "0x1")),
    call(4, "session_get", {"sessionId": "$S"}), call(5, "session_request", {"request": larger}),
    call(6, "pending_decide", {"id": "$R", "approve": True, "reason": "ok"}, True), call(7, "sessions_list", {}, True),
    call(8, "session_revoke", {"sessionId": "$S"}, True), call(9, "audit_verify", {}, True), json.dumps(sign(10, "0x2")),
    call(11, "store_check", {}, True), call(12, "audit_prune", {"through": 3}, True), call(13, "audit_show", {"kind": "rules_load"}, True),
    call(14, "audit_verify", {}, True),
]).encode())
# The account's own operations: the session enabled by the account's call, used, revoked and ended
# on chain. $H is the userOpHash the agent last answered with.
owner_op = {k: v for k, v in op.items() if k not in ("callData", "signature")}
owner_op["nonce"] = "0x000000000013fdb5234e4e3162a810f54d9f7e98000000000000000000000000"
account_op = lambda operation: {"account": op["sender"], "chainId": 11155111, "entryPoint": "0x0000000071727De22E5E9d8BAf0edAc6f37da032",
                                "operation": operation, "sessionIds": ["$S"], "userOperation": owner_op}
seed("agent-account", 9, "\n".join([
    call(1, "session_request", {"request": request}), call(2, "account_prepare", account_op("enable"), True),
    call(3, "account_sign", dict(account_op("enable"), userOpHash="$H"), True), json.dumps(sign(4, "0x0")),
    call(5, "session_revoke", {"sessionId": "$S"}, True), call(6, "account_prepare", account_op("end"), True),
    call(7, "account_sign", dict(account_op("end"), userOpHash="$H"), True), call(8, "audit_show", {"kind": "account_operation"}, True),
]).encode())
# Typed data for the account's ERC-1271: a session that may sign Mail (approved by the operator,
# since the rules ask about its erc7739 flag), enabled by a user operation, then signing.
mail_type = "Mail(address to,string contents)"
mail = {"types": {"Mail": [{"name": "to", "type": "address"}, {"name": "contents", "type": "string"}]}, "primaryType": "Mail",
        "domain": {"name": "Ether Mail", "chainId": 1}, "message": {"to": "0x000000000000000000000000000000000000bEEF", "contents": "hi"}}
typed = dict(request, typedData=[{"domain": mail["domain"], "contents": [mail_type]}])
seed("agent-typed-data", 9, "\n".join([
    call(1, "session_request", {"request": typed}), call(2, "pending_decide", {"id": "$R", "approve": True, "reason": "ok"}, True),
    json.dumps(sign(3, "0x0")), call(4, "session_signTypedData", {"sessionId": "$S", "chainId": 11155111, "typedData": mail,
                                                                   "accountDomain": {"name": "fuzz account", "version": "1"}}),
    call(5, "audit_show", {"kind": "signed_message"}, True),
]).encode())
seed("configuration", 10, re.search(r"```toml\n(.*?)```", open("docs/configuration.md").read(), re.S).group(1).encode())
seed("tokens", 11, json.dumps({"tokens": [{"chainId": 11155111, "address": "0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238", "symbol": "USDX",
                                           "decimals": 6, "name": "USD X"}], "request": dict(request, permissions=[dict(request["permissions"][0], token="USDX", spendingLimit="5 USDX")])}).encode())
# Harness 12: a keystore (its MAC will not match), secp256k1's generator as CKA_EC_POINT, the
# two curves' CKA_EC_PARAMS, a DER signature.
seed("keystore", 12, b"\0" + json.dumps({"version": 3, "id": "x", "address": "7e5f4552091a69125d5dfcb7b8c2659029395bdf", "crypto": {
    "cipher": "aes-128-ctr", "cipherparams": {"iv": "00" * 16}, "ciphertext": "11" * 32, "mac": "22" * 32,
    "kdf": "scrypt", "kdfparams": {"dklen": 32, "n": 16, "r": 8, "p": 1, "salt": "33" * 32}}}).encode())
seed("ec-point", 12, b"\1\x04\x41\x04" + bytes.fromhex("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
                                                      "483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8"))
seed("ec-params", 12, b"\2\x06\x05\x2b\x81\x04\x00\x0a")
seed("ec-params-p256", 12, b"\2\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07")
seed("der-signature", 12, b"\3\x30\x44\x02\x20" + bytes(range(1, 33)) + b"\x02\x20" + bytes(range(33, 65)))
# ... and what a FIDO2 authenticator answers: authenticator data as libfido2 hands it out (a CBOR
# byte string), a DER signature, a passkey file.
seed("fido2-authdata", 12, b"\4\x58\x25" + bytes(32) + b"\x05" + bytes(4))
seed("fido2-signature", 12, b"\4\x30\x44\x02\x20" + bytes(range(1, 33)) + b"\x02\x20" + bytes(range(33, 65)))
seed("passkey", 12, b"\4" + json.dumps({"kind": "fido2-passkey", "rpId": "session-agent", "credentialId": "AAAA",
    "publicKey": "0x046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
    "device": "unix:/tmp/x", "userVerification": True}).encode())
# Harness 13: three audit entries chained as the agent chains them (keccak-256 from the oracles'
# venv, when it is there).
try:
    from Crypto.Hash import keccak
    previous, lines = "0x" + "00" * 32, []
    for seq, (kind, entry) in enumerate([("request", {"client": "uid 1000", "id": "req-1"}), ("decision", {"approved": True, "id": "req-1"}),
                                         ("revoke", {"sessionId": "sess-1"})], 1):
        text = json.dumps(entry, separators=(",", ":"), sort_keys=True)
        at = 1790000000 + seq
        previous = "0x" + keccak.new(digest_bits=256, data=("%s|%d|%s|%s" % (previous, at, kind, text)).encode()).hexdigest()
        lines.append('{"at":%d,"entry":%s,"hash":"%s","kind":"%s","seq":%d}' % (at, text, previous, kind, seq))
    seed("audit", 13, "\n".join(lines).encode())
except ImportError:
    pass
# Harness 14: an endpoint's answers, the first byte picking the read: a bool, a nonce, a revert.
for i, body in enumerate([{"jsonrpc": "2.0", "id": 1, "result": "0x" + "00" * 31 + "01"}, {"jsonrpc": "2.0", "id": 1, "result": "0x64"},
                          {"jsonrpc": "2.0", "id": 1, "error": {"code": 3, "message": "execution reverted", "data": "0x"}}]):
    seed("chain-%d" % i, 14, bytes([i * 0x31]) + json.dumps(body).encode())
# ... and a batch's answer, out of order, one call reverted.
seed("chain-batch", 14, b"\x00" + json.dumps([{"jsonrpc": "2.0", "id": 3, "error": {"code": 3, "message": "execution reverted"}},
                                              {"jsonrpc": "2.0", "id": 1, "result": "0xaa36a7"}, {"jsonrpc": "2.0", "id": 2, "result": "0x64"}]).encode())
PY

for n in $harnesses; do
    mkdir -p ".build-fuzz/corpus-$n"
    printf 'harness %s: ' "$n"
    FUZZ_HARNESS=$n SWIFT_BACKTRACE=enable=no .build-fuzz/release/fuzz ".build-fuzz/corpus-$n" -fork=1 -ignore_crashes=1 \
        -artifact_prefix=".build-fuzz/findings/harness-$n-" -max_total_time="$share" -max_len=16384 -timeout=10 2>&1 \
        | { grep -E '^(#[0-9]+:|==[0-9]+== ERROR|.*Assertion|Fatal error)' || true; } | tail -n 1
    rm -rf /dev/shm/session-agent-fuzz-*   # the agent harness's stores, one directory per fuzzing process
done
found=$(find .build-fuzz/findings -type f | wc -l)
echo "fuzz: $found finding(s) in .build-fuzz/findings"
[ "$found" -eq 0 ]
