"""FIX Logon authentication: a password (stored only as a PBKDF2 hash) and/or an Ed25519
signature over the Logon's header fields, as Binance's FIX API does it.

``hash_password`` makes the ``password_hash`` of a ``[[fix.sessions]]`` entry (``venue
fix-password``); ``authenticator`` turns a session's configuration into the check its Logons
go through. Failures give the client no detail; the log says which check failed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.fix.codec import FixMessage
from gateway.fix.config import FixSessionConfig

__all__ = ["AUTH_FAILED", "PBKDF2_ITERATIONS", "authenticator", "hash_password", "password_check"]

log = logging.getLogger("gateway.fix.auth")

PBKDF2_ITERATIONS = 200_000
AUTH_FAILED = "authentication failed"


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``pbkdf2_sha256$<iterations>$<salt>$<hash>``: a session's ``password_hash``."""
    salt = salt or os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, PBKDF2_ITERATIONS)
    salt_b64 = base64.b64encode(salt).decode()
    return f"pbkdf2_sha256${PBKDF2_ITERATIONS}${salt_b64}${base64.b64encode(digest).decode()}"


def password_check(stored: str) -> Callable[[bytes], bool]:
    _, iterations, salt_b64, hash_b64 = stored.split("$")
    salt = base64.b64decode(salt_b64)
    expected = base64.b64decode(hash_b64)
    rounds = int(iterations)

    def check(password: bytes) -> bool:
        digest = hashlib.pbkdf2_hmac("sha256", password, salt, rounds)
        return hmac.compare_digest(digest, expected)

    return check


def authenticator(cfg: FixSessionConfig) -> Callable[[FixMessage], str | None] | None:
    """Checks a Logon's credentials: Password(554) and/or an Ed25519 signature in RawData(96)
    over ``35 SOH 49 SOH 56 SOH 34 SOH 52`` as sent (Binance's FIX API scheme). Failures give
    no detail to the client; the log says which check failed."""
    password = password_check(cfg.password_hash) if cfg.password_hash else None
    public_key = (
        Ed25519PublicKey.from_public_bytes(base64.b64decode(cfg.ed25519_public_key))
        if cfg.ed25519_public_key
        else None
    )
    api_key = cfg.api_key.encode()
    if password is None and public_key is None:
        return None

    def authenticate(logon: FixMessage) -> str | None:
        who = cfg.target_comp_id
        if password is not None:
            given = logon.get(554)
            if given is None or not password(given):
                log.warning("FIX %s: Logon refused: wrong or missing Password (554)", who)
                return AUTH_FAILED
        if public_key is not None:
            if api_key and logon.get(553) != api_key:
                log.warning("FIX %s: Logon refused: Username (553) is not the API key", who)
                return AUTH_FAILED
            payload = b"\x01".join(logon.get(tag) or b"" for tag in (35, 49, 56, 34, 52))
            try:
                signature = base64.b64decode(logon.get(96) or b"", validate=True)
                public_key.verify(signature, payload)
            except (InvalidSignature, ValueError):
                log.warning("FIX %s: Logon refused: bad Ed25519 signature in RawData (96)", who)
                return AUTH_FAILED
        return None

    return authenticate
