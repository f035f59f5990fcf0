"""secp256k1 signatures as the chains want them: low s, strict DER, Ethereum's recovery id.

Pure helpers over ``(r, s)`` pairs and SEC1 public keys; no key material. A PKCS#11 token's raw
CKM_ECDSA gives ``r || s`` with either s; Bitcoin (BIP 62/66) and Ethereum (EIP-2) accept only
the low one, and Bitcoin only strict DER.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from eth_keys.datatypes import Signature
from eth_keys.exceptions import BadSignature
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from eth_utils.exceptions import ValidationError

from custody.chains import restore_recursion_limit
from custody.signer import SECP256K1_N

restore_recursion_limit()  # see custody.chains: py_ecc raised it on import

_HALF_N = SECP256K1_N // 2

#: The longest strict DER signature: two 33-byte integers (a 0x00 pad before a high bit).
MAX_DER_LEN = 72


def low_s(r: int, s: int) -> tuple[int, int]:
    """``(r, s)`` with ``s`` replaced by ``n - s`` when above ``n / 2``: the same signature for
    verification, the only form BIP 62 and EIP-2 accept."""
    _check_scalar(r)
    _check_scalar(s)
    return (r, SECP256K1_N - s) if s > _HALF_N else (r, s)


def der_encode(r: int, s: int) -> bytes:
    """The strict DER encoding of BIP 66: ``30 len 02 lenR R 02 lenS S``, each integer minimal
    and positive (a 0x00 before a high bit, no other leading zero)."""
    _check_scalar(r)
    _check_scalar(s)
    body = _der_int(r) + _der_int(s)
    return bytes((0x30, len(body))) + body


def der_decode(sig: bytes) -> tuple[int, int]:
    """``(r, s)`` of a strict DER signature (BIP 66's rules, no sighash byte); ``ValueError`` for
    anything else, so a lax encoding never passes for a valid one."""
    n = len(sig)
    if n < 8 or n > MAX_DER_LEN:
        raise ValueError("DER signature: bad length")
    if sig[0] != 0x30 or sig[1] != n - 2:
        raise ValueError("DER signature: bad sequence header")
    r, rest = _read_der_int(sig[2:])
    s, rest = _read_der_int(rest)
    if rest:
        raise ValueError("DER signature: trailing bytes")
    _check_scalar(r)
    _check_scalar(s)
    return r, s


def eth_recovery_id(digest: bytes, r: int, s: int, compressed_pubkey: bytes) -> int:
    """Ethereum's ``v`` (0 or 1): the one whose recovered public key is ``compressed_pubkey``.

    Raises ``ValueError`` when neither recovers it (a signature of another key or digest)."""
    if len(digest) != 32:
        raise ValueError("digest must be 32 bytes")
    for v in (0, 1):
        try:
            sig = Signature(vrs=(v, r, s))
            recovered = sig.recover_public_key_from_msg_hash(digest)
        except (BadSignature, ValidationError):
            continue
        if recovered.to_compressed_bytes() == compressed_pubkey:
            return v
    raise ValueError("the signature does not recover this public key")


def eth_address(compressed_pubkey: bytes) -> str:
    """The EIP-55 checksummed address of a SEC1 compressed secp256k1 public key (refused with
    ``ValueError`` unless it is a point of the curve)."""
    if len(compressed_pubkey) != 33 or compressed_pubkey[0] not in (2, 3):
        raise ValueError("not a compressed secp256k1 public key")
    try:
        point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), compressed_pubkey)
    except ValueError:
        raise ValueError("not a point of secp256k1") from None
    raw = point.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return str(to_checksum_address(keccak(raw[1:])[-20:]))


def _check_scalar(x: int) -> None:
    if not 0 < x < SECP256K1_N:
        raise ValueError("signature scalar out of range [1, n-1]")


def _der_int(x: int) -> bytes:
    raw = x.to_bytes((x.bit_length() + 7) // 8, "big")
    if raw[0] & 0x80:
        raw = b"\x00" + raw
    return bytes((0x02, len(raw))) + raw


def _read_der_int(data: bytes) -> tuple[int, bytes]:
    if len(data) < 2 or data[0] != 0x02:
        raise ValueError("DER signature: integer expected")
    size = data[1]
    if size == 0 or size > 33 or len(data) < 2 + size:
        raise ValueError("DER signature: bad integer length")
    raw = data[2 : 2 + size]
    if raw[0] & 0x80:
        raise ValueError("DER signature: negative integer")
    if size > 1 and raw[0] == 0 and not raw[1] & 0x80:
        raise ValueError("DER signature: integer not minimal")
    return int.from_bytes(raw, "big"), data[2 + size :]
