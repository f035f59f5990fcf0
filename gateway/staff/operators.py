"""Staff accounts: operators who log in with a password and a TOTP code, their browser
sessions, and service tokens for automation. The admin API asks :meth:`OperatorStore.session`
or :meth:`OperatorStore.principal` who is calling, and :meth:`Principal.can` what they may do.

Passwords are hashed with scrypt (``hashlib.scrypt``, standard library: no new native
dependency, memory-hard like argon2, and its salt and cost (n, r, p) are stored with each hash
so the cost can be raised for new hashes without breaking old ones). The default cost is
n=2**14, r=8, p=1 (16 MiB, about 50 ms): a login costs that once, a guesser pays it per guess.

TOTP is RFC 6238 through pyotp: 30-second steps, 6 digits, a code of the step before or after
accepted for clock drift, and a code never accepted twice: the last accepted step is kept per
operator (in the log, so a restart does not forget it) and any code of that step or an earlier
one is refused as reused. TOTP secrets are sealed with AES-256-GCM (the operator's name as
associated data) under a key in ``staff.secret`` (mode 0600, ``gateway.secretfile``), as the
API key store seals its HMAC secrets; the provisioning URI is returned once, when the operator
is added or their TOTP is reset, and never again.

After ``MAX_FAILURES`` failed logins in a row (wrong password, wrong code, reused code) an
operator is locked for ``LOCK_MS``; a login from an address not on their IP allowlist is
refused before the password is looked at and does not count (an outsider cannot lock staff
out). A refusal names its reason for the audit trail; what the admin API tells the caller is
its own business (a single "login failed" is wise).

Sessions (browsers) and service tokens (automation) are random 32-byte tokens, returned once;
the store keeps only their SHA-256. A session ends at its expiry, after ``idle_ms`` without
use, at logout, or when its operator is disabled or their password or TOTP is reset. Its roles
are the operator's roles of the moment. A token has the roles it was made with, an expiry and
can be revoked. The idle clock is kept in memory: after a restart a session's last use counts
from its login, so a restart may end idle sessions early, never late.

The store is an append-only JSON-lines log, ``staff.log``, shared by processes as
``gateway.rest.keys`` shares ``api-keys.log`` (same patterns): each action is one line,
written in one ``write()`` under an exclusive ``flock``, fsynced before the method returns,
after catching up with what other processes appended; replay cuts a torn last line and refuses
other damage. The log is also the audit record of every action and login attempt. It lives in
``<data_dir>/staff/``, never in the journal: staff are not part of the market's state. A
running venue sees what ``venue operator`` did at its next login call (which catches up under
the lock) and, for sessions and tokens, within ``REFRESH_S``.

Nothing secret is ever in the log in clear, in an event or in the process log.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.secretfile import SecretFileError, fsync_dir, load_or_make_key
from gateway.staff.roles import allowed, check_roles

__all__ = [
    "DEFAULT_SCRYPT",
    "LOCK_MS",
    "LOG_NAME",
    "MAX_FAILURES",
    "MIN_PASSWORD",
    "REASONS",
    "SECRET_NAME",
    "Operator",
    "OperatorStore",
    "Principal",
    "Refusal",
    "ScryptParams",
    "ServiceToken",
    "Session",
    "StaffEvent",
    "StaffStoreError",
    "hash_password",
    "verify_password",
]

log = logging.getLogger("gateway.staff.operators")

LOG_NAME = "staff.log"
SECRET_NAME = "staff.secret"
ISSUER = "venue"
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
MAX_NAME = 64
MAX_BY = 128
MAX_IPS = 100
MAX_FAILURES = 5
LOCK_MS = 15 * 60 * 1000
STEP_S = 30
SESSION_MS = 8 * 3600 * 1000
IDLE_MS = 30 * 60 * 1000
MAX_TTL_S = 366 * 86_400
#: Least time between two reads of the log's tail asked for by session and token lookups.
REFRESH_S = 1.0
_NONCE = 12
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_CODE = re.compile(r"[0-9]{6}")
SESSION_PREFIX = "vss_"
TOKEN_PREFIX = "vst_"

# Why a login is refused (``Refusal.reason``, the event's outcome).
UNKNOWN = "unknown operator"
WRONG_PASSWORD = "wrong password"
WRONG_CODE = "wrong code"
REUSED_CODE = "reused code"
DISABLED = "disabled"
LOCKED = "locked"
IP_NOT_ALLOWED = "ip not allowed"
REASONS = frozenset(
    {UNKNOWN, WRONG_PASSWORD, WRONG_CODE, REUSED_CODE, DISABLED, LOCKED, IP_NOT_ALLOWED}
)
#: The refusals that count towards a lockout: guesses at a credential.
_COUNTED = frozenset({WRONG_PASSWORD, WRONG_CODE, REUSED_CODE})


class StaffStoreError(ValueError):
    """Bad input to the store, or a store that cannot be trusted; the message is one line."""


# -- passwords --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScryptParams:
    """scrypt's cost: ``n`` (a power of two), ``r``, ``p``. Kept with each hash."""

    n: int = 2**14
    r: int = 8
    p: int = 1

    def check(self) -> ScryptParams:
        n, r, p = self.n, self.r, self.p
        for v in (n, r, p):
            if not isinstance(v, int) or isinstance(v, bool):
                raise StaffStoreError("scrypt parameters must be integers")
        if not (2**10 <= n <= 2**20) or n & (n - 1):
            raise StaffStoreError(f"scrypt n={n}: a power of two from 2**10 to 2**20")
        if not (1 <= r <= 32 and 1 <= p <= 16) or 128 * n * r * p > 2**30:
            raise StaffStoreError(f"scrypt r={r} p={p}: out of bounds")
        return self


DEFAULT_SCRYPT = ScryptParams()


def _scrypt(password: str, salt: bytes, params: ScryptParams) -> bytes:
    n, r, p = params.n, params.r, params.p
    return hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=128 * n * r * p + 2**21,
        dklen=32,
    )


def hash_password(password: str, params: ScryptParams = DEFAULT_SCRYPT) -> dict[str, Any]:
    """The record of ``password``'s hash: algorithm, cost, salt and hash (no password)."""
    params.check()
    salt = os.urandom(16)
    digest = _scrypt(password, salt, params)
    return {
        "alg": "scrypt",
        "n": params.n,
        "r": params.r,
        "p": params.p,
        "salt": base64.b64encode(salt).decode("ascii"),
        "hash": base64.b64encode(digest).decode("ascii"),
    }


def _check_hash_record(record: object) -> tuple[ScryptParams, bytes, bytes]:
    if not isinstance(record, dict) or record.get("alg") != "scrypt":
        raise StaffStoreError("bad password hash")
    params = ScryptParams(record["n"], record["r"], record["p"]).check()
    salt = base64.b64decode(record["salt"], validate=True)
    digest = base64.b64decode(record["hash"], validate=True)
    if len(salt) < 16 or len(digest) != 32:
        raise StaffStoreError("bad password hash")
    return params, salt, digest


def verify_password(password: str, record: dict[str, Any]) -> bool:
    """Whether ``password`` is the one ``record`` (from :func:`hash_password`) was made of;
    compared in constant time."""
    params, salt, digest = _check_hash_record(record)
    return hmac.compare_digest(_scrypt(password, salt, params), digest)


def _check_password(password: object) -> str:
    if not isinstance(password, str):
        raise StaffStoreError("the password must be a string")
    if len(password) < MIN_PASSWORD:
        raise StaffStoreError(f"the password is shorter than {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise StaffStoreError(f"the password is longer than {MAX_PASSWORD} characters")
    return password


# -- what the store shows ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an operator through a session, or a service token."""

    kind: Literal["operator", "token"]
    name: str
    roles: frozenset[str]

    def can(self, permission: str) -> bool:
        return allowed(self.roles, permission)


@dataclass(frozen=True, slots=True)
class StaffEvent:
    """One line of an audit trail: never a password, code, secret or token."""

    time_ms: int
    operator: str
    action: str
    ip: str
    outcome: str
    subject: str = ""  # what was acted on ("approval 3"), when anything


@dataclass(frozen=True, slots=True)
class Session:
    """A successful login: ``token`` is shown this once (the store keeps its hash)."""

    token: str
    principal: Principal
    expires_ms: int
    event: StaffEvent


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused login and why (one of ``REASONS``)."""

    reason: str
    event: StaffEvent


@dataclass(frozen=True, slots=True)
class Operator:
    """An operator's public fields."""

    name: str
    roles: frozenset[str]
    ip_allowlist: tuple[str, ...]
    disabled: bool
    created_ms: int
    created_by: str
    locked_until_ms: int


@dataclass(frozen=True, slots=True)
class ServiceToken:
    """A service token's public fields; ``token_id`` (the start of its hash) names it."""

    token_id: str
    roles: frozenset[str]
    created_ms: int
    expires_ms: int
    created_by: str
    revoked_ms: int


@dataclass(slots=True)
class _Account:
    name: str
    roles: frozenset[str]
    password: dict[str, Any]
    totp: str
    ips: tuple[str, ...]
    created_ms: int
    created_by: str
    disabled: bool = False
    failures: int = 0
    locked_until_ms: int = 0
    last_step: int = -1
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(default=())


@dataclass(slots=True)
class _Session:
    name: str
    created_ms: int
    expires_ms: int
    seen_ms: int


# -- validation -------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def check_name(name: object) -> str:
    """An operator's name as the store takes it, or ``StaffStoreError``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = _one_line(repr(name))[:40]
        raise StaffStoreError(
            f"bad operator name {shown}: 1 to {MAX_NAME} letters, digits and . _ @ -,"
            " starting with a letter or digit"
        )
    return name


def _check_by(by: object) -> str:
    if not isinstance(by, str) or not by.strip() or len(by) > MAX_BY or not by.isprintable():
        raise StaffStoreError(f"'by' must be printable text of 1 to {MAX_BY} characters")
    return by


def _roles(roles: Iterable[str]) -> frozenset[str]:
    try:
        return check_roles(roles)
    except (ValueError, TypeError) as exc:
        raise StaffStoreError(str(exc)) from None


def check_ips(ips: Iterable[str]) -> tuple[str, ...]:
    """An IP allowlist as the store keeps it (normalised), or ``StaffStoreError``."""
    if isinstance(ips, str):
        raise StaffStoreError("ips must be a collection of addresses, not a string")
    out: list[str] = []
    for ip in ips:
        if not isinstance(ip, str):
            raise StaffStoreError(f"bad IP {ip!r}: not a string")
        try:
            text = str(ipaddress.ip_network(ip, strict=True))
        except ValueError as exc:
            raise StaffStoreError(f"bad IP or network {_one_line(repr(ip))[:60]}: {exc}") from None
        if text not in out:
            out.append(text)
    if len(out) > MAX_IPS:
        raise StaffStoreError(f"{len(out)} IPs in the allowlist; at most {MAX_IPS}")
    return tuple(out)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _new_token(prefix: str) -> str:
    return prefix + base64.urlsafe_b64encode(os.urandom(32)).decode("ascii").rstrip("=")


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < -1:
        raise StaffStoreError("bad integer")
    return value


# -- the store --------------------------------------------------------------------------------


class OperatorStore:
    """The venue's operators, sessions and service tokens, replayed from and appended to
    ``staff.log`` in ``directory`` (``<data_dir>/staff``).

    ``clock`` gives milliseconds since the epoch; every method that takes ``now`` uses it when
    ``now`` is ``None``. ``scrypt`` is the cost of new password hashes. ``on_event`` is called
    with every action and login this store makes (after it is durable)."""

    def __init__(
        self,
        directory: Path,
        *,
        clock: Callable[[], int] = _now_ms,
        monotonic: Callable[[], float] = time.monotonic,
        scrypt: ScryptParams = DEFAULT_SCRYPT,
        session_ms: int = SESSION_MS,
        idle_ms: int = IDLE_MS,
        on_event: Callable[[StaffEvent], None] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self._clock = clock
        self._monotonic = monotonic
        self._scrypt = scrypt.check()
        self._session_ms = session_ms
        self._idle_ms = idle_ms
        self._on_event = on_event
        self._lock = threading.Lock()
        self._accounts: dict[str, _Account] = {}
        self._sessions: dict[str, _Session] = {}
        self._tokens: dict[str, tuple[str, ServiceToken]] = {}  # hash -> (id, token)
        self._token_ids: dict[str, str] = {}  # id -> hash
        self._offset = 0
        self._lines = 0
        self._last_refresh = -REFRESH_S
        self._damage_logged_at = -1
        self._dummy: dict[str, Any] | None = None
        if not self.directory.exists():
            self.directory.mkdir(mode=0o700, parents=True)
            fsync_dir(self.directory.parent)
        try:
            self._aes = AESGCM(load_or_make_key(self.directory / SECRET_NAME))
        except SecretFileError as exc:
            raise StaffStoreError(str(exc)) from None
        self.log_path = self.directory / LOG_NAME
        self._replay()

    # -- reading ----------------------------------------------------------------------------

    def operators(self) -> list[Operator]:
        """Every operator, in the order they were added (with those other processes added)."""
        self.refresh()
        return [self._public(a) for a in self._accounts.values()]

    def operator(self, name: str) -> Operator | None:
        self.refresh()
        account = self._accounts.get(name)
        return None if account is None else self._public(account)

    def tokens(self) -> list[ServiceToken]:
        """Every service token, live, expired and revoked, oldest first (never the token)."""
        self.refresh()
        return [token for _, token in self._tokens.values()]

    def session(self, token: str, now: int | None = None) -> Principal | None:
        """The operator a live session token belongs to, or ``None``; counts as use (the idle
        clock restarts)."""
        if not isinstance(token, str) or not token.startswith(SESSION_PREFIX):
            return None
        self._maybe_refresh()
        now = self._clock() if now is None else now
        key = _digest(token)
        with self._lock:
            found = self._sessions.get(key)
            if found is None:
                return None
            account = self._accounts.get(found.name)
            if (
                account is None
                or account.disabled
                or now >= found.expires_ms
                or now - found.seen_ms >= self._idle_ms
            ):
                del self._sessions[key]
                return None
            found.seen_ms = max(found.seen_ms, now)
            return Principal("operator", account.name, account.roles)

    def principal(self, token: str, now: int | None = None) -> Principal | None:
        """Who a token is: a session's operator or a live service token; ``None`` otherwise."""
        if isinstance(token, str) and token.startswith(SESSION_PREFIX):
            return self.session(token, now)
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX):
            return None
        self._maybe_refresh()
        now = self._clock() if now is None else now
        found = self._tokens.get(_digest(token))
        if found is None and self.refresh():  # made by another process just now?
            found = self._tokens.get(_digest(token))
        if found is None:
            return None
        record = found[1]
        if record.revoked_ms or now >= record.expires_ms:
            return None
        return Principal("token", f"token:{record.token_id}", record.roles)

    def refresh(self, *, wait: bool = True) -> bool:
        """Apply what other processes appended; whether anything was. Damage is logged once
        and leaves the store as it was (the next start refuses it)."""
        if not self._lock.acquire(blocking=wait):
            return False
        try:
            before = self._offset
            try:
                self._catch_up(None)
            except (StaffStoreError, OSError) as exc:
                if self._damage_logged_at != self._offset:
                    self._damage_logged_at = self._offset
                    log.error("%s cannot be followed: %s", self.log_path, exc)
            return self._offset != before
        finally:
            self._lock.release()

    # -- operators --------------------------------------------------------------------------

    def add(
        self,
        name: str,
        roles: Iterable[str],
        password: str,
        by: str,
        ips: Iterable[str] = (),
    ) -> str:
        """Add an operator; returns their TOTP provisioning URI (``otpauth://``), shown once."""
        name = check_name(name)
        wanted = _roles(roles)
        password = _check_password(password)
        by = _check_by(by)
        allow = check_ips(ips)
        secret = pyotp.random_base32()
        record = {
            "action": "operator_added",
            "name": name,
            "roles": sorted(wanted),
            "ips": list(allow),
            "by": by,
            "password": hash_password(password, self._scrypt),
            "totp": self._seal(name, secret),
        }
        with self._writing() as fd:
            if name in self._accounts:
                raise StaffStoreError(f"operator {name} exists already")
            self._commit(fd, record)
        self._emit(name, "operator.add", "", "ok")
        log.info("operator %s added by %s", name, by)
        return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)

    def disable(self, name: str, by: str) -> None:
        """Disable an operator: no login, and their sessions end."""
        self._change(name, by, {"action": "disabled"}, "operator.disable")

    def enable(self, name: str, by: str) -> None:
        """Enable a disabled operator (and lift a lockout)."""
        self._change(name, by, {"action": "enabled"}, "operator.enable")

    def set_roles(self, name: str, roles: Iterable[str], by: str) -> None:
        """Replace an operator's roles; their sessions have the new roles at once."""
        wanted = _roles(roles)
        self._change(name, by, {"action": "roles_set", "roles": sorted(wanted)}, "operator.roles")

    def set_ips(self, name: str, ips: Iterable[str], by: str) -> None:
        """Replace an operator's IP allowlist (empty: any address)."""
        allow = check_ips(ips)
        self._change(name, by, {"action": "ips_set", "ips": list(allow)}, "operator.ips")

    def reset(
        self, name: str, by: str, *, password: str | None = None, totp: bool = False
    ) -> str | None:
        """A new password and/or a new TOTP secret; returns the new provisioning URI if the
        TOTP was reset (shown once), else ``None``. The operator's sessions end."""
        if password is None and not totp:
            raise StaffStoreError("a reset needs a new password, a new TOTP secret, or both")
        name = check_name(name)
        record: dict[str, Any] = {"action": "reset"}
        if password is not None:
            record["password"] = hash_password(_check_password(password), self._scrypt)
        secret = pyotp.random_base32() if totp else None
        if secret is not None:
            record["totp"] = self._seal(name, secret)
        self._change(name, by, record, "operator.reset")
        if secret is None:
            return None
        return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)

    # -- login ------------------------------------------------------------------------------

    def login(
        self, name: str, password: str, code: str, ip: str, now: int | None = None
    ) -> Session | Refusal:
        """Check a login; a :class:`Session` or a :class:`Refusal`, each with its event, each
        recorded in the log before it is returned. Holds the store's lock for one scrypt."""
        shown_ip = _one_line(ip)[:64] if isinstance(ip, str) else "?"
        shown_name = _one_line(name)[:MAX_NAME] if isinstance(name, str) else "?"
        with self._writing() as fd:
            t = self._clock() if now is None else now
            account = self._accounts.get(name) if isinstance(name, str) else None
            reason, step = self._check_login(account, password, code, ip, t)
            if reason is not None:
                self._commit(
                    fd,
                    {"action": "login_failed", "name": shown_name, "ip": shown_ip, "why": reason},
                    t,
                )
                event = StaffEvent(t, shown_name, "login", shown_ip, reason)
                result: Session | Refusal = Refusal(reason, event)
            else:
                assert account is not None
                token = _new_token(SESSION_PREFIX)
                expires = t + self._session_ms
                self._commit(
                    fd,
                    {
                        "action": "login_ok",
                        "name": account.name,
                        "ip": shown_ip,
                        "step": step,
                        "session": _digest(token),
                        "expires": expires,
                    },
                    t,
                )
                event = StaffEvent(t, account.name, "login", shown_ip, "ok")
                principal = Principal("operator", account.name, account.roles)
                result = Session(token, principal, expires, event)
        if self._on_event is not None:
            self._on_event(result.event)
        return result

    def logout(self, token: str, now: int | None = None) -> bool:
        """End a session; whether there was one."""
        if not isinstance(token, str) or not token.startswith(SESSION_PREFIX):
            return False
        key = _digest(token)
        with self._writing() as fd:
            found = self._sessions.get(key)
            if found is None:
                return False
            t = self._clock() if now is None else now
            self._commit(fd, {"action": "logout", "session": key}, t)
        self._emit(found.name, "logout", "", "ok", t)
        return True

    def confirm(
        self, name: str, code: str, ip: str, purpose: str, now: int | None = None
    ) -> Refusal | None:
        """A fresh TOTP code from a logged-in operator to confirm ``purpose`` (an approval, say):
        ``None`` when it is good, else a :class:`Refusal`. The same rules as a login's second
        factor (a code is accepted once, wrong codes count towards the lockout, the IP
        allowlist holds); recorded in the log before it returns."""
        shown_ip = _one_line(ip)[:64] if isinstance(ip, str) else "?"
        shown_name = _one_line(name)[:MAX_NAME] if isinstance(name, str) else "?"
        what = _one_line(purpose)[:MAX_BY]
        with self._writing() as fd:
            t = self._clock() if now is None else now
            account = self._accounts.get(name) if isinstance(name, str) else None
            reason, step = self._check_code(account, code, ip, t)
            if reason is not None:
                record: dict[str, Any] = {
                    "action": "code_failed",
                    "name": shown_name,
                    "ip": shown_ip,
                    "why": reason,
                    "for": what,
                }
                self._commit(fd, record, t)
            else:
                assert account is not None
                record = {"action": "code_ok", "name": account.name, "step": step, "for": what}
                self._commit(fd, record, t)
        outcome = "ok" if reason is None else reason
        event = StaffEvent(t, shown_name, "confirm", shown_ip, outcome, what)
        if self._on_event is not None:
            self._on_event(event)
        return None if reason is None else Refusal(reason, event)

    # -- service tokens ---------------------------------------------------------------------

    def create_token(
        self, roles: Iterable[str], ttl_s: int, by: str, now: int | None = None
    ) -> tuple[ServiceToken, str]:
        """A service token with ``roles`` for ``ttl_s`` seconds; the token is returned this
        once (the store keeps its hash)."""
        wanted = _roles(roles)
        if not isinstance(ttl_s, int) or isinstance(ttl_s, bool) or not 0 < ttl_s <= MAX_TTL_S:
            raise StaffStoreError(f"ttl must be from 1 second to {MAX_TTL_S} seconds")
        by = _check_by(by)
        token = _new_token(TOKEN_PREFIX)
        key = _digest(token)
        with self._writing() as fd:
            t = self._clock() if now is None else now
            record = {
                "action": "token_created",
                "hash": key,
                "roles": sorted(wanted),
                "expires": t + ttl_s * 1000,
                "by": by,
            }
            self._commit(fd, record, t)
            made = self._tokens[key][1]
        self._emit(by, "token.create", "", f"ok {made.token_id}", t)
        return made, token

    def revoke_token(self, token_id: str, by: str) -> ServiceToken:
        """Revoke a service token by its id; revoking a revoked token changes nothing."""
        by = _check_by(by)
        with self._writing() as fd:
            key = self._token_ids.get(token_id) if isinstance(token_id, str) else None
            if key is None:
                raise StaffStoreError(f"no service token {_one_line(repr(token_id))[:20]}")
            if not self._tokens[key][1].revoked_ms:
                self._commit(fd, {"action": "token_revoked", "hash": key, "by": by})
            made = self._tokens[key][1]
        self._emit(by, "token.revoke", "", f"ok {made.token_id}")
        return made

    # -- internals --------------------------------------------------------------------------

    def _check_login(
        self, account: _Account | None, password: object, code: object, ip: object, t: int
    ) -> tuple[str | None, int]:
        if account is None:
            self._burn(password)  # the same time as a wrong password: names are not probed
            return UNKNOWN, -1
        if account.disabled:
            return DISABLED, -1
        if t < account.locked_until_ms:
            return LOCKED, -1
        if account.networks and not self._ip_allowed(account, ip):
            return IP_NOT_ALLOWED, -1
        if not isinstance(password, str) or not 0 < len(password) <= MAX_PASSWORD:
            return WRONG_PASSWORD, -1
        if not verify_password(password, account.password):
            return WRONG_PASSWORD, -1
        return self._totp(account, code, t)

    def _check_code(
        self, account: _Account | None, code: object, ip: object, t: int
    ) -> tuple[str | None, int]:
        if account is None:
            return UNKNOWN, -1
        if account.disabled:
            return DISABLED, -1
        if t < account.locked_until_ms:
            return LOCKED, -1
        if account.networks and not self._ip_allowed(account, ip):
            return IP_NOT_ALLOWED, -1
        return self._totp(account, code, t)

    @staticmethod
    def _totp(account: _Account, code: object, t: int) -> tuple[str | None, int]:
        if not isinstance(code, str) or not _CODE.fullmatch(code):
            return WRONG_CODE, -1
        totp = pyotp.TOTP(account.totp)
        step = t // 1000 // STEP_S
        for candidate in (step, step - 1, step + 1):
            if hmac.compare_digest(totp.generate_otp(candidate), code):
                if candidate <= account.last_step:
                    return REUSED_CODE, -1
                return None, candidate
        return WRONG_CODE, -1

    @staticmethod
    def _ip_allowed(account: _Account, ip: object) -> bool:
        if not isinstance(ip, str) or len(ip) > 64:
            return False
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in network for network in account.networks)

    def _burn(self, password: object) -> None:
        if self._dummy is None:
            self._dummy = hash_password("not a password of anyone's", self._scrypt)
        if isinstance(password, str) and len(password) <= MAX_PASSWORD:
            verify_password(password, self._dummy)

    def _seal(self, name: str, secret: str) -> dict[str, str]:
        nonce = os.urandom(_NONCE)
        sealed = self._aes.encrypt(nonce, secret.encode("ascii"), b"totp:" + name.encode())
        return {
            "nonce": base64.b64encode(nonce).decode("ascii"),
            "sealed": base64.b64encode(sealed).decode("ascii"),
        }

    def _unseal(self, name: str, box: object) -> str:
        if not isinstance(box, dict):
            raise StaffStoreError("bad sealed TOTP secret")
        try:
            nonce = base64.b64decode(box["nonce"], validate=True)
            sealed = base64.b64decode(box["sealed"], validate=True)
            secret = self._aes.decrypt(nonce, sealed, b"totp:" + name.encode()).decode("ascii")
        except InvalidTag:
            raise StaffStoreError(
                f"the TOTP secret of {name} does not decrypt: "
                f"{SECRET_NAME} is not the key this log was written with"
            ) from None
        pyotp.TOTP(secret).byte_secret()  # a bad base32 secret raises here, not at a login
        return secret

    def _change(self, name: str, by: str, record: dict[str, Any], action: str) -> None:
        name = check_name(name)
        by = _check_by(by)
        with self._writing() as fd:
            if name not in self._accounts:
                raise StaffStoreError(f"no operator {name}")
            self._commit(fd, {**record, "name": name, "by": by})
        self._emit(name, action, "", "ok")
        log.info("%s %s by %s", action, name, by)

    def _emit(
        self, operator: str, action: str, ip: str, outcome: str, t: int | None = None
    ) -> None:
        if self._on_event is not None:
            self._on_event(
                StaffEvent(self._clock() if t is None else t, operator, action, ip, outcome)
            )

    def _public(self, account: _Account) -> Operator:
        return Operator(
            account.name,
            account.roles,
            account.ips,
            account.disabled,
            account.created_ms,
            account.created_by,
            account.locked_until_ms,
        )

    def _maybe_refresh(self) -> None:
        now = self._monotonic()
        if now - self._last_refresh >= REFRESH_S:
            self._last_refresh = now
            self.refresh(wait=False)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[int]:
        """The log open for appending, under this store's lock and an exclusive ``flock``,
        caught up with what others appended, any torn tail cut (as ``gateway.rest.keys``)."""
        with self._lock:
            new = not self.log_path.exists()
            fd = os.open(self.log_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if new:
                    fsync_dir(self.directory)
                self._catch_up(fd)
                yield fd
            finally:
                os.close(fd)

    def _commit(self, fd: int, record: dict[str, Any], t: int | None = None) -> None:
        """Write ``record`` (stamped with its time) as one fsynced line, then apply it."""
        record = {"t": self._clock() if t is None else t, **record}
        data = (json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")
        written = os.write(fd, data)
        if written != len(data):
            os.ftruncate(fd, self._offset)
            raise OSError(f"{self.log_path}: short write ({written} of {len(data)} bytes)")
        os.fsync(fd)
        self._offset += len(data)
        self._lines += 1
        self._apply(record)

    def _replay(self) -> None:
        try:
            fd = os.open(self.log_path, os.O_RDWR | os.O_APPEND)
        except FileNotFoundError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._catch_up(fd)
        finally:
            os.close(fd)

    def _catch_up(self, fd: int | None) -> None:
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
            except StaffStoreError as exc:
                raise StaffStoreError(f"{self.log_path} line {number}: {exc}") from None
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                reason = _one_line(f"{type(exc).__name__}: {exc}")[:120]
                raise StaffStoreError(
                    f"{self.log_path} line {number} is damaged: {reason}"
                ) from None
            self._offset += len(raw) + 1
            self._lines = number

    def _account(self, record: dict[str, Any]) -> _Account:
        account = self._accounts.get(record["name"])
        if account is None:
            raise StaffStoreError(f"names unknown operator {_one_line(repr(record['name']))[:40]}")
        return account

    def _end_sessions(self, name: str) -> None:
        for key in [k for k, s in self._sessions.items() if s.name == name]:
            del self._sessions[key]

    def _apply(self, record: object) -> None:
        """Apply one log line to the state: the only place the state changes, for this
        process's actions and for those it reads from others alike."""
        if not isinstance(record, dict):
            raise StaffStoreError("not a JSON object")
        t = _int(record["t"])
        action = record.get("action")
        if action == "operator_added":
            name = check_name(record["name"])
            if name in self._accounts:
                raise StaffStoreError(f"adds operator {name} twice")
            _check_hash_record(record["password"])
            ips = check_ips(record["ips"])
            self._accounts[name] = _Account(
                name=name,
                roles=_roles(record["roles"]),
                password=record["password"],
                totp=self._unseal(name, record["totp"]),
                ips=ips,
                created_ms=t,
                created_by=_check_by(record["by"]),
                networks=tuple(ipaddress.ip_network(ip) for ip in ips),
            )
        elif action == "disabled":
            self._account(record).disabled = True
            self._end_sessions(record["name"])
        elif action == "enabled":
            account = self._account(record)
            account.disabled = False
            account.failures = 0
            account.locked_until_ms = 0
        elif action == "roles_set":
            self._account(record).roles = _roles(record["roles"])
        elif action == "ips_set":
            account = self._account(record)
            account.ips = check_ips(record["ips"])
            account.networks = tuple(ipaddress.ip_network(ip) for ip in account.ips)
        elif action == "reset":
            account = self._account(record)
            if "password" in record:
                _check_hash_record(record["password"])
                account.password = record["password"]
            if "totp" in record:
                account.totp = self._unseal(account.name, record["totp"])
                account.last_step = -1
            account.failures = 0
            account.locked_until_ms = 0
            self._end_sessions(account.name)
        elif action in ("login_failed", "code_failed"):
            failed = self._accounts.get(record["name"])
            if failed is not None and record["why"] in _COUNTED:
                failed.failures += 1
                if failed.failures >= MAX_FAILURES:
                    failed.failures = 0
                    failed.locked_until_ms = t + LOCK_MS
        elif action == "login_ok":
            account = self._account(record)
            account.failures = 0
            account.last_step = max(account.last_step, _int(record["step"]))
            expires = _int(record["expires"])
            for key in [k for k, s in self._sessions.items() if s.expires_ms <= t]:
                del self._sessions[key]
            self._sessions[str(record["session"])] = _Session(account.name, t, expires, t)
        elif action == "code_ok":
            account = self._account(record)
            account.failures = 0
            account.last_step = max(account.last_step, _int(record["step"]))
        elif action == "logout":
            self._sessions.pop(str(record["session"]), None)
        elif action == "token_created":
            key = str(record["hash"])
            if key in self._tokens:
                raise StaffStoreError("creates a token twice")
            made = ServiceToken(
                key[:12],
                _roles(record["roles"]),
                t,
                _int(record["expires"]),
                _check_by(record["by"]),
                0,
            )
            self._tokens[key] = (made.token_id, made)
            self._token_ids[made.token_id] = key
        elif action == "token_revoked":
            key = str(record["hash"])
            if key not in self._tokens:
                raise StaffStoreError("revokes an unknown token")
            old = self._tokens[key][1]
            if not old.revoked_ms:
                revoked = ServiceToken(
                    old.token_id,
                    old.roles,
                    old.created_ms,
                    old.expires_ms,
                    old.created_by,
                    max(t, 1),
                )
                self._tokens[key] = (old.token_id, revoked)
        else:
            raise StaffStoreError(f"unknown action {_one_line(repr(action))[:40]}")
