"""``GET /v1/surveillance/otr``: the order-to-trade counts of the running detector, served from a
running venue through the admin API; the numbers are RTS 9's formulas worked by hand over the
commands sent; who may read them; bad parameters named; the parser under a seeded fuzz."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import string
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from detect_flows import PRICE, Flow, params

from engine.commands import CancelOrder, ConfigureAccount, NewOrder, ReplaceOrder
from engine.events import OrderAccepted, Trade
from engine.types import OrdType, Side, StpMode
from surveillance.detect.params import SurveillanceConfig
from surveillance.detect.state import DAY_NS
from surveillance.pages import OtrQueryError, parse_otr_query
from venue.admin import staff_access, start_admin
from venue.config import DEFAULT_CONFIG_PATH, AdminConfig, VenueConfig, load_config
from venue.parts import SurveillancePart
from venue.runtime import Venue

SYMBOL = "BTC-USDT"
TICKS = 9_500_000  # 95000.00 USDT
LOT = Decimal("0.00001")  # BTC-USDT's lot


def make_config(data_dir: Path) -> VenueConfig:
    """The shipped configuration, matching only, the detectors judging after 2 messages with
    maximum ratios of 2 (number method) and 10 (volume method)."""
    config = load_config(DEFAULT_CONFIG_PATH)
    surveillance = SurveillanceConfig(
        defaults=params(otr_max_number=2, otr_max_volume=10, otr_min_messages=2)
    )
    return dataclasses.replace(
        config,
        data_dir=data_dir,
        admin=AdminConfig("127.0.0.1", 0),
        assets={},
        fees=None,
        ledger=None,
        surveillance=surveillance,
    )


def rts9(messages: int, trades: int, ordered: int, traded: int) -> dict[str, Any]:
    """RTS 9, Annex: number method = messages / executed orders, volume method = volume
    ordered and modified / volume traded, a divisor of nothing counting as 1; over the maximum
    (2 and 10) once 2 messages were sent."""
    number = Decimal(messages) / Decimal(max(trades, 1))
    volume = Decimal(ordered) / Decimal(max(traded, 1))
    return {
        "messages": messages,
        "trades": trades,
        "numberRatio": str(number.quantize(Decimal("0.01"))),
        "orderVolume": str(ordered * LOT),
        "tradedVolume": str(traded * LOT),
        "volumeRatio": str(volume.quantize(Decimal("0.01"))),
        "maxNumber": 2,
        "maxVolume": 10,
        "minMessages": 2,
        "breached": messages >= 2 and (number > 2 or volume > 10),
    }


def test_the_endpoint_serves_the_detector_counts_as_rts9_has_them(tmp_path: Path) -> None:
    """Account 1 (owner 9) rests four asks, modifies one and cancels one; account 2 takes
    from it in three trades; account 3 (owner 9 too) rests two bids that never trade."""

    async def main() -> None:
        config = make_config(tmp_path / "data")
        venue = Venue(config)
        await venue.start()
        part = SurveillancePart(venue, config)
        await part.start()
        runner, host, port = await start_admin(
            venue, "127.0.0.1", 0, surveillance=lambda: part.surveillance
        )
        try:
            await venue.submit(ConfigureAccount(1, 9, StpMode.NONE))
            await venue.submit(ConfigureAccount(3, 9, StpMode.NONE))
            asks = []
            for n in range(4):  # 4 messages, 400 lots
                events = await venue.submit(
                    NewOrder(1, SYMBOL, f"a{n}", Side.SELL, OrdType.LIMIT, 100, TICKS + 100 * n)
                )
                asks += [e.order_id for e in events if isinstance(e, OrderAccepted)]
            assert len(asks) == 4
            # a modification to 200 lots (volume 200), a cancellation (volume nothing)
            await venue.submit(ReplaceOrder(1, SYMBOL, asks[3], "", "", 200, TICKS + 300, 0))
            await venue.submit(CancelOrder(1, SYMBOL, asks[2]))
            trades = 0
            for n, (qty, ticks) in enumerate(((50, TICKS), (100, TICKS + 100))):
                events = await venue.submit(
                    NewOrder(2, SYMBOL, f"b{n}", Side.BUY, OrdType.LIMIT, qty, ticks)
                )
                trades += sum(isinstance(e, Trade) for e in events)
            assert trades == 3  # 50 at the first ask, then its other 50 and 50 of the second
            for n in range(2):
                await venue.submit(
                    NewOrder(3, SYMBOL, f"c{n}", Side.BUY, OrdType.LIMIT, 70, TICKS - 1_000)
                )
            today = datetime.fromtimestamp(venue.core.last_ts / 1e9, UTC).date().isoformat()
            # by hand: messages, trades (each counted for both accounts), lots ordered, traded
            one = rts9(4 + 1 + 1, 3, 400 + 200, 150)
            two = rts9(2, 3, 150, 150)
            three = rts9(2, 0, 140, 0)
            owner = rts9(6 + 2, 3, 600 + 140, 150)
            assert one["breached"] is False  # 6 messages for 3 trades: at the maximum, not over
            assert three["breached"] and owner["breached"] and not two["breached"]
            expected = [  # highest number ratio first, then highest volume ratio
                {"symbol": SYMBOL, "owner": 9, **owner},  # 2.67
                {"symbol": SYMBOL, "account": 3, **three},  # 2.00, volume 140.00
                {"symbol": SYMBOL, "account": 1, **one},  # 2.00, volume 4.00
                {"symbol": SYMBOL, "account": 2, **two},  # 0.67
            ]

            store = staff_access(config).store
            compliance = store.create_token(["compliance"], 600, "tests")[1]
            auditor = store.create_token(["auditor"], 600, "tests")[1]
            operator = store.create_token(["operator"], 600, "tests")[1]
            admin = store.create_token(["admin", "treasury", "approver"], 600, "tests")[1]
            async with aiohttp.ClientSession(f"http://{host}:{port}") as http:

                async def get(query: str, token: str = compliance) -> tuple[int, Any]:
                    headers = {"Authorization": f"Bearer {token}"} if token else {}
                    url = "/v1/surveillance/otr" + query
                    async with http.get(url, headers=headers) as response:
                        return response.status, await response.json()

                status, body = await get("")
                assert status == 200, body
                assert body == {"day": today, "days": [today], "rows": expected}
                status, body = await get(f"?symbol={SYMBOL}&day={today}", auditor)
                assert status == 200 and body["rows"] == expected
                status, body = await get("?account=1")  # its own row and its owner group's
                assert [r.get("account", r.get("owner")) for r in body["rows"]] == [9, 1]
                status, body = await get("?account=2&symbol=ETH-USDT")
                assert status == 200 and body["rows"] == []
                status, body = await get("?day=2020-01-01")  # not kept: no rows
                assert body == {"day": "2020-01-01", "days": [today], "rows": []}
                # who may read them
                status, body = await get("", "")
                assert status == 401, body
                for token in (operator, admin):
                    status, body = await get("", token)
                    assert status == 403, body
                # bad parameters name the field
                for query, words in (
                    ("?symbol=DOGE-USDT", "'symbol'"),
                    ("?account=abc", "'account'"),
                    ("?account=0", "'account'"),
                    ("?day=2026-13-01", "'day'"),
                    ("?day=yesterday", "'day'"),
                    ("?colour=red", "'colour'"),
                    ("?day=2026-01-01&day=2026-01-02", "'day' is given more than once"),
                ):
                    status, body = await get(query)
                    assert status == 400, (query, body)
                    assert set(body) == {"code", "msg"} and words in body["msg"], body
        finally:
            await runner.cleanup()
            await part.stop()
            await venue.stop()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_without_running_detectors_the_endpoint_answers_503(tmp_path: Path) -> None:
    async def main() -> None:
        config = make_config(tmp_path / "data")
        venue = Venue(config)
        await venue.start()
        runner, host, port = await start_admin(venue, "127.0.0.1", 0)
        try:
            token = staff_access(config).store.create_token(["compliance"], 600, "tests")[1]
            async with aiohttp.ClientSession(f"http://{host}:{port}") as http:
                headers = {"Authorization": f"Bearer {token}"}
                async with http.get("/v1/surveillance/otr", headers=headers) as response:
                    assert response.status == 503
                    assert "detectors" in (await response.json())["msg"]
        finally:
            await runner.cleanup()
            await venue.stop()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_the_day_before_is_kept_and_older_days_dropped() -> None:
    flow = Flow()
    flow.sell(1, PRICE, 5)
    flow.buy(2, PRICE, 5)
    otr = flow.surveillance.otr
    first = flow.ts // DAY_NS
    assert otr.days() == [first]
    flow.wait(86_400_000)
    flow.sell(1, PRICE, 3)
    assert otr.days() == [first + 1, first]
    [old, _] = otr.rows(first)
    assert (old["account"], old["messages"], old["trades"]) == (1, 1, 1)
    [new] = otr.rows(first + 1)
    assert (new["account"], new["messages"], new["trades"]) == (1, 1, 0)
    flow.wait(2 * 86_400_000)  # two days on: both gone
    flow.sell(1, PRICE, 3)
    assert otr.days() == [first + 3]
    assert otr.rows(first) == [] and otr.rows(first + 1) == []


def test_the_parameter_parser_under_a_seeded_fuzz() -> None:
    """Any query either parses to what it says or is refused naming a known parameter; never
    another exception."""
    rng = random.Random(20261207)
    symbols = {"BTC-USDT", "ETH-USDT"}
    alphabet = string.ascii_letters + string.digits + "-_ .:/%\x00é"
    pieces = ["2026-12-07", "1970-01-01", "9999-12-31", "0000-01-01", "2026-02-30", "1", "0"]
    pieces += ["18446744073709551616", "BTC-USDT", " BTC-USDT ", "-1", "", "+5", "1e3"]
    names = ["symbol", "account", "day", "Day", "limit", ""]
    for _ in range(3_000):
        query: dict[str, list[str]] = {}
        for _ in range(rng.randint(0, 4)):
            name = rng.choice(names)
            if rng.random() < 0.5:
                value = rng.choice(pieces)
            else:
                value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
            query.setdefault(name, []).append(value)
        try:
            parsed = parse_otr_query(query, symbols)
        except OtrQueryError as exc:
            assert any(f"'{name}'" in str(exc) for name in query), (query, exc)
            continue
        assert set(query) <= {"symbol", "account", "day"}
        assert all(len(values) == 1 for values in query.values())
        symbol = query.get("symbol", [""])[0].strip()
        assert parsed.symbol == symbol and (not symbol or symbol in symbols)
        account = query.get("account", [""])[0].strip()
        assert parsed.account == (int(account) if account else 0) and parsed.account >= 0
        day = query.get("day", [""])[0].strip()
        if day:
            assert parsed.day is not None
            assert datetime.fromtimestamp(parsed.day * 86_400, UTC).date().isoformat() == day
        else:
            assert parsed.day is None


@pytest.mark.parametrize(
    ("query", "day"),
    [({"day": ["1970-01-02"]}, 1), ({"day": [" 2026-12-07 "]}, 20_794), ({}, None)],
)
def test_a_day_is_counted_in_utc_days_since_the_epoch(
    query: dict[str, list[str]], day: int | None
) -> None:
    assert parse_otr_query(query, {"BTC-USDT"}).day == day
