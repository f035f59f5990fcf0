"""Instrument specifications: tick and lot sizes, limits, and the unit scales they define.

Inside the venue a price is an integer number of ticks and a quantity an integer number of lots.
A notional (price x quantity) is therefore in "tick-lots": one tick-lot is ``tick_size *
lot_size`` of the quote asset. Decimals convert only through ``engine.units``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from engine.types import InstrumentState
from engine.units import Malformed, NotMultiple, UnitScale


class UnitError(ValueError):
    """A decimal that is not a whole number of ticks or lots, or is not a number at all."""


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """Static description of one tradable pair; built from config, never changed by trading."""

    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    lot_size: Decimal
    min_qty: int  # lots
    max_qty: int  # lots
    min_notional: int  # tick-lots
    price_band_bps: int  # limit orders further than this from the reference price are rejected
    reference_price: int = 0  # ticks; initial reference for the band until the first trade
    initial_state: InstrumentState = InstrumentState.OPEN

    def __post_init__(self) -> None:
        if self.tick_size <= 0 or self.lot_size <= 0:
            raise ValueError(f"{self.symbol}: tick_size and lot_size must be positive")
        if self.min_qty < 1 or self.max_qty < self.min_qty:
            raise ValueError(f"{self.symbol}: need 1 <= min_qty <= max_qty (in lots)")
        if self.min_notional < 0 or not 0 < self.price_band_bps < 10_000:
            raise ValueError(f"{self.symbol}: min_notional >= 0 and 0 < price_band_bps < 10000")

    # -- decimal <-> integer units (engine.units) ----------------------------------------------
    def price_to_ticks(self, price: str | Decimal) -> int:
        return _to_units(price, self.tick_size, "price", "tick size")

    def qty_to_lots(self, qty: str | Decimal) -> int:
        return _to_units(qty, self.lot_size, "quantity", "lot size")

    def ticks_to_price(self, ticks: int) -> Decimal:
        return ticks * self.tick_size

    def lots_to_qty(self, lots: int) -> Decimal:
        return lots * self.lot_size

    def units_to_notional(self, units: int) -> Decimal:
        return units * self.tick_size * self.lot_size


def _parse(value: str | Decimal, what: str) -> Decimal:
    try:
        number = value if isinstance(value, Decimal) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise UnitError(f"{what} {value!r} is not a decimal number") from None
    if not number.is_finite():
        raise UnitError(f"{what} {value!r} is not a finite number")
    return number


def _to_units(value: str | Decimal, step: Decimal, what: str, step_name: str) -> int:
    text = value if isinstance(value, str) else format(_parse(value, what), "f")
    try:
        return UnitScale(step).parse(text, signed=True)
    except NotMultiple:
        raise UnitError(f"{what} {value} is not a multiple of the {step_name} {step}") from None
    except Malformed:
        raise UnitError(f"{what} {value!r} is not a plain decimal number") from None


def spec_from_decimals(
    symbol: str,
    base: str,
    quote: str,
    tick_size: str,
    lot_size: str,
    min_qty: str,
    max_qty: str,
    min_notional: str,
    price_band_bps: int,
    reference_price: str | None = None,
    initial_state: InstrumentState = InstrumentState.OPEN,
) -> InstrumentSpec:
    """Build a spec from the decimal strings an operator writes in config."""
    tick = _parse(tick_size, "tick_size")
    lot = _parse(lot_size, "lot_size")
    probe = InstrumentSpec(symbol, base, quote, tick, lot, 1, 1, 0, price_band_bps)
    min_notional_dec = _parse(min_notional, "min_notional")
    unit = tick * lot
    min_notional_units = int(-(-min_notional_dec // unit))  # ceil: never below the configured floor
    return InstrumentSpec(
        symbol=symbol,
        base=base,
        quote=quote,
        tick_size=tick,
        lot_size=lot,
        min_qty=probe.qty_to_lots(min_qty),
        max_qty=probe.qty_to_lots(max_qty),
        min_notional=min_notional_units,
        price_band_bps=price_band_bps,
        reference_price=probe.price_to_ticks(reference_price) if reference_price else 0,
        initial_state=initial_state,
    )
