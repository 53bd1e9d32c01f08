#!/usr/bin/env python3
"""Independent reference values for the differential tests.

Usage: oracle.py KIND COUNT SEED  -> COUNT JSON lines on stdout.
Every expected value is computed by a library that shares no code with session-agent:
eth-abi (ABI), eth-account (EIP-712, EIP-191, addresses), eth-utils (keccak), coincurve (secp256k1),
pycryptodome (AES, P-256).
Integers travel as decimal strings so nothing is rounded on the way.
"""
import base64
import datetime
import hashlib
import json
import random
import string
import sys
import tomllib

import coincurve
from Crypto.Cipher import AES
from Crypto.Hash import SHA256
from Crypto.PublicKey import ECC
from Crypto.Signature import DSS
from eth_abi import encode as abi_encode, decode as abi_decode
from eth_account import Account
from eth_account.messages import encode_typed_data, encode_defunct, _hash_eip191_message
from eth_account._utils.encode_typed_data.encoding_and_hashing import encode_type
from eth_utils import keccak, to_checksum_address

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def h(b):
    return "0x" + bytes(b).hex()


# ---------------------------------------------------------------- keccak

def keccak_case(r):
    n = r.choice([0, 1, 31, 32, 33, 135, 136, 137, 271, 272, 273]) if r.random() < 0.2 else r.randint(0, 4096)
    data = r.randbytes(n)
    return {"input": h(data), "hash": h(keccak(data))}


# ---------------------------------------------------------------- ABI

ELEMENTARY = ["uint", "int", "address", "bool", "bytesN", "bytes", "string"]


def random_string(r):
    pool = string.ascii_letters + string.digits + " \"\\/\n\t" + "äöü€漢字🙂𝄞"
    return "".join(r.choice(pool) for _ in range(r.randint(0, 40)))


def random_type(r, depth):
    roll = r.random()
    if depth > 0 and roll < 0.15:
        return ("tuple", [random_type(r, depth - 1) for _ in range(r.randint(1, 4))])
    if depth > 0 and roll < 0.27:
        return ("array", random_type(r, depth - 1))
    if depth > 0 and roll < 0.37:
        return ("fixed", random_type(r, depth - 1), r.randint(1, 3))
    kind = r.choice(ELEMENTARY)
    if kind in ("uint", "int"):
        return (kind, 8 * r.randint(1, 32))
    if kind == "bytesN":
        return (kind, r.randint(1, 32))
    return (kind,)


def type_string(t):
    k = t[0]
    if k in ("uint", "int"):
        return f"{k}{t[1]}"
    if k == "bytesN":
        return f"bytes{t[1]}"
    if k == "tuple":
        return "(" + ",".join(type_string(c) for c in t[1]) + ")"
    if k == "array":
        return type_string(t[1]) + "[]"
    if k == "fixed":
        return type_string(t[1]) + f"[{t[2]}]"
    return k


def random_int(r, bits, signed):
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return r.choice([lo, hi, 0, r.randint(lo, hi), r.randint(lo, hi)])


def random_address(r):
    return "0x" + r.randbytes(20).hex()


def random_value(r, t):
    """Returns (python value for eth-abi, JSON value for session-agent)."""
    k = t[0]
    if k in ("uint", "int"):
        v = random_int(r, t[1], k == "int")
        return v, str(v) if r.random() < 0.8 else (hex(v) if v >= 0 else str(v))
    if k == "address":
        a = random_address(r)
        return a, to_checksum_address(a) if r.random() < 0.5 else a
    if k == "bool":
        b = r.random() < 0.5
        return b, b
    if k == "bytesN":
        b = r.randbytes(t[1])
        return b, h(b)
    if k == "bytes":
        b = r.randbytes(r.choice([0, 1, 31, 32, 33, r.randint(0, 100)]))
        return b, h(b)
    if k == "string":
        s = random_string(r)
        return s, s
    if k == "tuple":
        pairs = [random_value(r, c) for c in t[1]]
        return tuple(p[0] for p in pairs), [p[1] for p in pairs]
    count = t[2] if k == "fixed" else r.randint(0, 3)
    pairs = [random_value(r, t[1]) for _ in range(count)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def mutate(r, data):
    data = bytearray(data)
    roll = r.random()
    if roll < 0.4 and data:
        i = r.randrange(len(data))
        data[i] ^= 1 << r.randrange(8)
    elif roll < 0.6 and data:
        del data[r.randrange(len(data)):]
    elif roll < 0.8:
        data += r.randbytes(r.choice([1, 32]))
    elif len(data) >= 32:
        w = r.randrange(len(data) // 32) * 32
        word = int.from_bytes(data[w:w + 32], "big")
        data[w:w + 32] = ((word + r.choice([-32, 32, 1 << 200])) % 2 ** 256).to_bytes(32, "big")
    return bytes(data)


def abi_case(r):
    types = [random_type(r, 3) for _ in range(r.randint(1, 4))]
    pairs = [random_value(r, t) for t in types]
    names = [type_string(t) for t in types]
    values = [p[0] for p in pairs]
    encoded = abi_encode(names, values)
    bad = mutate(r, encoded)
    try:
        decoded = abi_decode(names, bad)
        # re-encode to normalise: a lenient decoder may accept non-canonical bytes
        mutant = {"data": h(bad), "ethAbiAccepts": True, "reencoded": h(abi_encode(names, list(decoded)))}
    except Exception:
        mutant = {"data": h(bad), "ethAbiAccepts": False}
    case = {"types": names, "values": [p[1] for p in pairs], "encoded": h(encoded), "mutant": mutant}
    # abi.encodePacked (Solidity rules): elementary values minimal, arrays of static
    # elementary values with each element padded to 32 bytes.
    ptypes, pvalues, packed = [], [], b""
    for _ in range(r.randint(1, 4)):
        t = random_type(r, 0)
        if r.random() < 0.3 and t[0] not in ("bytes", "string"):
            arr = ("array", t) if r.random() < 0.5 else ("fixed", t, r.randint(1, 3))
            v, j = random_value(r, arr)
            packed += b"".join(abi_encode([type_string(t)], [x]) for x in v)
            ptypes.append(type_string(arr)); pvalues.append(j)
            continue
        v, j = random_value(r, t)
        k = t[0]
        if k in ("uint", "int"):
            packed += v.to_bytes(t[1] // 8, "big", signed=(k == "int"))
        elif k == "address":
            packed += bytes.fromhex(v[2:])
        elif k == "bool":
            packed += b"\x01" if v else b"\x00"
        elif k == "string":
            packed += v.encode()
        else:
            packed += v
        ptypes.append(type_string(t)); pvalues.append(j)
    case.update({"packedTypes": ptypes, "packedValues": pvalues, "packed": h(packed)})
    return case


# ---------------------------------------------------------------- EIP-712

def random_typed_document(r):
    """A random eth_signTypedData_v4 document: a DAG of struct types under names[0]."""
    count = r.randint(1, 5)
    names = [f"T{i}" + "".join(r.choice(string.ascii_letters) for _ in range(r.randint(0, 3))) for i in range(count)]
    types = {}
    for i, name in enumerate(names):
        fields = []
        for j in range(r.randint(1, 5)):
            roll = r.random()
            if roll < 0.25 and i + 1 < count:
                base = r.choice(names[i + 1:])          # a DAG keeps values finite
            else:
                base = type_string(random_type(r, 0))
            suffix = r.choice(["", "", "", "[]", "[2]", "[][]", "[1][]"])
            fields.append({"name": f"f{j}", "type": base + suffix})
        types[name] = fields
    # eth-account insists on a single root type: reference every other type from an earlier one
    for i in range(1, count):
        owner = types[names[r.randrange(i)]]
        owner.append({"name": f"f{len(owner)}", "type": names[i] + r.choice(["", "[]", "[1]"])})
    for fields in types.values():
        r.shuffle(fields)

    def value(tname):
        if tname.endswith("]"):
            inner, size = tname[: tname.rindex("[")], tname[tname.rindex("[") + 1:-1]
            n = int(size) if size else r.randint(0, 2)
            return [value(inner) for _ in range(n)]
        if tname in types:
            return {f["name"]: value(f["type"]) for f in types[tname]}
        t = parse_elementary(tname)
        v, j = random_value(r, t)
        if t[0] in ("uint", "int") and r.random() < 0.3 and abs(v) < 2 ** 53:
            return v                                      # a JSON number
        return j

    domain_fields = [("name", "string"), ("version", "string"), ("chainId", "uint256"),
                     ("verifyingContract", "address"), ("salt", "bytes32")]
    chosen = [f for f in domain_fields if r.random() < 0.6] or [domain_fields[0]]
    domain_type = [{"name": n, "type": t} for n, t in chosen]
    types_doc = dict(types)
    if r.random() < 0.85:
        types_doc["EIP712Domain"] = domain_type
    domain = {f["name"]: value(f["type"]) for f in domain_type}
    return {"types": types_doc, "primaryType": names[0], "domain": domain, "message": value(names[0])}


def eip712_case(r):
    doc = random_typed_document(r)
    signable = encode_typed_data(full_message=json.loads(json.dumps(doc)))
    return {"document": doc, "domainSeparator": h(signable.header), "structHash": h(signable.body),
            "digest": h(_hash_eip191_message(signable))}


def erc7739_case(r):
    """A session key's ERC-1271 signature of a random document through SmartSession (ERC-7739):
    eth-account hashes the TypedDataSign document a wallet would show (the contents under the
    application's domain, with the account's domain fields), coincurve signs it, and the
    signature is laid out as SmartSessionERC7739 reads it. The primary type's name sorts
    before the types it references (T0 < T1…), so EIP-712's encodeType of TypedDataSign equals
    the contract's "TypedDataSign(…)" ‖ contentsType."""
    doc = random_typed_document(r)
    primary = doc["primaryType"]
    signable = encode_typed_data(full_message=json.loads(json.dumps(doc)))
    app, contents = signable.header, signable.body
    account = {"name": random_string(r), "version": random_string(r), "chainId": r.randint(1, 2**256 - 1) if r.random() < 0.2 else r.randint(1, 2**32),
               "verifyingContract": random_address(r), "salt": "0x" + r.randbytes(32).hex()}
    nested_types = dict(doc["types"])
    nested_types["TypedDataSign"] = [{"name": "contents", "type": primary}, {"name": "name", "type": "string"},
                                     {"name": "version", "type": "string"}, {"name": "chainId", "type": "uint256"},
                                     {"name": "verifyingContract", "type": "address"}, {"name": "salt", "type": "bytes32"}]
    nested = {"types": nested_types, "primaryType": "TypedDataSign", "domain": doc["domain"], "message": dict(account, contents=doc["message"])}
    digest = _hash_eip191_message(encode_typed_data(full_message=json.loads(json.dumps(nested))))
    key = coincurve.PrivateKey(r.randbytes(32))
    recoverable = key.sign_recoverable(digest, hasher=None)
    signature = recoverable[:64] + bytes([recoverable[64] + 27])
    types_without_domain = {k: v for k, v in doc["types"].items() if k != "EIP712Domain"}
    contents_type = encode_type(primary, types_without_domain)
    explicit = r.random() < 0.5
    description = (contents_type + primary if explicit else contents_type).encode()
    permission_id = r.randbytes(32)
    blob = permission_id + signature + app + contents + description + len(description).to_bytes(2, "big")
    return {"document": doc, "accountDomain": dict(account, chainId=str(account["chainId"])), "explicit": explicit,
            "privateKey": "0x" + key.secret.hex(), "permissionId": h(permission_id), "contentsDescription": description.decode(),
            "appDomainSeparator": h(app), "contents": h(contents), "appHash": h(keccak(b"\x19\x01" + app + contents)),
            "digest": h(digest), "signature": h(blob)}


def parse_elementary(name):
    for k in ("uint", "int"):
        if name.startswith(k) and name[len(k):].isdigit():
            return (k, int(name[len(k):]))
    if name.startswith("bytes") and name[5:].isdigit():
        return ("bytesN", int(name[5:]))
    return (name,)


# ---------------------------------------------------------------- secp256k1, EIP-191

def secp_case(r):
    key = coincurve.PrivateKey(r.randbytes(32)) if r.random() < 0.99 else coincurve.PrivateKey((N - 1).to_bytes(32, "big"))
    digest = r.randbytes(32)
    sig = key.sign_recoverable(digest, hasher=None)          # RFC 6979, low s, r||s||recid
    der = key.sign(digest, hasher=None)
    rr, ss = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big")
    message = r.randbytes(r.randint(0, 80))
    personal = _hash_eip191_message(encode_defunct(primitive=message))
    return {
        "privateKey": h(key.secret), "publicKey": h(key.public_key.format(compressed=False)[1:]),
        "compressedPublicKey": h(key.public_key.format(compressed=True)),
        "address": Account.from_key(key.secret).address, "digest": h(digest),
        "signature": h(sig[:64] + bytes([27 + sig[64]])), "der": h(der),
        "highS": h(rr.to_bytes(32, "big") + (N - ss).to_bytes(32, "big")),
        "message": h(message), "personalHash": h(personal),
    }


# ---------------------------------------------------------------- user operations

def userop_case(r):
    def maybe_bytes(n):
        return r.randbytes(r.choice([0, 0, n, r.randint(0, 200)]))
    u128 = lambda: r.choice([0, 1, 2 ** 128 - 1, r.randint(0, 2 ** 128 - 1), r.randint(0, 10 ** 7)])
    factory = r.randbytes(20) if r.random() < 0.3 else None
    paymaster = r.randbytes(20) if r.random() < 0.3 else None
    op = {
        "sender": "0x" + r.randbytes(20).hex(),
        "nonce": r.choice([0, r.randint(0, 2 ** 256 - 1), r.randint(0, 2 ** 64)]),
        "callData": maybe_bytes(100),
        "callGasLimit": u128(), "verificationGasLimit": u128(), "preVerificationGas": r.choice([u128(), r.randint(0, 2 ** 256 - 1)]),
        "maxFeePerGas": u128(), "maxPriorityFeePerGas": u128(),
        "signature": maybe_bytes(65),
    }
    init_code = b""
    # EntryPoint v0.8 Eip7702Support: an initCode starting with 0x7702 padded to 20 bytes stands
    # for the sender's delegate, which the v0.8 hash takes in its place (v0.7 knows no marker).
    marker = bytes.fromhex("7702") + bytes(18)
    delegate = r.randbytes(20) if factory and r.random() < 0.3 else None
    if delegate:
        factory = marker
    if factory:
        op["factory"] = r.choice(["0x7702", "0x" + marker.hex()]) if delegate else "0x" + factory.hex()
        op["factoryData"] = maybe_bytes(50); init_code = factory + op["factoryData"]
    init_code_v08 = delegate + init_code[20:] if delegate else init_code
    pmd = b""
    if paymaster:
        op["paymaster"] = "0x" + paymaster.hex()
        op["paymasterVerificationGasLimit"] = u128(); op["paymasterPostOpGasLimit"] = u128(); op["paymasterData"] = maybe_bytes(30)
        pmd = paymaster + op["paymasterVerificationGasLimit"].to_bytes(16, "big") + op["paymasterPostOpGasLimit"].to_bytes(16, "big") + op["paymasterData"]
    agl = op["verificationGasLimit"].to_bytes(16, "big") + op["callGasLimit"].to_bytes(16, "big")
    fees = op["maxPriorityFeePerGas"].to_bytes(16, "big") + op["maxFeePerGas"].to_bytes(16, "big")
    chain_id = r.choice([1, 11155111, 8453, r.randint(1, 2 ** 64)])
    ep7 = "0x0000000071727de22e5e9d8baf0edac6f37da032"
    ep8 = "0x4337084d9e255ff0702461cf8895ce9e3b5ff108"
    inner = keccak(abi_encode(["address", "uint256", "bytes32", "bytes32", "bytes32", "uint256", "bytes32", "bytes32"],
                              [op["sender"], op["nonce"], keccak(init_code), keccak(op["callData"]), agl,
                               op["preVerificationGas"], fees, keccak(pmd)]))
    v07 = keccak(abi_encode(["bytes32", "address", "uint256"], [inner, ep7, chain_id]))
    typed = {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
            "PackedUserOperation": [{"name": n, "type": t} for n, t in [
                ("sender", "address"), ("nonce", "uint256"), ("initCode", "bytes"), ("callData", "bytes"),
                ("accountGasLimits", "bytes32"), ("preVerificationGas", "uint256"), ("gasFees", "bytes32"),
                ("paymasterAndData", "bytes")]],
        },
        "primaryType": "PackedUserOperation",
        "domain": {"name": "ERC4337", "version": "1", "chainId": chain_id, "verifyingContract": ep8},
        "message": {"sender": op["sender"], "nonce": op["nonce"], "initCode": init_code_v08, "callData": op["callData"],
                    "accountGasLimits": agl, "preVerificationGas": op["preVerificationGas"], "gasFees": fees,
                    "paymasterAndData": pmd},
    }
    v08 = _hash_eip191_message(encode_typed_data(full_message=typed))
    as_json = {k: ("0x" + v.hex() if isinstance(v, bytes) else (hex(v) if r.random() < 0.7 else str(v)) if isinstance(v, int) else v)
               for k, v in op.items()}
    return {"userOperation": as_json, "chainId": str(chain_id), "entryPointV07": ep7, "entryPointV08": ep8,
            "eip7702Delegate": h(delegate) if delegate else None,
            "initCode": h(init_code), "paymasterAndData": h(pmd), "accountGasLimits": h(agl), "gasFees": h(fees),
            "hashV07": h(v07), "hashV08": h(v08)}


def execute_case(r):
    """ERC-7579 execute(bytes32 mode, bytes executionCalldata) as the reference account decodes it."""
    def data():
        return r.randbytes(r.choice([0, 4, 36, r.randint(0, 300)]))
    def execution():
        return {"target": "0x" + r.randbytes(20).hex(), "value": r.choice([0, 1, 10 ** 18, r.randint(0, 2 ** 256 - 1)]), "callData": data()}
    call_type = r.choice([0x00, 0x01, 0xFF])
    mode = bytes([call_type, r.choice([0x00, 0x01])]) + (r.randbytes(30) if r.random() < 0.3 else bytes(30))
    executions = [execution() for _ in range(1 if call_type != 0x01 else r.randint(0, 5))]
    if call_type == 0x00:
        e = executions[0]
        inner = bytes.fromhex(e["target"][2:]) + e["value"].to_bytes(32, "big") + e["callData"]
    elif call_type == 0x01:
        inner = abi_encode(["(address,uint256,bytes)[]"], [[(e["target"], e["value"], e["callData"]) for e in executions]])
    else:
        executions[0]["value"] = 0
        inner = bytes.fromhex(executions[0]["target"][2:]) + executions[0]["callData"]
    calldata = keccak(b"execute(bytes32,bytes)")[:4] + abi_encode(["bytes32", "bytes"], [mode, inner])
    return {"mode": h(mode), "executions": [{"target": e["target"], "value": str(e["value"]), "callData": h(e["callData"])} for e in executions],
            "executionCalldata": h(inner), "calldata": h(calldata)}


# ---------------------------------------------------------------- FastLZ (solady.js flzCompress)

def to_int32(x):
    x = int(x) & 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x


def js_hash(x):
    # JavaScript: the product is an IEEE-754 double, `>>` applies ToInt32 to it.
    return (to_int32(float(2654435769) * float(x)) >> 19) & 8191


def flz_compress_js(ib):
    """A line-by-line port of solady.js LibZip.flzCompress (the u24 version module-sdk uses),
    keeping JavaScript number semantics for the hash."""
    n = len(ib)
    b = n - 4
    ht, ob = {}, []
    a, i = 0, 2

    def byte(p):
        return ib[p] if 0 <= p < n else 0

    def u24(p):
        return byte(p) | (byte(p + 1) << 8) | (byte(p + 2) << 16)

    def literals(r, s):
        while r >= 32:
            ob.append(31); ob.extend(ib[s:s + 32]); s += 32; r -= 32
        if r:
            ob.append(r - 1); ob.extend(ib[s:s + r])

    while i < b - 9:
        while True:                       # do { … } while (i < b - 9 && i++ && s != c)
            s = u24(i)
            h = js_hash(s)
            r = ht.get(h, 0)              # `ht[h] || 0`
            ht[h] = i
            d = i - r
            c = u24(r) if d < 8192 else 0x1000000
            if not (i < b - 9):
                break
            i += 1
            if s == c:
                break
        if i >= b - 9:
            break
        i -= 1
        if i > a:
            literals(i - a, a)
        l, p, q = 0, r + 3, i + 3
        e = b - q
        while l < e:
            if byte(p + l) != byte(q + l):
                e = 0
            l += 1
        i += l
        d -= 1
        while l > 262:
            ob.extend([224 + (d >> 8), 253, d & 255]); l -= 262
        if l < 7:
            ob.extend([(l << 5) + (d >> 8), d & 255])
        else:
            ob.extend([224 + (d >> 8), l - 7, d & 255])
        ht[js_hash(u24(i))] = i; i += 1
        ht[js_hash(u24(i))] = i; i += 1
        a = i
    literals(b + 4 - a, a)
    return bytes(ob)


QUIRKS = [0x3b4377, 0x434377, 0x4b4377, 0x534377, 0x5b4377, 0x634377, 0x6b4377, 0x6e86ee, 0x734377, 0x7686ee]


def fastlz_case(r):
    roll = r.random()
    if roll < 0.3:      # ABI-like: zero words, small integers, addresses, repeats
        data = b"".join(r.choice([bytes(32), (r.randint(0, 300)).to_bytes(32, "big"), bytes(12) + r.randbytes(20), r.randbytes(32)])
                        for _ in range(r.randint(0, 80)))
    elif roll < 0.6:    # the inputs on which the double-precision hash differs from exact integers
        pieces = [q.to_bytes(3, "little") for q in QUIRKS]
        data = b"".join(r.choice(pieces + [b"\x80\xff\x81", bytes(r.randint(1, 8)), r.randbytes(r.randint(1, 5))]) for _ in range(r.randint(1, 400)))
    elif roll < 0.7:    # long runs (matches longer than 262)
        data = bytes([r.randint(0, 255)]) * r.randint(0, 2000) + r.randbytes(r.randint(0, 40))
    elif roll < 0.75:   # short inputs, where the first and last match positions meet
        data = bytes(r.choice(b"ab") for _ in range(r.randint(0, 40)))
    elif roll < 0.8:    # a repeat 8191 to 8193 bytes back (the window's edge), or just before
        piece = r.randbytes(r.randint(3, 12))
        gap = r.choice([8191 - len(piece), 8192 - len(piece), 8193 - len(piece), r.randint(0, 3)])
        data = r.randbytes(r.randint(0, 3)) + piece + r.randbytes(gap) + piece + r.randbytes(r.randint(0, 14))
    else:
        data = bytes(r.choice(b"\x00\x01\xff\x80") for _ in range(r.randint(0, 600)))
    return {"input": h(data), "compressed": h(flz_compress_js(data))}


# ---------------------------------------------------------------- Smart Sessions (spec §2-§5)

OWNABLE_VALIDATOR = "0x000000000013fdb5234e4e3162a810f54d9f7e98"
SMART_SESSION = "0x00000000008bdaba73cd9815d79069c247eb4bda"
FALLBACK_TARGET = "0x" + "00" * 19 + "01"

SESSION_TYPES = {
    "PolicyData": [{"name": "policy", "type": "address"}, {"name": "initData", "type": "bytes"}],
    "ActionData": [{"name": "actionTargetSelector", "type": "bytes4"}, {"name": "actionTarget", "type": "address"},
                   {"name": "actionPolicies", "type": "PolicyData[]"}],
    "ERC7739Context": [{"name": "appDomainSeparator", "type": "bytes32"}, {"name": "contentName", "type": "string[]"}],
    "ERC7739Data": [{"name": "allowedERC7739Content", "type": "ERC7739Context[]"}, {"name": "erc1271Policies", "type": "PolicyData[]"}],
    "SignedPermissions": [{"name": "permitGenericPolicy", "type": "bool"}, {"name": "permitAdminAccess", "type": "bool"},
                          {"name": "ignoreSecurityAttestations", "type": "bool"}, {"name": "permitERC4337Paymaster", "type": "bool"},
                          {"name": "userOpPolicies", "type": "PolicyData[]"}, {"name": "erc7739Policies", "type": "ERC7739Data"},
                          {"name": "actions", "type": "ActionData[]"}],
    "SignedSession": [{"name": "account", "type": "address"}, {"name": "permissions", "type": "SignedPermissions"},
                      {"name": "sessionValidator", "type": "address"}, {"name": "sessionValidatorInitData", "type": "bytes"},
                      {"name": "salt", "type": "bytes32"}, {"name": "smartSession", "type": "address"}, {"name": "nonce", "type": "uint256"}],
    "ChainSession": [{"name": "chainId", "type": "uint64"}, {"name": "session", "type": "SignedSession"}],
    "MultiChainSession": [{"name": "sessionsAndChainIds", "type": "ChainSession[]"}],
}
DOMAIN = {"name": "SmartSession", "version": "1"}
DOMAIN_TYPE = [{"name": "name", "type": "string"}, {"name": "version", "type": "string"}]
KERNEL_DOMAIN_TYPE = DOMAIN_TYPE + [{"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}]
POLICY_ABI = "(address,bytes)"
SESSION_ABI = f"(address,bytes,bytes32,{POLICY_ABI}[],((bytes32,string[])[],{POLICY_ABI}[]),(bytes4,address,{POLICY_ABI}[])[],bool)"
ENABLE_SESSION_ABI = f"(uint8,(uint64,bytes32)[],{SESSION_ABI},bytes)"


def random_session(r):
    def address():
        return h(r.randbytes(20))

    def policies(most):
        return [{"policy": address(), "initData": h(r.randbytes(r.choice([0, 12, 16, r.randint(0, 300)])))} for _ in range(r.randint(0, most))]

    def action():
        roll = r.random()
        if roll < 0.1:
            selector, target = "0x00000001", FALLBACK_TARGET
        elif roll < 0.2:
            selector, target = "0x00000002", FALLBACK_TARGET
        else:
            selector = r.choice(["0xffffffff", "0xa9059cbb", h(r.randbytes(4))])
            target = r.choice([FALLBACK_TARGET, address()])
        return {"actionTargetSelector": selector, "actionTarget": target, "actionPolicies": policies(3)}

    contexts = [{"appDomainSeparator": h(r.randbytes(32)), "contentNames": [random_string(r) for _ in range(r.randint(0, 3))]}
                for _ in range(r.randint(0, 3))]
    return {"sessionValidator": r.choice([OWNABLE_VALIDATOR, address()]), "sessionValidatorInitData": h(r.randbytes(r.randint(0, 200))),
            "salt": h(r.randbytes(32)), "userOpPolicies": policies(3),
            "erc7739Policies": {"allowedERC7739Content": contexts, "erc1271Policies": policies(2)},
            "actions": [action() for _ in range(r.randint(0, 5))], "permitERC4337Paymaster": r.random() < 0.5}


def b(x):
    return bytes.fromhex(x[2:])


def session_tuple(session):
    """A session as eth-abi encodes the Session struct (SESSION_ABI)."""
    def policy_tuples(ps):
        return [(p["policy"], b(p["initData"])) for p in ps]

    return (session["sessionValidator"], b(session["sessionValidatorInitData"]), b(session["salt"]), policy_tuples(session["userOpPolicies"]),
            ([(b(c["appDomainSeparator"]), c["contentNames"]) for c in session["erc7739Policies"]["allowedERC7739Content"]],
             policy_tuples(session["erc7739Policies"]["erc1271Policies"])),
            [(b(a["actionTargetSelector"]), a["actionTarget"], policy_tuples(a["actionPolicies"])) for a in session["actions"]],
            session["permitERC4337Paymaster"])


def session_case(r):
    """A random session, its ids and digests from the spec's definitions (eth-abi, eth-account's
    EIP-712), and its ENABLE userOp.signature (eth-abi, then the JavaScript compressor's port)."""
    session = random_session(r)
    account = h(r.randbytes(20))
    smart_session = r.choice([SMART_SESSION, h(r.randbytes(20))])
    mode = r.choice([1, 2])
    chains = [{"chainId": str(c), "nonce": str(r.choice([0, 1, r.randint(0, 2 ** 256 - 1)]))}
              for c in r.sample([1, 10, 8453, 11155111, r.randint(1, 2 ** 64 - 1), 2 ** 64 - 1], r.randint(1, 4))]
    permission_id = keccak(abi_encode(["address", "bytes", "bytes32"],
                                      [session["sessionValidator"], b(session["sessionValidatorInitData"]), b(session["salt"])]))
    actions = session["actions"]
    action_ids = [keccak(b(a["actionTarget"]) + b(a["actionTargetSelector"])) for a in actions]
    permissions = {
        "permitGenericPolicy": any(a["actionTarget"] == FALLBACK_TARGET and a["actionTargetSelector"] == "0x00000001" for a in actions),
        "permitAdminAccess": any(a["actionTarget"] == FALLBACK_TARGET and a["actionTargetSelector"] == "0x00000002" for a in actions),
        "ignoreSecurityAttestations": mode == 2,
        "permitERC4337Paymaster": session["permitERC4337Paymaster"],
        "userOpPolicies": session["userOpPolicies"],
        "erc7739Policies": {"allowedERC7739Content": [{"appDomainSeparator": c["appDomainSeparator"], "contentName": c["contentNames"]}
                                                      for c in session["erc7739Policies"]["allowedERC7739Content"]],
                            "erc1271Policies": session["erc7739Policies"]["erc1271Policies"]},
        "actions": actions,
    }

    def signed_session(nonce):
        return {"account": account, "permissions": permissions, "sessionValidator": session["sessionValidator"],
                "sessionValidatorInitData": session["sessionValidatorInitData"], "salt": session["salt"],
                "smartSession": smart_session, "nonce": int(nonce)}

    def typed(primary, message):
        # eth-account wants exactly the types the primary one reaches
        reached, todo = {}, [primary]
        while todo:
            name = todo.pop()
            if name not in reached:
                reached[name] = SESSION_TYPES[name]
                todo += [f["type"].rstrip("[]") for f in SESSION_TYPES[name] if f["type"].rstrip("[]") in SESSION_TYPES]
        doc = {"types": dict(reached, EIP712Domain=DOMAIN_TYPE), "primaryType": primary, "domain": DOMAIN, "message": message}
        return encode_typed_data(full_message=json.loads(json.dumps(doc)))

    session_digests = [typed("SignedSession", signed_session(c["nonce"])).body for c in chains]
    multichain = typed("MultiChainSession", {"sessionsAndChainIds": [{"chainId": int(c["chainId"]), "session": signed_session(c["nonce"])}
                                                                     for c in chains]})

    # Kernel hands its validator the multichain digest wrapped in its own EIP-712 domain, for the
    # first chain (the agent asks for one); each Kernel version names itself in that domain.
    # From v3.2 a signature marked replayable is checked over the wrapping for chain id 0.
    kernel_version = r.choice(["0.3.0-beta", "0.3.1", "0.3.2", "0.3.3", random_string(r)])

    def kernel(chain_id):
        return _hash_eip191_message(encode_typed_data(full_message={
            "types": {"EIP712Domain": KERNEL_DOMAIN_TYPE, "Kernel": [{"name": "hash", "type": "bytes32"}]}, "primaryType": "Kernel",
            "domain": {"name": "Kernel", "version": kernel_version, "chainId": chain_id, "verifyingContract": account},
            "message": {"hash": _hash_eip191_message(multichain)}}))

    index = r.randrange(len(chains))
    enable_sig, key_sig = r.randbytes(r.randint(0, 150)), r.randbytes(r.randint(0, 150))
    payload = abi_encode([ENABLE_SESSION_ABI, "bytes"],
                         [(index, [(int(c["chainId"]), d) for c, d in zip(chains, session_digests)], session_tuple(session), enable_sig), key_sig])

    def config_id(policy_id):
        return h(keccak(b(account) + policy_id))

    return {"session": session, "account": account, "smartSession": smart_session, "mode": str(mode), "chains": chains,
            "permissionId": h(permission_id), "actionIds": [h(a) for a in action_ids],
            "hashPermissions": h(typed("SignedPermissions", permissions).body),
            "sessionDigests": [h(d) for d in session_digests], "multichainDigest": h(_hash_eip191_message(multichain)),
            "kernel": {"version": kernel_version, "ownerDigest": h(kernel(int(chains[0]["chainId"]))), "everyChainOwnerDigest": h(kernel(0))},
            "configIds": {"userOp": config_id(permission_id), "actions": [config_id(keccak(permission_id + a)) for a in action_ids],
                          "erc1271": config_id(keccak(b"ERC1271: " + permission_id))},
            "enable": {"chainDigestIndex": str(index), "permissionEnableSig": h(enable_sig), "signature": h(key_sig),
                       "encoded": h(bytes([mode]) + flz_compress_js(payload))}}


USAGE_LIMIT = "0x00000000001d4479fa2a947026204d0283cede4b"
VALUE_LIMIT = "0x000000000021dc45451291bcdfc9f0b46d6f0278"
ERC20_SPENDING_LIMIT = "0x000000000033212e272655d8a22402db819477a6"
SIMPLE_GAS = "0x0000000000d14a6f771494592218d8f9c2ddebb6"
TIME_FRAME = "0x0000000000d30f611fa3bf652ac6879428586930"
SUDO = "0x0000000000feec8d74e3143fbabbca515358d869"
UNI_ACTION = "0x0000000000714cf48fcf88a0bfba70d313415032"
UNI_RULE_ABI = "(uint8,uint64,bool,bytes32,uint256,uint256)"


def chain_reads_case(r):
    """A session with stateful policies, and the view calls that read its state on chain: the
    account's isModuleInstalled, SmartSession's isPermissionEnabled and getNonce, and each
    stateful policy's getter keyed [configId][SmartSession][account] (spec 9), encoded by eth-abi
    from the contracts' signatures. Policies SmartSession holds once per id: a policy listed twice
    for one id (or for two actions of the same target and selector) keeps its last init data.
    Also the counters no getter exposes (UniActionPolicy's limited rules)."""
    account = h(r.randbytes(20))
    tokens = [h(r.randbytes(20)) for _ in range(3)]

    def nonzero(bits):
        return r.choice([1, 2 ** bits - 1, r.randint(1, 2 ** bits - 1)])

    def user_op_policy():
        kind = r.choice(["usage", "value", "gas", "time", "sudo"])
        if kind == "usage":
            return {"policy": USAGE_LIMIT, "initData": h(nonzero(128).to_bytes(16, "big"))}
        if kind == "value":
            return {"policy": VALUE_LIMIT, "initData": h(abi_encode(["uint256"], [nonzero(256)]))}
        if kind == "gas":
            return {"policy": SIMPLE_GAS, "initData": h(nonzero(128).to_bytes(16, "big") + nonzero(128).to_bytes(16, "big"))}
        if kind == "time":
            return {"policy": TIME_FRAME, "initData": h((2_000_000_000).to_bytes(6, "big") + (1_000_000_000).to_bytes(6, "big"))}
        return {"policy": SUDO, "initData": "0x"}

    def action_policy():
        kind = r.choice(["usage", "value", "erc20", "erc20", "uni", "sudo"])
        if kind == "erc20":
            chosen = [r.choice(tokens) for _ in range(r.randint(1, 3))]
            return {"policy": ERC20_SPENDING_LIMIT, "initData": h(abi_encode(["address[]", "uint256[]"], [chosen, [nonzero(256) for _ in chosen]]))}
        if kind == "uni":
            length = r.randint(1, 4)
            rules = [(r.randint(0, 6), r.randint(0, 100), r.random() < 0.5, r.randbytes(32), r.randint(0, 2 ** 64), 0) for _ in range(length)]
            rules += [(0, 0, False, bytes(32), 0, 0)] * (16 - length)
            return {"policy": UNI_ACTION, "initData": h(abi_encode([f"(uint256,uint256,{UNI_RULE_ABI}[16])"], [(r.randint(0, 10 ** 18), length, rules)]))}
        return user_op_policy() if kind != "sudo" else {"policy": SUDO, "initData": "0x"}

    targets = [h(r.randbytes(20)) for _ in range(2)]
    actions = [{"actionTargetSelector": r.choice(["0xa9059cbb", "0x095ea7b3"]), "actionTarget": r.choice(targets),
                "actionPolicies": [action_policy() for _ in range(r.randint(1, 3))]} for _ in range(r.randint(0, 4))]
    session = {"sessionValidator": OWNABLE_VALIDATOR, "sessionValidatorInitData": h(r.randbytes(20)), "salt": h(r.randbytes(32)),
               "userOpPolicies": [user_op_policy() for _ in range(r.randint(0, 3))],
               "erc7739Policies": {"allowedERC7739Content": [], "erc1271Policies": []}, "actions": actions, "permitERC4337Paymaster": False}
    permission_id = keccak(abi_encode(["address", "bytes", "bytes32"],
                                      [session["sessionValidator"], b(session["sessionValidatorInitData"]), b(session["salt"])]))

    def call(to, signature, types, values):
        return to + ":" + h(keccak(text=signature)[:4] + abi_encode(types, values))

    calls = [call(account, "isModuleInstalled(uint256,address,bytes)", ["uint256", "address", "bytes"], [1, SMART_SESSION, b""]),
             call(SMART_SESSION, "isPermissionEnabled(bytes32,address)", ["bytes32", "address"], [permission_id, account]),
             call(SMART_SESSION, "getNonce(bytes32,address)", ["bytes32", "address"], [permission_id, account])]
    unreadable = []

    def reads(config, policies):
        held = {}
        for p in policies:
            held[p["policy"]] = p["initData"]
        for policy, init in held.items():
            keyed = ["bytes32", "address", "address"], [config, SMART_SESSION, account]
            if policy in (USAGE_LIMIT, VALUE_LIMIT):
                calls.append(call(policy, "getUsed(bytes32,address,address)", *keyed))
            elif policy == SIMPLE_GAS:
                calls.append(call(policy, "getGasConfig(bytes32,address,address)", *keyed))
            elif policy == ERC20_SPENDING_LIMIT:
                for token in set(abi_decode(["address[]", "uint256[]"], b(init))[0]):
                    calls.append(call(policy, "getPolicyData(bytes32,address,address,address)", ["bytes32", "address", "address", "address"],
                                      [config, SMART_SESSION, token, account]))
            elif policy == UNI_ACTION:
                value_limit, length, rules = abi_decode([f"(uint256,uint256,{UNI_RULE_ABI}[16])"], b(init))[0]
                unreadable.extend(f"{policy}/{h(config)}/rule:{i}" for i in range(length) if rules[i][2])

    reads(keccak(b(account) + permission_id), session["userOpPolicies"])
    by_action = {}
    for a in actions:
        by_action.setdefault((a["actionTarget"], a["actionTargetSelector"]), []).extend(a["actionPolicies"])
    for (target, selector), policies in by_action.items():
        reads(keccak(b(account) + keccak(permission_id + keccak(b(target) + b(selector)))), policies)
    return {"session": session, "account": account, "calls": sorted(calls), "unreadable": sorted(unreadable)}


def account_op_case(r):
    """An account operation (spec 5.4): the account's execute calldata, from the contracts' ABIs
    (eth-abi), and the nonce key selecting a validator (spec 6.6)."""
    kind = r.choice(["erc7579", "nexus", "safe7579", "kernel"])
    account, validator = r.randbytes(20), r.randbytes(20)
    op = r.choice(["install", "enable", "end"])
    sessions = [random_session(r) for _ in range(r.randint(0 if op == "install" else 1, 3))] if op != "end" else []
    ids = [r.randbytes(32) for _ in range(r.randint(1, 4))] if op == "end" else []
    mode = r.choice([1, 2])

    def call(signature, types, values):
        return keccak(signature.encode())[:4] + abi_encode(types, values)

    session_array = SESSION_ABI + "[]"
    if op == "install":
        data = bytes([mode]) + abi_encode([session_array], [[session_tuple(x) for x in sessions]]) if sessions else b""
        if kind == "kernel":
            # Kernel v3.1 installModule(validator): hook (1: none) || abi(validatorData, hookData, selectorData)
            data = bytes(19) + b"\x01" + abi_encode(["bytes", "bytes", "bytes"], [data, b"", keccak(b"execute(bytes32,bytes)")[:4]])
        calls = [(account, call("installModule(uint256,address,bytes)", ["uint256", "address", "bytes"], [1, SMART_SESSION, data]))]
    elif op == "enable":
        calls = [(b(SMART_SESSION), call("enableSessions(" + session_array + ")", [session_array], [[session_tuple(x) for x in sessions]]))]
    else:
        calls = [(b(SMART_SESSION), call(f + "(bytes32)", ["bytes32"], [i])) for i in ids for f in ("removeSession", "revokeEnableSignature")]
    if len(calls) == 1:
        execution_mode, inner = bytes(32), calls[0][0] + bytes(32) + calls[0][1]
    else:
        execution_mode, inner = bytes([1]) + bytes(31), abi_encode(["(address,uint256,bytes)[]"], [[(t, 0, c) for t, c in calls]])
    calldata = call("execute(bytes32,bytes)", ["bytes32", "bytes"], [execution_mode, inner])
    key = {"erc7579": validator + bytes(4), "safe7579": validator + bytes(4), "nexus": bytes(4) + validator,
           "kernel": bytes(2) + validator + bytes(2)}[kind]
    return {"kind": kind, "account": h(account), "validator": h(validator), "operation": op, "mode": str(mode),
            "sessions": sessions, "permissionIds": [h(i) for i in ids], "calldata": h(calldata), "nonceKey": h(key)}


# ---------------------------------------------------------------- keystore v3

def keystore_case(r):
    key = r.randbytes(32)
    passphrase = random_string(r) or "x"
    kdf = r.choice(["scrypt", "pbkdf2"])
    iterations = r.choice([2, 16, 1024]) if kdf == "scrypt" else r.randint(1, 3000)
    ks = Account.encrypt(key, passphrase, kdf=kdf, iterations=iterations)
    if r.random() < 0.3:
        ks["Crypto"] = ks.pop("crypto")           # geth's older spelling
    return {"keystore": ks, "passphrase": passphrase, "address": Account.from_key(key).address, "privateKey": h(key)}


def keystore_decrypt(path):
    """Decrypts the keystores session-agent wrote: one {keystore, passphrase} per line."""
    for line in open(path):
        item = json.loads(line)
        key = Account.decrypt(item["keystore"], item["passphrase"])
        print(json.dumps({"address": Account.from_key(key).address}))


def recover(path):
    """Checks signatures a token made: one {digest, signature, publicKey} per line, the key as
    04||X||Y hex. Prints the key's address and the signature's recovered address (coincurve),
    and whether s is low."""
    for line in open(path):
        item = json.loads(line)
        sig = bytes.fromhex(item["signature"][2:])
        digest = bytes.fromhex(item["digest"][2:])
        point = bytes.fromhex(item["publicKey"][2:])
        recovered = coincurve.PublicKey.from_signature_and_message(sig[:64] + bytes([sig[64] - 27]), digest, hasher=None)
        print(json.dumps({
            "keyAddress": to_checksum_address(keccak(point[1:])[12:]),
            "recovered": to_checksum_address(keccak(recovered.format(compressed=False)[1:])[12:]),
            "lowS": int.from_bytes(sig[32:64], "big") <= N // 2,
        }))


def owner_userop_check(path):
    """Checks user operations an account's owners signed for OwnableValidator, one
    {userOperation (unpacked JSON-RPC form), chainId} per line (EntryPoint v0.7): prints the
    userOpHash (eth-abi) and the address each 65-byte signature recovers to over the EIP-191
    message of it (eth-account), as validateUserOp checks them."""
    for line in open(path):
        item = json.loads(line)
        op = item["userOperation"]

        def q(key):
            v = op.get(key, 0)
            return v if isinstance(v, int) else int(v, 16) if v.startswith("0x") else int(v)

        def raw(key):
            return b(op[key]) if key in op else b""
        init_code = b(op["factory"]) + raw("factoryData") if "factory" in op else b""
        pmd = (b(op["paymaster"]) + q("paymasterVerificationGasLimit").to_bytes(16, "big") + q("paymasterPostOpGasLimit").to_bytes(16, "big")
               + raw("paymasterData")) if "paymaster" in op else b""
        agl = q("verificationGasLimit").to_bytes(16, "big") + q("callGasLimit").to_bytes(16, "big")
        fees = q("maxPriorityFeePerGas").to_bytes(16, "big") + q("maxFeePerGas").to_bytes(16, "big")
        inner = keccak(abi_encode(["address", "uint256", "bytes32", "bytes32", "bytes32", "uint256", "bytes32", "bytes32"],
                                  [op["sender"], q("nonce"), keccak(init_code), keccak(raw("callData")), agl, q("preVerificationGas"), fees, keccak(pmd)]))
        user_op_hash = keccak(abi_encode(["bytes32", "address", "uint256"], [inner, "0x0000000071727de22e5e9d8baf0edac6f37da032", int(item["chainId"])]))
        signature = raw("signature")
        signers = [Account.recover_message(encode_defunct(primitive=user_op_hash), signature=signature[i:i + 65])
                   for i in range(0, len(signature) - 64, 65)]
        print(json.dumps({"userOpHash": h(user_op_hash), "signers": signers}))


def derived_open(key, salt, sealed, aad):
    """Opens what session-agent sealed under a key a token derived (PKCS11Sealed.derived): the
    key is AES-256-ECB of the 32-byte salt under the token's AES key; it seals nonce ||
    ciphertext || tag with AES-256-GCM. Prints the plaintext (pycryptodome)."""
    derived = AES.new(bytes.fromhex(key), AES.MODE_ECB).encrypt(bytes.fromhex(salt))
    box = bytes.fromhex(sealed)
    cipher = AES.new(derived, AES.MODE_GCM, nonce=box[:12])
    cipher.update(bytes.fromhex(aad))
    print(h(cipher.decrypt_and_verify(box[12:-16], box[-16:])))


P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
WEBAUTHN_AUTH = "(bytes,string,uint256,uint256,uint256,uint256)"


def webauthn_check(path):
    """Checks passkey owners as Rhinestone's WebAuthnValidator would (spec 6.4), from one
    {publicKey (04||X||Y), account, rpId, challenge, signature, installData, requireUV} per line:
    the signature in account mode (credential id bound to the account), and the install data for
    one credential with requireUV as given (default false); either may be absent. With "format":
    "zerodev", as ZeroDev's validator would instead (and "authenticatorId" for its install data).
    Prints, per line, the first check that failed or "ok" (eth-abi, pycryptodome)."""
    for line in open(path):
        item = json.loads(line)
        point = bytes.fromhex(item["publicKey"][2:])
        x, y = int.from_bytes(point[1:33], "big"), int.from_bytes(point[33:], "big")
        verdict = "ok"
        if item.get("format") == "zerodev":
            print(json.dumps(zerodev_verdict(item, x, y)))
            continue
        if "installData" in item:
            threshold, credentials = abi_decode(["uint256", "(uint256,uint256,bool)[]"], bytes.fromhex(item["installData"][2:]))
            if threshold != 1 or list(credentials) != [(x, y, item.get("requireUV", False))]:
                verdict = "install data"
        if verdict == "ok" and "signature" in item:
            ids, _, auths = abi_decode(["bytes32[]", "bool", WEBAUTHN_AUTH + "[]"], bytes.fromhex(item["signature"][2:]))
            expected_id = keccak(abi_encode(["uint256", "uint256", "address"], [x, y, item["account"].lower()]))
            verdict = webauthn_verdict(bytes.fromhex(item["challenge"][2:]), x, y, item["rpId"], ids, auths, expected_id, item.get("requireUV", False))
        print(json.dumps(verdict))


def zerodev_verdict(item, x, y):
    """ZeroDev's passkey validator (spec 6.5): install data abi((x, y), keccak(authenticatorId)),
    and its signature abi(authenticatorData, clientDataJSON, responseTypeLocation, r, s,
    usePrecompiled), the challenge at offset 23, user presence and verification required, a
    backup state only with backup eligibility."""
    if "installData" in item:
        key, id_hash = abi_decode(["(uint256,uint256)", "bytes32"], bytes.fromhex(item["installData"][2:]))
        if tuple(key) != (x, y) or id_hash != keccak(item["authenticatorId"].encode()):
            return "install data"
    if "signature" not in item:
        return "ok"
    auth_data, client_data, type_index, r, s, _ = abi_decode(["bytes", "string", "uint256", "uint256", "uint256", "bool"], bytes.fromhex(item["signature"][2:]))
    data = client_data.encode()
    if data[type_index:type_index + 21] != b'"type":"webauthn.get"':
        return "type"
    wanted = b'"challenge":"' + base64.urlsafe_b64encode(bytes.fromhex(item["challenge"][2:])).rstrip(b"=") + b'"'
    if data[23:23 + len(wanted)] != wanted:
        return "challenge"
    flags = auth_data[32]
    if not flags & 0x01 or not flags & 0x04:
        return "user presence and verification"
    if not flags & 0x08 and flags & 0x10:
        return "backup state"
    if not 0 < s <= P256_N // 2:
        return "high s"
    key = ECC.construct(curve="P-256", point_x=x, point_y=y)
    try:
        DSS.new(key, "fips-186-3").verify(SHA256.new(auth_data + hashlib.sha256(data).digest()), r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    except ValueError:
        return "signature"
    return "ok"


def webauthn_verdict(challenge, x, y, rp_id, ids, auths, expected_id, require_uv):
    if list(ids) != [expected_id] or len(auths) != 1:
        return "credential ids"
    auth_data, client_data, challenge_index, type_index, r, s = auths[0]
    data = client_data.encode()
    if data[type_index:type_index + 21] != b'"type":"webauthn.get"':
        return "type"
    wanted = b'"challenge":"' + base64.urlsafe_b64encode(challenge).rstrip(b"=") + b'"'
    if data[challenge_index:challenge_index + len(wanted)] != wanted:
        return "challenge"
    if auth_data[:32] != hashlib.sha256(rp_id.encode()).digest():
        return "rp id hash"
    if not auth_data[32] & 0x01:
        return "user presence"
    if require_uv and not auth_data[32] & 0x04:
        return "user verification"
    if not 0 < s <= P256_N // 2:
        return "high s"
    key = ECC.construct(curve="P-256", point_x=x, point_y=y)
    message = SHA256.new(auth_data + hashlib.sha256(data).digest())
    try:
        DSS.new(key, "fips-186-3").verify(message, r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    except ValueError:
        return "signature"
    return "ok"


def rfc3339_case(r):
    """A time as a request may give it, often with a field out of range (February 30th, 24:00,
    an offset of 24 hours), and its unix seconds by Python's datetime, or None where datetime
    refuses it or it falls before 1970."""
    def pick(good, bad):
        return r.choice(bad) if r.random() < 0.15 else good
    year = r.choice([1969, 1970, 2000, 2024, 2025, 2100, 2400, r.randint(1970, 9999)])
    month, day = pick(r.randint(1, 12), [0, 13]), pick(r.randint(1, 31), [0, 29, 30, 31, 32])
    hour, minute, second = pick(r.randint(0, 23), [24, 99]), pick(r.randint(0, 59), [60]), pick(r.randint(0, 59), [60])
    zone_minutes = pick(r.choice([0, 30, 45]), [59, 60])
    zone = "Z" if r.random() < 0.4 else "%s%02d:%02d" % (r.choice("+-"), pick(r.randint(0, 14), [23, 24]), zone_minutes)
    text = "%04d-%02d-%02dT%02d:%02d:%02d%s" % (year, month, day, hour, minute, second, zone)
    try:
        seconds = int(datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
    except ValueError:
        seconds = None
    # datetime takes an offset of 60 minutes as one more hour; RFC 3339's minutes are 00-59.
    if zone != "Z" and zone_minutes >= 60:
        seconds = None
    return {"text": text, "seconds": seconds if seconds is None or seconds >= 0 else None}


def toml_case(r):
    """A TOML document as an operator might write one, often with a slip in it: keys from a small
    pool (so tables collide and get redefined), every string, number and date form, nested
    arrays and inline tables, dotted keys, headers; then, often, a few bytes deleted, inserted or
    moved. Python's tomllib decides it in toml-check, after session-agent has read it."""
    keys = ["a", "b", "c", "x-1", "_"]

    def pick(good, bad):
        return r.choice(bad) if r.random() < 0.06 else r.choice(good)

    def ws():
        return r.choice(["", " ", "  ", "\t"])

    def simple_key():
        k = r.random()
        if k < 0.75:
            return r.choice(keys)
        if k < 0.9:
            return '"' + pick(keys + ["", "a.b", "é", "\\u00e9", "\\n", " "], ["\\", "\n"]) + '"'
        return "'" + pick(keys + ["", "a.b", "\\", '"'], ["'", "\n"]) + "'"

    def key():
        return (ws() + "." + ws()).join(simple_key() for _ in range(r.choice([1, 1, 1, 2, 2, 3])))

    def basic_char():
        return pick(["a", "é", "😀", " ", "\\t", "\\n", "\\\\", '\\"', "\\b", "\\f", "\\r", "\\u00e9", "\\U0001F600", "'", "\t", "#"],
                    ["\\uD800", "\\u12", "\\x41", "\\e", "\x7f", "\x00", "\\U00110000"])

    def value(depth):
        k = r.randrange(12 if depth < 4 else 9)
        if k == 0:
            return '"' + "".join(basic_char() for _ in range(r.randrange(4))) + '"'
        if k == 1:
            return "'" + "".join(pick(["a", "é", '"', "\\", " ", "\t"], ["\x01", "\n"]) for _ in range(r.randrange(4))) + "'"
        if k == 2:
            body = "".join(pick(["a", "\n", '"', '""', "\\\n   ", "\\  \n\n  x", "\\u00e9", "\t", "\r\n"], ["\r", "\\ x", '"""', "\\"]) for _ in range(r.randrange(5)))
            return '"""' + r.choice(["", "\n"]) + body + r.choice(['"""', '""""', '"""""', '""""""'])
        if k == 3:
            body = "".join(pick(["a", "\n", "'", "''", "\\", "\t"], ["\x02", "'" * 3]) for _ in range(r.randrange(5)))
            return "'''" + r.choice(["", "\n"]) + body + r.choice(["'" * 3, "'" * 4, "'" * 5, "'" * 6])
        if k == 4:
            return pick(["0", "+0", "-0", "1_000", "+99", "-17", "9223372036854775807", "-9223372036854775808", "0xdead_BEEF", "0o755", "0b1101",
                         "0x7fffffffffffffff", str(r.randint(-10**6, 10**6))],
                        ["00", "01", "1__0", "_1", "1_", "9223372036854775808", "-9223372036854775809", "0x_1", "0x", "0o8", "0b2", "+0x1", "0xffffffffffffffff"])
        if k == 5:
            return pick(["1.5", "-0.0", "+1.0", "1e5", "1E-5", "1e+05", "1_0.0_1", "6.02e23", "1e400", "inf", "-inf", "+inf", "nan", "-nan", "+nan", "1e0_1"],
                        ["1.", ".5", "1.e5", "3.14e", "infinity", "0.1_", "00.1", "1e_1"])
        if k == 6:
            return pick(["true", "false"], ["True", "tru", "falsey"])
        if k == 7:
            date = "%04d-%02d-%02d" % (pick([1, 1979, 2000, 2100, 2024], [0]), pick([1, 2, 12], [13, 0]), pick([1, 28, 29, 30, 31], [32, 0]))
            time = "%02d:%02d:%02d" % (pick([0, 7, 23], [24]), pick([0, 32, 59], [60]), pick([0, 59], [60])) + pick(["", ".5", ".999999999"], ["."])
            zone = pick(["", "Z", "z", "+05:30", "-07:00"], ["+24:00", "+05:60", "+0530"])
            return pick([date, time, date + r.choice(["T", "t", " "]) + time + zone], [date + "_" + time, date + "T" + time[:5]])
        if k == 8:
            return pick(["true"], ["", "=", "[", "]", "{", "}", "'", '"', "x", "#"])
        if k in (9, 10):
            items = [value(depth + 1) for _ in range(r.randrange(4))]
            sep = pick([",", ", ", " ,", ",\n  ", ",\n# c\n"], [",,", " "])
            return "[" + r.choice(["", " ", "\n"]) + sep.join(items) + r.choice(["", ",", " ", "\n", " # c\n"]) + "]"
        pairs = [key() + ws() + "=" + ws() + value(depth + 1) for _ in range(r.randrange(4))]
        return "{" + ws() + pick([", ", ",", " ,"], [",,", "\n,"]).join(pairs) + pick([""], [",", "\n"]) + ws() + "}"

    lines = []
    for _ in range(r.randrange(1, 9)):
        k = r.random()
        if k < 0.55:
            line = key() + ws() + "=" + ws() + value(0)
        elif k < 0.75:
            line = "[" + ws() + key() + ws() + "]"
        elif k < 0.9:
            line = "[[" + ws() + key() + ws() + "]]"
        else:
            line = ""
        lines.append(ws() + line + r.choice(["", "", ws() + "# " + pick(["note", "é", "\t"], ["\x01", "\x7f"])]))
    doc = "\n".join(lines) + r.choice(["", "\n", "\r\n"])
    for _ in range(r.choice([0, 0, 0, 1, 2])):
        i = r.randrange(len(doc) + 1)
        edit = r.random()
        if edit < 0.4:
            doc = doc[:i] + doc[i + 1:]
        elif edit < 0.8:
            doc = doc[:i] + r.choice("[]{}=.,\"'#\n \t\\0x_-+:aZ\r") + doc[i:]
        else:
            parts = doc.split("\n")
            r.shuffle(parts)
            doc = "\n".join(parts)
    return {"doc": doc}


def toml_check(path):
    """Compares what session-agent read from each document ({doc, value} or {doc, error} per
    line) with tomllib's reading: one line per document, "ok" or why not. session-agent refuses
    integers beyond 64 bits (as TOML requires of a reader that cannot keep them exactly) and
    keeps floats and dates as strings."""
    def beyond_64_bits(v):
        if isinstance(v, bool):
            return False
        if isinstance(v, int):
            return not -2**63 <= v < 2**63
        if isinstance(v, dict):
            return any(beyond_64_bits(x) for x in v.values())
        if isinstance(v, list):
            return any(beyond_64_bits(x) for x in v)
        return False

    def same(ours, theirs):
        if isinstance(theirs, bool):
            return ours is theirs
        if isinstance(theirs, int):
            return type(ours) is int and ours == theirs
        if isinstance(theirs, str):
            return ours == theirs
        if isinstance(theirs, float):
            if not isinstance(ours, str):
                return False
            return float(ours) == theirs or (theirs != theirs and float(ours) != float(ours))
        if isinstance(theirs, (datetime.datetime, datetime.date, datetime.time)):
            try:
                return isinstance(ours, str) and tomllib.loads("v = " + ours)["v"] == theirs
            except tomllib.TOMLDecodeError:
                return False
        if isinstance(theirs, list):
            return isinstance(ours, list) and len(ours) == len(theirs) and all(same(o, t) for o, t in zip(ours, theirs))
        if isinstance(theirs, dict):
            return isinstance(ours, dict) and ours.keys() == theirs.keys() and all(same(ours[k], theirs[k]) for k in theirs)
        return False

    for line in open(path):
        case = json.loads(line)
        why = "an integer beyond 64 bits"
        try:
            theirs = tomllib.loads(case["doc"])
            if beyond_64_bits(theirs):
                theirs = None
        except tomllib.TOMLDecodeError as e:
            theirs, why = None, str(e)
        ours = case.get("value")
        if theirs is None and ours is not None:
            print("session-agent read %r as %r; tomllib refuses it (%s)" % (case["doc"], ours, why))
        elif theirs is not None and ours is None:
            print("session-agent refused %r (%s); tomllib reads %r" % (case["doc"], case.get("error"), theirs))
        elif theirs is not None and not same(ours, theirs):
            print("session-agent read %r as %r; tomllib as %r" % (case["doc"], ours, theirs))
        else:
            print("ok")


KINDS = {"chain-reads": chain_reads_case, "toml": toml_case, "rfc3339": rfc3339_case, "keccak": keccak_case, "abi": abi_case, "eip712": eip712_case, "erc7739": erc7739_case, "secp256k1": secp_case, "userop": userop_case, "execute": execute_case, "fastlz": fastlz_case, "session": session_case,
         "keystore": keystore_case, "account-op": account_op_case}

# Checks of what session-agent made, each reading the file named after it.
CHECKS = {"keystore-decrypt": keystore_decrypt, "toml-check": toml_check, "recover": recover, "owner-userop-check": owner_userop_check,
          "webauthn-check": webauthn_check}

if __name__ == "__main__":
    if sys.argv[1] in CHECKS:
        CHECKS[sys.argv[1]](sys.argv[2])
        sys.exit(0)
    if sys.argv[1] == "derived-open":
        derived_open(*(a[2:] if a.startswith("0x") else a for a in sys.argv[2:6]))
        sys.exit(0)
    kind, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    out = sys.stdout
    for _ in range(count):
        out.write(json.dumps(KINDS[kind](rng), ensure_ascii=rng.random() < 0.5) + "\n")
