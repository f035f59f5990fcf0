"""The venue's configuration: a TOML file loaded into typed, frozen values.

``load_config(path)`` reads a file such as ``config/venue.toml`` and returns a ``VenueConfig``.
Every problem with the file (it cannot be read, it is not TOML, a key is missing, unknown or of
the wrong type, a price is written as a float, an enum name is unknown, a symbol is listed twice,
a quantity is not a whole number of lots...) raises ``ConfigError`` whose message names the file
and the key, so that the command line can print one line instead of a traceback.

Decimals (sizes, prices, quantities, amounts) must be TOML strings: a TOML float is binary and
inexact, and nothing inexact may reach a price or a quantity. Instruments become
``engine.instrument.InstrumentSpec`` values, whose integer units the core works in.

Relative paths resolve against the current working directory of the process that loads the file.
"""

from __future__ import annotations

import base64
import difflib
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal, DecimalException
from enum import IntEnum
from pathlib import Path
from typing import NoReturn, TypeVar

from clearing.fees import FeeConfig, FeeConfigError, parse_fees
from clearing.risk import AssetUnits
from engine.instrument import InstrumentSpec, spec_from_decimals
from engine.types import InstrumentState, StpMode
from engine.units import Malformed, NotMultiple, OutOfRange, UnitScale

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "AdminConfig",
    "ConfigError",
    "FixConfig",
    "FixSessionConfig",
    "JournalConfig",
    "LedgerConfig",
    "VenueConfig",
    "load_config",
    "parse_config",
]

#: The embedded default configuration shipped with the repository.
DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config" / "venue.toml"

#: Integer units (ticks, lots, tick-lots) must fit in a signed 64-bit integer.
_MAX_UNITS = 2**63 - 1
_MAX_SEGMENT_MB = 4096
_SYMBOL_RE = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,31}")
_ASSET_RE = re.compile(r"[A-Z0-9]{1,20}")
_TIME_RE = re.compile(r"(\d{2}):(\d{2})(?::(\d{2}))?")

_E = TypeVar("_E", bound=IntEnum)


class ConfigError(Exception):
    """A configuration file that cannot be used. ``str(error)`` is a complete, one-line message."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True, slots=True)
class JournalConfig:
    segment_mb: int  # a segment is closed and the next one opened at this size
    fsync: bool  # fsync before acknowledging; false only for throwaway benchmarks

    @property
    def segment_bytes(self) -> int:
        return self.segment_mb * 1024 * 1024


@dataclass(frozen=True, slots=True)
class AdminConfig:
    host: str
    port: int  # 0: any free port


@dataclass(frozen=True, slots=True)
class LedgerConfig:
    url: str  # SQLAlchemy URL: sqlite:///... (the default, under data_dir) or postgresql+psycopg://
    batch_max: int  # most commands' events written in one database transaction
    reconcile_every_s: int  # the running venue checks the ledger against the core this often


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


@dataclass(frozen=True, slots=True)
class VenueConfig:
    source: Path  # the file this was loaded from
    data_dir: Path  # absolute
    default_stp: StpMode  # never StpMode.DEFAULT
    session_end_utc: int  # seconds after midnight UTC at which DAY orders expire
    snapshot_every: int  # journal records between two snapshots
    journal: JournalConfig
    admin: AdminConfig
    instruments: tuple[InstrumentSpec, ...]
    #: asset -> decimals of its minor unit; empty: no clearing (a matching-only venue)
    assets: Mapping[str, int]
    fees: FeeConfig | None  # None: no [fees] section, no fees
    ledger: LedgerConfig | None  # None when there is no clearing
    fix: FixConfig | None = None  # None: no FIX acceptor

    @property
    def clearing(self) -> bool:
        return bool(self.assets)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(spec.symbol for spec in self.instruments)

    def instrument(self, symbol: str) -> InstrumentSpec:
        """The spec of ``symbol``; ``KeyError`` if the venue does not list it."""
        for spec in self.instruments:
            if spec.symbol == symbol:
                return spec
        raise KeyError(symbol)


# -- loading ------------------------------------------------------------------------------------
def load_config(path: str | Path) -> VenueConfig:
    """Read and check the TOML file at ``path``; raise ``ConfigError`` on any problem."""
    file = Path(path)
    source = str(file)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(source, "", "configuration file not found") from None
    except IsADirectoryError:
        raise ConfigError(source, "", "is a directory, not a configuration file") from None
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read the file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(source, "", f"not UTF-8 text (byte {exc.start})") from None
    return parse_config(text, source=file)


def parse_config(text: str, source: str | Path = "<string>") -> VenueConfig:
    """Check TOML ``text``; ``source`` names it in error messages."""
    name = str(source)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(name, "", f"not valid TOML: {exc}") from None
    root = _Table(document, "", name)

    venue = root.table("venue")
    data_dir = _absolute(venue.string("data_dir"))
    default_stp = venue.enum("default_stp", StpMode, exclude=(StpMode.DEFAULT,))
    session_end = venue.time_of_day("session_end_utc")
    snapshot_every = venue.integer("snapshot_every", minimum=1)
    venue.finish()

    journal_table = root.table("journal")
    journal = JournalConfig(
        segment_mb=journal_table.integer("segment_mb", minimum=1, maximum=_MAX_SEGMENT_MB),
        fsync=journal_table.boolean("fsync"),
    )
    journal_table.finish()

    admin_table = root.table("admin")
    admin = AdminConfig(
        host=admin_table.string("host"),
        port=admin_table.integer("port", minimum=0, maximum=65535),
    )
    admin_table.finish()

    instruments = _instruments(root)
    assets = _assets(root, instruments)
    fees = _fees(root, assets)
    ledger = _ledger(root, data_dir) if assets else None
    fix = _fix(root) if "fix" in root else None
    if not assets:
        for key in ("fees", "ledger"):
            if key in root:
                root.fail(key, "needs [[assets]]: there is no clearing without them")
    root.finish()

    return VenueConfig(
        source=Path(source),
        data_dir=data_dir,
        default_stp=default_stp,
        session_end_utc=session_end,
        snapshot_every=snapshot_every,
        journal=journal,
        admin=admin,
        instruments=instruments,
        assets=assets,
        fees=fees,
        ledger=ledger,
        fix=fix,
    )


def _assets(root: _Table, instruments: tuple[InstrumentSpec, ...]) -> dict[str, int]:
    """``[[assets]]``: each asset's code and the decimals of its minor unit. Optional: without
    it the venue runs matching only, with no balances. With it, every instrument's assets must
    be listed and its tick x lot and lot must be whole minor units."""
    if "assets" not in root:
        return {}
    assets: dict[str, int] = {}
    for table in root.tables("assets"):
        code = table.string("code")
        if not _ASSET_RE.fullmatch(code):
            table.fail("code", f'{code!r} is not an asset code: 1 to 20 of A-Z, 0-9 (e.g. "BTC")')
        if code in assets:
            table.fail("code", f"{code!r} is listed twice")
        assets[code] = table.integer("decimals", minimum=0, maximum=18)
        table.finish()
    if not assets:
        root.fail("assets", "lists no asset")
    for index, spec in enumerate(instruments):
        try:
            AssetUnits(spec, assets)
        except ValueError as exc:
            raise ConfigError(root.source, f"instruments[{index}]", str(exc)) from None
    return assets


def _fees(root: _Table, assets: Mapping[str, int]) -> FeeConfig | None:
    """``[fees]``: schedules and tiers (``clearing.fees`` documents them). Optional: no fees."""
    if "fees" not in root:
        return None
    table = root.table("fees")
    try:
        config = parse_fees(dict(table.items()), "fees")
    except FeeConfigError as exc:
        key, _, problem = str(exc).partition(": ")
        raise ConfigError(root.source, key, problem) from None
    for asset in config.reference_prices:
        if asset not in assets:
            root.fail(f"fees.reference_prices.{asset}", "not an asset listed in [[assets]]")
    return config


def _ledger(root: _Table, data_dir: Path) -> LedgerConfig:
    """``[ledger]``, optional: where settlement writes (SQLite under data_dir by default)."""
    default = LedgerConfig(f"sqlite:///{data_dir / 'ledger.sqlite'}", 5000, 60)
    if "ledger" not in root:
        return default
    table = root.table("ledger")
    url = table.optional_string("url") or default.url
    if not url.startswith(("sqlite:///", "postgresql+psycopg://")):
        table.fail("url", "must start with sqlite:/// or postgresql+psycopg://")
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        relative = url.removeprefix("sqlite:///")
        url = f"sqlite:///{_absolute(relative)}" if relative else default.url
    config = LedgerConfig(
        url=url,
        batch_max=table.optional_integer("batch_max", default.batch_max, 1, 1_000_000),
        reconcile_every_s=table.optional_integer(
            "reconcile_every_s", default.reconcile_every_s, 0, 86_400
        ),
    )
    table.finish()
    return config


_COMP_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,32}")
_FIX_APPLICATIONS = ("venue", "echo")
_FIX_SESSION_KINDS = ("order_entry", "drop_copy", "market_data")
_PASSWORD_HASH_RE = re.compile(r"pbkdf2_sha256\$\d{4,9}\$[A-Za-z0-9+/=]{8,}\$[A-Za-z0-9+/=]{40,}")
#: Where the shipped data dictionaries are found when a relative path is not under the cwd.
_PROJECT_ROOT = DEFAULT_CONFIG_PATH.parent.parent


def _fix(root: _Table) -> FixConfig:
    """``[fix]`` and its ``[[fix.sessions]]``: the FIX acceptor, optional."""
    table = root.table("fix")
    sender = table.string("sender_comp_id")
    if not _COMP_ID_RE.fullmatch(sender):
        table.fail("sender_comp_id", "must be 1-32 letters, digits, '.', '_' or '-'")
    dictionary_name = table.string("dictionary")
    dictionary = _absolute(dictionary_name)
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


def _optional_file(table: _Table, key: str) -> Path | None:
    name = table.optional_string(key)
    if not name:
        return None
    path = _absolute(name)
    if not path.is_file():
        table.fail(key, f"no such file: {name}")
    return path


def _account_list(table: _Table, key: str) -> tuple[int, ...]:
    if key not in table:
        table.optional_string(key)  # counts the key as seen
        return ()
    value = table._get(key)
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**63 for v in value
    ):
        table.fail(key, "must be a list of positive account numbers, such as [1001, 1002]")
    if len(set(value)) != len(value):
        table.fail(key, "lists an account twice")
    return tuple(value)


def _absolute(value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path.cwd() / path


def _instruments(root: _Table) -> tuple[InstrumentSpec, ...]:
    tables = root.tables("instruments")
    if not tables:
        root.fail("instruments", "at least one [[instruments]] table is required")
    specs: list[InstrumentSpec] = []
    seen: dict[str, str] = {}
    for table in tables:
        spec = _instrument(table)
        if spec.symbol in seen:
            table.fail("symbol", f"{spec.symbol!r} is already listed at {seen[spec.symbol]}")
        seen[spec.symbol] = table.where
        specs.append(spec)
    return tuple(specs)


def _instrument(table: _Table) -> InstrumentSpec:
    symbol = table.string("symbol")
    if not _SYMBOL_RE.fullmatch(symbol):
        table.fail(
            "symbol",
            f"{symbol!r} is not a symbol: 1 to 32 of A-Z, 0-9, '.', '_', '-' (e.g. \"BTC-USDT\")",
        )
    base = table.string("base")
    quote = table.string("quote")
    for key, asset in (("base", base), ("quote", quote)):
        if not _ASSET_RE.fullmatch(asset):
            table.fail(key, f'{asset!r} is not an asset code: 1 to 20 of A-Z, 0-9 (e.g. "BTC")')
    if base == quote:
        table.fail("quote", f"base and quote are both {base!r}")

    tick = table.decimal("tick_size")
    lot = table.decimal("lot_size")
    for key, step in (("tick_size", tick), ("lot_size", lot)):
        if step <= 0:
            table.fail(key, f"must be positive, got {step}")
    min_qty = table.units("min_qty", lot, "lot_size", minimum=1)
    table.units("max_qty", lot, "lot_size", minimum=min_qty, minimum_name="min_qty")
    min_notional = table.decimal("min_notional")
    if min_notional < 0:
        table.fail("min_notional", f"must not be negative, got {min_notional}")
    try:
        _fits(table, "min_notional", -(-min_notional // (tick * lot)))
    except DecimalException:
        table.fail("min_notional", f"{min_notional} is too large for tick_size x lot_size")
    band = table.integer("price_band_bps", minimum=1, maximum=9999)
    table.units("reference_price", tick, "tick_size", minimum=1)
    state = table.enum("state", InstrumentState, default=InstrumentState.OPEN)
    table.finish()

    try:
        return spec_from_decimals(
            symbol=symbol,
            base=base,
            quote=quote,
            tick_size=table.raw_string("tick_size"),
            lot_size=table.raw_string("lot_size"),
            min_qty=table.raw_string("min_qty"),
            max_qty=table.raw_string("max_qty"),
            min_notional=table.raw_string("min_notional"),
            price_band_bps=band,
            reference_price=table.raw_string("reference_price"),
            initial_state=state,
        )
    except (ValueError, ArithmeticError) as exc:  # the checks above should have caught it
        table.fail("", f"invalid instrument {symbol!r}: {exc}")


def _fits(table: _Table, key: str, units: Decimal) -> int:
    if units > _MAX_UNITS:
        table.fail(key, "too large: the value in integer units does not fit in 64 bits")
    return int(units)


# -- typed access to one TOML table -------------------------------------------------------------
class _Table:
    """One TOML table with typed getters that fail with the file and the full key name."""

    def __init__(self, data: Mapping[str, object], where: str, source: str) -> None:
        self._data = data
        self._used: set[str] = set()
        self.where = where  # e.g. "venue" or "instruments[1]"; "" for the top level
        self.source = source

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def key(self, key: str) -> str:
        if not key:
            return self.where
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, problem: str) -> NoReturn:
        raise ConfigError(self.source, self.key(key), problem)

    def finish(self) -> None:
        """Refuse keys nobody asked for: a misspelt key must not be silently ignored."""
        unknown = [k for k in self._data if k not in self._used]
        if unknown:
            kind = "key" if self.where else "top-level key or section"
            self.fail(unknown[0], f"unknown {kind} (expected one of: {_names(self._used)})")

    def _get(self, key: str) -> object:
        self._used.add(key)
        if key not in self._data:
            unknown = [k for k in self._data if k not in self._used]
            close = difflib.get_close_matches(key, unknown, n=1)
            hint = f" (is {close[0]!r} a misspelling of it?)" if close else ""
            self.fail(key, f"missing (required){hint}")
        return self._data[key]

    def _wrong(self, key: str, expected: str, value: object) -> NoReturn:
        self.fail(key, f"must be {expected}, got {_describe(value)}")

    def table(self, key: str) -> _Table:
        value = self._get(key)
        if not isinstance(value, dict):
            self._wrong(key, f"a table ([{self.key(key)}])", value)
        return _Table(value, self.key(key), self.source)

    def tables(self, key: str) -> list[_Table]:
        value = self._get(key)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self._wrong(key, f"an array of tables ([[{self.key(key)}]])", value)
        return [_Table(v, f"{self.key(key)}[{i}]", self.source) for i, v in enumerate(value)]

    def string(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str):
            self._wrong(key, "a string", value)
        if not value.strip():
            self.fail(key, "must not be empty")
        return value

    def items(self) -> list[tuple[str, object]]:
        """Every key and value, all counted as used (for sections another module checks)."""
        self._used.update(self._data)
        return list(self._data.items())

    def optional_string(self, key: str) -> str:
        """The string at ``key``, "" when absent or empty."""
        if key not in self._data or self._data[key] == "":
            self._used.add(key)
            return ""
        return self.string(key)

    def optional_integer(self, key: str, default: int, minimum: int, maximum: int) -> int:
        if key not in self._data:
            self._used.add(key)
            return default
        return self.integer(key, minimum=minimum, maximum=maximum)

    def optional_boolean(self, key: str, default: bool) -> bool:
        if key not in self._data:
            self._used.add(key)
            return default
        return self.boolean(key)

    def raw_string(self, key: str) -> str:
        value = self._data[key]
        assert isinstance(value, str)
        return value

    def boolean(self, key: str) -> bool:
        value = self._get(key)
        if not isinstance(value, bool):
            self._wrong(key, "true or false", value)
        return value

    def integer(self, key: str, *, minimum: int, maximum: int = _MAX_UNITS) -> int:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            self._wrong(key, "an integer", value)
        if not minimum <= value <= maximum:
            self.fail(key, f"must be between {minimum} and {maximum}, got {value}")
        return value

    def decimal(self, key: str) -> Decimal:
        value = self._get(key)
        if isinstance(value, float | int) and not isinstance(value, bool):
            if isinstance(value, float):
                why = "a TOML float is binary and inexact"
            else:
                why = "decimals are always written as strings"
            self.fail(
                key,
                f'must be a decimal string in quotes, such as "{value}", not the bare number '
                f"{value!r} ({why})",
            )
        if not isinstance(value, str):
            self._wrong(key, 'a decimal string such as "0.01"', value)
        try:
            number = Decimal(value)
        except DecimalException:
            self.fail(key, f"{value!r} is not a decimal number")
        if not number.is_finite():
            self.fail(key, f"{value!r} is not a finite number")
        return number

    def units(
        self,
        key: str,
        step: Decimal,
        step_key: str,
        *,
        minimum: int,
        minimum_name: str = "",
    ) -> int:
        """A decimal that must be a whole number of ``step`` (ticks or lots), at least ``minimum``
        units; returns the number of units."""
        number = self.decimal(key)
        try:
            count = UnitScale(step).parse(format(number, "f"), signed=True)
        except OutOfRange:
            self.fail(key, "too large: the value in integer units does not fit in 64 bits")
        except NotMultiple:
            self.fail(key, f"{number} is not a multiple of the {step_key} {step}")
        except Malformed:
            self.fail(key, f"{number} is too large or too precise for the {step_key} {step}")
        if count < minimum:
            if minimum_name:
                self.fail(key, f"{number} is below {minimum_name}")
            self.fail(key, f"must be positive, got {number}")
        return count

    def enum(
        self, key: str, kind: type[_E], *, exclude: Iterable[_E] = (), default: _E | None = None
    ) -> _E:
        """A member of ``kind`` written by name; optional when a ``default`` is given."""
        if default is not None and key not in self._data:
            self._used.add(key)
            return default
        value = self._get(key)
        excluded = set(exclude)
        allowed = [member for member in kind if member not in excluded]
        names = _names(member.name for member in allowed)
        if not isinstance(value, str):
            self._wrong(key, f"a string, one of: {names}", value)
        for member in allowed:
            if member.name == value:
                return member
        self.fail(key, f"unknown value {value!r} (expected one of: {names})")

    def time_of_day(self, key: str) -> int:
        """``"HH:MM"`` or ``"HH:MM:SS"`` (24-hour clock) as seconds after midnight."""
        value = self._get(key)
        if not isinstance(value, str):
            self._wrong(key, 'a time of day in quotes, such as "00:00"', value)
        match = _TIME_RE.fullmatch(value)
        hours, minutes, seconds = (int(g or 0) for g in match.groups()) if match else (99, 0, 0)
        if hours > 23 or minutes > 59 or seconds > 59:
            self.fail(key, f'{value!r} is not a time of day "HH:MM" or "HH:MM:SS" (00:00-23:59:59)')
        return hours * 3600 + minutes * 60 + seconds


def _names(names: Iterable[str]) -> str:
    return ", ".join(sorted(names))


def _describe(value: object) -> str:
    kinds: list[tuple[type | tuple[type, ...], str]] = [
        (bool, "boolean"),
        (int, "integer"),
        (float, "float"),
        (str, "string"),
        (dict, "table"),
        (list, "array"),
        ((datetime, date, time), "date/time"),
    ]
    for kind, name in kinds:
        if isinstance(value, kind):
            if isinstance(value, bool):
                return f"{name} {str(value).lower()}"
            shown = "" if isinstance(value, dict | list) else f" {value!r}"
            return f"{name}{shown}"
    return type(value).__name__
