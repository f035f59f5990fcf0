"""A software secp256k1 key with the token's signing seam (``custody.signer.EcdsaSigner``), for
the tests' other parties: a client's own wallet, a chain's payees and owners. The venue's own keys
are in the HSM, never in software."""

from __future__ import annotations

import hashlib

from eth_keys.datatypes import PrivateKey
from eth_utils.crypto import keccak

from custody.chains.ethereum_tx import address_of
from custody.signer import SECP256K1_N


class SoftSigner:
    """A key from a seed (hashed with Keccak), an integer secret, or 32 raw secret bytes
    (``raw``); its signatures low-s, as the token's are."""

    def __init__(self, seed: bytes | int, *, raw: bool = False) -> None:
        if isinstance(seed, int):
            secret = seed.to_bytes(32, "big")
        else:
            secret = seed if raw else keccak(seed)
        self._key = PrivateKey(secret)

    def public_key(self) -> bytes:
        return bytes(self._key.public_key.to_compressed_bytes())

    def sign_digest(self, digest: bytes) -> tuple[int, int]:
        _, r, s = self._key.sign_msg_hash(digest).vrs
        return r, (SECP256K1_N - s if s > SECP256K1_N // 2 else s)

    @property
    def address(self) -> str:
        """Its Ethereum address."""
        return address_of(self.public_key())

    def hash160(self) -> bytes:
        """RIPEMD-160 of SHA-256 of its compressed public key (Bitcoin's key hash)."""
        return hashlib.new("ripemd160", hashlib.sha256(self.public_key()).digest()).digest()
