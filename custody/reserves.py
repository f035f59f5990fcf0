"""Proof of reserves: the venue's liabilities as a Merkle sum tree, its assets as signatures.

Liabilities. One leaf per account carrying the vector of that account's balances in every asset
(as Binance's and Kraken's proofs do): a customer checks one proof, not one per asset, and the
leaf count reveals the number of accounts only, never how many hold a given asset. Every node
carries the per-asset sums of its subtree; the root's sums are the published totals. Whoever
holds a proof recomputes their leaf, walks the path adding the siblings' sums, and checks that
every sum is a non-negative integer, so no subtree can hide a negative balance that would shrink
the totals.

Encodings (all integers big-endian, fixed width; ``||`` is concatenation):

* ``u8(x)``: 1 byte; ``u16(x)``: 2 bytes; ``u64(x)``: 8 bytes; ``u128(x)``: 16 bytes (every
  balance and sum is ``0 <= x < 2**128``).
* ``str(s)``: ``u16(len(utf8(s))) || utf8(s)``. An account id is its decimal or text form
  (``str(id)``); two ids with the same text are refused.
* ``sums(v)``: ``u128(v[0]) || ... || u128(v[k-1])`` in the published asset order (``k`` assets).
* ``salt = HMAC-SHA256(key=seed, msg="venue-por-salt-v1" || u64(snapshot) || str(account))``,
  32 bytes, given to the account with its proof; without it a leaf hash reveals nothing.
* ``context = u64(snapshot) || u16(k) || str(asset_1) || u8(decimals_1) || ... || str(asset_k) ||
  u8(decimals_k)``: it binds the root to its snapshot and asset list, so a proof cannot be passed
  off as another snapshot's or have its assets relabelled.
* ``leaf = SHA-256("venue-por-leaf-v1" || context || salt || str(account) || sums(balances))``.
* ``node = SHA-256("venue-por-node-v1" || left || sums(left) || right || sums(right))`` whose own
  sums are the element-wise sums of its children's.
* A level of odd length is padded at its end with one padding node: hash
  ``SHA-256("venue-por-pad-v1")``, sums all zero. Padding adds nothing to any sum and, since all
  sums are non-negative, cannot take anything away; every leaf sits at the same depth,
  ``(leaf_count - 1).bit_length()``.
* The root is the last level's single node (a lone leaf is its own root); its sums are the totals.

Leaves are ordered by salt, so a leaf's position says nothing about the account id's order. A
proof's path lists, from the leaf up, each sibling's hash and sums and whether the sibling is the
left or the right child, and the parent's hash the venue computed there (redundant with the
root; it lets a verifier say at which level a proof and the venue's tree part). The proof also
carries the leaf's hash (its JSON fields: ``ReservesTree.proof`` and the verifier's docstring).
``tools/verify_reserves.py`` re-implements the check with the standard library only.

Assets. ``asset_attestation`` has each of the venue's wallets sign the published challenge (see
``challenge``): Ethereum in EIP-191 ``personal_sign`` form, Bitcoin in BIP-137 "Bitcoin Signed
Message" form, through the same ``EcdsaSigner`` seam that signs transactions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from custody.signer import SECP256K1_N, EcdsaSigner

LEAF_TAG = b"venue-por-leaf-v1"
NODE_TAG = b"venue-por-node-v1"
PAD_TAG = b"venue-por-pad-v1"
SALT_TAG = b"venue-por-salt-v1"
PAD_HASH = hashlib.sha256(PAD_TAG).digest()
MAX_AMOUNT = 1 << 128
VERSION = 1


def _str(s: str) -> bytes:
    raw = s.encode()
    if len(raw) > 0xFFFF:
        raise ValueError("an account id is at most 65535 bytes")
    return len(raw).to_bytes(2, "big") + raw


def _sums(values: Iterable[int]) -> bytes:
    return b"".join(v.to_bytes(16, "big") for v in values)


def salt_of(seed: bytes, snapshot: int, account: str) -> bytes:
    """The account's salt: secret to everyone but the venue and that account."""
    msg = SALT_TAG + snapshot.to_bytes(8, "big") + _str(account)
    return hmac.new(seed, msg, hashlib.sha256).digest()


def context(snapshot: int, assets: Sequence[tuple[str, int]]) -> bytes:
    """What every leaf commits to besides its account: the snapshot and the asset list."""
    out = snapshot.to_bytes(8, "big") + len(assets).to_bytes(2, "big")
    return out + b"".join(_str(a) + d.to_bytes(1, "big") for a, d in assets)


def leaf_hash(ctx: bytes, salt: bytes, account: str, balances: Sequence[int]) -> bytes:
    """The leaf of one account's balances (the published asset order)."""
    return hashlib.sha256(LEAF_TAG + ctx + salt + _str(account) + _sums(balances)).digest()


def decimal_string(amount: int, decimals: int) -> str:
    """``amount`` minor units as a decimal string (``12345, 2 -> "123.45"``)."""
    if decimals == 0:
        return str(amount)
    whole, frac = divmod(amount, 10**decimals)
    return f"{whole}.{frac:0{decimals}d}"


def challenge(snapshot: int, root_hash: bytes) -> bytes:
    """The message each wallet signs: binds the signature to one published snapshot and root."""
    return f"venue proof of reserves {snapshot} {root_hash.hex()}".encode()


@dataclass
class ReservesTree:
    """The built tree: per level one buffer of fixed-width records ``hash || sums``."""

    snapshot: int
    assets: tuple[tuple[str, int], ...]
    leaf_count: int
    _levels: list[bytes] = field(repr=False)
    _salts: bytes = field(repr=False)  # sorted, 32 bytes each: leaf i has salt _salts[32i:32i+32]
    _seed: bytes = field(repr=False)

    @property
    def _width(self) -> int:
        return 32 + 16 * len(self.assets)

    def _record(self, level: int, index: int) -> tuple[bytes, list[int]]:
        buf, w = self._levels[level], self._width
        rec = buf[index * w : (index + 1) * w]
        sums = [
            int.from_bytes(rec[32 + 16 * a : 48 + 16 * a], "big") for a in range(len(self.assets))
        ]
        return rec[:32], sums

    @property
    def root_hash(self) -> bytes:
        return self._levels[-1][:32]

    @property
    def totals(self) -> dict[str, int]:
        _, sums = self._record(len(self._levels) - 1, 0)
        return {name: s for (name, _), s in zip(self.assets, sums, strict=True)}

    def _index(self, salt: bytes) -> int:
        lo, hi = 0, self.leaf_count
        while lo < hi:
            mid = (lo + hi) // 2
            if self._salts[32 * mid : 32 * mid + 32] < salt:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def proof(self, account: str | int) -> dict[str, Any]:
        """The account's inclusion proof, ready for ``json.dumps``; ``KeyError`` if unknown."""
        name = str(account)
        salt = salt_of(self._seed, self.snapshot, name)
        index = self._index(salt)
        if index >= self.leaf_count or self._salts[32 * index : 32 * index + 32] != salt:
            raise KeyError(name)
        leaf, balances = self._record(0, index)
        if leaf_hash(context(self.snapshot, self.assets), salt, name, balances) != leaf:
            raise KeyError(name)
        path = []
        for level in range(len(self._levels) - 1):
            sibling = index ^ 1
            h, sums = self._record(level, sibling)
            index //= 2
            parent, _ = self._record(level + 1, index)
            side = "left" if sibling % 2 == 0 else "right"
            path.append({"side": side, "hash": h.hex(), "sums": sums, "parent": parent.hex()})
        return {
            "version": VERSION,
            "snapshot": self.snapshot,
            "account": name,
            "salt": salt.hex(),
            "leaf": leaf.hex(),
            "assets": [{"asset": a, "decimals": d} for a, d in self.assets],
            "balances": [
                {"asset": a, "amount": b, "decimal": decimal_string(b, d)}
                for (a, d), b in zip(self.assets, balances, strict=True)
            ],
            "path": path,
            "leaf_count": self.leaf_count,
            "root": self.root_hash.hex(),
            "totals": self.totals,
        }

    def published(self) -> dict[str, Any]:
        """What the venue publishes: no per-account data."""
        totals = self.totals
        return {
            "version": VERSION,
            "snapshot": self.snapshot,
            "root": self.root_hash.hex(),
            "assets": [{"asset": a, "decimals": d} for a, d in self.assets],
            "totals": totals,
            "totals_decimal": {a: decimal_string(totals[a], d) for a, d in self.assets},
            "leaf_count": self.leaf_count,
        }


def _check_assets(assets: Sequence[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    out = tuple((str(a), d) for a, d in assets)
    if not out or len({a for a, _ in out}) != len(out) or len(out) > 0xFFFF:
        raise ValueError("assets must be 1..65535 distinct names")
    for a, d in out:
        if type(d) is not int or not 0 <= d <= 36 or not a:
            raise ValueError(f"asset {a!r}: decimals must be an int in 0..36")
    return out


def _pad_record(k: int) -> bytes:
    return PAD_HASH + bytes(16 * k)


def _parents(buf: bytes, k: int) -> bytes:
    """The next level up (``buf`` has an even count): each pair of records ``hash || sums``
    hashed as the node encoding says. The sums add as one big integer per vector: ``build``
    checked that every total is below 2**128, so no lane carries into its neighbour."""
    w = 32 + 16 * k
    out = bytearray()
    sha = hashlib.sha256
    frm = int.from_bytes
    vector = 16 * k
    for i in range(0, len(buf), 2 * w):
        pair = buf[i : i + 2 * w]
        out += sha(NODE_TAG + pair).digest()
        out += (frm(pair[32:w], "big") + frm(pair[w + 32 :], "big")).to_bytes(vector, "big")
    return bytes(out)


def build(
    balances: Mapping[str, Mapping[str, int]] | Mapping[int, Mapping[str, int]],
    assets: Sequence[tuple[str, int]],
    snapshot: int,
    seed: bytes,
) -> ReservesTree:
    """The sum tree of every account's liabilities at ``snapshot`` (e.g. a journal sequence).

    ``balances``: account id -> {asset: minor units >= 0}; assets missing from an account are
    zero. ``assets``: ``(name, decimals)`` in the order of every vector. ``seed``: the secret the
    salts derive from (at least 16 bytes; keep it to answer later proof requests).
    """
    if type(snapshot) is not int or not 0 <= snapshot < 1 << 64:
        raise ValueError("snapshot must be an int in 0..2**64-1")
    if len(seed) < 16:
        raise ValueError("seed must be at least 16 bytes")
    order = _check_assets(assets)
    names = [a for a, _ in order]
    position = {a: i for i, a in enumerate(names)}
    k = len(order)
    if not balances:
        raise ValueError("no accounts")
    if k > 0xFFFF:
        raise ValueError("at most 65535 assets")
    leaves: list[bytes] = []  # salt || leaf hash || sums: sorting them sorts by salt
    totals = [0] * k
    sha256 = hashlib.sha256
    # HMAC-SHA256 by hand (RFC 2104) with the keyed states computed once: a third of the cost
    # of hmac.digest per account; salt_of is the reference the proofs look salts up with.
    key = (sha256(seed).digest() if len(seed) > 64 else seed).ljust(64, b"\0")
    inner_start = sha256(bytes(b ^ 0x36 for b in key))
    outer_start = sha256(bytes(b ^ 0x5C for b in key))
    salt_prefix = SALT_TAG + snapshot.to_bytes(8, "big")
    leaf_prefix = LEAF_TAG + context(snapshot, order)
    for account, held in balances.items():
        name = _str(str(account))
        vector = [0] * k
        for asset, amount in held.items():
            if asset not in position:
                raise ValueError(f"account {account!r}: unknown asset {asset!r}")
            if type(amount) is not int or not 0 <= amount < MAX_AMOUNT:
                raise ValueError(f"account {account!r}: {asset} must be an int in 0..2**128-1")
            vector[position[asset]] = amount
            totals[position[asset]] += amount
        inner = inner_start.copy()
        inner.update(salt_prefix + name)
        outer = outer_start.copy()
        outer.update(inner.digest())
        salt = outer.digest()
        sums = b"".join([v.to_bytes(16, "big") for v in vector])
        leaves.append(salt + sha256(leaf_prefix + salt + name + sums).digest() + sums)
    if any(t >= MAX_AMOUNT for t in totals):
        raise ValueError("a total reaches 2**128")
    leaves.sort()
    width = 32 + 16 * k
    count = len(leaves)
    salt_buf, level_buf = bytearray(32 * count), bytearray(width * count)
    for i in range(count - 1, -1, -1):  # popped from the end: each leaf is freed once copied
        leaf = leaves.pop()
        salt_buf[32 * i : 32 * i + 32] = leaf[:32]
        level_buf[width * i : width * i + width] = leaf[32:]
    salts, level = bytes(salt_buf), bytes(level_buf)
    del salt_buf, level_buf
    for i in range(1, count):
        if salts[32 * i : 32 * i + 32] == salts[32 * i - 32 : 32 * i]:  # the same id text twice
            raise ValueError("an account id is given twice (the same text)")
    levels = []
    while len(level) > width:
        if (len(level) // width) % 2:
            level += _pad_record(k)  # kept, so a proof names the padding sibling
        levels.append(level)
        level = _parents(level, k)
    levels.append(level)
    return ReservesTree(int(snapshot), order, count, levels, salts, bytes(seed))


def _eth_address(public_key: bytes) -> str:
    from custody.ecdsa import eth_address

    return eth_address(public_key)


def _recovery_id(digest: bytes, r: int, s: int, public_key: bytes) -> int:
    """The recovery id (0 or 1) under which ``(r, s)`` recovers ``public_key``."""
    from eth_keys.datatypes import Signature

    for recid in (0, 1):
        try:
            sig = Signature(vrs=(recid, r, s))
            found = sig.recover_public_key_from_msg_hash(digest)
        except Exception:  # an unrecoverable candidate is simply not the one
            continue
        if found.to_compressed_bytes() == public_key:
            return recid
    raise ValueError("the signature does not recover the signer's public key")


def _hash160(data: bytes) -> bytes:
    return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()


def _varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    return b"\xfe" + n.to_bytes(4, "little")


def bitcoin_message_digest(message: bytes) -> bytes:
    """BIP-137's digest: double SHA-256 of the magic prefix and the message, length-prefixed."""
    magic = b"Bitcoin Signed Message:\n"
    data = _varint(len(magic)) + magic + _varint(len(message)) + message
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def ethereum_message_digest(message: bytes) -> bytes:
    """EIP-191 ``personal_sign``: keccak of ``"\\x19Ethereum Signed Message:\\n" + len + msg``."""
    from eth_account.messages import _hash_eip191_message, encode_defunct

    return bytes(_hash_eip191_message(encode_defunct(primitive=message)))


def _bitcoin_address_kind(address: str, public_key: bytes) -> int:
    """BIP-137's header base: 31 for P2PKH (compressed), 39 for P2WPKH; checks the address."""
    import bitcoinlib.encoding as btc  # type: ignore[import-untyped]

    h160 = _hash160(public_key)
    if address.lower().startswith(("bc1", "tb1", "bcrt1")):
        if bytes(btc.addr_bech32_to_pubkeyhash(address)) != h160:
            raise ValueError(f"{address}: not the signer's P2WPKH address")
        return 39
    if bytes(btc.addr_base58_to_pubkeyhash(address)) != h160:
        raise ValueError(f"{address}: not the signer's P2PKH address")
    return 31


def asset_attestation(
    challenge: bytes, wallets: Sequence[tuple[str, str, EcdsaSigner]]
) -> list[dict[str, str]]:
    """Each wallet's signature of ``challenge``: proves the venue controls these addresses.

    ``wallets``: ``(chain, address, signer)`` with chain ``"ethereum"`` or ``"bitcoin"``; the
    address must be the signer's (Bitcoin: P2PKH or P2WPKH). Ethereum signatures are hex
    ``r || s || v`` (v = 27 + recovery id); Bitcoin ones base64 of ``header || r || s``.
    """
    out = []
    for chain, address, signer in wallets:
        public_key = signer.public_key()
        if chain == "ethereum":
            if _eth_address(public_key).lower() != address.lower():
                raise ValueError(f"{address}: not the signer's Ethereum address")
            digest = ethereum_message_digest(challenge)
            r, s = signer.sign_digest(digest)
            _check_low_s(s)
            v = 27 + _recovery_id(digest, r, s, public_key)
            raw = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])
            signature = "0x" + raw.hex()
        elif chain == "bitcoin":
            base = _bitcoin_address_kind(address, public_key)
            digest = bitcoin_message_digest(challenge)
            r, s = signer.sign_digest(digest)
            _check_low_s(s)
            header = base + _recovery_id(digest, r, s, public_key)
            raw = bytes([header]) + r.to_bytes(32, "big") + s.to_bytes(32, "big")
            signature = base64.b64encode(raw).decode()
        else:
            raise ValueError(f"unknown chain {chain!r}")
        out.append(
            {
                "chain": chain,
                "address": address,
                "message": challenge.decode("utf-8", "replace"),
                "signature": signature,
            }
        )
    return out


def _check_low_s(s: int) -> None:
    if not 0 < s <= SECP256K1_N // 2:
        raise ValueError("the signer returned a high or zero s")
