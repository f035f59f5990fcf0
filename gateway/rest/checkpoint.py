"""The checkpoint of :class:`~gateway.rest.history.MarketHistory`: what it holds at one seq, so a
restart replays only the journal after it.

One file: a magic line, the CRC-32 of the rest, and zlib-compressed JSON (integers of any size,
prices and quantities in ticks and lots as inside). Trades and candles are written by column,
ids and times as differences from the previous row, which is what makes them compress well.
It is written to a temporary file and renamed over the old one, so a crash leaves one or the
other. Each symbol records its tick and lot sizes: a checkpoint of other sizes is refused.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import zlib
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from gateway.rest.candles import INTERVALS, Candle

if TYPE_CHECKING:
    from gateway.rest.history import MarketHistory, SymbolHistory

__all__ = ["MAGIC", "load", "save"]

log = logging.getLogger("gateway.rest.history")

MAGIC: Final = b"venue market history 1\n"
_CRC: Final = struct.Struct("<I")


def _deltas(values: list[int]) -> list[int]:
    return [b - a for a, b in zip([0, *values], values, strict=False)]


def _sums(values: list[int]) -> list[int]:
    return list(accumulate(values))


def _symbol(h: SymbolHistory) -> dict[str, Any]:
    records = h.records(h.first_id(), h.last_id) if h.last_id else []
    trades = [
        h.first_id(),
        _deltas([r.price for r in records]),
        [r.qty for r in records],
        _deltas([r.time for r in records]),
        [int(r.buyer_maker) for r in records],
        _deltas([r.agg_id for r in records]),
        _deltas([r.trade_id for r in records]),
    ]
    series = {}
    for name, s in h.series.items():
        cs = s.candles
        series[name] = [
            s.complete_from,
            s.last_dropped_close,
            _deltas([c.open_time for c in cs]),
            [c.close_time - c.open_time for c in cs],
            *([getattr(c, f) for c in cs] for f in _CANDLE_FIELDS),
            _deltas([c.first_id for c in cs]),
            [c.last_id - c.first_id for c in cs],
        ]
    units = h.units
    return {
        "tick": format(units.spec.tick_size, "f"),
        "lot": format(units.spec.lot_size, "f"),
        "counters": [h.last_id, h.agg_id, h.last_seq, h.last_taker, h.cut_agg],
        "trades": trades,
        "series": series,
    }


_CANDLE_FIELDS: Final = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote",
    "count",
    "taker_volume",
    "taker_quote",
)


def save(history: MarketHistory, path: Path) -> int:
    state = {
        "seq": history.seq,
        "now": history.now_ms,
        "symbols": {s: _symbol(h) for s, h in history.symbols.items() if h.last_id},
    }
    body = zlib.compress(json.dumps(state, separators=(",", ":")).encode("ascii"), 6)
    data = MAGIC + _CRC.pack(zlib.crc32(body)) + body
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    return len(data)


def load(history: MarketHistory, path: Path) -> bool:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        history.reset()
        return False
    except OSError as exc:
        log.warning("%s cannot be read (%s): the market history starts over", path, exc)
        history.reset()
        return False
    try:
        _restore(history, data)
    except (ValueError, TypeError, KeyError, IndexError, zlib.error, struct.error) as exc:
        log.warning("%s is damaged (%s): the market history starts over", path, exc)
        history.reset()
        return False
    return True


def _restore(history: MarketHistory, data: bytes) -> None:
    from gateway.rest.history import TradeRecord

    if not data.startswith(MAGIC):
        raise ValueError("not a market history checkpoint")
    head = len(MAGIC) + _CRC.size
    (crc,) = _CRC.unpack(data[len(MAGIC) : head])
    body = data[head:]
    if zlib.crc32(body) != crc:
        raise ValueError("checksum mismatch")
    state = json.loads(zlib.decompress(body))
    history.reset()
    for symbol, saved in state["symbols"].items():
        h = history.symbols.get(symbol)
        if h is None:
            continue  # no longer listed
        spec = h.units.spec
        if (saved["tick"], saved["lot"]) != (
            format(spec.tick_size, "f"),
            format(spec.lot_size, "f"),
        ):
            raise ValueError(f"{symbol}: tick or lot size changed")
        h.last_id, h.agg_id, h.last_seq, h.last_taker, h.cut_agg = (
            int(v) for v in saved["counters"]
        )
        first, prices, qtys, times, makers, aggs, engine_ids = saved["trades"]
        columns = (_sums(prices), qtys, _sums(times), makers, _sums(aggs), _sums(engine_ids))
        if any(len(c) != h.last_id - first + 1 for c in columns) or first < 1:
            raise ValueError(f"{symbol}: trades do not match their ids")
        rows = list(zip(*columns, strict=True))
        start = max(0, len(rows) - h.keep)
        if start:
            h.cut_agg = rows[start - 1][4]
        for index in range(start, len(rows)):
            price, qty, time, maker, agg, engine_id = rows[index]
            record = TradeRecord(first + index, price, qty, time, bool(maker), agg, engine_id)
            h.ring[record.id % h.keep] = record
            h.last = record
        for name, cols in saved["series"].items():
            series = h.series[name] if name in INTERVALS else None
            if series is None:
                raise ValueError(f"unknown interval {name!r}")
            complete_from, dropped_close, opens, spans, *fields = cols
            first_ids = _sums(fields[-2])
            candles = zip(_sums(opens), spans, *fields[:-2], first_ids, fields[-1], strict=True)
            series.complete_from, series.last_dropped_close = complete_from, dropped_close
            for opened, span, *values, first_id, id_span in candles:
                if len(values) != len(_CANDLE_FIELDS):
                    raise ValueError(f"{symbol} {name}: candles of another shape")
                o, high, low, close, volume, quote, count, taker_volume, taker_quote = values
                series.append(
                    Candle(
                        opened,
                        opened + span,
                        o,
                        high,
                        low,
                        close,
                        volume,
                        quote,
                        count,
                        taker_volume,
                        taker_quote,
                        first_id,
                        first_id + id_span,
                    )
                )
    history.seq = int(state["seq"])
    history.now_ms = int(state["now"])
