"""The gateway's ``[fix]`` section of the configuration file and its ``[[fix.sessions]]``.

Optional: without ``[fix]`` the venue runs no FIX acceptor. fix_specs/README.md is what a client
is told; this is what the operator sets (config/README.md lists every key). Sessions without
credentials are refused unless the acceptor listens on loopback.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path

from engine.configfile import Table, absolute

__all__ = ["FixConfig", "FixSessionConfig", "read_fix"]


@dataclass(frozen=True, slots=True)
class FixSessionConfig:
    """``[[fix.sessions]]``: one counterparty of the FIX acceptor."""

    target_comp_id: str  # the counterparty's SenderCompID
    kind: str  # "order_entry", "drop_copy" or "market_data"
    accounts: tuple[int, ...]  # the accounts it may trade (order entry) or see (drop copy)
    password_hash: str  # "pbkdf2_sha256$<iterations>$<salt b64>$<hash b64>"; "" none
    ed25519_public_key: str  # base64 of the raw 32-byte key; "" none
    api_key: str  # Username(553) that must accompany the signed Logon; "" any
    cancel_on_disconnect: bool
    max_md_subscriptions: int
    reset_on_logon: bool
    reset_on_logout: bool
    reset_on_disconnect: bool
    reset_time_utc: int | None  # seconds after midnight UTC: daily sequence reset; None: never
    throttle_per_s: int  # inbound application messages per second; 0: no limit
    throttle_logout_after_s: int  # a breach in this many seconds in a row: Logout; 0: never


@dataclass(frozen=True, slots=True)
class FixConfig:
    """``[fix]``: the FIX 4.4 acceptor."""

    host: str
    port: int  # 0: any free port
    sender_comp_id: str
    dictionary: Path  # QuickFIX-format data dictionary, absolute
    application: str  # "venue": order entry, market data, drop copy; "echo": conformance
    store: str  # "file" (under data_dir/fix) or "memory"
    store_fsync: bool
    max_connections: int
    max_connections_per_ip: int
    max_logon_failures_per_minute: int  # per source address; then closed for the minute
    max_garbled_per_minute: int  # per logged-on session; then logged out (0: never)
    max_latency_s: int  # SendingTime accuracy; 0: not checked
    min_heartbeat_s: int  # HeartBtInt a Logon may ask for, at least
    max_heartbeat_s: int  # and at most
    sessions: tuple[FixSessionConfig, ...]
    tls_cert: Path | None = None  # PEM certificate chain: the acceptor speaks TLS
    tls_key: Path | None = None  # PEM private key of tls_cert


_COMP_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,32}")
_FIX_APPLICATIONS = ("venue", "echo")
_FIX_SESSION_KINDS = ("order_entry", "drop_copy", "market_data")
_PASSWORD_HASH_RE = re.compile(r"pbkdf2_sha256\$\d{4,9}\$[A-Za-z0-9+/=]{8,}\$[A-Za-z0-9+/=]{40,}")
#: Where the shipped data dictionaries are found when a relative path is not under the cwd.
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


def read_fix(root: Table) -> FixConfig | None:
    """``[fix]`` and its ``[[fix.sessions]]``: the FIX acceptor, optional."""
    if "fix" not in root:
        return None
    table = root.table("fix")
    sender = table.string("sender_comp_id")
    if not _COMP_ID_RE.fullmatch(sender):
        table.fail("sender_comp_id", "must be 1-32 letters, digits, '.', '_' or '-'")
    dictionary_name = table.string("dictionary")
    dictionary = absolute(dictionary_name)
    if not dictionary.is_file() and not Path(dictionary_name).is_absolute():
        dictionary = _PROJECT_ROOT / dictionary_name
    if not dictionary.is_file():
        table.fail("dictionary", f"no such file: {dictionary_name}")
    application = table.string("application")
    if application not in _FIX_APPLICATIONS:
        table.fail("application", f"unknown application {application!r} (expected venue or echo)")
    store = table.optional_string("store") or "file"
    if store not in ("file", "memory"):
        table.fail("store", f"unknown store {store!r} (expected file or memory)")
    sessions: list[FixSessionConfig] = []
    for session in table.tables("sessions"):
        target = session.string("target_comp_id")
        if not _COMP_ID_RE.fullmatch(target):
            session.fail("target_comp_id", "must be 1-32 letters, digits, '.', '_' or '-'")
        if any(s.target_comp_id == target for s in sessions):
            session.fail("target_comp_id", f"{target} is configured twice")
        kind = session.optional_string("type") or "order_entry"
        if kind not in _FIX_SESSION_KINDS:
            session.fail(
                "type", f"unknown type {kind!r} (expected {', '.join(_FIX_SESSION_KINDS)})"
            )
        accounts = _account_list(session, "accounts")
        if kind != "market_data" and application == "venue" and not accounts:
            session.fail("accounts", f"a {kind} session needs at least one account")
        password_hash = session.optional_string("password_hash")
        if password_hash and not _PASSWORD_HASH_RE.fullmatch(password_hash):
            session.fail(
                "password_hash", "must be made by `venue fix-password` (pbkdf2_sha256$...)"
            )
        public_key = session.optional_string("ed25519_public_key")
        if public_key:
            try:
                raw_key = base64.b64decode(public_key, validate=True)
            except ValueError:
                raw_key = b""
            if len(raw_key) != 32:
                session.fail("ed25519_public_key", "must be the base64 of a 32-byte Ed25519 key")
        sessions.append(
            FixSessionConfig(
                target_comp_id=target,
                kind=kind,
                accounts=accounts,
                password_hash=password_hash,
                ed25519_public_key=public_key,
                api_key=session.optional_string("api_key"),
                cancel_on_disconnect=session.optional_boolean("cancel_on_disconnect", False),
                max_md_subscriptions=session.optional_integer(
                    "max_md_subscriptions", 100, 0, 100_000
                ),
                reset_on_logon=session.optional_boolean("reset_on_logon", False),
                reset_on_logout=session.optional_boolean("reset_on_logout", False),
                reset_on_disconnect=session.optional_boolean("reset_on_disconnect", False),
                reset_time_utc=(
                    session.time_of_day("reset_time_utc") if "reset_time_utc" in session else None
                ),
                throttle_per_s=session.optional_integer("throttle_per_s", 0, 0, 1_000_000),
                throttle_logout_after_s=session.optional_integer(
                    "throttle_logout_after_s", 10, 0, 86_400
                ),
            )
        )
        session.finish()
    if not sessions:
        table.fail("sessions", "at least one [[fix.sessions]] is needed")
    host = table.string("host")
    if host not in ("127.0.0.1", "::1", "localhost"):
        for index, session_config in enumerate(sessions):
            if not (session_config.password_hash or session_config.ed25519_public_key):
                table.fail(
                    f"sessions[{index}]",
                    f"{session_config.target_comp_id} has no password_hash or "
                    "ed25519_public_key: sessions without credentials are allowed only while "
                    "the acceptor listens on loopback",
                )
    min_heartbeat = table.optional_integer("min_heartbeat_s", 5, 1, 3600)
    max_heartbeat = table.optional_integer("max_heartbeat_s", 60, 1, 3600)
    if max_heartbeat < min_heartbeat:
        table.fail("max_heartbeat_s", "must not be below min_heartbeat_s")
    tls_cert = _optional_file(table, "tls_cert")
    tls_key = _optional_file(table, "tls_key")
    if (tls_cert is None) != (tls_key is None):
        table.fail("tls_cert", "tls_cert and tls_key go together")
    config = FixConfig(
        host=host,
        port=table.integer("port", minimum=0, maximum=65535),
        sender_comp_id=sender,
        dictionary=dictionary,
        application=application,
        store=store,
        store_fsync=table.optional_boolean("store_fsync", False),
        max_connections=table.optional_integer("max_connections", 256, 1, 65_535),
        max_connections_per_ip=table.optional_integer("max_connections_per_ip", 20, 1, 65_535),
        max_garbled_per_minute=table.optional_integer("max_garbled_per_minute", 20, 0, 1_000_000),
        max_logon_failures_per_minute=table.optional_integer(
            "max_logon_failures_per_minute", 5, 1, 10_000
        ),
        max_latency_s=table.optional_integer("max_latency_s", 120, 0, 86_400),
        min_heartbeat_s=min_heartbeat,
        max_heartbeat_s=max_heartbeat,
        sessions=tuple(sessions),
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    table.finish()
    return config


def _optional_file(table: Table, key: str) -> Path | None:
    name = table.optional_string(key)
    if not name:
        return None
    path = absolute(name)
    if not path.is_file():
        table.fail(key, f"no such file: {name}")
    return path


def _account_list(table: Table, key: str) -> tuple[int, ...]:
    if key not in table:
        table.optional_string(key)  # counts the key as seen
        return ()
    value = table.value(key)
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**63 for v in value
    ):
        table.fail(key, "must be a list of positive account numbers, such as [1001, 1002]")
    if len(set(value)) != len(value):
        table.fail(key, "lists an account twice")
    return tuple(value)
