"""Surveillance's ``[surveillance]`` section: the detectors' thresholds.

Per instrument: ``[surveillance]`` holds the defaults, ``[surveillance.instruments.<SYMBOL>]``
overrides any of them for one instrument. Money flows (``[surveillance.aml]``) are per asset,
amounts written as decimal strings of the asset and kept in its minor units.

Optional: without the section the detectors run with these defaults; ``enabled = false`` turns
them off. Quantities are lots of the instrument, amounts minor units of the asset.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from engine.configfile import Table
from engine.instrument import InstrumentSpec

__all__ = ["AmlParams", "InstrumentParams", "SurveillanceConfig", "read_surveillance"]

MAX = 1 << 62


@dataclass(frozen=True, slots=True)
class InstrumentParams:
    """One instrument's thresholds (``config/README.md`` says why each default)."""

    #: RTS 9 number method: (orders + modifications + cancellations) / trades above this alerts
    otr_max_number: int = 500
    #: RTS 9 volume method: (volume of orders + modifications) / volume traded above this alerts
    otr_max_volume: int = 1000
    #: an account's messages on the instrument in the UTC day before its ratio is judged
    otr_min_messages: int = 1000
    #: seconds over which wash trades and back-and-forth trading between two accounts add up
    wash_window_s: int = 3600
    #: trades of an account with itself or its owner's accounts in the window before an alert
    wash_min_trades: int = 1
    #: lots those trades must add up to (0: any)
    wash_min_qty: int = 0
    #: trades each way between two unrelated accounts in the window before they are looked at
    collusion_min_each_way: int = 3
    #: at most this share (%) of the gross volume between them may be net position change
    collusion_max_net_pct: int = 10
    #: ...and their trades with each other at least this share (%) of each one's volume
    collusion_min_share_pct: int = 50
    #: an order (or layers of orders) is large at this multiple of the median order size
    spoof_size_multiple: int = 5
    #: ...and at least this share (%) of its side's depth near the touch
    spoof_depth_pct: int = 25
    #: "near the touch": within this many basis points of the best price of the side
    spoof_near_bps: int = 50
    #: ...and this multiple of what the same owner has resting and executes on the other side
    spoof_imbalance: int = 3
    #: the large side cancelled within this many milliseconds of the other side's execution
    spoof_cancel_ms: int = 10_000
    #: orders of the instrument whose median size is the typical order size
    spoof_median_orders: int = 200
    #: distinct price levels of one side that make layering rather than spoofing
    layering_min_levels: int = 3
    #: a replace of the large side moving its price is a requote when the owner moves its other
    #: side the same way within this many milliseconds (before or after)
    spoof_requote_ms: int = 1000


@dataclass(frozen=True, slots=True)
class AmlParams:
    """Money flows per account and asset; limits per asset in minor units (an asset not
    listed is not checked by that rule)."""

    #: seconds of the rolling window for velocity and structuring
    window_s: int = 86_400
    #: deposits plus withdrawals of one account in the window above this alerts
    velocity_limit: Mapping[str, int] = field(default_factory=dict)
    #: the reporting threshold that structured amounts stay just under
    structuring_limit: Mapping[str, int] = field(default_factory=dict)
    #: "just under": within this share (%) below the limit
    structuring_margin_pct: int = 10
    #: such amounts in the window before an alert
    structuring_min_count: int = 3
    #: seconds after a deposit in which taking it out again is looked at
    in_out_window_s: int = 172_800
    #: a withdrawal of at least this share (%) of the deposit...
    in_out_min_pct: int = 80
    #: ...with at most this share (%) of it traded in between alerts
    in_out_max_traded_pct: int = 10


@dataclass(frozen=True, slots=True)
class SurveillanceConfig:
    enabled: bool = True
    defaults: InstrumentParams = field(default_factory=InstrumentParams)
    #: symbol -> its thresholds where they differ from ``defaults``
    instruments: Mapping[str, InstrumentParams] = field(default_factory=dict)
    aml: AmlParams = field(default_factory=AmlParams)

    def params(self, symbol: str) -> InstrumentParams:
        return self.instruments.get(symbol, self.defaults)


_PCT = {
    "collusion_max_net_pct",
    "collusion_min_share_pct",
    "spoof_depth_pct",
}
_LOTS = {"wash_min_qty"}


def _bounds(name: str) -> tuple[int, int]:
    if name in _PCT:
        return 0, 100
    if name in _LOTS:
        return 0, MAX
    if name == "spoof_near_bps":
        return 1, 10_000
    return 1, MAX


def _instrument_params(
    table: Table, base: InstrumentParams, spec: InstrumentSpec | None
) -> InstrumentParams:
    changes: dict[str, int] = {}
    for item in dataclasses.fields(InstrumentParams):
        name = item.name
        if name not in table:
            continue
        if name in _LOTS and spec is not None:
            changes[name] = table.units(name, spec.lot_size, "lot_size", minimum=0)
        elif name in _LOTS:
            table.fail(name, "is a quantity: set it per instrument, [surveillance.instruments.X]")
        else:
            low, high = _bounds(name)
            changes[name] = table.integer(name, minimum=low, maximum=high)
    return dataclasses.replace(base, **changes)


def _amounts(table: Table, key: str, assets: Mapping[str, int]) -> dict[str, int]:
    if key not in table:
        return {}
    inner = table.table(key)
    out: dict[str, int] = {}
    for code, _ in inner.items():
        if code not in assets:
            inner.fail(code, f"unknown asset (the venue lists: {', '.join(sorted(assets))})")
        amount = inner.units(code, Decimal(1).scaleb(-assets[code]), "minor unit", minimum=1)
        out[code] = amount
    return out


def _aml(table: Table, assets: Mapping[str, int]) -> AmlParams:
    d = AmlParams()
    aml = AmlParams(
        window_s=table.optional_integer("window_s", d.window_s, 1, 366 * 86_400),
        velocity_limit=_amounts(table, "velocity_limit", assets),
        structuring_limit=_amounts(table, "structuring_limit", assets),
        structuring_margin_pct=table.optional_integer(
            "structuring_margin_pct", d.structuring_margin_pct, 1, 99
        ),
        structuring_min_count=table.optional_integer(
            "structuring_min_count", d.structuring_min_count, 2, 1_000_000
        ),
        in_out_window_s=table.optional_integer(
            "in_out_window_s", d.in_out_window_s, 1, 366 * 86_400
        ),
        in_out_min_pct=table.optional_integer("in_out_min_pct", d.in_out_min_pct, 1, 100),
        in_out_max_traded_pct=table.optional_integer(
            "in_out_max_traded_pct", d.in_out_max_traded_pct, 0, 100
        ),
    )
    table.finish()
    return aml


def read_surveillance(
    root: Table, instruments: Sequence[InstrumentSpec], assets: Mapping[str, int]
) -> SurveillanceConfig:
    """``[surveillance]``, optional; absent keys take the defaults. ``instruments`` and
    ``assets`` (code -> decimals) are the venue's, for quantities and amounts."""
    if "surveillance" not in root:
        return SurveillanceConfig()
    table = root.table("surveillance")
    enabled = table.optional_boolean("enabled", True)
    defaults = _instrument_params(table, InstrumentParams(), None)
    specs = {spec.symbol: spec for spec in instruments}
    per: dict[str, InstrumentParams] = {}
    if "instruments" in table:
        listed = table.table("instruments")
        for symbol, _ in list(listed.items()):
            if symbol not in specs:
                listed.fail(symbol, f"unknown instrument (the venue lists: {', '.join(specs)})")
            inner = listed.table(symbol)
            per[symbol] = _instrument_params(inner, defaults, specs[symbol])
            inner.finish()
    aml = _aml(table.table("aml"), assets) if "aml" in table else AmlParams()
    table.finish()
    return SurveillanceConfig(enabled, defaults, per, aml)
