"""The fee configuration: maker/taker schedules by tier, and the arithmetic of a fee.

A schedule is a list of tiers; an account's tier is the highest whose ``min_volume`` its traded
volume over the last ``window_days`` whole UTC days reaches (the day in progress does not count,
so a tier changes only at midnight UTC, as on the venues participants know). Volume is what the
account bought or sold, both as maker and taker, valued in ``reference_asset`` at the configured
``reference_prices`` of each quote asset.

Rates are decimal fractions with at most six decimals (``"0.001"`` is 0.1 %), kept as integer
parts per million. A negative maker rate is a rebate; only a schedule with ``rebates = true``
(for market makers) may have one. Fees are rounded in the venue's favour: a fee is rounded up to
the next minor unit, a rebate down. ``charge_in``: ``"received"`` (default, as on Binance: each
side pays in the asset it receives, the buyer in base, the seller in quote) or ``"quote"`` (both
sides pay in the quote asset; a buy order then also holds its worst-case fee).

The configuration travels in the journal as canonical JSON (``ConfigureFees``), so replaying the
journal never depends on today's configuration file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

PPM = 1_000_000
MAX_RATE_PPM = 100_000  # 10 %: anything higher is a typo
CHARGE_MODES = ("received", "quote")


class FeeConfigError(ValueError):
    """A fee configuration that cannot be used; the message names the key."""


@dataclass(frozen=True, slots=True)
class Tier:
    min_volume: Decimal  # in the reference asset
    maker_ppm: int
    taker_ppm: int


@dataclass(frozen=True, slots=True)
class Schedule:
    name: str
    tiers: tuple[Tier, ...]  # by min_volume, the first at 0
    rebates: bool = False

    @property
    def max_ppm(self) -> int:
        """The highest rate an order on this schedule can pay (0 if it can only earn)."""
        return max(0, *(max(t.maker_ppm, t.taker_ppm) for t in self.tiers))

    def tier_for(self, volume: Fraction) -> int:
        index = 0
        for i, tier in enumerate(self.tiers):
            if volume >= tier.min_volume:
                index = i
        return index


@dataclass(frozen=True, slots=True)
class FeeConfig:
    schedules: dict[str, Schedule]
    default_schedule: str = "default"
    charge_in: str = "received"
    window_days: int = 30
    reference_asset: str = "USDT"
    reference_prices: dict[str, Decimal] = field(default_factory=dict)

    # -- canonical form ------------------------------------------------------------------------
    def to_spec(self) -> str:
        """Canonical JSON: the same configuration always gives the same string."""
        doc = {
            "charge_in": self.charge_in,
            "default_schedule": self.default_schedule,
            "reference_asset": self.reference_asset,
            "reference_prices": {k: str(v) for k, v in sorted(self.reference_prices.items())},
            "schedules": {
                name: {
                    "rebates": s.rebates,
                    "tiers": [
                        {
                            "maker": _ppm_str(t.maker_ppm),
                            "min_volume": str(t.min_volume),
                            "taker": _ppm_str(t.taker_ppm),
                        }
                        for t in s.tiers
                    ],
                }
                for name, s in sorted(self.schedules.items())
            },
            "window_days": self.window_days,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_spec(cls, spec: str) -> FeeConfig:
        try:
            doc = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise FeeConfigError(f"fee spec is not JSON: {exc}") from None
        return parse_fees(doc, "fees")


def zero_fees() -> FeeConfig:
    """What is in force before any ``ConfigureFees``: no fees at all."""
    return FeeConfig({"default": Schedule("default", (Tier(Decimal(0), 0, 0),))})


def fee_amount(amount: int, ppm: int) -> int:
    """The fee on ``amount`` minor units at ``ppm``: a charge rounded up, a rebate (negative
    rate) rounded down in size, so rounding always favours the venue."""
    if ppm >= 0:
        return -((-amount * ppm) // PPM)
    return -((amount * -ppm) // PPM)


def parse_fees(doc: Any, where: str) -> FeeConfig:
    """Build and check a FeeConfig from TOML or JSON data; ``where`` prefixes error messages."""
    if not isinstance(doc, dict):
        raise FeeConfigError(f"{where}: must be a table")
    known = {
        "charge_in",
        "default_schedule",
        "reference_asset",
        "reference_prices",
        "schedules",
        "window_days",
    }
    for key in doc:
        if key not in known:
            raise FeeConfigError(f"{where}.{key}: unknown key")
    charge_in = doc.get("charge_in", "received")
    if charge_in not in CHARGE_MODES:
        raise FeeConfigError(f"{where}.charge_in: must be one of {', '.join(CHARGE_MODES)}")
    window = doc.get("window_days", 30)
    if not isinstance(window, int) or isinstance(window, bool) or not 1 <= window <= 366:
        raise FeeConfigError(f"{where}.window_days: must be an integer from 1 to 366")
    ref_asset = doc.get("reference_asset", "USDT")
    if not isinstance(ref_asset, str) or not ref_asset:
        raise FeeConfigError(f"{where}.reference_asset: must be an asset code")
    prices_doc = doc.get("reference_prices", {})
    if not isinstance(prices_doc, dict):
        raise FeeConfigError(f"{where}.reference_prices: must be a table of asset = price")
    prices = {ref_asset: Decimal(1)}
    for asset, value in prices_doc.items():
        price = _decimal(value, f"{where}.reference_prices.{asset}")
        if price <= 0:
            raise FeeConfigError(f"{where}.reference_prices.{asset}: must be positive")
        prices[asset] = price
    schedules_doc = doc.get("schedules")
    if not isinstance(schedules_doc, dict) or not schedules_doc:
        raise FeeConfigError(f"{where}.schedules: at least one schedule is needed")
    schedules = {
        name: _schedule(name, body, f"{where}.schedules.{name}")
        for name, body in schedules_doc.items()
    }
    default = doc.get("default_schedule", "default")
    if default not in schedules:
        raise FeeConfigError(f"{where}.default_schedule: no schedule named {default!r}")
    return FeeConfig(schedules, default, charge_in, window, ref_asset, prices)


def _schedule(name: str, body: Any, where: str) -> Schedule:
    if not isinstance(body, dict):
        raise FeeConfigError(f"{where}: must be a table")
    for key in body:
        if key not in ("rebates", "tiers"):
            raise FeeConfigError(f"{where}.{key}: unknown key")
    rebates = body.get("rebates", False)
    if not isinstance(rebates, bool):
        raise FeeConfigError(f"{where}.rebates: must be true or false")
    tiers_doc = body.get("tiers")
    if not isinstance(tiers_doc, list) or not tiers_doc:
        raise FeeConfigError(f"{where}.tiers: at least one tier is needed")
    tiers: list[Tier] = []
    for i, tier in enumerate(tiers_doc):
        at = f"{where}.tiers[{i}]"
        if not isinstance(tier, dict):
            raise FeeConfigError(f"{at}: must be a table")
        for key in tier:
            if key not in ("min_volume", "maker", "taker"):
                raise FeeConfigError(f"{at}.{key}: unknown key")
        for key in ("min_volume", "maker", "taker"):
            if key not in tier:
                raise FeeConfigError(f"{at}.{key}: missing")
        min_volume = _decimal(tier["min_volume"], f"{at}.min_volume")
        maker = _rate(tier["maker"], f"{at}.maker")
        taker = _rate(tier["taker"], f"{at}.taker")
        if taker < 0:
            raise FeeConfigError(f"{at}.taker: a taker fee cannot be negative")
        if maker < 0 and not rebates:
            raise FeeConfigError(
                f"{at}.maker: a negative maker fee (rebate) needs rebates = true on the schedule"
            )
        if maker < 0 and -maker > taker:
            raise FeeConfigError(f"{at}.maker: a rebate larger than the taker fee loses money")
        if i == 0 and min_volume != 0:
            raise FeeConfigError(f"{at}.min_volume: the first tier must start at 0")
        if i and min_volume <= tiers[-1].min_volume:
            raise FeeConfigError(f"{at}.min_volume: tiers must be in increasing volume")
        tiers.append(Tier(min_volume, maker, taker))
    return Schedule(name, tuple(tiers), rebates)


def _decimal(value: Any, where: str) -> Decimal:
    if not isinstance(value, str):
        raise FeeConfigError(f'{where}: must be a decimal string in quotes, such as "0.001"')
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise FeeConfigError(f"{where}: {value!r} is not a decimal number") from None
    if not number.is_finite() or (number < 0 and "min_volume" in where):
        raise FeeConfigError(f"{where}: {value!r} is not allowed")
    return number


def _rate(value: Any, where: str) -> int:
    rate = _decimal(value, where)
    ppm = rate * PPM
    if ppm != ppm.to_integral_value():
        raise FeeConfigError(f"{where}: {value} has more than six decimals")
    if abs(ppm) > MAX_RATE_PPM:
        raise FeeConfigError(f"{where}: {value} is above the 10 % limit")
    return int(ppm)


def _ppm_str(ppm: int) -> str:
    return format((Decimal(ppm) / PPM).normalize(), "f")
