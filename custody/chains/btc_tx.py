"""Native segwit transactions (P2WPKH, 2-of-3 P2WSH) built and signed without private keys.

Built by hand rather than with bitcoinlib's ``Transaction``: the format is small, every amount stays
an integer, and the venue's signing path then never imports bitcoinlib (which writes a data folder
at import). The test chain checks these transactions with bitcoinlib, an independent implementation.
Signatures come from an ``EcdsaSigner`` (the HSM in the venue): this module sees digests only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from custody.ecdsa import der_encode, low_s
from custody.signer import EcdsaSigner

Network = Literal["bitcoin", "testnet", "regtest"]
HRP: Mapping[str, str] = {"bitcoin": "bc", "testnet": "tb", "regtest": "bcrt"}

SIGHASH_ALL = 1
TX_VERSION = 2
#: Opts in to replace-by-fee (BIP 125) so a stuck withdrawal can be bumped.
SEQUENCE_RBF = 0xFFFFFFFD
#: Below these an output is dust for Bitcoin Core's relay policy (3 sat/vB dust feerate).
DUST_P2WPKH = 294
DUST_P2WSH = 330
MAX_MONEY = 21_000_000 * 100_000_000
#: A low-s DER signature with its sighash byte is at most this long: fees are estimated with it.
MAX_SIG_LEN = 72


class BtcTxError(ValueError):
    """The transaction cannot be built as asked (bad address, dust, not enough funds)."""


class InsufficientFunds(BtcTxError):
    """The inputs do not cover the outputs and the fee."""


# --- hashing and encoding -----------------------------------------------------------------------


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def dsha256(data: bytes) -> bytes:
    return sha256(sha256(data))


def hash160(data: bytes) -> bytes:
    """RIPEMD-160 of SHA-256 (needs an OpenSSL that still offers ripemd160)."""
    return hashlib.new("ripemd160", sha256(data)).digest()


def varint(n: int) -> bytes:
    if n < 0xFD:
        return n.to_bytes(1, "little")
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    if n <= 0xFFFFFFFF:
        return b"\xfe" + n.to_bytes(4, "little")
    return b"\xff" + n.to_bytes(8, "little")


def varstr(data: bytes) -> bytes:
    return varint(len(data)) + data


_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: Sequence[int]) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= _GEN[i] if (top >> i) & 1 else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convertbits(data: Sequence[int], frombits: int, tobits: int, pad: bool) -> list[int] | None:
    acc = bits = 0
    out: list[int] = []
    maxv = (1 << tobits) - 1
    for value in data:
        if value < 0 or value >> frombits:
            return None
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits or ((acc << (tobits - bits)) & maxv):
        return None
    return out


def encode_segwit_address(network: str, version: int, program: bytes) -> str:
    """BIP 173 (bech32) for witness version 0; later versions (bech32m) are not used here."""
    if version != 0 or len(program) not in (20, 32):
        raise BtcTxError("only witness v0 programs of 20 or 32 bytes")
    hrp = HRP[network]
    data = [version] + (_convertbits(program, 8, 5, True) or [])
    polymod = _polymod(_hrp_expand(hrp) + data + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[d] for d in data + checksum)


def decode_segwit_address(network: str, address: str) -> tuple[int, bytes]:
    """(witness version, program) of a v0 bech32 address of ``network``; BtcTxError otherwise."""
    if not isinstance(address, str) or len(address) > 90 or address.lower() != address:
        raise BtcTxError("not a lower-case bech32 address")
    hrp, sep, rest = address.rpartition("1")
    if not sep or hrp != HRP.get(network) or len(rest) < 7:
        raise BtcTxError(f"not an address of {network}")
    if any(c not in _CHARSET for c in rest):
        raise BtcTxError("bad bech32 character")
    data = [_CHARSET.index(c) for c in rest]
    if _polymod(_hrp_expand(hrp) + data) != 1:
        raise BtcTxError("bad bech32 checksum")
    version, program5 = data[0], data[1:-6]
    program = _convertbits(program5, 5, 8, False)
    if version != 0 or program is None or len(program) not in (20, 32):
        raise BtcTxError("only witness v0 addresses of 20 or 32 bytes")
    return version, bytes(program)


def script_for_address(network: str, address: str) -> bytes:
    """The scriptPubKey paying ``address`` (P2WPKH or P2WSH)."""
    version, program = decode_segwit_address(network, address)
    return bytes([version, len(program)]) + program


def address_for_script(network: str, script: bytes) -> str | None:
    """The address of a v0 witness scriptPubKey, None for any other script."""
    if len(script) in (22, 34) and script[0] == 0 and script[1] == len(script) - 2:
        return encode_segwit_address(network, 0, script[2:])
    return None


def p2wpkh_script(pubkey: bytes) -> bytes:
    return b"\x00\x14" + hash160(_compressed(pubkey))


def p2wpkh_address(pubkey: bytes, network: str) -> str:
    """The native segwit address of a compressed public key."""
    return encode_segwit_address(network, 0, hash160(_compressed(pubkey)))


def multisig_script(pubkeys: Sequence[bytes], required: int) -> bytes:
    """``required``-of-n CHECKMULTISIG over the keys sorted as BIP 67 says."""
    keys = sorted(_compressed(k) for k in pubkeys)
    if not 1 <= required <= len(keys) <= 15 or len(set(keys)) != len(keys):
        raise BtcTxError("multisig needs 1 <= m <= n <= 15 distinct keys")
    body = b"".join(varstr(k) for k in keys)
    return bytes([0x50 + required]) + body + bytes([0x50 + len(keys), 0xAE])


def p2wsh_address(witness_script: bytes, network: str) -> str:
    return encode_segwit_address(network, 0, sha256(witness_script))


def _compressed(pubkey: bytes) -> bytes:
    if len(pubkey) != 33 or pubkey[0] not in (2, 3):
        raise BtcTxError("public keys must be SEC1 compressed (33 bytes)")
    return bytes(pubkey)


def der_signature(r: int, s: int) -> bytes:
    """Strict DER with s made low (BIP 62/146: ``custody.ecdsa``), followed by SIGHASH_ALL."""
    try:
        return der_encode(*low_s(r, s)) + bytes([SIGHASH_ALL])
    except ValueError:
        raise BtcTxError("signature out of range") from None


# --- the transaction ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Utxo:
    """An output paying a P2WPKH address of ``pubkey``; ``amount`` in satoshis."""

    txid: str
    vout: int
    amount: int
    pubkey: bytes


@dataclass(frozen=True)
class MultisigUtxo:
    """An output paying the P2WSH address of ``witness_script`` (see ``multisig_script``)."""

    txid: str
    vout: int
    amount: int
    witness_script: bytes


@dataclass(frozen=True)
class TxOutput:
    address: str
    amount: int


@dataclass(frozen=True)
class SignedTx:
    raw: bytes
    txid: str
    vsize: int
    fee: int
    #: Index of the change output, None when the change was dust and went to the fee.
    change_index: int | None

    @property
    def hex(self) -> str:
        return self.raw.hex()


AnyUtxo = Utxo | MultisigUtxo


def _outpoint(u: AnyUtxo) -> bytes:
    txid = bytes.fromhex(u.txid)
    if len(txid) != 32 or not 0 <= u.vout <= 0xFFFFFFFF:
        raise BtcTxError("bad outpoint")
    return txid[::-1] + u.vout.to_bytes(4, "little")


def _script_code(u: AnyUtxo) -> bytes:
    if isinstance(u, Utxo):
        return b"\x76\xa9\x14" + hash160(_compressed(u.pubkey)) + b"\x88\xac"
    return u.witness_script


def _serialize(
    inputs: Sequence[AnyUtxo],
    outputs: Sequence[tuple[bytes, int]],
    witnesses: Sequence[Sequence[bytes]] | None,
) -> bytes:
    """Segwit serialisation (BIP 144); without ``witnesses``, the legacy form the txid hashes."""
    ins = b"".join(_outpoint(u) + b"\x00" + SEQUENCE_RBF.to_bytes(4, "little") for u in inputs)
    outs = b"".join(amount.to_bytes(8, "little") + varstr(spk) for spk, amount in outputs)
    body = varint(len(inputs)) + ins + varint(len(outputs)) + outs
    version, locktime = TX_VERSION.to_bytes(4, "little"), (0).to_bytes(4, "little")
    if witnesses is None:
        return version + body + locktime
    wit = b"".join(varint(len(w)) + b"".join(varstr(item) for item in w) for w in witnesses)
    return version + b"\x00\x01" + body + wit + locktime


def bip143_sighash(
    inputs: Sequence[AnyUtxo], outputs: Sequence[tuple[bytes, int]], index: int
) -> bytes:
    """The digest input ``index`` signs (BIP 143, SIGHASH_ALL)."""
    seq = SEQUENCE_RBF.to_bytes(4, "little")
    hash_prevouts = dsha256(b"".join(_outpoint(u) for u in inputs))
    hash_sequence = dsha256(seq * len(inputs))
    hash_outputs = dsha256(b"".join(a.to_bytes(8, "little") + varstr(s) for s, a in outputs))
    u = inputs[index]
    preimage = (
        TX_VERSION.to_bytes(4, "little")
        + hash_prevouts
        + hash_sequence
        + _outpoint(u)
        + varstr(_script_code(u))
        + u.amount.to_bytes(8, "little")
        + seq
        + hash_outputs
        + (0).to_bytes(4, "little")
        + SIGHASH_ALL.to_bytes(4, "little")
    )
    return dsha256(preimage)


def _multisig_keys(witness_script: bytes) -> tuple[int, list[bytes]]:
    """(m, keys in script order) of a script made by ``multisig_script``."""
    m, n = witness_script[0] - 0x50, witness_script[-2] - 0x50
    keys = [witness_script[1 + 34 * i + 1 : 1 + 34 * (i + 1)] for i in range(n)]
    if multisig_script(keys, m) != witness_script:
        raise BtcTxError("witness script is not a sorted m-of-n multisig")
    return m, keys


def _placeholder_witness(u: AnyUtxo) -> list[bytes]:
    if isinstance(u, Utxo):
        return [b"\x00" * MAX_SIG_LEN, u.pubkey]
    m, _ = _multisig_keys(u.witness_script)
    return [b""] + [b"\x00" * MAX_SIG_LEN] * m + [u.witness_script]


def vsize_of(raw_segwit: bytes, raw_legacy: bytes) -> int:
    """Virtual size: weight (3 x base + total) over 4, rounded up."""
    return (3 * len(raw_legacy) + len(raw_segwit) + 3) // 4


def _vsize(
    inputs: Sequence[AnyUtxo],
    outputs: Sequence[tuple[bytes, int]],
    witnesses: Sequence[Sequence[bytes]],
) -> int:
    return vsize_of(_serialize(inputs, outputs, witnesses), _serialize(inputs, outputs, None))


def _signature(signer: EcdsaSigner, digest: bytes) -> bytes:
    r, s = signer.sign_digest(digest)
    return der_signature(r, s)


def _witness(u: AnyUtxo, digest: bytes, signers: Mapping[bytes, EcdsaSigner]) -> list[bytes]:
    if isinstance(u, Utxo):
        signer = signers.get(u.pubkey)
        if signer is None:
            raise BtcTxError(f"no signer for input {u.txid}:{u.vout}")
        return [_signature(signer, digest), u.pubkey]
    m, keys = _multisig_keys(u.witness_script)
    present = [k for k in keys if k in signers][:m]
    if len(present) < m:
        raise BtcTxError(f"multisig input {u.txid}:{u.vout} needs {m} signers")
    # CHECKMULTISIG wants the signatures in the order of their keys in the script.
    return [b""] + [_signature(signers[k], digest) for k in present] + [u.witness_script]


def build_transaction(
    utxos: Sequence[AnyUtxo],
    outputs: Sequence[TxOutput],
    change_address: str,
    feerate_sat_per_kvb: int,
    signers: Sequence[EcdsaSigner],
    network: Network,
) -> SignedTx:
    """Spend all of ``utxos`` to ``outputs``, the rest less the fee to ``change_address``.

    The fee is ``feerate x vsize`` of the transaction with the longest signatures (72 bytes), so
    the signed transaction's feerate is at least the one asked. Change below dust goes to the fee.
    Coin selection is the caller's job.
    """
    if not utxos or not outputs:
        raise BtcTxError("need at least one input and one output")
    if feerate_sat_per_kvb < 0:
        raise BtcTxError("negative feerate")
    pays: list[tuple[bytes, int]] = []
    for o in outputs:
        spk = script_for_address(network, o.address)
        dust = DUST_P2WPKH if len(spk) == 22 else DUST_P2WSH
        if not dust <= o.amount <= MAX_MONEY:
            raise BtcTxError(f"output of {o.amount} sat is dust or too large")
        pays.append((spk, o.amount))
    change_spk = script_for_address(network, change_address)
    total_in = sum(u.amount for u in utxos)
    total_out = sum(a for _, a in pays)
    placeholders = [_placeholder_witness(u) for u in utxos]

    def fee_for(outs: Sequence[tuple[bytes, int]]) -> int:
        return -(-_vsize(utxos, outs, placeholders) * feerate_sat_per_kvb // 1000)

    fee = fee_for([*pays, (change_spk, 0)])
    change = total_in - total_out - fee
    change_index: int | None = len(pays)
    final = [*pays, (change_spk, change)]
    if change < (DUST_P2WPKH if len(change_spk) == 22 else DUST_P2WSH):
        fee, change_index, final = total_in - total_out, None, pays
        if fee < fee_for(pays):
            raise InsufficientFunds(f"inputs {total_in} < outputs {total_out} + fee")
    by_key = {s.public_key(): s for s in signers}
    witnesses = [_witness(u, bip143_sighash(utxos, final, i), by_key) for i, u in enumerate(utxos)]
    raw = _serialize(utxos, final, witnesses)
    txid = dsha256(_serialize(utxos, final, None))[::-1].hex()
    return SignedTx(raw, txid, _vsize(utxos, final, witnesses), fee, change_index)
