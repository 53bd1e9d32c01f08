#!/usr/bin/env python3
"""A stand-in Ethereum JSON-RPC endpoint for the on-chain status tests.

Usage: chain-rpc.py STATE.json PORT_FILE

No node can run the deployed Smart Sessions contracts here (their bytecode is not reachable
from CI), so this answers the view calls the agent makes the way the contracts' getters do,
from a chain state the test writes as JSON. It shares no code with session-agent: selectors,
argument decoding and answers come from eth-abi and eth-utils, and it derives the policies'
config ids itself (spec §3: configId = H(account ‖ id), id = permissionId for user-operation
policies, H(permissionId ‖ H(target ‖ selector)) for action policies), so an agent that asks
for the wrong slot reads zeros or a revert, as it would on chain.

STATE.json is read again for every request, so a test changes the chain between reads:
  {"chainId": 8453, "block": 100,
   "accounts": {"0x…": {"code": "0x…", "erc7579": true, "modules": ["0x…SmartSession"],
                        "eip712Domain": {"name": "…", "version": "…", "salt": "0x…"}   (ERC-5267, as the account answers)
                        | "accountId": "vendor.account.semver"}},   (answered as SmartSessionCompatibilityFallback does)
   "sessions": [{"account": "0x…", "permissionId": "0x…", "enabled": true, "nonce": 1,
                 "userOp": {"<policy>": {"used": 1, "valueUsed": 0, "gasUsed": 0, "costUsed": 0}},
                 "actions": [{"target": "0x…", "selector": "0x…",
                              "policies": {"<policy>": {"used": 1, "tokens": {"0x…": {"spent": 5, "approved": 0}}}}}]}],
   "entryPointNonces": {"0x…account": {"0x…key": sequence}},   (EntryPoint v0.7's getNonce)
   "undeployed": ["0x…"],   (contracts without code on this chain)
   "fault": null | "http500" | "garbage" | "wrong_id" | "rpc_error"
            | "no_batch" (answers a batch with one error, as endpoints without batches do)
            | "batch_http400" (answers a batch with HTTP 400, as some gateways do)
            | "batch_short" | "batch_twice" (a batch's answer without its last response, or with one twice),
   "latency_ms": 0}   (a wait before each answer, as a distant provider's round trip)
Batches (a JSON array of requests) are answered with an array, in reverse order, as a
provider may. Every HTTP request's body is appended to calls.jsonl beside STATE.json.
"""
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from eth_abi import decode as abi_decode, encode as abi_encode
from eth_utils import keccak

SMART_SESSION = "0x00000000008bdaba73cd9815d79069c247eb4bda"
USAGE_LIMIT = "0x00000000001d4479fa2a947026204d0283cede4b"
VALUE_LIMIT = "0x000000000021dc45451291bcdfc9f0b46d6f0278"
ERC20_SPENDING_LIMIT = "0x000000000033212e272655d8a22402db819477a6"
SIMPLE_GAS = "0x0000000000d14a6f771494592218d8f9c2ddebb6"
ENTRY_POINT_V07 = "0x0000000071727de22e5e9d8baf0edac6f37da032"


def selector(signature):
    return keccak(text=signature)[:4]


def b(hex_text):
    return bytes.fromhex(hex_text[2:] if hex_text.startswith("0x") else hex_text)


class Revert(Exception):
    pass


class Chain:
    """The contracts' storage, keyed as the contracts key it."""

    def __init__(self, state):
        self.state = state
        self.accounts = {a.lower(): v for a, v in state.get("accounts", {}).items()}
        self.enabled = set()
        self.nonces = {}
        self.slots = {}   # (policy, configId, multiplexer, account[, token]) -> {counter: value}
        for s in state.get("sessions", []):
            account, pid = b(s["account"]), b(s["permissionId"])
            key = (pid, account)
            if s.get("enabled"):
                self.enabled.add(key)
            self.nonces[key] = int(s.get("nonce", 0))
            user_op_config = keccak(account + pid)
            for policy, counters in s.get("userOp", {}).items():
                self.put(policy, user_op_config, account, counters)
            for action in s.get("actions", []):
                action_id = keccak(b(action["target"]) + b(action["selector"]))
                config = keccak(account + keccak(pid + action_id))
                for policy, counters in action.get("policies", {}).items():
                    self.put(policy, config, account, counters)

    def put(self, policy, config, account, counters):
        mux = b(SMART_SESSION)
        for token, values in counters.get("tokens", {}).items():
            self.slots[(policy.lower(), config, mux, account, b(token))] = values
        self.slots[(policy.lower(), config, mux, account)] = {k: v for k, v in counters.items() if k != "tokens"}

    def code(self, address):
        address = address.lower()
        if address in self.accounts:
            return self.accounts[address].get("code", "0x")
        contracts = (SMART_SESSION, USAGE_LIMIT, VALUE_LIMIT, ERC20_SPENDING_LIMIT, SIMPLE_GAS, ENTRY_POINT_V07)
        return "0xfe" if address in contracts and address not in self.state.get("undeployed", []) else "0x"

    def call(self, to, data):
        to = to.lower()
        if self.code(to) == "0x":   # as a node answers a call to an address without code
            return b""
        sel, args = data[:4], data[4:]
        if to in self.accounts:
            account = self.accounts[to]
            if account.get("erc7579") and sel == selector("isModuleInstalled(uint256,address,bytes)"):
                kind, module, _ = abi_decode(["uint256", "address", "bytes"], args)
                return abi_encode(["bool"], [kind == 1 and module.lower() in [m.lower() for m in account.get("modules", [])]])
            if sel == selector("eip712Domain()") and ("eip712Domain" in account or "accountId" in account):
                if "eip712Domain" in account:
                    domain = account["eip712Domain"]
                    name, version, salt = domain["name"], domain["version"], b(domain.get("salt", "0x" + "00" * 32))
                else:   # AccountIdLib.parseAccountId: "vendor.account.semver" -> ("vendor account", "semver")
                    vendor, name, version = account["accountId"].split(".", 2)
                    name, salt = vendor + " " + name, bytes(32)
                types = ["bytes1", "string", "string", "uint256", "address", "bytes32", "uint256[]"]
                return abi_encode(types, [b"\x0f", name, version, self.state["chainId"], to, salt, []])
            raise Revert()
        if to == ENTRY_POINT_V07 and sel == selector("getNonce(address,uint192)"):
            sender, key = abi_decode(["address", "uint192"], args)
            sequences = {int(k, 0): v for k, v in self.state.get("entryPointNonces", {}).get(sender.lower(), {}).items()}
            return abi_encode(["uint256"], [key << 64 | sequences.get(key, 0)])
        if to == SMART_SESSION and sel == selector("isPermissionEnabled(bytes32,address)"):
            pid, account = abi_decode(["bytes32", "address"], args)
            return abi_encode(["bool"], [(pid, b(account)) in self.enabled])
        if to == SMART_SESSION and sel == selector("getNonce(bytes32,address)"):
            pid, account = abi_decode(["bytes32", "address"], args)
            return abi_encode(["uint256"], [self.nonces.get((pid, b(account)), 0)])
        if to in (USAGE_LIMIT, VALUE_LIMIT) and sel == selector("getUsed(bytes32,address,address)"):
            config, mux, account = abi_decode(["bytes32", "address", "address"], args)
            slot = self.slots.get((to, config, b(mux), b(account)), {})
            if to == USAGE_LIMIT:
                return abi_encode(["uint128"], [int(slot.get("used", 0))])
            return abi_encode(["uint256"], [int(slot.get("valueUsed", 0))])
        if to == SIMPLE_GAS and sel == selector("getGasConfig(bytes32,address,address)"):
            config, mux, account = abi_decode(["bytes32", "address", "address"], args)
            slot = self.slots.get((to, config, b(mux), b(account)), {})
            return abi_encode(["uint128"] * 4, [int(slot.get(k, 0)) for k in ("gasLimit", "gasUsed", "costLimit", "costUsed")])
        if to == ERC20_SPENDING_LIMIT and sel == selector("getPolicyData(bytes32,address,address,address)"):
            config, mux, token, account = abi_decode(["bytes32", "address", "address", "address"], args)
            slot = self.slots.get((to, config, b(mux), b(account), b(token)))
            if slot is None:   # InvalidTokenAddress: the token is not enabled for the config
                raise Revert()
            return abi_encode(["uint256"] * 3, [int(slot.get(k, 0)) for k in ("limit", "spent", "approved")])
        raise Revert()


class Handler(BaseHTTPRequestHandler):
    state_path = None

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with open(self.state_path) as f:
            state = json.load(f)
        request = json.loads(body)
        with open(os.path.join(os.path.dirname(self.state_path), "calls.jsonl"), "a") as log:
            log.write(json.dumps(request) + "\n")
        time.sleep(state.get("latency_ms", 0) / 1000)
        fault = state.get("fault")
        if fault == "http500":
            return self.answer(500, b"internal error")
        if fault == "garbage":
            return self.answer(200, b"<html>not json</html>")
        if not isinstance(request, list):
            return self.answer(200, json.dumps(respond(state, request)).encode())
        if fault == "batch_http400":
            return self.answer(400, b"batch requests are not supported")
        if fault == "no_batch":
            refusal = {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "batch requests are not supported"}}
            return self.answer(200, json.dumps(refusal).encode())
        responses = [respond(state, r) for r in reversed(request)]
        if fault == "batch_short":
            responses = responses[:-1]
        if fault == "batch_twice":
            responses[-1]["id"] = responses[0]["id"]
        self.answer(200, json.dumps(responses).encode())

    def answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def respond(state, request):
    """The response to one JSON-RPC request."""
    fault = state.get("fault")
    result, error = None, None
    method, params = request["method"], request.get("params", [])
    try:
        if fault == "rpc_error":
            error = {"code": -32005, "message": "daily request count exceeded, request rate limited"}
        elif method == "eth_chainId":
            result = hex(state["chainId"])
        elif method == "eth_blockNumber":
            result = hex(state["block"])
        elif method == "eth_getCode":
            result = Chain(state).code(params[0])
        elif method == "eth_call":
            if params[1] not in (hex(state["block"]), "latest"):
                error = {"code": -32000, "message": f"block {params[1]} is not the one this stand-in serves"}
            else:
                call = params[0]
                result = "0x" + Chain(state).call(call["to"], b(call["data"])).hex()
        else:
            error = {"code": -32601, "message": "the method does not exist"}
    except Revert:
        error = {"code": 3, "message": "execution reverted", "data": "0x"}
    response = {"jsonrpc": "2.0", "id": request["id"] + (1 if fault == "wrong_id" else 0)}
    if error:
        response["error"] = error
    else:
        response["result"] = result
    return response


def main():
    state_path, port_file = sys.argv[1], sys.argv[2]
    Handler.state_path = os.path.abspath(state_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
