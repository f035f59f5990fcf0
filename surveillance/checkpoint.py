"""Signed checkpoints of the audit chain's head (Ed25519).

A hash chain alone does not stop someone who rewrites it from some entry on and recomputes
every hash after it; a checkpoint does: it signs ``(entry number, seq, head hash, time)`` with a
key the rewriter does not hold, so the rewritten chain no longer matches what was signed.

Where the private key lives is not this module's business: ``Signer`` is given a
``CheckpointKeys`` (which key signs the next checkpoint) whose keys only sign
(``CheckpointKey``: ``public_key()`` and ``sign(message)``). ``FileKeys`` keeps the key in a file
(a venue without an HSM, and data folders from before one); the venue passes a key held in its
PKCS#11 token instead when it has one (``venue.auditkey``). Verifying needs neither: only the
public keys kept in ``keys/``.

Files, all in ``<data_dir>/audit/``:

- ``checkpoint.key`` (``FileKeys`` only): the signing key (PKCS#8 PEM), created 0600; a key
  file readable or writable by anyone but its owner is refused.
- ``keys/<key id>.pub``: every public key that ever signed (raw, hex), kept beside the
  checkpoints so that old checkpoints keep verifying after a rotation (``rotate_key``). The key
  id is the first 16 hex digits of the SHA-256 of the raw public key: an operator compares the
  ids ``venue audit verify`` prints with those recorded elsewhere.
- ``checkpoints.log``: one JSON object a line ``{"entry","seq","head","time_ns","key","sig"}``,
  appended and fsynced.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "CHECKPOINTS_FILE",
    "KEYS_DIR",
    "KEY_FILE",
    "Checkpoint",
    "CheckpointError",
    "CheckpointKey",
    "CheckpointKeys",
    "FileKeys",
    "Signer",
    "load_public_key",
    "parse_checkpoint",
    "raw_key_id",
    "record_public_key",
    "rotate_key",
    "write_durably",
]

KEY_FILE = "checkpoint.key"
KEYS_DIR = "keys"
CHECKPOINTS_FILE = "checkpoints.log"
_SIGNED = struct.Struct("<QQq32s")  # entry number, seq, time_ns, head
_DOMAIN = b"venue audit checkpoint v1\n"
#: Longest checkpoint line read (a checkpoint is about 300 bytes).
MAX_LINE = 1024


class CheckpointError(Exception):
    """A key or checkpoint cannot be used; ``str`` is one line."""


class CheckpointKey(Protocol):
    """An Ed25519 key that signs checkpoints; its private half may live anywhere (a file, a
    PKCS#11 token: ``custody.signer.Ed25519Signer`` is one)."""

    def public_key(self) -> bytes:
        """The raw 32-byte public key."""
        ...

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        ...


class CheckpointKeys(Protocol):
    """Which key signs the next checkpoint: asked again at each one (they are rare), so a
    rotation made by another process takes effect without a restart."""

    def current(self) -> CheckpointKey:
        """The key to sign with now; ``CheckpointError`` when there is none usable."""
        ...


@dataclass(frozen=True, slots=True)
class Checkpoint:
    entry: int
    seq: int
    head: bytes
    time_ns: int
    key: str
    sig: bytes

    def message(self) -> bytes:
        """The bytes the signature covers."""
        return _message(self.entry, self.seq, self.time_ns, self.head, self.key)

    def line(self) -> bytes:
        doc = {
            "entry": self.entry,
            "seq": self.seq,
            "head": self.head.hex(),
            "time_ns": self.time_ns,
            "key": self.key,
            "sig": self.sig.hex(),
        }
        return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


def _message(entry: int, seq: int, time_ns: int, head: bytes, key: str) -> bytes:
    return _DOMAIN + _SIGNED.pack(entry, seq, time_ns, head) + key.encode("ascii")


def key_id(public: Ed25519PublicKey) -> str:
    return raw_key_id(_raw(public))


def raw_key_id(raw: bytes) -> str:
    """The id of the raw 32-byte public key ``raw``: 16 hex digits of its SHA-256."""
    return hashlib.sha256(raw).hexdigest()[:16]


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def parse_checkpoint(line: bytes) -> Checkpoint:
    """One line of ``checkpoints.log``; ``CheckpointError`` for anything else."""
    if len(line) > MAX_LINE:
        raise CheckpointError(f"a line of {len(line)} bytes, longer than {MAX_LINE}")
    try:
        doc = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise CheckpointError("not JSON") from None
    if not isinstance(doc, dict) or set(doc) != {"entry", "seq", "head", "time_ns", "key", "sig"}:
        raise CheckpointError("not a checkpoint (wrong keys)")
    ints = []
    for name, low, high in (("entry", 1, 1 << 64), ("seq", 0, 1 << 64), ("time_ns", 0, 1 << 63)):
        value = doc[name]
        if type(value) is not int or not low <= value < high:
            raise CheckpointError(f"{name} is not an integer in range")
        ints.append(value)
    texts = []
    for name, size in (("head", 64), ("key", 16), ("sig", 128)):
        value = doc[name]
        if (
            not isinstance(value, str)
            or len(value) != size
            or any(c not in "0123456789abcdef" for c in value)
        ):
            raise CheckpointError(f"{name} is not {size} lowercase hex digits")
        texts.append(value)
    head, key, sig = texts
    return Checkpoint(ints[0], ints[1], bytes.fromhex(head), ints[2], key, bytes.fromhex(sig))


def load_public_key(audit_dir: Path, key: str) -> Ed25519PublicKey:
    """The public key ``key`` kept in ``keys/``; ``CheckpointError`` if absent or not one."""
    path = audit_dir / KEYS_DIR / f"{key}.pub"
    try:
        text = path.read_text(encoding="ascii").strip()
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))
    except FileNotFoundError:
        raise CheckpointError(f"public key {key} is not in {path.parent}") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not an Ed25519 public key ({exc})") from None
    if key_id(public) != key:
        raise CheckpointError(f"{path}: holds a key whose id is {key_id(public)}, not {key}")
    return public


def verify_signature(audit_dir: Path, cp: Checkpoint, cache: dict[str, Ed25519PublicKey]) -> None:
    """``CheckpointError`` unless ``cp`` is signed by its key."""
    public = cache.get(cp.key)
    if public is None:
        public = cache[cp.key] = load_public_key(audit_dir, cp.key)
    try:
        public.verify(cp.sig, cp.message())
    except InvalidSignature:
        raise CheckpointError(f"bad signature (key {cp.key})") from None


def write_durably(path: Path, data: bytes, mode: int) -> None:
    """Write ``path`` whole (via a temporary file and a rename) and fsync it and its folder."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def record_public_key(audit_dir: Path, raw: bytes) -> str:
    """Keep the raw public key ``raw`` in ``keys/`` (once) and return its id: done before a key
    signs anything, so every checkpoint's key is there for ``venue audit verify``."""
    try:
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise CheckpointError(f"not an Ed25519 public key ({len(raw)} bytes)") from None
    kid = raw_key_id(raw)
    keys = audit_dir / KEYS_DIR
    keys.mkdir(parents=True, exist_ok=True)
    path = keys / f"{kid}.pub"
    if not path.exists():
        write_durably(path, raw.hex().encode() + b"\n", 0o644)
    return kid


def _save_public(audit_dir: Path, public: Ed25519PublicKey) -> str:
    return record_public_key(audit_dir, _raw(public))


def rotate_key(audit_dir: Path) -> str:
    """Make a new signing key (its public half kept in ``keys/`` first); it signs every
    checkpoint from now on, including those of a running venue. Returns its id."""
    audit_dir.mkdir(parents=True, exist_ok=True)
    private = Ed25519PrivateKey.generate()
    kid = _save_public(audit_dir, private.public_key())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_durably(audit_dir / KEY_FILE, pem, 0o600)
    return kid


def load_private_key(audit_dir: Path) -> tuple[Ed25519PrivateKey, str]:
    """The signing key and its id; ``CheckpointError`` when the file is missing, not a key, or
    open to anyone but its owner."""
    path = audit_dir / KEY_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no signing key") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077:
            raise CheckpointError(
                f"{path}: mode {mode:04o} lets others read or write the signing key; "
                "it must be 0600 (chmod 600)"
            )
        data = os.read(fd, 64 * 1024)
    finally:
        os.close(fd)
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise CheckpointError(f"{path}: not a PEM private key") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise CheckpointError(f"{path}: not an Ed25519 key")
    return private, _save_public(audit_dir, private.public_key())


class _FileKey:
    """A ``CheckpointKey`` whose private half was read from ``checkpoint.key``."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private

    def public_key(self) -> bytes:
        return _raw(self._private.public_key())

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)


class FileKeys:
    """``CheckpointKeys`` from ``checkpoint.key``, made at the first start. The file is read at
    each checkpoint, so ``venue audit rotate-key`` takes effect at the next one."""

    def __init__(self, audit_dir: Path) -> None:
        self.audit_dir = audit_dir

    def create(self) -> None:
        """Make the key file unless it is there."""
        if not (self.audit_dir / KEY_FILE).exists():
            rotate_key(self.audit_dir)

    def current(self) -> CheckpointKey:
        private, _ = load_private_key(self.audit_dir)
        return _FileKey(private)

    def rotate(self) -> str:
        """A new key file (``rotate_key``); its id."""
        return rotate_key(self.audit_dir)


class Signer:
    """Signs checkpoints and appends them to ``checkpoints.log``; runs in the writer thread.

    ``keys`` is asked for the key at each checkpoint (they are rare), so a rotation takes
    effect at the next one without a restart. Without ``keys``: ``FileKeys``, the key file made
    if missing. Each key's public half is kept in ``keys/`` before it signs."""

    def __init__(
        self, audit_dir: Path, keys: CheckpointKeys | None = None, *, fsync: bool = True
    ) -> None:
        self.audit_dir = audit_dir
        self.fsync = fsync
        if keys is None:
            file_keys = FileKeys(audit_dir)
            file_keys.create()
            keys = file_keys
        self.keys = keys
        # refuse a bad key at start, not at the first checkpoint
        record_public_key(audit_dir, keys.current().public_key())
        self.path = audit_dir / CHECKPOINTS_FILE

    def sign(self, entry: int, seq: int, head: bytes, time_ns: int) -> Checkpoint:
        key = self.keys.current()
        public = key.public_key()
        kid = record_public_key(self.audit_dir, public)
        sig = key.sign(_message(entry, seq, time_ns, head, kid))
        cp = Checkpoint(entry, seq, head, time_ns, kid, sig)
        # a key whose halves disagree (or a faulty token) must not leave an unverifiable line
        verify_signature(self.audit_dir, cp, {kid: Ed25519PublicKey.from_public_bytes(public)})
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, cp.line())
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        return cp
