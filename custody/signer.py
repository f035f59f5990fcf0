"""What signs for custody: the seam between the chains' transaction builders and the token.

Transaction builders (Bitcoin, Ethereum) compute the digest a chain signs and hand it to an
``EcdsaSigner``; they never see a private key. In the venue the signer is a key inside the PKCS#11
token (``custody.hsm``); the test chains' own funding keys and tests may use any other object with
the same two methods.
"""

from __future__ import annotations

from typing import Protocol

#: The order of secp256k1's group: s is normalised to at most half of it (BIP 62, EIP-2).
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class EcdsaSigner(Protocol):
    """A secp256k1 key that signs 32-byte digests."""

    def public_key(self) -> bytes:
        """The public key, SEC1 compressed (33 bytes)."""
        ...

    def sign_digest(self, digest: bytes) -> tuple[int, int]:
        """ECDSA over ``digest`` as it is (no hashing): ``(r, s)`` with ``s`` low
        (``s <= SECP256K1_N // 2``)."""
        ...


class Ed25519Signer(Protocol):
    """An Ed25519 key (the audit trail's checkpoints, proofs of reserves' challenges)."""

    def public_key(self) -> bytes:
        """The raw 32-byte public key."""
        ...

    def sign(self, message: bytes) -> bytes:
        """The 64-byte signature of ``message``."""
        ...
