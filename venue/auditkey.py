"""The audit chain's checkpoint signing key inside the venue's PKCS#11 token.

With ``[custody]`` configured the checkpoints (``surveillance.checkpoint``) are signed by an
Ed25519 key generated in the hot token (``[custody.hsm] hot_token``, the token the venue opens
anyway: one login, one PIN) and never leaving it. Keys are labelled ``audit-checkpoint-<n>``;
``<data_dir>/audit/token-key`` names the one in use (its label, one line: nothing secret). Each
key's public half goes to ``audit/keys/<key id>.pub`` before it signs, exactly as with a key
file, so ``venue audit verify`` needs no token.

- First start with a token: ``audit-checkpoint-1`` is made. A data folder signed until then with
  ``checkpoint.key`` keeps its old checkpoints verifying (their keys are in ``keys/``); the new
  ones are signed in the token, and the old key file is no longer read (remove it: whoever holds
  it can still sign in the old key's name).
- ``venue audit rotate-key``: the next label is made in the token and ``token-key`` names it; a
  running venue signs with it from its next checkpoint (the file is read at each checkpoint).
- Without ``[custody]`` the key file stays (``surveillance.checkpoint.FileKeys``); a data folder
  whose ``token-key`` says the key is in a token is refused then, rather than signed with a file.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
from pathlib import Path

from custody.hsm import HsmError, Token, TokenEd25519Key
from surveillance.audit import AUDIT_DIR
from surveillance.checkpoint import (
    KEY_FILE,
    CheckpointError,
    CheckpointKey,
    record_public_key,
    write_durably,
)
from venue.config import VenueConfig
from venue.hsm import acquire_hot_token, release_token

__all__ = [
    "LABEL_PREFIX",
    "TOKEN_KEY_FILE",
    "TokenKeys",
    "open_token_keys",
    "parse_label",
    "token_key_label",
]

log = logging.getLogger("venue.auditkey")

LABEL_PREFIX = "audit-checkpoint-"
#: In the audit folder: the label of the token's key that signs.
TOKEN_KEY_FILE = "token-key"
_LOCK_FILE = "token-key.lock"
#: ``audit-checkpoint-`` and at most 9 digits: a label the token accepts (128 characters at most).
_LABEL = re.compile(r"audit-checkpoint-([1-9][0-9]{0,8})")
_MAX_FILE = 256


def parse_label(text: bytes) -> str:
    """The label ``token-key`` holds (one line, surrounding whitespace allowed);
    ``CheckpointError`` for anything else."""
    if len(text) > _MAX_FILE:
        raise CheckpointError(f"{TOKEN_KEY_FILE}: {len(text)} bytes, longer than {_MAX_FILE}")
    try:
        label = text.decode("ascii").strip()
    except UnicodeDecodeError:
        raise CheckpointError(f"{TOKEN_KEY_FILE}: not ASCII") from None
    if _LABEL.fullmatch(label) is None:
        raise CheckpointError(f"{TOKEN_KEY_FILE}: not a label {LABEL_PREFIX}<n>")
    return label


def token_key_label(audit_dir: Path) -> str | None:
    """The label ``audit_dir/token-key`` names, or None when there is no such file."""
    path = audit_dir / TOKEN_KEY_FILE
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_FILE + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    return parse_label(data)


def _number(label: str) -> int:
    match = _LABEL.fullmatch(label)
    return int(match.group(1)) if match else 0


class TokenKeys:
    """``surveillance.checkpoint.CheckpointKeys`` in a PKCS#11 token (see the module's notes).

    ``current`` reads ``token-key`` at each checkpoint (a few bytes, checkpoints are rare) and
    keeps the token's key object for the label it last saw. The token is shared and belongs to
    the caller (``venue.hsm``); this never closes it."""

    def __init__(self, token: Token, audit_dir: Path) -> None:
        self.token = token
        self.audit_dir = audit_dir
        self._key: TokenEd25519Key | None = None

    def create(self) -> str | None:
        """Make the first key unless ``token-key`` names one; the new key's id, or None."""
        if token_key_label(self.audit_dir) is not None:
            return None
        return self.rotate(only_if_none=True)

    def current(self) -> CheckpointKey:
        label = token_key_label(self.audit_dir)
        if label is None:
            raise CheckpointError(f"{self.audit_dir / TOKEN_KEY_FILE}: no key of the token named")
        key = self._key
        if key is None or key.label != label:
            try:
                key = self.token.find_ed25519(label)
            except HsmError as exc:
                raise CheckpointError(f"the checkpoint key {label!r}: {exc}") from None
            if key is None:
                raise CheckpointError(
                    f"token {self.token.label!r} has no Ed25519 key {label!r} "
                    f"(named by {self.audit_dir / TOKEN_KEY_FILE})"
                )
            self._key = key
        return key

    def rotate(self, *, only_if_none: bool = False) -> str:
        """A new key in the token under the next label, its public half kept in ``keys/``,
        then named in ``token-key``; its id. One rotation at a time across processes (a lock
        file beside ``token-key``)."""
        self.audit_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.audit_dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            current = token_key_label(self.audit_dir)
            if only_if_none and current is not None:  # made meanwhile by another process
                return record_public_key(self.audit_dir, self.current().public_key())
            try:
                used = [_number(info.label) for info in self.token.keys(LABEL_PREFIX)]
                label = f"{LABEL_PREFIX}{max([0, _number(current or ''), *used]) + 1}"
                key = self.token.generate_ed25519(label)
            except HsmError as exc:
                raise CheckpointError(f"cannot make a checkpoint key in the token: {exc}") from None
            kid = record_public_key(self.audit_dir, key.public_key())
            write_durably(self.audit_dir / TOKEN_KEY_FILE, label.encode("ascii") + b"\n", 0o644)
            self._key = key
            return kid
        finally:
            os.close(fd)  # releases the lock


def open_token_keys(config: VenueConfig, *, create: bool = True) -> TokenKeys | None:
    """The checkpoint keys of the venue ``config`` describes: ``TokenKeys`` on its hot token
    (with ``create``, the first key made if there is none and the current one checked; the
    token acquired from ``venue.hsm``, to be handed back with ``release_token(keys.token)``),
    or None without ``[custody]`` (the key file).
    ``HsmError`` when the token cannot be opened, ``CheckpointError`` when the key cannot be
    used (or the folder's key is in a token and there is none), ``OSError``."""
    audit_dir = config.data_dir / AUDIT_DIR
    if config.custody is None:
        label = token_key_label(audit_dir)
        if label is not None:
            raise CheckpointError(
                f"{audit_dir / TOKEN_KEY_FILE}: the checkpoints are signed by {label!r} in a "
                "token, and no [custody] configures one (remove that file to sign with a key "
                "file again)"
            )
        return None
    token = acquire_hot_token(config.custody, config.data_dir)
    keys = TokenKeys(token, audit_dir)
    if not create:
        return keys
    try:
        made = keys.create()
        keys.current()  # refuse a missing key at start, not at the first checkpoint
    except BaseException:
        release_token(token)
        raise
    if made is not None:
        log.info("audit: checkpoint key %s made in token %r", made, token.label)
    if (audit_dir / KEY_FILE).exists():
        log.warning(
            "audit: checkpoints are signed in token %r; %s is no longer used (its public key "
            "stays in keys/ for the old checkpoints): remove it",
            token.label,
            audit_dir / KEY_FILE,
        )
    return keys
