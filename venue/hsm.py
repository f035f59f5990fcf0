"""The process's PKCS#11 tokens: opened once, shared by every part that signs with them.

A process logs in to a token once (``custody.hsm``: a second login fails, and closing any
session logs all of them out), so every part that needs the hot token takes it from here rather
than opening it itself: the audit chain's checkpoint key (``venue.auditkey``) and custody's
wallets (``venue.custody``)::

    token = acquire_hot_token(config.custody, config.data_dir)  # opened on first use
    try:
        key = token.find_ed25519("some-label")  # ... the keys of the token
    finally:
        release_token(token)  # the last release logs out

Opened tokens are counted, not kept for ever: a process that runs one venue after another (the
tests) closes each one's token when its last user releases it, so that the next may load SoftHSM2
with another configuration (``custody.hsm`` allows one per process while a token is open).
Asking for the same token under another SoftHSM folder while it is open is refused
(``HsmError``).

Where the token comes from: with SoftHSM2 (the default module) ``custody.softhsm.open_token``
makes the token under ``[custody.hsm] softhsm_dir`` (default ``<data_dir>/hsm``) if it is not
there; the PIN is ``VENUE_HSM_PIN``, else ``pin_file``, else ``<softhsm folder>/user.pin`` (made
with a new token). Any other module (a real HSM): the token must exist, and the PIN comes from
``VENUE_HSM_PIN`` or ``pin_file``. No PIN is ever logged or put in an error.

A token opened before a ``fork`` is not used by the child (PKCS#11 forbids it): refused.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from custody import softhsm
from custody.config import CustodyConfig, HsmConfig
from custody.hsm import HsmError, Token

__all__ = ["HsmError", "acquire_hot_token", "acquire_token", "release_token"]


@dataclass
class _Open:
    token: Token
    users: int
    pid: int


_lock = threading.Lock()
_open: dict[tuple[str, str, str], _Open] = {}


def acquire_hot_token(custody: CustodyConfig, data_dir: Path) -> Token:
    """The hot token of ``[custody.hsm]`` for the venue whose data folder is ``data_dir``,
    logged in (opened at the first call); hand it back with ``release_token``. ``HsmError``
    when it cannot be opened (the message names the token, never the PIN)."""
    return acquire_token(custody.hsm, data_dir, custody.hsm.hot_token)


def acquire_token(hsm: HsmConfig, data_dir: Path, label: str) -> Token:
    """The token ``label`` of ``hsm``'s module, logged in; see ``acquire_hot_token``."""
    folder = hsm.softhsm_folder(data_dir).absolute() if _is_softhsm(hsm.module) else None
    key = (hsm.module, str(folder) if folder is not None else "", label)
    with _lock:
        found = _open.get(key)
        if found is not None:
            if found.pid != os.getpid():
                raise HsmError(f"token {label!r} was opened before a fork; not usable here")
            found.users += 1
            return found.token
        if folder is not None:
            if not any(k[:2] == key[:2] for k in _open):
                # SoftHSM2 sees only the tokens that existed when it was loaded (and is not
                # loaded again while one is open): the hot and the cold token are made first
                pin = softhsm.read_pin(hsm.pin_file) if hsm.pin_file is not None else None
                for each in (hsm.hot_token, hsm.cold_token):
                    softhsm.init_token(folder, each, pin=pin, module=hsm.module)
            token = softhsm.open_token(folder, label, pin_file=hsm.pin_file, module=hsm.module)
        else:
            pin = softhsm.read_pin(hsm.pin_file)
            if pin is None:
                raise HsmError(
                    f"no PIN for token {label!r}: set {softhsm.PIN_ENV} or [custody.hsm] pin_file"
                )
            token = Token.open(hsm.module, label, pin)
        _open[key] = _Open(token, 1, os.getpid())
        return token


def release_token(token: Token) -> None:
    """One user is done with ``token``; the last one closes it (logs out). Idempotent for a
    token no longer held."""
    with _lock:
        for key, held in list(_open.items()):
            if held.token is token:
                held.users -= 1
                if held.users <= 0:
                    del _open[key]
                    if held.pid == os.getpid():
                        token.close()
                return


def _is_softhsm(module: str) -> bool:
    return "softhsm" in Path(module).name.lower()
