#!/usr/bin/env bash
# Sets up what is missing, then runs the real agent in a temporary directory: an owner key made
# on a PKCS#11 token (a SoftHSM2 token of the demo's own; an HSM or a smartcard works the same
# way), a sample account, a client asking for "USDC transfers only, at most 100 USDC, 3 days,
# at most 10 uses" on Sepolia, approval by you on a terminal (by the example rules file otherwise,
# or with DEMO_RULES=1), one user operation signed inside the scope and one outside it denied
# with its reason, the session's state on chain beside the agent's ledger (read from a stand-in
# JSON-RPC endpoint: no Sepolia node is reachable here), and the account's own user operation
# that ends the session on chain, which the token signs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
demo=$(mktemp -d)
agent_pid=""
chain_pid=""
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null
  [ -n "$chain_pid" ] && kill -9 "$chain_pid" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$demo"
}
trap cleanup EXIT
bash scripts/install-deps.sh
# SwiftPM leaves empty directories in $TMPDIR at each build: here they go with the demo's.
mkdir "$demo/tmp"
TMPDIR="$demo/tmp" swift build -c release --product session-agent 2>&1 | { grep -vE '^\[|prohibited flag' || true; }
sa="$root/.build/release/session-agent"
cd "$demo"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "An owner key made on a PKCS#11 token: sensitive, not extractable, it only signs"
umask 077
module=""
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so; do [ -f "$m" ] && module=$m && break; done
[ -n "$module" ] || { echo "SoftHSM2 is not installed (apt install softhsm2)"; exit 1; }
mkdir tokens
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$demo" > softhsm2.conf
export SOFTHSM2_CONF="$demo/softhsm2.conf"
head -c 12 /dev/urandom | base64 > hsm.pin
head -c 24 /dev/urandom | base64 > store.pass
softhsm2-util --init-token --free --label demo --so-pin "$(head -c 12 /dev/urandom | base64)" --pin "$(cat hsm.pin)" > /dev/null
printf '$ %s\n' "$sa owner generate --token pkcs11:token=demo --module $module --pin-file hsm.pin --label owner"
"$sa" owner generate --token "pkcs11:token=demo" --module "$module" --pin-file hsm.pin --label owner | tee owner.out
owner=$(sed -n 1p owner.out)
uri=$(sed -n 2p owner.out)
run "$sa" token list --module "$module"
account=0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6

# Sepolia as the agent will read it: a stand-in JSON-RPC endpoint (the tests' Tests/rig/chain-rpc.py)
# answering the contracts' getters from chain.json.
printf '{"chainId": 11155111, "block": 7300000, "accounts": {"%s": {"code": "0x6080", "erc7579": true, "modules": ["0x00000000008bdaba73cd9815d79069c247eb4bda"]}}}\n' "$account" > chain.json
"$root/.venv-oracle/bin/python" "$root/Tests/rig/chain-rpc.py" chain.json chain.port 2> chain.log &
chain_pid=$!
for _ in $(seq 100); do [ -s chain.port ] && break; sleep 0.1; done

say "The agent's configuration: the owner by its PKCS#11 URI, its PIN in a file (a server's way)"
# The example's payments rule approves clients of root and of uid 1000; the demo's run as you.
uid=$(id -u)
case $uid in
  0|1000) cp "$root/docs/examples/rules.toml" rules.toml ;;
  *) sed "s/^client_uids = \[0, 1000\]/client_uids = [0, 1000, $uid]/" "$root/docs/examples/rules.toml" > rules.toml ;;
esac
cat > session-agent.toml <<TOML
data_dir = "data"
socket_dir = "run"
rules = "rules.toml"
store_passphrase_file = "store.pass"
chain_rpc = { 11155111 = "http://127.0.0.1:$(cat chain.port)/v3/demo-key" }

[[owners]]
pkcs11 = "$uri"
pin_file = "hsm.pin"

[[accounts]]
address = "$account"
kind = "erc7579"
owners = ["$owner"]
chains = [11155111]
TOML
cat session-agent.toml

say "The agent starts (sockets 0600 in a 0700 directory)"
"$sa" serve --config session-agent.toml > serve.env 2> serve.log &
agent_pid=$!
for _ in $(seq 100); do grep -q SESSION_AGENT_SOCK serve.env 2>/dev/null && break; sleep 0.1; done
cat serve.env
eval "$(cat serve.env)"
ls -l run
run "$sa" owner list

say "A client asks for a session: USDC transfers only, at most 100 USDC, 3 days, at most 10 uses, on Sepolia"
cat "$root/docs/examples/usdc-transfers.json"
if [ -t 0 ] && [ -t 1 ] && [ -z "${DEMO_RULES:-}" ]; then
  # On a terminal a person decides (DEMO_RULES=1 lets the rules file decide instead).
  printf 'default = "ask"\n' > rules.toml
  "$sa" rpc rules_reload --control > /dev/null
  echo "(you decide: the request is shown below in full; the token's PIN is in a file, so only your yes is asked)"
  printf '$ %s\n' "$sa request $root/docs/examples/usdc-transfers.json &"
  "$sa" request "$root/docs/examples/usdc-transfers.json" --wait 600 > request.out &
  request_pid=$!
  until "$sa" rpc pending_list --control --json | grep -q '"id"'; do sleep 0.1; done
  run "$sa" approve --once
  wait "$request_pid" || true
  decided_by=you
else
  echo "(the rules file decides; run \`session-agent approve\` in another terminal to decide by hand)"
  run "$sa" request "$root/docs/examples/usdc-transfers.json" > request.out || true
  decided_by=rules
fi
cat request.out
if [ -z "$(sed -n 's/^session: //p' request.out)" ]; then
  echo "no session was approved; the demo ends here"
  # You may say no; the example rules approve this request, so with them it is a failure.
  [ "$decided_by" = you ]
  exit
fi
session=$(sed -n 's/^session: //p' request.out)

usdc=0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238
userop() {  # userop TARGET CALLDATA NONCE
  local exec
  exec=$("$sa" eth execute "$1" 0 "$2")
  printf '{"sender":"%s","nonce":"%s","callData":"%s","callGasLimit":"0x30000","verificationGasLimit":"0x30000","preVerificationGas":"0x10000","maxFeePerGas":"0x3b9aca00","maxPriorityFeePerGas":"0x3b9aca00","signature":"0x"}' "$account" "$3" "$exec"
}
transfer() { "$sa" eth abi-encode 'transfer(address,uint256)' 0x000000000000000000000000000000000000bEEF "$1" | sed 's/^0x/0xa9059cbb/'; }

say "Inside the scope: transfer 5 USDC (the first use enables the session: ENABLE mode)"
userop "$usdc" "$(transfer 5000000)" 0x0 > op1.json
run "$sa" sign-userop --session "$session" --chain-id 11155111 op1.json --json | tee signed1.json
say "What that userOp.signature carries"
signature=$(sed -n 's/.*"signature": "\(0x[0-9a-f]*\)".*/\1/p' signed1.json)
"$sa" decode-signature "$signature" --account "$account" --color never | sed -n '1,12p'

say "Inside the scope again: USE mode"
userop "$usdc" "$(transfer 1000000)" 0x1 > op2.json
run "$sa" sign-userop --session "$session" --chain-id 11155111 op2.json --json

say "Outside the scope: 200 USDC is over the 100 USDC limit; the agent refuses and says why"
userop "$usdc" "$(transfer 200000000)" 0x2 > op3.json
run "$sa" sign-userop --session "$session" --chain-id 11155111 op3.json || echo "(exit status $?)"

say "What is used and left of the session's limits: what the client may still ask for"
run "$sa" sessions show "$session"

say "The session on chain, beside the agent's ledger: the chain has it enabled and counted one transfer of the two signed"
permission=$("$sa" sessions show "$session" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["permissionId"])')
usdc_lower=$(tr 'A-F' 'a-f' <<< "${usdc#0x}")
printf '{"chainId": 11155111, "block": 7300001, "accounts": {"%s": {"code": "0x6080", "erc7579": true, "modules": ["0x00000000008bdaba73cd9815d79069c247eb4bda"]}}, "sessions": [{"account": "%s", "permissionId": "%s", "enabled": true, "nonce": 1, "actions": [{"target": "0x%s", "selector": "0xa9059cbb", "policies": {"0x00000000001d4479fa2a947026204d0283cede4b": {"used": 1}, "0x000000000033212e272655d8a22402db819477a6": {"tokens": {"0x%s": {"limit": 100000000, "spent": 5000000}}}}}]}]}\n' \
  "$account" "$account" "$permission" "$usdc_lower" "$usdc_lower" > chain.json
run "$sa" sessions status "$session"

say "Done with it: revoke the session (its key is erased now; on chain it ends when the account sends what this prints)"
run "$sa" revoke "$session"

say "The account's owners end it on chain: the agent writes the user operation, shows it, and the token signs it"
# The bundler's gas and fees; no nonce: the agent reads it from the EntryPoint (chain_rpc), for the
# key that selects OwnableValidator (validator || 4 zero bytes).
printf '{"sender":"%s","callGasLimit":"0x30000","verificationGasLimit":"0x30000","preVerificationGas":"0x10000","maxFeePerGas":"0x3b9aca00","maxPriorityFeePerGas":"0x3b9aca00"}\n' "$account" > end.json
cat end.json
if [ "$decided_by" = you ]; then
  run "$sa" account end "$session" --account "$account" --chain-id 11155111 --userop end.json
else
  run "$sa" account end "$session" --account "$account" --chain-id 11155111 --userop end.json --dry-run
  run "$sa" account end "$session" --account "$account" --chain-id 11155111 --userop end.json --yes
fi

say "The audit log (hash-chained; no secrets): what happened, and that nobody changed it since"
run "$sa" audit show
run "$sa" audit verify

say "The agent's log, as journald keeps it (decisions and failures; no secrets)"
cat serve.log
