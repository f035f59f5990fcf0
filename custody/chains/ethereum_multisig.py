"""The multisig wallet's execution: its EIP-712 digest, k owners' signatures, the execute call.

Each owner (a key in its own PKCS#11 token) signs the digest offline; one transaction from any
sender then carries the signatures. The digest binds the wallet's address, the chain id and the
wallet's nonce (``custody/contracts/MultiSigWallet.sol``), so a set of signatures executes once.
The contract wants signatures in strictly increasing order of signer address.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from custody.chains.ethereum_tx import address_of, encode_call, sign_digest_recoverable
from custody.signer import EcdsaSigner

_DOMAIN_TYPEHASH = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
_EXECUTE_TYPEHASH = keccak(text="Execute(address to,uint256 value,bytes data,uint256 nonce)")
_NAME_HASH = keccak(text="VenueMultiSig")
_VERSION_HASH = keccak(text="1")


@dataclass(frozen=True)
class OwnerSignature:
    """One owner's signature over an execution digest (v is 27 or 28, as ecrecover wants)."""

    signer: str
    v: int
    r: int
    s: int


def execution_digest(
    *, chain_id: int, wallet: str, to: str, value: int, data: bytes, nonce: int
) -> bytes:
    """The EIP-712 digest the owners sign for executing ``to.call{value}(data)`` at ``nonce``."""
    domain = keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [_DOMAIN_TYPEHASH, _NAME_HASH, _VERSION_HASH, chain_id, to_checksum_address(wallet)],
        )
    )
    struct = keccak(
        abi_encode(
            ["bytes32", "address", "uint256", "bytes32", "uint256"],
            [_EXECUTE_TYPEHASH, to_checksum_address(to), value, keccak(data), nonce],
        )
    )
    return keccak(b"\x19\x01" + domain + struct)


def sign_execution(digest: bytes, signer: EcdsaSigner) -> OwnerSignature:
    """One owner's signature (the signer hands back r, s; the recovery id is found here)."""
    recovery_id, r, s = sign_digest_recoverable(signer, digest)
    return OwnerSignature(address_of(signer.public_key()), 27 + recovery_id, r, s)


def collect_signatures(digest: bytes, signers: Sequence[EcdsaSigner]) -> list[OwnerSignature]:
    """Every signer's signature, ordered by signer address as the contract requires."""
    signatures = [sign_execution(digest, signer) for signer in signers]
    return sorted(signatures, key=lambda sig: int(sig.signer, 16))


def execute_data(
    abi: Sequence[dict[str, Any]],
    to: str,
    value: int,
    data: bytes,
    signatures: Sequence[OwnerSignature],
) -> bytes:
    """Calldata of ``execute(to, value, data, v[], r[], s[])`` with the signatures as given."""
    return encode_call(
        abi,
        "execute",
        [
            to_checksum_address(to),
            value,
            data,
            [sig.v for sig in signatures],
            [sig.r.to_bytes(32, "big") for sig in signatures],
            [sig.s.to_bytes(32, "big") for sig in signatures],
        ],
    )
