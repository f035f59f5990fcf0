"""Bitcoin wire formats for the test chain: transactions parsed strictly, blocks serialised.

Every read is bounded by the bytes left, so a hostile raw transaction cannot make it loop or
allocate much; errors are ``DecodeError``.
"""

from __future__ import annotations

from dataclasses import dataclass

from custody.chains.btc_tx import dsha256, varint, varstr, vsize_of
from custody.signer import SECP256K1_N

MAX_TX_SIZE = 400_000
NULL_TXID = "00" * 32


class DecodeError(ValueError):
    """The bytes are not a transaction this chain accepts."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise DecodeError("truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "little")

    def varint(self) -> int:
        first = self.uint(1)
        size = {0xFD: 2, 0xFE: 4, 0xFF: 8}.get(first)
        return first if size is None else self.uint(size)

    def count(self, min_item: int) -> int:
        """A count of items of at least ``min_item`` bytes each: no more than the bytes left."""
        n = self.varint()
        if n * min_item > len(self.data) - self.pos:
            raise DecodeError("count larger than the data")
        return n

    def varstr(self) -> bytes:
        return self.take(self.count(1))


@dataclass(frozen=True)
class TxIn:
    prev_txid: str
    vout: int
    script_sig: bytes
    sequence: int
    witness: tuple[bytes, ...]


@dataclass(frozen=True)
class TxOut:
    value: int
    script: bytes


@dataclass(frozen=True)
class Tx:
    version: int
    inputs: tuple[TxIn, ...]
    outputs: tuple[TxOut, ...]
    locktime: int
    raw: bytes
    txid: str
    wtxid: str
    vsize: int
    weight: int

    @property
    def is_coinbase(self) -> bool:
        return len(self.inputs) == 1 and self.inputs[0].prev_txid == NULL_TXID


def _legacy(version: int, ins: bytes, outs: bytes, locktime: int) -> bytes:
    return version.to_bytes(4, "little") + ins + outs + locktime.to_bytes(4, "little")


def parse_tx(raw: bytes) -> Tx:
    """A transaction from its serialisation (with or without witnesses), all bytes consumed."""
    if not 60 <= len(raw) <= MAX_TX_SIZE:
        raise DecodeError("size out of range")
    r = _Reader(raw)
    version = r.uint(4)
    segwit = raw[4:6] == b"\x00\x01"
    if segwit:
        r.take(2)
    start_in = r.pos
    n_in = r.count(41)
    if n_in == 0:
        raise DecodeError("no inputs")
    raw_ins = []
    for _ in range(n_in):
        prev = r.take(32)[::-1].hex()
        vout = r.uint(4)
        raw_ins.append((prev, vout, r.varstr(), r.uint(4)))
    ins_bytes = raw[start_in : r.pos]
    start_out = r.pos
    n_out = r.count(9)
    if n_out == 0:
        raise DecodeError("no outputs")
    outputs = tuple(TxOut(r.uint(8), r.varstr()) for _ in range(n_out))
    outs_bytes = raw[start_out : r.pos]
    witnesses: list[tuple[bytes, ...]] = [()] * n_in
    if segwit:
        witnesses = [tuple(r.varstr() for _ in range(r.count(1))) for _ in range(n_in)]
        if not any(witnesses):
            raise DecodeError("segwit marker without witnesses")
    locktime = r.uint(4)
    if r.pos != len(raw):
        raise DecodeError("trailing bytes")
    legacy = _legacy(version, ins_bytes, outs_bytes, locktime)
    inputs = tuple(TxIn(p, v, s, q, w) for (p, v, s, q), w in zip(raw_ins, witnesses, strict=True))
    txid = dsha256(legacy)[::-1].hex()
    wtxid = dsha256(raw)[::-1].hex() if segwit else txid
    weight = 3 * len(legacy) + len(raw)
    return Tx(version, inputs, outputs, locktime, raw, txid, wtxid, vsize_of(raw, legacy), weight)


def coinbase_raw(height: int, script_pubkey: bytes, value: int, tag: bytes = b"") -> bytes:
    """A coinbase paying ``value`` to ``script_pubkey``; its scriptSig starts with the height
    (BIP 34), so no two coinbases share a txid. No witness commitment: this chain needs none."""
    h = height.to_bytes((height.bit_length() + 8) // 8, "little")
    script_sig = varstr(h) + tag[:60]
    if len(script_sig) < 2:
        script_sig += b"\x00"
    tx_in = bytes(32) + b"\xff" * 4 + varstr(script_sig) + b"\xff" * 4
    tx_out = value.to_bytes(8, "little") + varstr(script_pubkey)
    return _legacy(2, varint(1) + tx_in, varint(1) + tx_out, 0)


def merkle_root(txids: list[str]) -> bytes:
    """Bitcoin's merkle root (internal byte order) of txids given as displayed (reversed hex)."""
    level = [bytes.fromhex(t)[::-1] for t in txids]
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [dsha256(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def block_header(version: int, prev: str, merkle: bytes, time: int, bits: int, nonce: int) -> bytes:
    return (
        version.to_bytes(4, "little")
        + bytes.fromhex(prev)[::-1]
        + merkle
        + time.to_bytes(4, "little")
        + bits.to_bytes(4, "little")
        + nonce.to_bytes(4, "little")
    )


def is_strict_low_s_der(sig: bytes) -> bool:
    """BIP 66 strict DER, low s (BIP 146), hash type SIGHASH_ALL: what this chain relays."""
    if not 9 <= len(sig) <= 73 or sig[0] != 0x30 or sig[1] != len(sig) - 3 or sig[-1] != 1:
        return False
    body = sig[2:-1]
    values = []
    pos = 0
    for _ in range(2):
        if pos + 2 > len(body) or body[pos] != 0x02:
            return False
        n = body[pos + 1]
        v = body[pos + 2 : pos + 2 + n]
        if n == 0 or len(v) != n or v[0] & 0x80 or (n > 1 and v[0] == 0 and not v[1] & 0x80):
            return False
        values.append(int.from_bytes(v, "big"))
        pos += 2 + n
    r, s = values
    return pos == len(body) and 0 < r < SECP256K1_N and 0 < s <= SECP256K1_N // 2
