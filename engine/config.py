"""The engine's sections of the configuration file: ``[venue]``, ``[journal]``, ``[[instruments]]``.

Each reader takes the file's top-level ``Table`` and reads the key it owns; the composition root
only decides the order. Instruments become ``InstrumentSpec`` values in the integer units the
core works in; their decimals must be TOML strings, since a TOML float is binary and inexact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, DecimalException
from pathlib import Path

from engine.configfile import MAX_INT64, Table, absolute
from engine.instrument import InstrumentSpec, spec_from_decimals
from engine.types import InstrumentState, StpMode

__all__ = ["JournalConfig", "VenueSettings", "read_instruments", "read_journal", "read_venue"]

_MAX_SEGMENT_MB = 4096
_SYMBOL_RE = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,31}")
#: An asset code; clearing's ``[[assets]]`` accepts the same.
ASSET_RE = re.compile(r"[A-Z0-9]{1,20}")


@dataclass(frozen=True, slots=True)
class VenueSettings:
    """``[venue]``: where state is kept and the rules every instrument shares."""

    data_dir: Path  # absolute
    default_stp: StpMode  # never StpMode.DEFAULT
    session_end_utc: int  # seconds after midnight UTC at which DAY orders expire
    snapshot_every: int  # journal records between two snapshots


@dataclass(frozen=True, slots=True)
class JournalConfig:
    """``[journal]``."""

    segment_mb: int  # a segment is closed and the next one opened at this size
    fsync: bool  # fsync before acknowledging; false only for throwaway benchmarks

    @property
    def segment_bytes(self) -> int:
        return self.segment_mb * 1024 * 1024


def read_venue(root: Table) -> VenueSettings:
    table = root.table("venue")
    settings = VenueSettings(
        data_dir=absolute(table.string("data_dir")),
        default_stp=table.enum("default_stp", StpMode, exclude=(StpMode.DEFAULT,)),
        session_end_utc=table.time_of_day("session_end_utc"),
        snapshot_every=table.integer("snapshot_every", minimum=1),
    )
    table.finish()
    return settings


def read_journal(root: Table) -> JournalConfig:
    table = root.table("journal")
    journal = JournalConfig(
        segment_mb=table.integer("segment_mb", minimum=1, maximum=_MAX_SEGMENT_MB),
        fsync=table.boolean("fsync"),
    )
    table.finish()
    return journal


def read_instruments(root: Table) -> tuple[InstrumentSpec, ...]:
    """``[[instruments]]``: at least one, each symbol once."""
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


def _instrument(table: Table) -> InstrumentSpec:
    symbol = table.string("symbol")
    if not _SYMBOL_RE.fullmatch(symbol):
        table.fail(
            "symbol",
            f"{symbol!r} is not a symbol: 1 to 32 of A-Z, 0-9, '.', '_', '-' (e.g. \"BTC-USDT\")",
        )
    base = table.string("base")
    quote = table.string("quote")
    for key, asset in (("base", base), ("quote", quote)):
        if not ASSET_RE.fullmatch(asset):
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


def _fits(table: Table, key: str, units: Decimal) -> int:
    if units > MAX_INT64:
        table.fail(key, "too large: the value in integer units does not fit in 64 bits")
    return int(units)
