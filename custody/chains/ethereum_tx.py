"""Ethereum transactions built, signed through an ``EcdsaSigner`` and encoded.

The builder never holds a private key: it computes the digest the chain signs (eth-account's
serialisable unsigned transaction's ``hash()``), asks the signer for (r, s), and finds the
recovery id by recovering both candidate public keys and keeping the one equal to the signer's
(a PKCS#11 token returns no recovery id). Amounts, gas and fees are integers (wei, gas units).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import rlp  # type: ignore[import-untyped]
from eth_abi.abi import encode as abi_encode
from eth_account._utils.legacy_transactions import (
    encode_transaction,
    serializable_unsigned_transaction_from_dict,
)
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_keys.datatypes import PublicKey, Signature
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from custody.chains import restore_recursion_limit
from custody.signer import SECP256K1_N, EcdsaSigner

restore_recursion_limit()  # see custody.chains: py_ecc raised it on import


@dataclass(frozen=True)
class Fees:
    """EIP-1559 fees in wei: the cap a transaction pays per gas and the tip inside it."""

    max_fee_per_gas: int
    max_priority_fee_per_gas: int


@dataclass(frozen=True)
class SignedTransaction:
    """What to keep (before broadcasting) and broadcast: the exact bytes and their hash."""

    raw: bytes
    tx_hash: bytes
    sender: str
    nonce: int


def address_of(public_key: bytes) -> str:
    """The checksummed address of a SEC1 public key (compressed or not)."""
    return str(_public_key(public_key).to_checksum_address())


def _public_key(public_key: bytes) -> PublicKey:
    if len(public_key) == 33:
        return PublicKey.from_compressed_bytes(public_key)
    if len(public_key) == 65 and public_key[0] == 4:
        return PublicKey(public_key[1:])
    raise ValueError("public key must be SEC1, 33 or 65 bytes")


def eip1559_transaction(
    *,
    chain_id: int,
    nonce: int,
    to: str | None,
    value: int,
    gas: int,
    fees: Fees,
    data: bytes = b"",
) -> dict[str, Any]:
    """A type-2 transaction dict (``to`` None creates a contract)."""
    if min(chain_id, nonce, value, gas, fees.max_fee_per_gas, fees.max_priority_fee_per_gas) < 0:
        raise ValueError("negative field")
    if fees.max_priority_fee_per_gas > fees.max_fee_per_gas:
        raise ValueError("priority fee above the fee cap")
    tx: dict[str, Any] = {
        "type": 2,
        "chainId": chain_id,
        "nonce": nonce,
        "value": value,
        "gas": gas,
        "maxFeePerGas": fees.max_fee_per_gas,
        "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
        "data": data,
        "accessList": [],
    }
    if to is not None:
        tx["to"] = to_checksum_address(to)
    return tx


def legacy_transaction(
    *,
    chain_id: int,
    nonce: int,
    to: str | None,
    value: int,
    gas: int,
    gas_price: int,
    data: bytes = b"",
) -> dict[str, Any]:
    """A legacy (EIP-155, chain-bound) transaction dict, for chains without EIP-1559."""
    if min(chain_id, nonce, value, gas, gas_price) < 0:
        raise ValueError("negative field")
    tx: dict[str, Any] = {
        "chainId": chain_id,
        "nonce": nonce,
        "value": value,
        "gas": gas,
        "gasPrice": gas_price,
        "data": data,
    }
    if to is not None:
        tx["to"] = to_checksum_address(to)
    return tx


def sign_digest_recoverable(signer: EcdsaSigner, digest: bytes) -> tuple[int, int, int]:
    """(recovery id, r, s) of ``digest`` from a signer that gives only (r, s); s made low."""
    if len(digest) != 32:
        raise ValueError("digest must be 32 bytes")
    r, s = signer.sign_digest(digest)
    if not (0 < r < SECP256K1_N and 0 < s < SECP256K1_N):
        raise ValueError("signer returned an out-of-range signature")
    if s > SECP256K1_N // 2:
        s = SECP256K1_N - s
    expected = _public_key(signer.public_key())
    for recovery_id in (0, 1):
        candidate = Signature(vrs=(recovery_id, r, s))
        try:
            if candidate.recover_public_key_from_msg_hash(digest) == expected:
                return recovery_id, r, s
        except Exception:  # an (r, recovery id) pair with no point on the curve
            continue
    raise ValueError("signature does not verify under the signer's public key")


def sign_transaction(tx: dict[str, Any], signer: EcdsaSigner) -> SignedTransaction:
    """Sign ``tx`` (from ``eip1559_transaction`` or ``legacy_transaction``) with ``signer``."""
    unsigned = serializable_unsigned_transaction_from_dict(tx)
    digest = unsigned.hash()
    recovery_id, r, s = sign_digest_recoverable(signer, digest)
    if isinstance(unsigned, TypedTransaction):
        v = recovery_id  # typed transactions carry the y parity itself
    else:
        v = 35 + 2 * int(tx["chainId"]) + recovery_id  # EIP-155
    raw = encode_transaction(unsigned, vrs=(v, r, s))
    return SignedTransaction(
        raw=raw,
        tx_hash=keccak(raw),
        sender=address_of(signer.public_key()),
        nonce=int(tx["nonce"]),
    )


# -- ABI calls ----------------------------------------------------------------------------------


def _abi_types(params: Sequence[dict[str, Any]]) -> list[str]:
    types = []
    for param in params:
        if param["type"].startswith("tuple"):
            raise ValueError("tuple parameters are not supported")
        types.append(str(param["type"]))
    return types


def function_selector(abi: Sequence[dict[str, Any]], name: str) -> tuple[bytes, list[str]]:
    """The 4-byte selector and argument types of function ``name`` in ``abi`` (no overloads)."""
    found = [e for e in abi if e.get("type") == "function" and e.get("name") == name]
    if len(found) != 1:
        raise ValueError(f"function {name!r} not found once in the ABI")
    types = _abi_types(found[0]["inputs"])
    return keccak(text=f"{name}({','.join(types)})")[:4], types


def encode_call(abi: Sequence[dict[str, Any]], name: str, args: Sequence[Any]) -> bytes:
    """Calldata for ``name(args)`` as the ABI declares it."""
    selector, types = function_selector(abi, name)
    if len(args) != len(types):
        raise ValueError(f"{name} takes {len(types)} arguments")
    return selector + abi_encode(types, list(args))


def encode_constructor(build: dict[str, Any], args: Sequence[Any]) -> bytes:
    """Deployment data: the build's bytecode then its constructor's encoded arguments."""
    code = bytes.fromhex(str(build["bytecode"]).removeprefix("0x"))
    ctor = [e for e in build["abi"] if e.get("type") == "constructor"]
    types = _abi_types(ctor[0]["inputs"]) if ctor else []
    if len(args) != len(types):
        raise ValueError(f"constructor takes {len(types)} arguments")
    return code + (abi_encode(types, list(args)) if types else b"")


def erc20_transfer_data(abi: Sequence[dict[str, Any]], to: str, amount: int) -> bytes:
    """Calldata of an ERC-20 ``transfer(to, amount)`` (amount in the token's minor units)."""
    if not 0 <= amount < 2**256:
        raise ValueError("amount out of range")
    return encode_call(abi, "transfer", [to_checksum_address(to), amount])


def contract_address(sender: str, nonce: int) -> str:
    """Where a contract created by ``sender`` at ``nonce`` lands (CREATE)."""
    raw = bytes.fromhex(to_checksum_address(sender)[2:])
    return str(to_checksum_address(keccak(rlp.encode([raw, nonce]))[12:]))
