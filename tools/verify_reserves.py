#!/usr/bin/env python3
"""Check a venue's proof of reserves with nothing but Python's standard library.

    python tools/verify_reserves.py proof.json [--root HEX] [--published published.json]
                                              [--attestations attestations.json]

Recomputes your leaf from your balances and salt, walks the path to the root adding the
siblings' sums (every sum must be a non-negative integer below 2**128), and compares the root
and totals with the proof's and, when given, with the published ones. ``--attestations`` checks
the wallets' signatures of the published challenge (Ethereum EIP-191 ``personal_sign``, Bitcoin
BIP-137 signed messages) with a small secp256k1 written here: slow, self-contained.

A proof (JSON): ``version`` 1, ``snapshot``, ``account``, ``salt`` and ``leaf`` (hex),
``assets`` [{asset, decimals}], ``balances`` [{asset, amount (int), decimal (string)}] in the
assets' order, ``path`` from the leaf up [{side of the sibling ("left"/"right"), hash, sums
(ints, one per asset), parent (the venue's hash of the node formed there)}], ``leaf_count``,
``root`` and ``totals`` {asset: int}. The published document: snapshot, root, assets, totals,
leaf_count. Attestations: [{chain, address, message, signature}].

Exit code 0: verified; 1: the proof does not verify (the message says what differs and at which
level, level 0 being the leaf's siblings); 2: the input cannot be read.

The encodings (the venue's ``custody/reserves.py`` documents the same): integers big-endian,
``u16`` / ``u64`` / ``u128`` of 2 / 8 / 16 bytes, ``str(s) = u16(len) || utf8``,
``context = u64(snapshot) || u16(k) || (str(asset) || u8(decimals))...`` (k assets),
``leaf = SHA-256("venue-por-leaf-v1" || context || salt || str(account) || u128 balances...)``,
``node = SHA-256("venue-por-node-v1" || left || left sums || right || right sums)``, an odd level
padded with ``SHA-256("venue-por-pad-v1")`` with zero sums.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import sys
from typing import Any

LEAF_TAG = b"venue-por-leaf-v1"
NODE_TAG = b"venue-por-node-v1"
PAD_HASH = hashlib.sha256(b"venue-por-pad-v1").digest()
MAX_AMOUNT = 1 << 128
MAX_DEPTH = 64


class Unreadable(Exception):
    """The input is not a proof at all (exit code 2)."""


# ---------------------------------------------------------------- reading the input


def _int(value: Any, what: str) -> int:
    if type(value) is not int:
        raise Unreadable(f"{what} must be an integer")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise Unreadable(f"{what} must be a string")
    return value


def _hex32(value: Any, what: str) -> bytes:
    text = _str(value, what)
    if len(text) != 64:
        raise Unreadable(f"{what} must be 64 hex digits")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise Unreadable(f"{what} must be 64 hex digits") from None


def _list(value: Any, what: str, limit: int = 1 << 16) -> list[Any]:
    if not isinstance(value, list) or len(value) > limit:
        raise Unreadable(f"{what} must be a list (at most {limit} items)")
    return value


def _dict(value: Any, what: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Unreadable(f"{what} must be an object")
    missing = [k for k in keys if k not in value]
    if missing:
        raise Unreadable(f"{what} lacks {', '.join(missing)}")
    return value


def _assets(value: Any, what: str) -> list[tuple[str, int]]:
    items = _list(value, what)
    out = []
    for i, item in enumerate(items):
        d = _dict(item, f"{what}[{i}]", ("asset", "decimals"))
        out.append((_str(d["asset"], f"{what}[{i}].asset"), _int(d["decimals"], f"{what}[{i}]")))
    if not out:
        raise Unreadable(f"{what} is empty")
    return out


def _totals(value: Any, what: str) -> dict[str, int]:
    if not isinstance(value, dict):
        raise Unreadable(f"{what} must be an object")
    return {_str(k, what): _int(v, f"{what}.{k}") for k, v in value.items()}


def read_proof(obj: Any) -> dict[str, Any]:
    """The proof's fields with their types checked; ``Unreadable`` if it is not a proof."""
    p = _dict(
        obj,
        "the proof",
        (
            "version",
            "snapshot",
            "account",
            "salt",
            "leaf",
            "assets",
            "balances",
            "path",
            "leaf_count",
            "root",
            "totals",
        ),
    )
    if p["version"] != 1 or type(p["version"]) is not int:
        raise Unreadable(f"unsupported proof version {p['version']!r}")
    balances = []
    for i, item in enumerate(_list(p["balances"], "balances")):
        d = _dict(item, f"balances[{i}]", ("asset", "amount", "decimal"))
        balances.append(
            (
                _str(d["asset"], f"balances[{i}].asset"),
                _int(d["amount"], f"balances[{i}].amount"),
                _str(d["decimal"], f"balances[{i}].decimal"),
            )
        )
    path = []
    for i, item in enumerate(_list(p["path"], "path", MAX_DEPTH)):
        d = _dict(item, f"path[{i}]", ("side", "hash", "sums", "parent"))
        if d["side"] not in ("left", "right"):
            raise Unreadable(f'path[{i}].side must be "left" or "right"')
        sums = [_int(v, f"path[{i}].sums") for v in _list(d["sums"], f"path[{i}].sums")]
        parent = _hex32(d["parent"], f"path[{i}].parent")
        path.append((d["side"], _hex32(d["hash"], f"path[{i}].hash"), sums, parent))
    return {
        "snapshot": _int(p["snapshot"], "snapshot"),
        "account": _str(p["account"], "account"),
        "salt": _hex32(p["salt"], "salt"),
        "leaf": _hex32(p["leaf"], "leaf"),
        "assets": _assets(p["assets"], "assets"),
        "balances": balances,
        "path": path,
        "leaf_count": _int(p["leaf_count"], "leaf_count"),
        "root": _hex32(p["root"], "root"),
        "totals": _totals(p["totals"], "totals"),
    }


def read_published(obj: Any) -> dict[str, Any]:
    """The published document's fields with their types checked."""
    p = _dict(obj, "the published document", ("snapshot", "root", "assets", "totals", "leaf_count"))
    return {
        "snapshot": _int(p["snapshot"], "published snapshot"),
        "root": _hex32(p["root"], "published root"),
        "assets": _assets(p["assets"], "published assets"),
        "totals": _totals(p["totals"], "published totals"),
        "leaf_count": _int(p["leaf_count"], "published leaf_count"),
    }


# ---------------------------------------------------------------- the sum tree


def _u(x: int, width: int) -> bytes:
    return x.to_bytes(width, "big")


def decimal_string(amount: int, decimals: int) -> str:
    if decimals == 0:
        return str(amount)
    whole, frac = divmod(amount, 10**decimals)
    return f"{whole}.{frac:0{decimals}d}"


def _str_bytes(text: str) -> bytes:
    raw = text.encode()
    return _u(len(raw), 2) + raw


def leaf_hash(
    snapshot: int, assets: list[tuple[str, int]], salt: bytes, account: str, balances: list[int]
) -> bytes:
    context = _u(snapshot, 8) + _u(len(assets), 2)
    context += b"".join(_str_bytes(name) + _u(decimals, 1) for name, decimals in assets)
    data = LEAF_TAG + context + salt + _str_bytes(account)
    return hashlib.sha256(data + b"".join(_u(b, 16) for b in balances)).digest()


def node_hash(left: bytes, left_sums: list[int], right: bytes, right_sums: list[int]) -> bytes:
    data = NODE_TAG + left + b"".join(_u(s, 16) for s in left_sums)
    data += right + b"".join(_u(s, 16) for s in right_sums)
    return hashlib.sha256(data).digest()


def check_proof(
    proof: dict[str, Any], root: bytes | None = None, published: dict[str, Any] | None = None
) -> tuple[list[str], bytes]:
    """The problems found (empty: verified) and the root the path leads to."""
    problems: list[str] = []
    assets = proof["assets"]
    names = [a for a, _ in assets]
    k = len(assets)
    for name, decimals in assets:
        if not 0 <= decimals <= 36:
            problems.append(f"asset {name}: decimals {decimals} outside 0..36")
    if len(set(names)) != k:
        problems.append("the asset list names an asset twice")
    if not 0 <= proof["snapshot"] < 1 << 64:
        problems.append(f"the snapshot {proof['snapshot']} is outside 0..2**64-1")
    if any(len(name.encode()) > 0xFFFF for name in names):
        problems.append("an asset's name is longer than 65535 bytes")
    if problems:
        return problems, b""
    if [a for a, _, _ in proof["balances"]] != names:
        problems.append(
            f"the balances' assets {[a for a, _, _ in proof['balances']]} "
            f"are not the tree's assets {names} in order"
        )
        return problems, b""
    if len(proof["account"].encode()) > 0xFFFF:
        problems.append("the account id is longer than 65535 bytes")
        return problems, b""
    balances = []
    for (name, amount, text), (_, decimals) in zip(proof["balances"], assets, strict=True):
        if not 0 <= amount < MAX_AMOUNT:
            problems.append(f"leaf: the balance of {name} ({amount}) is negative or too large")
        elif 0 <= decimals <= 36 and decimal_string(amount, decimals) != text:
            problems.append(
                f"leaf: the balance of {name} reads {text!r} but its amount is {amount} "
                f"({decimal_string(amount, decimals)})"
            )
        balances.append(amount)
    if problems:
        return problems, b""
    count = proof["leaf_count"]
    if count < 1:
        return [f"the leaf count {count} is not positive"], b""
    depth = (count - 1).bit_length()
    if len(proof["path"]) != depth:
        problems.append(
            f"the path has {len(proof['path'])} levels; a tree of {count} leaves has {depth}"
        )
        return problems, b""
    current = leaf_hash(proof["snapshot"], assets, proof["salt"], proof["account"], balances)
    # The first hash that parts from the venue's says where the proof differs; the root decides.
    parted = current != proof["leaf"]
    if parted:
        problems.append(
            f"leaf: your account, salt, balances, snapshot and assets hash to {current.hex()}, "
            f"not to the proof's leaf {proof['leaf'].hex()}"
        )
    sums = balances
    index = sum(1 << lvl for lvl, (side, *_) in enumerate(proof["path"]) if side == "left")
    if index >= count:
        return [f"the left/right flags place the leaf at {index}, past the {count} leaves"], b""
    width = count
    for level, (side, sibling, sibling_sums, parent) in enumerate(proof["path"]):
        if len(sibling_sums) != k:
            problems.append(f"level {level}: the sibling has {len(sibling_sums)} sums, not {k}")
            return problems, b""
        for name, value in zip(names, sibling_sums, strict=True):
            if value < 0:
                problems.append(f"level {level}: the sibling's sum of {name} is negative ({value})")
            elif value >= MAX_AMOUNT:
                problems.append(f"level {level}: the sibling's sum of {name} exceeds 2**128")
        if len(problems) > parted:
            return problems, b""
        if (index ^ 1) >= width and (sibling != PAD_HASH or any(sibling_sums)):
            problems.append(
                f"level {level}: the sibling lies past the level's end, so it must "
                "be the padding node (its hash and zero sums)"
            )
            return problems, b""
        if side == "left":
            current = node_hash(sibling, sibling_sums, current, sums)
        else:
            current = node_hash(current, sums, sibling, sibling_sums)
        if not parted and current != parent:
            parted = True
            problems.append(
                f"level {level}: with the sibling {sibling.hex()} on the {side} the parent is "
                f"{current.hex()}, not the proof's {parent.hex()}"
            )
        sums = [a + b for a, b in zip(sums, sibling_sums, strict=True)]
        for name, value in zip(names, sums, strict=True):
            if value >= MAX_AMOUNT:
                problems.append(f"level {level}: the parent's sum of {name} exceeds 2**128")
                return problems, b""
        index //= 2
        width = (width + 1) // 2
    if current != proof["root"]:
        problems.append(
            f"root: the path leads to {current.hex()} but the proof's root is {proof['root'].hex()}"
        )
    totals = dict(zip(names, sums, strict=True))
    if proof["totals"] != totals:
        problems.extend(_total_diffs(totals, proof["totals"], "the proof's totals"))
    if root is not None and current != root:
        problems.append(f"root: the path leads to {current.hex()} but --root is {root.hex()}")
    if published is not None:
        if published["root"] != current:
            problems.append(
                f"root: the path leads to {current.hex()} but the published root is "
                f"{published['root'].hex()}"
            )
        if published["totals"] != totals:
            problems.extend(_total_diffs(totals, published["totals"], "the published totals"))
        for key in ("snapshot", "leaf_count", "assets"):
            if published[key] != proof[key]:
                problems.append(
                    f"{key}: the proof has {proof[key]} but the published has {published[key]}"
                )
    return problems, current


def _total_diffs(computed: dict[str, int], claimed: dict[str, int], where: str) -> list[str]:
    out = []
    for name in list(computed) + [n for n in claimed if n not in computed]:
        if computed.get(name) != claimed.get(name):
            out.append(
                f"total of {name}: the path sums to {computed.get(name)} but {where} "
                f"say {claimed.get(name)}"
            )
    return out


# ---------------------------------------------------------------- secp256k1, keccak, addresses

P = 2**256 - 2**32 - 977
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
G = (
    0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
    0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8,
)
Point = tuple[int, int] | None


def point_add(a: Point, b: Point) -> Point:
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0]:
        if (a[1] + b[1]) % P == 0:
            return None
        slope = 3 * a[0] * a[0] * pow(2 * a[1], -1, P) % P
    else:
        slope = (b[1] - a[1]) * pow(b[0] - a[0], -1, P) % P
    x = (slope * slope - a[0] - b[0]) % P
    return x, (slope * (a[0] - x) - a[1]) % P


def point_mul(k: int, a: Point) -> Point:
    out: Point = None
    for bit in bin(k % N)[2:]:
        out = point_add(out, out)
        if bit == "1":
            out = point_add(out, a)
    return out


def recover(digest: bytes, r: int, s: int, recid: int) -> Point:
    """The public key that signed ``digest`` with ``(r, s)`` and recovery id 0..3, or None."""
    if not (0 < r < N and 0 < s < N and 0 <= recid <= 3):
        return None
    x = r + (recid >> 1) * N
    if x >= P:
        return None
    alpha = (x * x * x + 7) % P
    y = pow(alpha, (P + 1) // 4, P)
    if y * y % P != alpha:
        return None
    if y % 2 != recid & 1:
        y = P - y
    e = int.from_bytes(digest, "big") % N
    r_inv = pow(r, -1, N)
    return point_add(point_mul(s * r_inv, (x, y)), point_mul(-e * r_inv, G))


def sec1(point: tuple[int, int], compressed: bool) -> bytes:
    if compressed:
        return bytes([2 + point[1] % 2]) + point[0].to_bytes(32, "big")
    return b"\x04" + point[0].to_bytes(32, "big") + point[1].to_bytes(32, "big")


def _rol(a: int, n: int) -> int:
    n %= 64
    return ((a << n) | (a >> (64 - n))) & 0xFFFFFFFFFFFFFFFF


def _keccak_f(lanes: list[list[int]]) -> list[list[int]]:
    """Keccak-f[1600] as the Keccak team's compact reference writes it."""
    r = 1
    for _ in range(24):
        c = [lanes[x][0] ^ lanes[x][1] ^ lanes[x][2] ^ lanes[x][3] ^ lanes[x][4] for x in range(5)]
        d = [c[(x + 4) % 5] ^ _rol(c[(x + 1) % 5], 1) for x in range(5)]
        lanes = [[lanes[x][y] ^ d[x] for y in range(5)] for x in range(5)]
        x, y = 1, 0
        current = lanes[x][y]
        for t in range(24):
            x, y = y, (2 * x + 3 * y) % 5
            current, lanes[x][y] = lanes[x][y], _rol(current, (t + 1) * (t + 2) // 2)
        for y in range(5):
            row = [lanes[x][y] for x in range(5)]
            for x in range(5):
                lanes[x][y] = row[x] ^ ((~row[(x + 1) % 5]) & row[(x + 2) % 5])
        for j in range(7):
            r = ((r << 1) ^ ((r >> 7) * 0x71)) % 256
            if r & 2:
                lanes[0][0] ^= 1 << ((1 << j) - 1)
    return lanes


def keccak256(data: bytes, suffix: int = 0x01) -> bytes:
    """Ethereum's Keccak-256 (suffix 0x01; 0x06 gives SHA3-256, which tests compare against)."""
    rate = 136
    padded = bytearray(data) + bytes([suffix])
    padded += bytes(-len(padded) % rate)
    padded[-1] |= 0x80
    lanes = [[0] * 5 for _ in range(5)]
    for start in range(0, len(padded), rate):
        block = padded[start : start + rate]
        for i in range(rate // 8):
            lanes[i % 5][i // 5] ^= int.from_bytes(block[8 * i : 8 * i + 8], "little")
        lanes = _keccak_f(lanes)
    return b"".join(lanes[i % 5][i // 5].to_bytes(8, "little") for i in range(4))


def _ripemd160_pure(data: bytes) -> bytes:
    """RIPEMD-160 for the interpreters whose OpenSSL no longer offers it."""
    rl = [
        list(range(16)),
        [7, 4, 13, 1, 10, 6, 15, 3, 12, 0, 9, 5, 2, 14, 11, 8],
        [3, 10, 14, 4, 9, 15, 8, 1, 2, 7, 0, 6, 13, 11, 5, 12],
        [1, 9, 11, 10, 0, 8, 12, 4, 13, 3, 7, 15, 14, 5, 6, 2],
        [4, 0, 5, 9, 7, 12, 2, 10, 14, 1, 3, 8, 11, 6, 15, 13],
    ]
    rr = [
        [5, 14, 7, 0, 9, 2, 11, 4, 13, 6, 15, 8, 1, 10, 3, 12],
        [6, 11, 3, 7, 0, 13, 5, 10, 14, 15, 8, 12, 4, 9, 1, 2],
        [15, 5, 1, 3, 7, 14, 6, 9, 11, 8, 12, 2, 10, 0, 4, 13],
        [8, 6, 4, 1, 3, 11, 15, 0, 5, 12, 2, 13, 9, 7, 10, 14],
        [12, 15, 10, 4, 1, 5, 8, 7, 6, 2, 13, 14, 0, 3, 9, 11],
    ]
    sl = [
        [11, 14, 15, 12, 5, 8, 7, 9, 11, 13, 14, 15, 6, 7, 9, 8],
        [7, 6, 8, 13, 11, 9, 7, 15, 7, 12, 15, 9, 11, 7, 13, 12],
        [11, 13, 6, 7, 14, 9, 13, 15, 14, 8, 13, 6, 5, 12, 7, 5],
        [11, 12, 14, 15, 14, 15, 9, 8, 9, 14, 5, 6, 8, 6, 5, 12],
        [9, 15, 5, 11, 6, 8, 13, 12, 5, 12, 13, 14, 11, 8, 5, 6],
    ]
    sr = [
        [8, 9, 9, 11, 13, 15, 15, 5, 7, 7, 8, 11, 14, 14, 12, 6],
        [9, 13, 15, 7, 12, 8, 9, 11, 7, 7, 12, 7, 6, 15, 13, 11],
        [9, 7, 15, 11, 8, 6, 6, 14, 12, 13, 5, 14, 13, 13, 7, 5],
        [15, 5, 8, 11, 14, 14, 6, 14, 6, 9, 12, 9, 12, 5, 15, 8],
        [8, 5, 12, 9, 12, 5, 14, 6, 8, 13, 6, 5, 15, 13, 11, 11],
    ]
    kl = [0, 0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xA953FD4E]
    kr = [0x50A28BE6, 0x5C4DD124, 0x6D703EF3, 0x7A6D76E9, 0]
    m32 = 0xFFFFFFFF

    def f(j: int, x: int, y: int, z: int) -> int:
        if j == 0:
            return x ^ y ^ z
        if j == 1:
            return (x & y) | (~x & z)
        if j == 2:
            return (x | ~y) ^ z
        if j == 3:
            return (x & z) | (y & ~z)
        return x ^ (y | ~z)

    def rol(x: int, n: int) -> int:
        return ((x << n) | (x >> (32 - n))) & m32

    h = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0]
    msg = data + b"\x80" + bytes((55 - len(data)) % 64) + (8 * len(data)).to_bytes(8, "little")
    for off in range(0, len(msg), 64):
        x = [int.from_bytes(msg[off + 4 * i : off + 4 * i + 4], "little") for i in range(16)]
        al, bl, cl, dl, el = h
        ar, br, cr, dr, er = h
        for j in range(5):
            for i in range(16):
                t = rol((al + f(j, bl, cl, dl) + x[rl[j][i]] + kl[j]) & m32, sl[j][i]) + el
                al, el, dl, cl, bl = el, dl, rol(cl, 10), bl, t & m32
                t = rol((ar + f(4 - j, br, cr, dr) + x[rr[j][i]] + kr[j]) & m32, sr[j][i]) + er
                ar, er, dr, cr, br = er, dr, rol(cr, 10), br, t & m32
        t = (h[1] + cl + dr) & m32
        h[1] = (h[2] + dl + er) & m32
        h[2] = (h[3] + el + ar) & m32
        h[3] = (h[4] + al + br) & m32
        h[4] = (h[0] + bl + cr) & m32
        h[0] = t
    return b"".join(v.to_bytes(4, "little") for v in h)


def hash160(data: bytes) -> bytes:
    digest = hashlib.sha256(data).digest()
    try:
        return hashlib.new("ripemd160", digest).digest()
    except ValueError:
        return _ripemd160_pure(digest)


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def base58check_decode(text: str) -> bytes | None:
    n = 0
    for ch in text:
        if ch not in _B58:
            return None
        n = n * 58 + _B58.index(ch)
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    raw = b"\x00" * (len(text) - len(text.lstrip("1"))) + raw
    if len(raw) < 5:
        return None
    body, check = raw[:-4], raw[-4:]
    if hashlib.sha256(hashlib.sha256(body).digest()).digest()[:4] != check:
        return None
    return body


def _polymod(values: list[int]) -> int:
    gen = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def segwit_v0_decode(address: str) -> tuple[str, bytes] | None:
    """``(hrp, program)`` of a bech32 (BIP-173) witness-v0 address, or None."""
    if address.lower() != address and address.upper() != address:
        return None
    text = address.lower()
    pos = text.rfind("1")
    if pos < 1 or len(text) - pos < 8 or len(text) > 90:
        return None
    hrp, rest = text[:pos], text[pos + 1 :]
    if any(ch not in _B32 for ch in rest):
        return None
    data = [_B32.index(ch) for ch in rest]
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    if _polymod(expanded + data) != 1 or not data or data[0] != 0:
        return None
    acc = bits = 0
    program = bytearray()
    for v in data[1:-6]:
        acc = (acc << 5) | v
        bits += 5
        if bits >= 8:
            bits -= 8
            program.append((acc >> bits) & 0xFF)
    if bits >= 5 or (acc & ((1 << bits) - 1)):
        return None
    return hrp, bytes(program)


def ethereum_digest(message: bytes) -> bytes:
    return keccak256(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message)


def _varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    return b"\xfe" + n.to_bytes(4, "little")


def bitcoin_digest(message: bytes) -> bytes:
    magic = b"Bitcoin Signed Message:\n"
    data = _varint(len(magic)) + magic + _varint(len(message)) + message
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def check_attestation(item: Any, expected_message: str | None = None) -> str | None:
    """None if the wallet's signature of its message verifies, else what is wrong."""
    d = _dict(item, "an attestation", ("chain", "address", "message", "signature"))
    chain, address = _str(d["chain"], "chain"), _str(d["address"], "address")
    message, signature = _str(d["message"], "message"), _str(d["signature"], "signature")
    if expected_message is not None and message != expected_message:
        return f"{chain} {address}: signs {message!r}, not {expected_message!r}"
    if chain == "ethereum":
        try:
            raw = bytes.fromhex(signature.removeprefix("0x"))
        except ValueError:
            return f"ethereum {address}: the signature is not hex"
        if len(raw) != 65:
            return f"ethereum {address}: the signature is not 65 bytes"
        v = raw[64] - 27 if raw[64] >= 27 else raw[64]
        s = int.from_bytes(raw[32:64], "big")
        if s > N // 2:
            return f"ethereum {address}: s is high (EIP-2)"
        key = recover(ethereum_digest(message.encode()), int.from_bytes(raw[:32], "big"), s, v)
        if key is None:
            return f"ethereum {address}: no public key recovers from the signature"
        found = "0x" + keccak256(sec1(key, False)[1:])[-20:].hex()
        if found != address.lower():
            return f"ethereum {address}: the signature is by {found}"
        return None
    if chain == "bitcoin":
        try:
            raw = base64.b64decode(signature, validate=True)
        except ValueError:
            return f"bitcoin {address}: the signature is not base64"
        if len(raw) != 65 or not 27 <= raw[0] <= 42:
            return f"bitcoin {address}: the signature is not 65 bytes with a BIP-137 header"
        header = raw[0] - 27
        key = recover(
            bitcoin_digest(message.encode()),
            int.from_bytes(raw[1:33], "big"),
            int.from_bytes(raw[33:], "big"),
            header & 3,
        )
        if key is None:
            return f"bitcoin {address}: no public key recovers from the signature"
        kind = header >> 2  # 0 P2PKH uncompressed, 1 P2PKH, 2 P2SH-P2WPKH, 3 P2WPKH
        h = hash160(sec1(key, kind != 0))
        if kind == 3:
            decoded = segwit_v0_decode(address)
            ok = decoded is not None and decoded[0] in ("bc", "tb", "bcrt") and decoded[1] == h
        elif kind == 2:
            body = base58check_decode(address)
            script = hash160(b"\x00\x14" + h)
            ok = body is not None and body[:1] in (b"\x05", b"\xc4") and body[1:] == script
        else:
            body = base58check_decode(address)
            ok = body is not None and body[:1] in (b"\x00", b"\x6f") and body[1:] == h
        return None if ok else f"bitcoin {address}: the signature is by another key"
    return f"{chain} {address}: unknown chain"


# ---------------------------------------------------------------- the command line


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[\[\]{}]")
MAX_NESTING = 32


def _too_deep(text: str) -> bool:
    """Whether brackets nest deeper than any proof does. Checked before parsing: a process whose
    recursion limit some library raised (py_ecc sets 100000) overflows the C stack in json."""
    depth = 0
    for ch in _BRACKET.findall(_STRING.sub("", text)):
        depth += 1 if ch in "[{" else -1
        if depth > MAX_NESTING:
            return True
    return False


def _load(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(1 << 24)
        if _too_deep(text):
            raise Unreadable(f"{path}: nested deeper than {MAX_NESTING}")
        return json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise Unreadable(f"{path}: {type(e).__name__}: {e}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a proof of reserves (stdlib only).")
    parser.add_argument("proof", help="your proof (JSON)")
    parser.add_argument("--root", help="the root hash the venue published (hex)")
    parser.add_argument("--published", help="the venue's published document (JSON)")
    parser.add_argument("--attestations", help="the wallets' signatures (JSON list)")
    args = parser.parse_args(argv)
    try:
        proof = read_proof(_load(args.proof))
        root = _hex32(args.root.removeprefix("0x"), "--root") if args.root else None
        published = read_published(_load(args.published)) if args.published else None
        problems, computed = check_proof(proof, root, published)
        attestations = None
        if args.attestations:
            attestations = _list(_load(args.attestations), "attestations")
            if not problems:
                expected = f"venue proof of reserves {proof['snapshot']} {computed.hex()}"
                for item in attestations:
                    problem = check_attestation(item, expected)
                    if problem:
                        problems.append(f"attestation: {problem}")
    except Unreadable as e:
        print(f"UNREADABLE: {e}")
        return 2
    if problems:
        print(f"NOT VERIFIED: account {proof['account']!r}, snapshot {proof['snapshot']}")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print(
        f"VERIFIED: account {proof['account']!r} is included in root {computed.hex()} "
        f"(snapshot {proof['snapshot']}, {proof['leaf_count']} accounts)"
    )
    for (name, _amount, text), (_, decimals) in zip(
        proof["balances"], proof["assets"], strict=True
    ):
        total = decimal_string(proof["totals"][name], decimals)
        print(f"  your {name}: {text} of the venue's total liabilities {total}")
    if attestations is not None:
        print(f"  {len(attestations)} wallet signature(s) of this root verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
