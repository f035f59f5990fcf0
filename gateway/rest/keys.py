"""API keys of the REST and WebSocket door: who may sign requests for which account.

Binance-style keys: a 64-character key id sent in ``X-MBX-APIKEY`` and either an HMAC secret
(64 characters, shown to the operator once) or an Ed25519 public key the client registered.
Each key has permissions (``USER_DATA``, ``TRADE``), a label, an optional IP allowlist, and a
creation and revocation time.

The store is an append-only JSON-lines log, ``api-keys.log``: one line per action (created,
revoked) with its time, the key's public fields and who did it. It is the store and the audit
record of key actions at once. HMAC secrets are in it only encrypted (AES-256-GCM, a nonce per
secret, the API key as associated data) under a 32-byte key kept in ``api-keys.secret`` (mode
0600, created by the store; a wider mode refuses to start). Ed25519 keys keep only the public
key. Every append is written and fsynced before the method returns, so a key shown to an
operator survives a crash right after. Replay on start ignores a torn last line (a crash mid
write: a line without its newline), and refuses any other damage.

Several processes may use one store at once (the running venue and ``venue api-key``): every
append holds an exclusive ``flock`` on the log while it catches up with the lines others
appended, cuts a torn tail a crashed writer left, and writes its line in one ``write()`` to a
file opened with ``O_APPEND``. A store learns of the others' lines through :meth:`KeyStore.refresh`
(the appended tail only; a last line without its newline is left for later): the venue calls it
every second, and :meth:`KeyStore.get` calls it for a key it does not know, at most once a
second, so a key made by another process works at once. A known key's lookup does no I/O.

Secrets never reach the process log: it names a key by its first 8 characters only, since
Binance treats the API key itself as sensitive too.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import ipaddress
import json
import logging
import os
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

from gateway.secretfile import SecretFileError, fsync_dir, load_or_make_key

__all__ = [
    "API_KEY_CHARS",
    "API_KEY_LENGTH",
    "LOG_NAME",
    "PERMISSIONS",
    "SECRET_NAME",
    "ApiKey",
    "KeyKind",
    "KeyStore",
    "KeyStoreError",
    "check_grant",
    "check_ips",
    "check_label",
    "check_permissions",
    "check_public_key",
    "is_key_format",
]

log = logging.getLogger("gateway.rest.keys")

#: Binance's keys and secrets: 64 letters and digits (URL-safe without escaping).
API_KEY_CHARS = string.ascii_letters + string.digits
API_KEY_LENGTH = 64
#: What a key may be allowed to do. ``WITHDRAW`` waits for custody.
PERMISSIONS = frozenset({"USER_DATA", "TRADE", "WITHDRAW"})
LOG_NAME = "api-keys.log"
SECRET_NAME = "api-keys.secret"

MAX_LABEL = 64
MAX_BY = 128
MAX_IPS = 100
MAX_PEM = 4096
_NONCE = 12
#: Least time between two reads of the log's tail asked for by lookups of unknown keys.
MISS_REFRESH_S = 1.0

KeyKind = Literal["HMAC", "ED25519"]


class KeyStoreError(ValueError):
    """Bad input to the store, or a store that cannot be trusted; the message is one line."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key's public fields: everything but its secret."""

    api_key: str
    account: int
    kind: KeyKind
    permissions: frozenset[str]
    label: str
    ip_allowlist: tuple[str, ...]
    created_ms: int
    revoked_ms: int
    created_by: str

    @property
    def live(self) -> bool:
        return self.revoked_ms == 0


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _random_token() -> str:
    return "".join(secrets.choice(API_KEY_CHARS) for _ in range(API_KEY_LENGTH))


_KEY_CHARS = frozenset(API_KEY_CHARS)


def is_key_format(text: str) -> bool:
    """Whether ``text`` has the shape of a key id (64 letters and digits). Checked on every
    signed request: one set test, not a search of the alphabet per character."""
    return len(text) == API_KEY_LENGTH and _KEY_CHARS.issuperset(text)


# -- validation of what an operator asks for ------------------------------------------------


def _check_account(account: object) -> int:
    if not isinstance(account, int) or isinstance(account, bool) or account < 1:
        raise KeyStoreError(f"account must be an integer >= 1, not {account!r}")
    return account


def _check_permissions(permissions: Iterable[str]) -> frozenset[str]:
    if isinstance(permissions, str):
        raise KeyStoreError("permissions must be a collection of names, not a string")
    try:
        wanted = frozenset(permissions)
    except TypeError:
        raise KeyStoreError("permissions must be a collection of names") from None
    for name in sorted(wanted, key=repr):
        if name not in PERMISSIONS:
            raise KeyStoreError(
                f"unknown permission {_one_line(repr(name))[:40]}: "
                "allowed are TRADE, USER_DATA, WITHDRAW"
            )
    if not wanted:
        raise KeyStoreError("a key needs at least one permission: TRADE or USER_DATA")
    return wanted


def _check_text(what: str, text: object, limit: int, *, empty: bool) -> str:
    if not isinstance(text, str):
        raise KeyStoreError(f"{what} must be a string")
    if len(text) > limit:
        raise KeyStoreError(f"{what} is {len(text)} characters long; at most {limit}")
    if not text.isprintable():
        raise KeyStoreError(f"{what} holds a character that is not printable")
    if not empty and not text.strip():
        raise KeyStoreError(f"{what} is empty")
    return text


def _check_ips(ips: Iterable[str]) -> tuple[str, ...]:
    if isinstance(ips, str):
        raise KeyStoreError("ips must be a collection of addresses, not a string")
    out: list[str] = []
    for ip in ips:
        if not isinstance(ip, str):
            raise KeyStoreError(f"bad IP {ip!r}: not a string")
        try:
            if "/" in ip:
                text = str(ipaddress.ip_network(ip, strict=True))
            else:
                text = str(ipaddress.ip_address(ip))
        except ValueError as exc:
            raise KeyStoreError(f"bad IP or network {_one_line(repr(ip))[:60]}: {exc}") from None
        if text not in out:
            out.append(text)
    if len(out) > MAX_IPS:
        raise KeyStoreError(f"{len(out)} IPs in the allowlist; at most {MAX_IPS}")
    return tuple(out)


def _load_ed25519(pem: object) -> Ed25519PublicKey:
    if not isinstance(pem, str) or len(pem) > MAX_PEM:
        raise KeyStoreError(f"public key must be a PEM string of at most {MAX_PEM} characters")
    try:
        key = load_pem_public_key(pem.encode("utf-8"))
    except (ValueError, TypeError, UnicodeError) as exc:
        raise KeyStoreError(f"public key is not a valid PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyStoreError(f"public key is {type(key).__name__}, not Ed25519")
    return key


def _pem_of(key: Ed25519PublicKey) -> str:
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def check_permissions(permissions: Iterable[str]) -> frozenset[str]:
    """``permissions`` as the store takes them, or ``KeyStoreError`` (for a door to name the
    field before it asks the store for a key)."""
    return _check_permissions(permissions)


def check_label(label: object) -> str:
    """A key's label as the store takes it, or ``KeyStoreError``."""
    return _check_text("label", label, MAX_LABEL, empty=True)


def check_grant(permissions: frozenset[str], ips: tuple[str, ...]) -> frozenset[str]:
    """``permissions`` if they may go with ``ips``: WITHDRAW needs an IP allowlist (a key that
    can move funds out is usable only from the addresses its owner names, as Binance requires);
    ``KeyStoreError`` otherwise."""
    if "WITHDRAW" in permissions and not ips:
        raise KeyStoreError("permissions: WITHDRAW needs an IP allowlist (ipAllowlist)")
    return permissions


def check_ips(ips: Iterable[str]) -> tuple[str, ...]:
    """An IP allowlist as the store keeps it (normalised), or ``KeyStoreError``."""
    return _check_ips(ips)


def check_public_key(pem: object) -> None:
    """Whether ``pem`` is an Ed25519 public key the store takes, or ``KeyStoreError``."""
    _load_ed25519(pem)


# -- files ----------------------------------------------------------------------------------


def _fsync_dir(directory: Path) -> None:
    fsync_dir(directory)


def _load_or_make_secret(path: Path) -> bytes:
    """The store's AES key (``gateway.secretfile``): made once with mode 0600, refused if
    anyone else may read it."""
    try:
        return load_or_make_key(path)
    except SecretFileError as exc:
        raise KeyStoreError(str(exc)) from None


# -- the store ------------------------------------------------------------------------------


class KeyStore:
    """The venue's API keys, in memory, replayed from and appended to ``api-keys.log``.

    Lookups (``get``, ``hmac_secret``, ``ed25519_key``) are dictionary reads: the secrets are
    decrypted once at load, so signing checks pay no cryptography beyond the HMAC itself.
    """

    def __init__(
        self,
        directory: Path,
        *,
        clock: Callable[[], int] = _now_ms,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = Path(directory)
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._keys: dict[str, ApiKey] = {}
        self._order: list[str] = []
        self._secrets: dict[str, bytes] = {}
        self._ed25519: dict[str, Ed25519PublicKey] = {}
        #: bytes of the log applied so far (always the end of a whole line), and their lines
        self._offset = 0
        self._lines = 0
        self._last_miss = -MISS_REFRESH_S
        self._damage_logged_at = -1
        if not self.directory.exists():
            self.directory.mkdir(mode=0o700, parents=True)
            _fsync_dir(self.directory.parent)
        self._aes = AESGCM(_load_or_make_secret(self.directory / SECRET_NAME))
        self.log_path = self.directory / LOG_NAME
        self._replay()

    # -- reading --------------------------------------------------------------------------

    def get(self, api_key: str) -> ApiKey | None:
        """The key, live or revoked; ``None`` if no store made it. A known key is a dictionary
        read; an unknown one reads what other processes appended, at most once a second."""
        key = self._keys.get(api_key)
        if key is None:
            now = self._monotonic()
            if now - self._last_miss >= MISS_REFRESH_S:
                self._last_miss = now
                self.refresh(wait=False)
                key = self._keys.get(api_key)
        return key

    def for_account(self, account: int) -> list[ApiKey]:
        """The account's keys, live and revoked, oldest first (with those other processes
        made: the log's tail is read first)."""
        self.refresh()
        return [self._keys[k] for k in self._order if self._keys[k].account == account]

    def refresh(self, *, wait: bool = True) -> bool:
        """Apply the lines other processes appended since the last look (a last line still
        without its newline waits for the next look); whether anything was applied. Damage
        is logged (once) and leaves the store as it was: the next start refuses it. Not
        ``wait``: give up at once if a thread of this process is writing (an event loop never
        waits for another thread's fsync; the next look catches up)."""
        if not self._lock.acquire(blocking=wait):
            return False
        try:
            before = self._offset
            try:
                self._catch_up(None)
            except (KeyStoreError, OSError) as exc:
                if self._damage_logged_at != self._offset:
                    self._damage_logged_at = self._offset
                    log.error("%s cannot be followed: %s", self.log_path, exc)
            return self._offset != before
        finally:
            self._lock.release()

    def hmac_secret(self, api_key: str) -> bytes:
        """The HMAC signing key of a live HMAC key (the secret's ASCII bytes)."""
        secret = self._secrets.get(api_key)
        if secret is None:
            raise KeyStoreError(f"no live HMAC key {api_key[:8]!r}...")
        return secret

    def ed25519_key(self, api_key: str) -> Ed25519PublicKey:
        """The registered public key of a live Ed25519 key."""
        key = self._ed25519.get(api_key)
        if key is None:
            raise KeyStoreError(f"no live Ed25519 key {api_key[:8]!r}...")
        return key

    # -- actions --------------------------------------------------------------------------

    def create_hmac(
        self,
        account: int,
        permissions: Iterable[str],
        label: str,
        ips: Iterable[str],
        by: str,
    ) -> tuple[ApiKey, str]:
        """A new HMAC key and its secret; the secret is returned this once and never again."""
        key = self._new_key(account, permissions, label, ips, by, "HMAC")
        secret = _random_token()
        nonce = os.urandom(_NONCE)
        sealed = self._aes.encrypt(nonce, secret.encode("ascii"), key.api_key.encode("ascii"))
        record = self._created_record(key)
        record["secret"] = {
            "nonce": base64.b64encode(nonce).decode("ascii"),
            "sealed": base64.b64encode(sealed).decode("ascii"),
        }
        with self._writing() as fd:
            self._write(fd, record)
            self._add(key)
            self._secrets[key.api_key] = secret.encode("ascii")
        log.info("API key %s... (HMAC) created for account %d by %s", key.api_key[:8], account, by)
        return key, secret

    def create_ed25519(
        self,
        account: int,
        permissions: Iterable[str],
        label: str,
        ips: Iterable[str],
        public_key_pem: str,
        by: str,
    ) -> ApiKey:
        """A new key whose requests are signed with the private half of ``public_key_pem``."""
        public = _load_ed25519(public_key_pem)
        key = self._new_key(account, permissions, label, ips, by, "ED25519")
        record = self._created_record(key)
        record["public_key_pem"] = _pem_of(public)
        with self._writing() as fd:
            self._write(fd, record)
            self._add(key)
            self._ed25519[key.api_key] = public
        log.info(
            "API key %s... (ED25519) created for account %d by %s", key.api_key[:8], account, by
        )
        return key

    def revoke(self, api_key: str, by: str) -> ApiKey:
        """Revokes a key for good; revoking a revoked key changes nothing and returns it."""
        by = _check_text("by", by, MAX_BY, empty=False)
        unknown = KeyStoreError(
            f"unknown API key {_one_line(repr(api_key))[:12]}...: nothing revoked"
        )
        if not isinstance(api_key, str) or not self.log_path.exists():
            raise unknown
        with self._writing() as fd:  # caught up first: the key may be another process's
            key = self._keys.get(api_key)
            if key is None:
                raise unknown
            if not key.live:
                return key
            now = self._clock()
            self._write(fd, {"t": now, "action": "revoked", "api_key": api_key, "by": by})
            revoked = self._revoked(key, now)
        log.info("API key %s... of account %d revoked by %s", api_key[:8], key.account, by)
        return revoked

    # -- internals ------------------------------------------------------------------------

    def _new_key(
        self,
        account: int,
        permissions: Iterable[str],
        label: str,
        ips: Iterable[str],
        by: str,
        kind: KeyKind,
    ) -> ApiKey:
        account = _check_account(account)
        perms = _check_permissions(permissions)
        label = _check_text("label", label, MAX_LABEL, empty=True)
        allow = _check_ips(ips)
        check_grant(perms, allow)
        by = _check_text("by", by, MAX_BY, empty=False)
        api_key = _random_token()
        while api_key in self._keys:  # pragma: no cover - 62**64 keys
            api_key = _random_token()
        return ApiKey(api_key, account, kind, perms, label, allow, self._clock(), 0, by)

    @staticmethod
    def _created_record(key: ApiKey) -> dict[str, Any]:
        return {
            "t": key.created_ms,
            "action": "created",
            "api_key": key.api_key,
            "account": key.account,
            "kind": key.kind,
            "permissions": sorted(key.permissions),
            "label": key.label,
            "ips": list(key.ip_allowlist),
            "by": key.created_by,
        }

    @contextlib.contextmanager
    def _writing(self) -> Iterator[int]:
        """The log open for appending, under this store's lock and an exclusive ``flock`` (held
        by every writing process while it writes and fsyncs, so a torn tail seen under it is a
        crashed writer's), caught up with what others appended, any torn tail cut."""
        with self._lock:
            new = not self.log_path.exists()
            fd = os.open(self.log_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if new:
                    _fsync_dir(self.directory)
                self._catch_up(fd)
                yield fd
            finally:
                os.close(fd)  # releases the flock

    def _write(self, fd: int, record: dict[str, Any]) -> None:
        """One line in one ``write()``, fsynced before anything is shown of it."""
        data = (json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")
        written = os.write(fd, data)
        if written != len(data):  # a full disk: cut the fragment so the log stays whole
            os.ftruncate(fd, self._offset)
            raise OSError(f"{self.log_path}: short write ({written} of {len(data)} bytes)")
        os.fsync(fd)
        self._offset += len(data)
        self._lines += 1

    def _catch_up(self, fd: int | None) -> None:
        """Apply the whole lines after ``_offset``. With ``fd`` (the log, under its ``flock``)
        a torn last line is a crashed writer's and is cut; without, it may be a line being
        written and is left for later."""
        try:
            size = os.stat(self.log_path).st_size if fd is None else os.fstat(fd).st_size
        except FileNotFoundError:
            return
        if size <= self._offset:
            return
        if fd is None:
            with open(self.log_path, "rb") as f:
                f.seek(self._offset)
                data = f.read(size - self._offset)
        else:
            data = os.pread(fd, size - self._offset, self._offset)
        end = data.rfind(b"\n") + 1
        if fd is not None and end < len(data):
            log.warning(
                "%s: ignoring a torn last line (%d bytes, a write cut short); truncating it",
                self.log_path,
                len(data) - end,
            )
            os.ftruncate(fd, self._offset + end)
            os.fsync(fd)
        for raw in data[:end].split(b"\n")[:-1]:
            number = self._lines + 1
            try:
                self._apply(json.loads(raw.decode("utf-8")))
            except KeyStoreError as exc:
                raise KeyStoreError(f"{self.log_path} line {number}: {exc}") from None
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                reason = _one_line(f"{type(exc).__name__}: {exc}")[:120]
                raise KeyStoreError(f"{self.log_path} line {number} is damaged: {reason}") from None
            self._offset += len(raw) + 1
            self._lines = number

    def _add(self, key: ApiKey) -> None:
        self._keys[key.api_key] = key
        self._order.append(key.api_key)

    def _revoked(self, key: ApiKey, now: int) -> ApiKey:
        revoked = ApiKey(
            key.api_key,
            key.account,
            key.kind,
            key.permissions,
            key.label,
            key.ip_allowlist,
            key.created_ms,
            max(now, 1),
            key.created_by,
        )
        self._keys[key.api_key] = revoked
        self._secrets.pop(key.api_key, None)
        self._ed25519.pop(key.api_key, None)
        return revoked

    def _replay(self) -> None:
        """Load the whole log, under its ``flock`` so that a torn tail is known to be a crashed
        writer's (and cut) rather than a line another process is writing."""
        try:
            fd = os.open(self.log_path, os.O_RDWR | os.O_APPEND)
        except FileNotFoundError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._catch_up(fd)
        finally:
            os.close(fd)

    def _apply(self, record: object) -> None:
        if not isinstance(record, dict):
            raise KeyStoreError("not a JSON object")
        action = record.get("action")
        t = record["t"]
        api_key = record["api_key"]
        if not isinstance(t, int) or isinstance(t, bool) or t < 0:
            raise KeyStoreError("bad time")
        if not isinstance(api_key, str) or not is_key_format(api_key):
            raise KeyStoreError("bad API key")
        if action == "revoked":
            key = self._keys.get(api_key)
            if key is None:
                raise KeyStoreError(f"revokes unknown key {api_key[:8]}...")
            _check_text("by", record["by"], MAX_BY, empty=False)
            if key.live:
                self._revoked(key, t)
            return
        if action != "created":
            raise KeyStoreError(f"unknown action {_one_line(repr(action))[:40]}")
        if api_key in self._keys:
            raise KeyStoreError(f"creates key {api_key[:8]}... twice")
        kind = record["kind"]
        if kind not in ("HMAC", "ED25519"):
            raise KeyStoreError("bad kind")
        perms = record["permissions"]
        ips = record["ips"]
        if not isinstance(perms, list) or not isinstance(ips, list):
            raise KeyStoreError("permissions and ips must be lists")
        key = ApiKey(
            api_key=api_key,
            account=_check_account(record["account"]),
            kind=kind,
            permissions=_check_permissions(perms),
            label=_check_text("label", record["label"], MAX_LABEL, empty=True),
            ip_allowlist=_check_ips(ips),
            created_ms=t,
            revoked_ms=0,
            created_by=_check_text("by", record["by"], MAX_BY, empty=False),
        )
        if kind == "HMAC":
            sealed = record["secret"]
            try:
                nonce = base64.b64decode(sealed["nonce"], validate=True)
                box = base64.b64decode(sealed["sealed"], validate=True)
                secret = self._aes.decrypt(nonce, box, api_key.encode("ascii"))
            except InvalidTag:
                raise KeyStoreError(
                    f"the secret of key {api_key[:8]}... does not decrypt: "
                    f"{SECRET_NAME} is not the key this log was written with"
                ) from None
            if not is_key_format(secret.decode("ascii", "replace")):
                raise KeyStoreError("bad secret")
            self._secrets[api_key] = secret
        else:
            self._ed25519[api_key] = _load_ed25519(record["public_key_pem"])
        self._add(key)
