"""A 32-byte key in a file of its own, readable by its owner only, and the directory fsync that
makes a new file durable: shared by the stores that keep secrets sealed (AES-256-GCM) at rest,
the REST door's API keys (``gateway.rest.keys``) and the staff store (``gateway.staff``).

The key file is made once with mode 0600 and refused if its mode lets anyone else read it: a
sealed secret is only as safe as the key beside it. It is written to a scratch file and linked
into place, so two processes opening a store at the same moment agree on one key.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

__all__ = ["KEY_BYTES", "SecretFileError", "fsync_dir", "load_or_make_key"]

KEY_BYTES = 32


class SecretFileError(ValueError):
    """A key file that cannot be trusted (too open a mode, a wrong length); one line."""


def fsync_dir(directory: Path) -> None:
    """Make the names in ``directory`` (a new or renamed file) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_key(path: Path) -> bytes:
    """The key in ``path``, or ``SecretFileError`` if others may read it or it is not 32 bytes."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SecretFileError(
            f"{path} has mode {mode:04o}; it must be 0600 (owner only): chmod 600 {path}"
        )
    data = path.read_bytes()
    if len(data) != KEY_BYTES:
        raise SecretFileError(f"{path} holds {len(data)} bytes, not a {KEY_BYTES}-byte key")
    return data


def load_or_make_key(path: Path) -> bytes:
    """The key in ``path``, made (mode 0600) if there is none yet.

    Written to a file of its own and linked into place, so another process opening the store
    at the same moment sees either no key or the whole key, and one key wins."""
    if path.exists():
        return read_key(path)
    key = os.urandom(KEY_BYTES)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.write(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(scratch, path)
        except FileExistsError:
            return read_key(path)
    finally:
        scratch.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return key
