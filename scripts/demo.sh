#!/usr/bin/env bash
# Sets up what is missing and gives a short tour of the `session-agent eth` toolbox.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh
swift build -c release --product session-agent 2>&1 | { grep -vE '^\[|prohibited flag' || true; }
sa=".build/release/session-agent"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

echo "session-agent: a tour of the Ethereum toolbox an operator uses to check what is signed."
step "$sa" version
step "$sa" eth sig "transfer(address to, uint256 amount)"
calldata=$("$sa" eth abi-encode "transfer(address,uint256)" 0x000000000000000000000000000000000000bEEF 5000000)
step "$sa" eth calldata-decode "transfer(address to, uint256 amount)" "0xa9059cbb${calldata#0x}"
example=Tests/TestSupport/Fixtures/multichain-session-typed-data.json
echo
echo "# The enable digest an owner signs for the spec's worked example (MultiChainSession, EIP-712):"
step "$sa" eth typed-data-hash "$example"
echo
echo "# Which key signed it (the spec's owner key 0x2222…22):"
step "$sa" eth recover 0xe1a26d3f5e808a2c2ffdb7f16cc38e47a45b75dcad6c325d71ed54427b2c876576100955797b9fdd5761543a4f605ec10798576150634420b5ac001ea91d50cd1c \
  --digest 0x73f8de6a9feaf72d8b98a3a9f275900d6747c0a50b3b104d50d59b6a9720bb8d
echo
echo "# The EntryPoint v0.7 hash of a user operation, as JSON for scripts:"
op='{"sender":"0x7227dcfb0c5ec7a5f539f97b18be261c49687ed6","nonce":"0x0","callData":"0x","callGasLimit":"0x1e8480","verificationGasLimit":"0x1e8480","preVerificationGas":"0x186a0","maxFeePerGas":"0x3b9aca00","maxPriorityFeePerGas":"0x3b9aca00","signature":"0x"}'
printf '$ echo %s | %s eth userop-hash --entrypoint 0x0000000071727De22E5E9d8BAf0edAc6f37da032 --chain-id 11155111 --json\n' "'$op'" "$sa"
echo "$op" | "$sa" eth userop-hash --entrypoint 0x0000000071727De22E5E9d8BAf0edAc6f37da032 --chain-id 11155111 --json
echo
echo "# Bad input is refused with a reason (exit status 1):"
printf '$ %s eth checksum 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD\n' "$sa"
"$sa" eth checksum 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD || echo "(exit status $?)"
