"""FIX sessions added at run time through the admin API, beside those of ``[[fix.sessions]]``.

An operator (or ``venue simulate``, or onboarding tooling) adds a counterparty's session without
editing the configuration or restarting: its SenderCompID, type, accounts and a password (kept
only as its PBKDF2 hash, as ``venue fix-password`` makes them for the file). Disabling one ends
its connection and refuses its Logons from then on; its message store stays, so enabling it
again (adding it anew) resumes its sequence numbers.

Kept in ``<data_dir>/fix/sessions.log``: one JSON line per action, fsynced before the answer,
replayed at start (a torn last line, a write that never returned, is cut). One writer: the
venue's process. The configuration's sessions win: a name it uses cannot be added here.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gateway.fix.config import FixSessionConfig

__all__ = [
    "KINDS",
    "LOG_NAME",
    "ProvisionError",
    "ProvisionedSession",
    "ProvisionedSessions",
    "check_session",
]

LOG_NAME = "sessions.log"
KINDS = ("order_entry", "drop_copy", "market_data")
#: A SenderCompID as the FIX dictionary allows it, kept short and printable.
_COMP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_HASH = re.compile(r"pbkdf2_sha256\$[0-9]+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+")
MAX_ACCOUNTS = 1000


class ProvisionError(ValueError):
    """Bad input or a conflicting name; the message is one line naming the field."""


@dataclass(frozen=True, slots=True)
class ProvisionedSession:
    config: FixSessionConfig
    created_ms: int
    created_by: str
    disabled_ms: int = 0
    disabled_by: str = ""

    def to_json(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "targetCompId": cfg.target_comp_id,
            "type": cfg.kind.upper(),
            "accounts": list(cfg.accounts),
            "cancelOnDisconnect": cfg.cancel_on_disconnect,
            "throttlePerS": cfg.throttle_per_s,
            "maxMdSubscriptions": cfg.max_md_subscriptions,
            "created": self.created_ms,
            "createdBy": self.created_by,
            "disabled": self.disabled_ms or None,
            "disabledBy": self.disabled_by or None,
        }


def check_session(
    target: object,
    kind: object,
    accounts: object,
    password_hash: str,
    *,
    cancel_on_disconnect: bool = False,
    throttle_per_s: int = 0,
    max_md_subscriptions: int = 100,
) -> FixSessionConfig:
    """A session's configuration from outside input, or ``ProvisionError`` naming the field."""
    if not isinstance(target, str) or not _COMP_ID.fullmatch(target):
        raise ProvisionError(
            "targetCompId must be 1 to 32 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        )
    if kind not in KINDS:
        raise ProvisionError(f"type must be one of {', '.join(k.upper() for k in KINDS)}")
    if not isinstance(accounts, (list, tuple)) or not all(
        isinstance(a, int) and not isinstance(a, bool) and 0 < a < 1 << 63 for a in accounts
    ):
        raise ProvisionError("accounts must be a list of positive account numbers")
    if len(accounts) > MAX_ACCOUNTS or len(set(accounts)) != len(accounts):
        raise ProvisionError(f"accounts must be distinct, at most {MAX_ACCOUNTS}")
    if kind != "market_data" and not accounts:
        raise ProvisionError(f"a {kind} session needs at least one account")
    if not _HASH.fullmatch(password_hash):
        raise ProvisionError("a session added at run time needs a password")
    if not 0 <= throttle_per_s <= 1_000_000:
        raise ProvisionError("throttlePerS must be from 0 to 1000000")
    if not 0 <= max_md_subscriptions <= 100_000:
        raise ProvisionError("maxMdSubscriptions must be from 0 to 100000")
    return FixSessionConfig(
        target_comp_id=target,
        kind=str(kind),
        accounts=tuple(accounts),
        password_hash=password_hash,
        ed25519_public_key="",
        api_key="",
        cancel_on_disconnect=cancel_on_disconnect,
        max_md_subscriptions=max_md_subscriptions,
        reset_on_logon=False,
        reset_on_logout=False,
        reset_on_disconnect=False,
        reset_time_utc=None,
        throttle_per_s=throttle_per_s,
        throttle_logout_after_s=10,
    )


class ProvisionedSessions:
    """The sessions added at run time, from ``directory/sessions.log``. ``reserved``: the
    configuration's names, which cannot be added."""

    def __init__(
        self,
        directory: Path,
        reserved: frozenset[str] = frozenset(),
        clock: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOG_NAME
        self.reserved = reserved
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, ProvisionedSession] = {}
        self._replay()

    def all(self) -> list[ProvisionedSession]:
        return list(self._sessions.values())

    def enabled(self) -> list[FixSessionConfig]:
        return [s.config for s in self._sessions.values() if not s.disabled_ms]

    def get(self, target: str) -> ProvisionedSession | None:
        return self._sessions.get(target)

    def check_free(self, target: str) -> None:
        """``ProvisionError`` if ``target`` is the configuration's or enabled already."""
        if target in self.reserved:
            raise ProvisionError(f"{target} is a session of the configuration file")
        found = self._sessions.get(target)
        if found is not None and not found.disabled_ms:
            raise ProvisionError(f"{target} exists already (disable it first)")

    def add(self, config: FixSessionConfig, by: str) -> ProvisionedSession:
        """Add (or enable again, with new settings) a session; ``ProvisionError`` when the name
        is the configuration's or is enabled already."""
        target = config.target_comp_id
        with self._lock:
            if target in self.reserved:
                raise ProvisionError(f"{target} is a session of the configuration file")
            found = self._sessions.get(target)
            if found is not None and not found.disabled_ms:
                raise ProvisionError(f"{target} exists already (disable it first)")
            self._write({"action": "added", "by": by, **_encode(config)})
            return self._sessions[target]

    def disable(self, target: str, by: str) -> ProvisionedSession:
        with self._lock:
            found = self._sessions.get(target)
            if found is None:
                raise KeyError(target)
            if not found.disabled_ms:
                self._write({"action": "disabled", "target": target, "by": by})
            return self._sessions[target]

    # -- the log ------------------------------------------------------------------------------

    def _write(self, record: dict[str, Any]) -> None:
        record = {"t": self._clock(), **record}
        data = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            if os.write(fd, data) != len(data):
                raise OSError(f"{self.path}: short write")
            os.fsync(fd)
        finally:
            os.close(fd)
        self._apply(record)

    def _replay(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1
        if end < len(data):
            with open(self.path, "r+b") as f:
                f.truncate(end)
                os.fsync(f.fileno())
        for number, raw in enumerate(data[:end].split(b"\n")[:-1], 1):
            try:
                self._apply(json.loads(raw))
            except (ValueError, KeyError, TypeError) as exc:
                raise ProvisionError(f"{self.path} line {number} is damaged: {exc}") from None

    def _apply(self, record: dict[str, Any]) -> None:
        t = int(record["t"])
        if record["action"] == "added":
            config = _decode(record)
            if config.target_comp_id in self.reserved:
                return  # the file took the name since: the file wins (as at add)
            self._sessions[config.target_comp_id] = ProvisionedSession(config, t, str(record["by"]))
        elif record["action"] == "disabled":
            target = str(record["target"])
            found = self._sessions.get(target)
            if found is not None:
                self._sessions[target] = replace(
                    found, disabled_ms=max(t, 1), disabled_by=str(record["by"])
                )
        else:
            raise ValueError(f"unknown action {record['action']!r}")


def _encode(config: FixSessionConfig) -> dict[str, Any]:
    return {
        "target": config.target_comp_id,
        "kind": config.kind,
        "accounts": list(config.accounts),
        "password_hash": config.password_hash,
        "cancel_on_disconnect": config.cancel_on_disconnect,
        "throttle_per_s": config.throttle_per_s,
        "max_md_subscriptions": config.max_md_subscriptions,
    }


def _decode(record: dict[str, Any]) -> FixSessionConfig:
    return check_session(
        record["target"],
        record["kind"],
        record["accounts"],
        str(record["password_hash"]),
        cancel_on_disconnect=bool(record["cancel_on_disconnect"]),
        throttle_per_s=int(record["throttle_per_s"]),
        max_md_subscriptions=int(record["max_md_subscriptions"]),
    )
