"""Keys inside a PKCS#11 token: generated there, used there, never read out.

``Token.open(module, label, pin)`` logs in to one token of a PKCS#11 module (SoftHSM2 by
default, any module by path); ``generate_secp256k1`` / ``generate_ed25519`` make key pairs whose
private halves are token objects with CKA_SENSITIVE=True and CKA_EXTRACTABLE=False; the keys it
returns implement ``custody.signer.EcdsaSigner`` and ``Ed25519Signer``.

What the libraries impose (found by experiment with python-pkcs11 0.10.1 and SoftHSM 2.6.1):

- A process loads a module once: ``pkcs11.lib(path)`` caches by path and never re-reads the
  environment. SoftHSM reads ``SOFTHSM2_CONF`` in C_Initialize, so the variable must be set before
  the first load. Only C_Finalize + C_Initialize (``lib.reinitialize()``) reads it again, and that
  invalidates every open session. ``Token.open(..., softhsm_conf=path)`` sets the variable and
  switches the module to another configuration only while no token of it is open (else
  ``HsmError``). SoftHSM also sees a token made by ``softhsm2-util`` after the load only after a
  reinitialisation, which ``Token.open`` does when the label is missing and nothing is open.
- Threads: python-pkcs11 calls C_Initialize with no arguments, which tells the module the
  application is single-threaded, and SoftHSM then turns its own locks off; python-pkcs11
  releases the GIL around the module's calls and serialises only the operations of one session
  (an RLock per session). So calls on two sessions could run inside the module at once: every
  call into a module here holds that module's one lock, and a ``Token`` and its keys may be
  shared between threads (signatures are serialised per module, about a millisecond each).
- Login state belongs to the token, not the session: a second ``C_Login`` fails
  (``UserAlreadyLoggedIn``) and closing any logged-in session logs all of them out. So a process
  opens a token once (a second ``Token.open`` of the same label raises ``HsmError``) and shares the
  ``Token``.
- After ``fork`` the child must not use the parent's ``Token`` (PKCS#11 forbids it).
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar, cast

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11e
from pkcs11.types import PrivateKey, PublicKey, Session, SignMixin

from custody.ecdsa import low_s

if TYPE_CHECKING:
    from pkcs11._pkcs11 import lib as Lib

log = logging.getLogger(__name__)

#: The environment variable SoftHSM2 reads its configuration file's path from.
SOFTHSM2_CONF = "SOFTHSM2_CONF"

#: DER of the secp256k1 OID 1.3.132.0.10 (CKA_EC_PARAMS).
SECP256K1_PARAMS = bytes.fromhex("06052b8104000a")
#: Ed25519's CKA_EC_PARAMS: the printable string "edwards25519" (PKCS#11 3.0), then the OID
#: 1.3.101.112 (RFC 8410) for modules that accept only that. SoftHSM 2.6 accepts both.
ED25519_PARAMS = (b"\x13\x0cedwards25519", bytes.fromhex("06032b6570"))

#: Kinds of keys this module makes, as ``KeyInfo.kind`` names them.
SECP256K1 = "secp256k1"
ED25519 = "ed25519"

_MAX_LABEL = 128


class HsmError(Exception):
    """A token operation failed; the message never contains a PIN."""


@dataclass(frozen=True)
class KeyInfo:
    """A private key of the token, as ``Token.keys`` lists it."""

    label: str
    kind: str  # SECP256K1 or ED25519


@dataclass
class _Module:
    """One loaded PKCS#11 module: the lock every call into it holds, and what is open."""

    lib: Lib
    conf: str | None
    lock: threading.Lock = field(default_factory=threading.Lock)
    open_labels: set[str] = field(default_factory=set)


T = TypeVar("T")

_modules_lock = threading.Lock()
_modules: dict[str, _Module] = {}


def _load(module: str, conf: Path | None) -> _Module:
    """The loaded module, loading it (or switching its SoftHSM configuration) as needed.
    Called with ``_modules_lock`` held."""
    want = str(conf.resolve()) if conf is not None else None
    entry = _modules.get(module)
    if entry is None:
        if want is not None:
            os.environ[SOFTHSM2_CONF] = want
        try:
            lib = pkcs11.lib(module)
        except p11e.PKCS11Error as exc:
            raise HsmError(f"cannot load the PKCS#11 module {module}: {exc}") from None
        entry = _Module(lib, want if want is not None else os.environ.get(SOFTHSM2_CONF))
        _modules[module] = entry
    elif want is not None and entry.conf != want:
        if entry.open_labels:
            raise HsmError(
                f"the PKCS#11 module {module} is in use with another SoftHSM configuration "
                f"({entry.conf}); a process uses one configuration while tokens are open"
            )
        os.environ[SOFTHSM2_CONF] = want
        entry.conf = None  # until the module has read it
        _reinitialize(entry)
        entry.conf = want
    return entry


def _reinitialize(entry: _Module) -> None:
    with entry.lock:
        try:
            entry.lib.reinitialize()
        except p11e.PKCS11Error as exc:
            raise HsmError(f"cannot reinitialise the PKCS#11 module: {exc!r}") from None


def _find_token(entry: _Module, label: str) -> pkcs11.Token | None:
    with entry.lock:
        try:
            return entry.lib.get_token(token_label=label)
        except p11e.NoSuchToken:
            return None
        except p11e.MultipleTokensReturned:
            raise HsmError(f"more than one token is labelled {label!r}") from None
        except p11e.PKCS11Error as exc:
            raise HsmError(f"cannot list the tokens: {type(exc).__name__}") from None


def _ec_point(data: bytes, size: int) -> bytes:
    """The raw point of CKA_EC_POINT: SoftHSM wraps it in a DER OCTET STRING, some modules
    do not."""
    if len(data) == size:
        return data
    if len(data) == size + 2 and data[0] == 0x04 and data[1] == size:
        return data[2:]
    raise HsmError(f"unexpected CKA_EC_POINT of {len(data)} bytes")


def _compress(point: bytes) -> bytes:
    """SEC1 compressed form of an uncompressed secp256k1 point (04 || X || Y)."""
    if point[0] != 0x04:
        raise HsmError("CKA_EC_POINT is not an uncompressed point")
    return bytes((2 + (point[64] & 1),)) + point[1:33]


class Token:
    """A logged-in session on one token. Open it once per process and share it (thread-safe);
    ``close`` (or the ``with`` block) logs out."""

    def __init__(self, entry: _Module, label: str, session: Session) -> None:
        self._entry = entry
        self.label = label
        self._session: Session | None = session
        self._generating = threading.Lock()  # a label's check and its creation, together

    @classmethod
    def open(cls, module: str, label: str, pin: str, *, softhsm_conf: Path | None = None) -> Token:
        """Log in to the token labelled ``label`` of the PKCS#11 module at path ``module``.

        ``softhsm_conf``: the SoftHSM2 configuration to load the module with (see the module's
        notes: one configuration per process while tokens are open)."""
        with _modules_lock:
            entry = _load(module, softhsm_conf)
            if label in entry.open_labels:
                raise HsmError(f"token {label!r} is already open in this process; share it")
            token = _find_token(entry, label)
            if token is None and not entry.open_labels:
                _reinitialize(entry)  # a token made since the module was loaded
                token = _find_token(entry, label)
            if token is None:
                raise HsmError(f"no token labelled {label!r} in {module}")
            with entry.lock:
                try:
                    session = token.open(rw=True, user_pin=pin)
                except p11e.PinIncorrect:
                    raise HsmError(f"login to token {label!r} failed: wrong PIN") from None
                except p11e.PinLocked:
                    raise HsmError(f"login to token {label!r} failed: PIN locked") from None
                except p11e.PinLenRange:
                    raise HsmError(f"login to token {label!r} failed: PIN length") from None
                except p11e.PKCS11Error as exc:
                    name = type(exc).__name__
                    raise HsmError(f"login to token {label!r} failed: {name}") from None
            entry.open_labels.add(label)
        log.info("token %r open", label)
        return cls(entry, label, session)

    def close(self) -> None:
        """Log out and close the session; keys of this token stop signing. Idempotent."""
        with _modules_lock:
            session, self._session = self._session, None
            if session is None:
                return
            self._entry.open_labels.discard(self.label)
            with self._entry.lock:
                try:
                    session.close()
                except p11e.PKCS11Error as exc:
                    log.warning("closing token %r: %s", self.label, type(exc).__name__)
        log.info("token %r closed", self.label)

    def __enter__(self) -> Token:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def call(self, fn: Callable[[Session], T]) -> T:
        """``fn(session)`` under the module's lock, PKCS#11 errors as ``HsmError``: the one way
        into the module (keys of this module use it too)."""
        with self._entry.lock:
            session = self._session
            if session is None:
                raise HsmError(f"token {self.label!r} is closed")
            try:
                return fn(session)
            except p11e.PKCS11Error as exc:
                raise HsmError(f"token {self.label!r}: {type(exc).__name__} {exc}") from None

    def generate_secp256k1(self, label: str) -> TokenEcdsaKey:
        """A new secp256k1 key pair inside the token, under a label not yet used."""
        params = (SECP256K1_PARAMS,)
        pub, priv = self._generate(label, KeyType.EC, Mechanism.EC_KEY_PAIR_GEN, params)
        log.info("secp256k1 key %r generated in token %r", label, self.label)
        return TokenEcdsaKey(self, label, priv, pub)

    def generate_ed25519(self, label: str) -> TokenEd25519Key:
        """A new Ed25519 key pair inside the token, under a label not yet used."""
        pub, priv = self._generate(
            label, KeyType.EC_EDWARDS, Mechanism.EC_EDWARDS_KEY_PAIR_GEN, ED25519_PARAMS
        )
        log.info("ed25519 key %r generated in token %r", label, self.label)
        return TokenEd25519Key(self, label, priv, pub)

    def find_secp256k1(self, label: str) -> TokenEcdsaKey | None:
        """The secp256k1 key labelled ``label``, or None."""
        found = self._find(label, KeyType.EC)
        return TokenEcdsaKey(self, label, *found) if found else None

    def find_ed25519(self, label: str) -> TokenEd25519Key | None:
        """The Ed25519 key labelled ``label``, or None."""
        found = self._find(label, KeyType.EC_EDWARDS)
        return TokenEd25519Key(self, label, *found) if found else None

    def keys(self, prefix: str = "") -> list[KeyInfo]:
        """The private keys (of the kinds made here) whose label starts with ``prefix``."""
        kinds = {KeyType.EC: SECP256K1, KeyType.EC_EDWARDS: ED25519}

        def scan(session: Session) -> list[KeyInfo]:
            out = []
            for obj in session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}):
                label = str(obj[Attribute.LABEL])
                kind = kinds.get(obj[Attribute.KEY_TYPE])
                if kind is not None and label.startswith(prefix):
                    out.append(KeyInfo(label, kind))
            return out

        return sorted(self.call(scan), key=lambda k: k.label)

    def _generate(
        self, label: str, key_type: KeyType, mechanism: Mechanism, params: tuple[bytes, ...]
    ) -> tuple[PublicKey, SignMixin]:
        if not label or len(label) > _MAX_LABEL:
            raise HsmError(f"a key label has 1 to {_MAX_LABEL} characters")
        key_id = secrets.token_bytes(16)
        private = {
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
            Attribute.DERIVE: False,
            Attribute.DECRYPT: False,
            Attribute.UNWRAP: False,
        }

        def generate(ec_params: bytes) -> Callable[[Session], tuple[PublicKey, PrivateKey]]:
            return lambda session: session.generate_keypair(
                key_type,
                id=key_id,
                label=label,
                store=True,
                capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                mechanism=mechanism,
                public_template={Attribute.EC_PARAMS: ec_params, Attribute.VERIFY: True},
                private_template=private,
            )

        with self._generating:
            if self._labelled(label):
                raise HsmError(f"token {self.label!r} already has a key labelled {label!r}")
            for ec_params in params[:-1]:
                try:
                    pub, priv = self.call(generate(ec_params))
                    return pub, cast(SignMixin, priv)
                except HsmError:
                    continue  # the module wants the parameters in another form
            pub, priv = self.call(generate(params[-1]))
            return pub, cast(SignMixin, priv)

    def _labelled(self, label: str) -> bool:
        """Whether any object of the token (a key of any kind) has this label."""
        return self.call(lambda s: bool(list(s.get_objects({Attribute.LABEL: label}))))

    def _find(self, label: str, key_type: KeyType) -> tuple[SignMixin, PublicKey] | None:
        def find(session: Session) -> tuple[SignMixin, PublicKey] | None:
            try:
                priv = session.get_key(ObjectClass.PRIVATE_KEY, key_type, label=label)
                pub = session.get_key(ObjectClass.PUBLIC_KEY, key_type, label=label)
            except p11e.NoSuchKey:
                return None
            except p11e.MultipleObjectsReturned:
                raise HsmError(f"more than one key labelled {label!r}") from None
            return cast(SignMixin, priv), cast(PublicKey, pub)

        return self.call(find)


class TokenEcdsaKey:
    """A secp256k1 key in the token: ``custody.signer.EcdsaSigner``."""

    def __init__(self, token: Token, label: str, private: SignMixin, public: PublicKey) -> None:
        self.token = token
        self.label = label
        self._private = private
        point = token.call(lambda _s: bytes(public[Attribute.EC_POINT]))
        self._public = _compress(_ec_point(point, 65))

    def public_key(self) -> bytes:
        """SEC1 compressed, 33 bytes."""
        return self._public

    def sign_digest(self, digest: bytes) -> tuple[int, int]:
        """Raw CKM_ECDSA over the 32-byte ``digest``; ``(r, s)`` with s made low."""
        if len(digest) != 32:
            raise ValueError("digest must be 32 bytes")
        data = bytes(digest)
        raw = self.token.call(lambda _s: self._private.sign(data, mechanism=Mechanism.ECDSA))
        if len(raw) != 64:
            raise HsmError(f"CKM_ECDSA returned {len(raw)} bytes, not 64")
        return low_s(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))


class TokenEd25519Key:
    """An Ed25519 key in the token: ``custody.signer.Ed25519Signer``."""

    def __init__(self, token: Token, label: str, private: SignMixin, public: PublicKey) -> None:
        self.token = token
        self.label = label
        self._private = private
        point = token.call(lambda _s: bytes(public[Attribute.EC_POINT]))
        self._public = _ec_point(point, 32)

    def public_key(self) -> bytes:
        """The raw 32-byte public key."""
        return self._public

    def sign(self, message: bytes) -> bytes:
        """CKM_EDDSA (pure Ed25519) over ``message``: 64 bytes."""
        data = bytes(message)
        sig = self.token.call(lambda _s: self._private.sign(data, mechanism=Mechanism.EDDSA))
        if len(sig) != 64:
            raise HsmError(f"CKM_EDDSA returned {len(sig)} bytes, not 64")
        return sig
