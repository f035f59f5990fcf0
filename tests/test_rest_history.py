"""The market history behind the Binance door's public endpoints, on in-process event streams."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.events import Event, OrderAccepted, Trade
from engine.instrument import spec_from_decimals
from engine.types import OrderStatus, OrdType, Side, StpMode, TimeInForce
from gateway.rest.candles import INTERVALS, open_of, parse_time_zone
from gateway.rest.history import HistoryError, MarketHistory

BTC = spec_from_decimals("BTC-USDT", "BTC", "USDT", "0.01", "0.0001", "0.0001", "100", "1", 500)
ETH = spec_from_decimals("ETH-USDT", "ETH", "USDT", "0.1", "0.001", "0.001", "1000", "1", 500)
MS = 1_000_000  # ns per ms
T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z, ms

Stream = list[tuple[int, int, list[Event]]]


def trade(tid: int, price: int, qty: int, *, taker: int = 1, side: Side = Side.BUY,
          symbol: str = "BTC-USDT") -> Trade:  # fmt: skip
    return Trade(tid, symbol, price, qty, side, 100 + tid, 7, "m", 0, qty, taker, 8, "t", 0, qty)


def accepted(order_id: int) -> OrderAccepted:
    return OrderAccepted(
        order_id, 1, "BTC-USDT", "c", Side.BUY, OrdType.LIMIT, TimeInForce.GTC, 1, 1, 0, 0, 0,
        0, StpMode.NONE, "", OrderStatus.NEW,
    )  # fmt: skip


def history(**kw: int) -> MarketHistory:
    return MarketHistory([BTC, ETH], **kw)


def random_stream(seed: int, commands: int, span_ms: int, start: int = T0) -> Stream:
    """Commands at random times over ``span_ms`` with one to four trades each, sometimes of
    one taker at one price (aggregated), sometimes on the other symbol or none."""
    rng = random.Random(seed)
    times = sorted(start + rng.randrange(span_ms) for _ in range(commands))
    stream: Stream = []
    tid = 0
    for seq, ms in enumerate(times, 1):
        events: list[Event] = []
        taker = seq * 10
        price = rng.randrange(9_000_000, 9_100_000)
        for _ in range(rng.randrange(0, 5)):
            tid += 1
            if rng.random() < 0.5:
                price += rng.randrange(1, 300)
            symbol = "ETH-USDT" if rng.random() < 0.2 else "BTC-USDT"
            side = Side.BUY if rng.random() < 0.6 else Side.SELL
            events.append(trade(tid, price, rng.randrange(1, 50_000), taker=taker, side=side,
                                symbol=symbol))  # fmt: skip
        if rng.random() < 0.2:
            events.append(accepted(seq))
        stream.append((seq, ms * MS, events))
    return stream


def trade_list(stream: Stream, symbol: str = "BTC-USDT") -> list[tuple[int, int, int, int, bool]]:
    """(per-symbol id, time ms, price, qty, taker buy) of every trade of ``symbol``."""
    out = []
    for _, ts, events in stream:
        for e in events:
            if isinstance(e, Trade) and e.instrument == symbol:
                out.append((len(out) + 1, ts // MS, e.price, e.qty, e.taker_side is Side.BUY))
    return out


def brute_klines(trades: list[tuple[int, int, int, int, bool]], interval: str,
                 offset: int = 0) -> list[list[Any]]:  # fmt: skip
    """Klines in integer units by grouping the trade list (a ``close`` time from the next open)."""
    groups: dict[int, list[tuple[int, int, int, int, bool]]] = {}
    for t in trades:
        groups.setdefault(open_of(interval, t[1], offset), []).append(t)
    rows = []
    for opened, ts in sorted(groups.items()):
        prices = [t[2] for t in ts]
        rows.append([
            opened, prices[0], max(prices), min(prices), prices[-1], sum(t[3] for t in ts),
            sum(t[2] * t[3] for t in ts), len(ts), sum(t[3] for t in ts if t[4]),
            sum(t[2] * t[3] for t in ts if t[4]),
        ])  # fmt: skip
    return rows


def as_units(rows: list[list[Any]]) -> list[list[Any]]:
    """Klines from the model back in integer units (BTC-USDT scales) for comparison."""
    out = []
    for r in rows:

        def q(x: str, step: str) -> int:
            return int(Decimal(x) / Decimal(step))

        assert r[11] == "0"
        out.append([
            r[0], q(r[1], "0.01"), q(r[2], "0.01"), q(r[3], "0.01"), q(r[4], "0.01"),
            q(r[5], "0.0001"), q(r[7], "0.000001"), r[8], q(r[9], "0.0001"), q(r[10], "0.000001"),
        ])  # fmt: skip
    return out


# -- trades and ids ------------------------------------------------------------------------------


def test_ids_are_per_symbol_and_increasing_while_the_engine_numbers_them_globally() -> None:
    h = history()
    h.apply(1, T0 * MS, [trade(1, 100, 5), trade(2, 200, 5, symbol="ETH-USDT")])
    h.apply(2, (T0 + 1) * MS, [accepted(9), trade(3, 101, 7, side=Side.SELL, taker=2)])
    assert h.seq == 2
    rows = h.trades("BTC-USDT")
    assert rows == [
        {"id": 1, "price": "1.00", "qty": "0.0005", "quoteQty": "0.000500", "time": T0,
         "isBuyerMaker": False, "isBestMatch": True},
        {"id": 2, "price": "1.01", "qty": "0.0007", "quoteQty": "0.000707", "time": T0 + 1,
         "isBuyerMaker": True, "isBestMatch": True},
    ]  # fmt: skip
    assert [r["id"] for r in h.trades("ETH-USDT")] == [1]
    assert h.symbols["BTC-USDT"].get(2).trade_id == 3  # the engine's id is kept
    with pytest.raises(HistoryError) as err:
        h.trades("XRP-USDT")
    assert (err.value.code, err.value.msg) == (-1121, "Invalid symbol.")


def test_trades_limits_from_id_and_the_ring_bound() -> None:
    h = history(keep_trades=5)
    for i in range(1, 13):
        h.apply(i, (T0 + i) * MS, [trade(i, 100 + i, 1, taker=i)])
    assert [r["id"] for r in h.trades("BTC-USDT")] == [8, 9, 10, 11, 12]  # only 5 kept
    assert [r["id"] for r in h.trades("BTC-USDT", limit=2)] == [11, 12]
    assert [r["id"] for r in h.historical_trades("BTC-USDT", 2, from_id=9)] == [9, 10]
    assert [r["id"] for r in h.historical_trades("BTC-USDT", 3, from_id=1)] == [8, 9, 10]
    assert h.historical_trades("BTC-USDT", 3, from_id=13) == []
    assert len(h.trades("BTC-USDT", limit=5000)) == 5
    with pytest.raises(HistoryError) as err:
        h.trades("BTC-USDT", limit=0)
    assert err.value.code == -1130


def test_aggregation_same_command_same_taker_same_price() -> None:
    h = history()
    h.apply(1, T0 * MS, [trade(1, 100, 1, taker=5), trade(2, 100, 2, taker=5),
                         trade(3, 101, 3, taker=5), trade(4, 101, 1, taker=6)])  # fmt: skip
    h.apply(2, (T0 + 10) * MS, [trade(5, 101, 4, taker=6, side=Side.SELL)])
    aggs = h.agg_trades("BTC-USDT")
    assert aggs == [
        {"a": 1, "p": "1.00", "q": "0.0003", "f": 1, "l": 2, "T": T0, "m": False, "M": True},
        {"a": 2, "p": "1.01", "q": "0.0003", "f": 3, "l": 3, "T": T0, "m": False, "M": True},
        {"a": 3, "p": "1.01", "q": "0.0001", "f": 4, "l": 4, "T": T0, "m": False, "M": True},
        {"a": 4, "p": "1.01", "q": "0.0004", "f": 5, "l": 5, "T": T0 + 10, "m": True, "M": True},
    ]
    assert h.agg_trades("BTC-USDT", from_id=2, limit=2) == aggs[1:3]
    assert h.agg_trades("BTC-USDT", start_ms=T0 + 1) == aggs[3:]
    assert h.agg_trades("BTC-USDT", end_ms=T0 + 9, limit=2) == aggs[1:3]
    assert h.agg_trades("BTC-USDT", start_ms=T0, end_ms=T0) == aggs[:3]
    assert h.agg_trades("BTC-USDT", start_ms=T0 + 5, end_ms=T0) == []
    assert h.agg_trades("BTC-USDT", limit=1) == aggs[3:]
    with pytest.raises(HistoryError) as err:
        h.agg_trades("BTC-USDT", from_id=1, start_ms=T0)
    assert (err.value.code, err.value.msg) == (-1128, "Combination of optional parameters invalid.")


def test_an_aggregate_cut_by_the_ring_is_not_shown() -> None:
    h = history(keep_trades=3)
    h.apply(1, T0 * MS, [trade(i, 100, 1, taker=5) for i in range(1, 4)])
    h.apply(2, (T0 + 1) * MS, [trade(4, 100, 1, taker=6)])
    assert [(a["a"], a["f"], a["l"]) for a in h.agg_trades("BTC-USDT")] == [(2, 4, 4)]


# -- candles -------------------------------------------------------------------------------------


def _ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp()) * 1000  # type: ignore[misc]


def test_interval_boundaries() -> None:
    t = _ms(2024, 2, 29, 13, 47, 31) + 250  # a Thursday in a leap year
    assert open_of("1s", t) == t - 250
    assert open_of("1m", t) == _ms(2024, 2, 29, 13, 47)
    assert open_of("3m", t) == _ms(2024, 2, 29, 13, 45)
    assert open_of("15m", t) == _ms(2024, 2, 29, 13, 45)
    assert open_of("2h", t) == _ms(2024, 2, 29, 12)
    assert open_of("8h", t) == _ms(2024, 2, 29, 8)
    assert open_of("12h", t) == _ms(2024, 2, 29, 12)
    assert open_of("1d", t) == _ms(2024, 2, 29)
    days = _ms(2024, 2, 29) // 86_400_000
    assert open_of("3d", t) == (days - days % 3) * 86_400_000  # from the epoch
    assert open_of("1w", t) == _ms(2024, 2, 26)  # Monday
    assert datetime.fromtimestamp(open_of("1w", t) // 1000, UTC).weekday() == 0
    assert open_of("1w", _ms(2024, 2, 26)) == _ms(2024, 2, 26)
    assert open_of("1w", _ms(2024, 2, 26) - 1) == _ms(2024, 2, 19)
    assert open_of("1M", t) == _ms(2024, 2, 1)
    h = history()
    for seq, when in enumerate([t, _ms(2024, 12, 31, 23, 59, 59), _ms(2025, 2, 28)], 1):
        h.apply(seq, when * MS, [trade(seq, 100, 1, taker=seq)])
    months = h.klines("BTC-USDT", "1M")
    assert [(k[0], k[6]) for k in months] == [
        (_ms(2024, 2, 1), _ms(2024, 3, 1) - 1),  # 29 days
        (_ms(2024, 12, 1), _ms(2025, 1, 1) - 1),
        (_ms(2025, 2, 1), _ms(2025, 3, 1) - 1),  # 28 days
    ]
    weeks = h.klines("BTC-USDT", "1w")
    assert [k[6] - k[0] + 1 for k in weeks] == [7 * 86_400_000] * 3
    # every fixed interval's candle holds its trade and spans its width
    for interval, width in INTERVALS.items():
        for k in h.klines("BTC-USDT", interval):
            assert k[0] <= k[6] and (not width or k[6] - k[0] + 1 == width)


def test_time_zones() -> None:
    assert parse_time_zone("0") == 0
    assert parse_time_zone("8") == 8 * 3_600_000
    assert parse_time_zone("+08:00") == 8 * 3_600_000
    assert parse_time_zone("-1:00") == -3_600_000
    assert parse_time_zone("05:45") == (5 * 60 + 45) * 60_000
    assert parse_time_zone("14:00") == 14 * 3_600_000
    for bad in ("14:01", "-12:30", "8:60", "abc", "", "+8.5"):
        assert parse_time_zone(bad) is None
    t = _ms(2024, 3, 1, 17)  # 01:00 on March 2nd at +08:00
    assert open_of("1d", t, 8 * 3_600_000) == _ms(2024, 3, 1, 16)
    assert open_of("1M", t, 8 * 3_600_000) == _ms(2024, 2, 29, 16)
    assert open_of("1w", _ms(2024, 3, 3, 17), 8 * 3_600_000) == _ms(2024, 3, 3, 16)  # Mon local
    assert open_of("1h", t, parse_time_zone("05:45") or 0) == _ms(2024, 3, 1, 16, 15)
    h = history()
    with pytest.raises(HistoryError) as err:
        h.klines("BTC-USDT", "1d", time_zone="15")
    assert (err.value.code, err.value.msg) == (
        -1130,
        "Data sent for parameter 'timeZone' is not valid.",
    )
    with pytest.raises(HistoryError) as err:
        h.klines("BTC-USDT", "2d")
    assert (err.value.code, err.value.msg) == (-1120, "Invalid interval.")


@pytest.mark.parametrize("zone", ["0", "+08:00", "-3:30", "05:45"])
def test_klines_equal_a_recomputation_from_the_trades(zone: str) -> None:
    stream = random_stream(7, 3000, 40 * 86_400_000)
    h = history(keep_candles=10_000)
    h.catch_up(stream)
    trades = trade_list(stream)
    offset = parse_time_zone(zone)
    assert offset is not None
    for interval in INTERVALS:
        want = brute_klines(trades, interval, offset)
        got = as_units(h.klines("BTC-USDT", interval, 0, 2**50, 1000, zone))
        assert got == want[:1000], interval
        assert as_units(h.klines("BTC-USDT", interval, time_zone=zone, limit=7)) == want[-7:]
        if len(want) > 3:  # a window: open times in [start, end], gaps absent
            start, end = want[1][0], want[-2][0]
            rows = h.klines("BTC-USDT", interval, start - 1, end, 1000, zone)
            assert as_units(rows) == want[1:-1][:1000]
            rows = h.klines("BTC-USDT", interval, None, end, 2, zone)
            assert as_units(rows) == want[-3:-1]


def test_candles_are_bounded_and_the_current_one_is_exposed() -> None:
    h = history(keep_candles=4)
    seen: list[tuple[str, int]] = []
    h.on_trade.append(lambda symbol, r: seen.append((symbol, r.id)))
    for i in range(10):
        h.apply(i + 1, (T0 + i * 60_000) * MS, [trade(i + 1, 100 + i, 1, taker=i)])
    assert len(h.klines("BTC-USDT", "3m")) == 4
    assert len(h.symbols["BTC-USDT"].series["1m"].candles) == 10  # 1m keeps 7 days at least
    current = h.current_candle("BTC-USDT", "5m")
    assert current is not None and current.close == 109 and current.open_time <= T0 + 9 * 60_000
    assert h.changed == {"BTC-USDT"} and seen[-1] == ("BTC-USDT", 10)
    # a gap: no candle for minutes without trades
    h.apply(11, (T0 + 30 * 60_000) * MS, [trade(11, 99, 1, taker=99)])
    opens = [k[0] for k in h.klines("BTC-USDT", "1m")]
    assert len(opens) == 11 and opens[-1] - opens[-2] == 21 * 60_000


# -- tickers -------------------------------------------------------------------------------------


def brute_window(trades: list[tuple[int, int, int, int, bool]], start: int, end: int
                 ) -> dict[str, Any]:  # fmt: skip
    inside = [t for t in trades if start <= t[1] <= end]
    vol = sum(t[3] for t in inside)
    quote = sum(t[2] * t[3] for t in inside)
    first, last = inside[0], inside[-1]
    change = Decimal(last[2] - first[2])
    pct = (change * 100 / Decimal(first[2])).quantize(Decimal("0.001"), "ROUND_HALF_UP")
    avg = Decimal(quote) / Decimal(vol) / 100  # tick 0.01
    return {
        "priceChange": str(change / 100), "priceChangePercent": str(pct),
        "weightedAvgPrice": avg, "openPrice": first[2], "highPrice": max(t[2] for t in inside),
        "lowPrice": min(t[2] for t in inside), "lastPrice": last[2], "volume": vol,
        "quoteVolume": quote, "firstId": first[0], "lastId": last[0], "count": len(inside),
    }  # fmt: skip


def check_ticker(row: dict[str, Any], want: dict[str, Any]) -> None:
    assert Decimal(row["priceChange"]) == Decimal(want["priceChange"])
    assert row["priceChangePercent"] == want["priceChangePercent"]
    assert abs(Decimal(row["weightedAvgPrice"]) - want["weightedAvgPrice"]) <= Decimal("1e-10")
    for name in ("openPrice", "highPrice", "lowPrice", "lastPrice"):
        assert Decimal(row[name]) == Decimal(want[name]) / 100, name
    assert Decimal(row["volume"]) == Decimal(want["volume"]) / 10_000
    assert Decimal(row["quoteVolume"]) == Decimal(want["quoteVolume"]) / 1_000_000
    assert (row["firstId"], row["lastId"], row["count"]) == (
        want["firstId"], want["lastId"], want["count"]
    )  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_tickers_equal_a_recomputation_from_the_trades(seed: int) -> None:
    stream = random_stream(seed, 4000, 9 * 86_400_000)
    h = history()
    h.catch_up(stream)
    trades = trade_list(stream)
    rng = random.Random(seed)
    for _ in range(12):
        # the end of a minute: "now" follows every trade applied of its minute
        minute = T0 - T0 % 60_000 + rng.randrange(2 * 1440, 9 * 1440) * 60_000
        now = minute + 59_999
        size, unit = rng.choice([(5, "m"), (59, "m"), (3, "h"), (23, "h"), (1, "d"), (7, "d")])
        width = size * {"m": 60_000, "h": 3_600_000, "d": 86_400_000}[unit]
        row = h.ticker("BTC-USDT", f"{size}{unit}", now_ms=now)
        assert isinstance(row, dict)
        assert (row["openTime"], row["closeTime"]) == (minute - width, now)
        if any(minute - width <= t[1] <= now for t in trades):
            check_ticker(row, brute_window(trades, minute - width, now))
        else:
            assert row["count"] == 0 and row["firstId"] == -1
        day = h.ticker_24hr("BTC-USDT", now_ms=now, book_top=lambda s: (1, 2, 3, 4))
        assert isinstance(day, dict)
        check_ticker(day, brute_window(trades, minute - 86_400_000, now))
        before = [t for t in trades if t[1] < minute - 86_400_000]
        assert Decimal(day["prevClosePrice"]) == Decimal(before[-1][2] if before else 0) / 100
        assert (day["bidPrice"], day["bidQty"], day["askPrice"], day["askQty"]) == (
            "0.01", "0.0002", "0.03", "0.0004"
        )  # fmt: skip
        zone = rng.choice(["0", "8", "-5:30"])
        offset = parse_time_zone(zone) or 0
        start = open_of("1d", now, offset)
        td = h.ticker_trading_day(["BTC-USDT"], zone, now_ms=now)
        assert isinstance(td, list) and td[0]["openTime"] == start
        assert td[0]["closeTime"] == start + 86_400_000 - 1
        if any(start <= t[1] <= now for t in trades):
            check_ticker(td[0], brute_window(trades, start, now))
        recent = [t for t in trades if now - now % 1000 - 299_000 <= t[1] <= now]
        avg = h.avg_price("BTC-USDT", now_ms=now)
        last = [t for t in trades if t[1] <= now][-1] if recent else trades[-1]
        if recent:
            want = Decimal(sum(t[2] * t[3] for t in recent)) / sum(t[3] for t in recent) / 100
            assert abs(Decimal(avg["price"]) - want) <= Decimal("1e-10")
        else:
            assert Decimal(avg["price"]) == Decimal(last[2]) / 100
        assert avg["mins"] == 5 and avg["closeTime"] == trades[-1][1]


def test_ticker_shapes_and_refusals() -> None:
    h = history()
    h.apply(1, T0 * MS, [trade(1, 300, 10), trade(2, 100, 20, taker=2)])
    full = h.ticker_24hr("BTC-USDT")
    assert isinstance(full, dict)
    assert list(full) == [
        "symbol", "priceChange", "priceChangePercent", "weightedAvgPrice", "prevClosePrice",
        "lastPrice", "lastQty", "bidPrice", "bidQty", "askPrice", "askQty", "openPrice",
        "highPrice", "lowPrice", "volume", "quoteVolume", "openTime", "closeTime", "firstId",
        "lastId", "count",
    ]  # fmt: skip
    assert (full["priceChange"], full["priceChangePercent"]) == ("-2.00", "-66.667")
    assert full["weightedAvgPrice"] == "1.6666666667"  # 5000/30 ticks, tick decimals + 8
    mini = h.ticker_24hr(None, "MINI")
    assert isinstance(mini, list) and [m["symbol"] for m in mini] == ["BTC-USDT", "ETH-USDT"]
    assert list(mini[0]) == [
        "symbol", "openPrice", "highPrice", "lowPrice", "lastPrice", "volume", "quoteVolume",
        "openTime", "closeTime", "firstId", "lastId", "count",
    ]  # fmt: skip
    assert mini[1]["count"] == 0 and mini[1]["firstId"] == -1 and mini[1]["lastPrice"] == "0.0"
    rolling = h.ticker(["BTC-USDT"], "1h")
    assert isinstance(rolling, list) and "prevClosePrice" not in rolling[0]
    for call, code in [
        (lambda: h.ticker("BTC-USDT", "60m"), -1130),
        (lambda: h.ticker("BTC-USDT", "8d"), -1130),
        (lambda: h.ticker("BTC-USDT", "1d2h"), -1130),
        (lambda: h.ticker("BTC-USDT", "1d", "SMALL"), -1139),
        (lambda: h.ticker(["BTC-USDT", "BTC-USDT"]), -1151),
        (lambda: h.ticker_trading_day("BTC-USDT", "+15:00"), -1130),
    ]:
        with pytest.raises(HistoryError) as err:
            call()
        assert err.value.code == code
    assert h.avg_price("ETH-USDT") == {"mins": 5, "price": "0.0", "closeTime": 0}


# -- checkpoints ---------------------------------------------------------------------------------


def state(h: MarketHistory) -> Any:
    out: dict[str, Any] = {"seq": h.seq, "now": h.now_ms}
    for s, sh in h.symbols.items():
        records = sh.records(sh.first_id(), sh.last_id) if sh.last_id else []
        out[s] = (
            [r.fields() for r in records],
            (sh.last_id, sh.agg_id, sh.last_seq, sh.last_taker, sh.cut_agg),
            {n: ([c.fields() for c in x.candles], x.complete_from, x.last_dropped_close)
             for n, x in sh.series.items()},
        )  # fmt: skip
    return out


def test_save_load_round_trip(tmp_path: Path) -> None:
    h = history(keep_trades=500, keep_candles=50)
    h.catch_up(random_stream(4, 2000, 3 * 86_400_000))
    path = tmp_path / "history"
    assert h.save(path) == path.stat().st_size
    again = history(keep_trades=500, keep_candles=50)
    assert again.load(path)
    assert state(again) == state(h)
    assert again.trades("BTC-USDT") == h.trades("BTC-USDT")
    assert again.agg_trades("ETH-USDT") == h.agg_trades("ETH-USDT")
    assert again.ticker_24hr() == h.ticker_24hr()
    assert not (tmp_path / "history.tmp").exists()


def test_damaged_or_missing_checkpoint(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    h = history()
    h.catch_up(random_stream(5, 200, 86_400_000))
    path = tmp_path / "history"
    h.save(path)
    data = path.read_bytes()
    for damaged in (data[:-10], data[:40] + bytes([data[40] ^ 1]) + data[41:], b"", b"junk"):
        path.write_bytes(damaged)
        again = history()
        again.catch_up(random_stream(6, 10, 1000))
        assert not again.load(path)
        assert again.seq == 0 and again.trades("BTC-USDT") == []
    assert "damaged" in caplog.text
    assert not history().load(tmp_path / "absent")
    other = MarketHistory([spec_from_decimals("BTC-USDT", "BTC", "USDT", "0.1", "0.0001",
                                              "0.0001", "100", "1", 500)])  # fmt: skip
    path.write_bytes(data)
    assert not other.load(path)  # another tick size: rebuild


def test_checkpoint_then_the_rest_equals_everything_at_once(tmp_path: Path) -> None:
    stream = random_stream(8, 3000, 10 * 86_400_000)
    whole = history(keep_trades=1000, keep_candles=100)
    whole.catch_up(stream)
    first = history(keep_trades=1000, keep_candles=100)
    first.catch_up(stream[:1700])
    first.save(tmp_path / "cp")
    resumed = history(keep_trades=1000, keep_candles=100)
    assert resumed.load(tmp_path / "cp") and resumed.seq == 1700
    assert resumed.catch_up(stream) == len(stream) - 1700  # what is at or before seq is skipped
    assert state(resumed) == state(whole)
    for interval in INTERVALS:
        assert resumed.klines("ETH-USDT", interval, time_zone="8") == whole.klines(
            "ETH-USDT", interval, time_zone="8"
        )
