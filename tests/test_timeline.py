"""The market around an alert (``surveillance.timeline``): every change of the book's top
levels, every trade and the watched accounts' orders between two points, checked against a
live core fed the same flow; thinning, bounds and bad parameters; and the admin API's
``/v1/surveillance/timeline``."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from helpers import SYM, spec
from test_book_replay import CONFIG, History, new_core, write_history

from engine.events import (
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderReplaced,
    Trade,
)
from surveillance.pages import BookPage
from surveillance.replay import BookQueryError, BookReplay, ReplayTooLong
from surveillance.timeline import timeline

LEVELS = 3
WATCHED = (1, 2)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    return write_history(tmp_path_factory.mktemp("timeline") / "data")


def expected(history: History, first: int, last: int) -> dict[str, Any]:
    """What a live core fed the same flow shows between ``first`` and ``last``."""
    s = spec(SYM)
    core = new_core()
    samples: list[tuple[int, Any]] = []
    trades, orders = [], []
    before = None
    for cmd in history.commands:
        events = core.apply(cmd)
        if cmd.seq < first:
            continue
        if cmd.seq > last:
            break
        market = core.markets[SYM]
        top = (market.bids.depth(LEVELS), market.asks.depth(LEVELS))
        if cmd.seq == first or top != before:
            samples.append((cmd.seq, top))
        before = top
        if cmd.seq == first:
            continue
        for e in events:
            if getattr(e, "instrument", None) != SYM:
                continue
            if isinstance(e, Trade):
                trades.append((cmd.seq, format(s.ticks_to_price(e.price), "f")))
            elif getattr(e, "account", None) in WATCHED and isinstance(
                e, (OrderAccepted, OrderCancelled, OrderReplaced, OrderExpired, OrderRejected)
            ):
                orders.append((cmd.seq, type(e).__name__, getattr(e, "order_id", 0)))
    return {"samples": samples, "trades": trades, "orders": orders}


def test_the_timeline_equals_a_live_core(history: History) -> None:
    replay = BookReplay(history.data_dir, CONFIG)
    first, last = 100, 300  # across the snapshot at 120 and at 260
    answer = timeline(replay, SYM, first, last, WATCHED, levels=LEVELS)
    want = expected(history, first, last)
    s = spec(SYM)

    def shown(top: Any) -> Any:
        return [
            [[format(s.ticks_to_price(p), "f"), format(s.lots_to_qty(q), "f")] for p, q, _ in side]
            for side in top
        ]

    got = [(x["seq"], [x["bids"], x["asks"]]) for x in answer["samples"]]
    assert got == [(seq, shown(top)) for seq, top in want["samples"]]
    assert len(got) > 20
    assert [(t["seq"], t["price"]) for t in answer["trades"]] == want["trades"]
    assert want["trades"], "the window must hold trades to be worth checking"
    names = {
        "NEW": "OrderAccepted",
        "CANCELLED": "OrderCancelled",
        "REPLACED": "OrderReplaced",
        "EXPIRED": "OrderExpired",
        "REJECTED": "OrderRejected",
    }
    assert [(o["seq"], names[o["event"]], o["orderId"]) for o in answer["orders"]] == want["orders"]
    assert {o["account"] for o in answer["orders"]} <= set(WATCHED)
    cancelled = [o for o in answer["orders"] if o["event"] == "CANCELLED"]
    assert cancelled and all(o["side"] in ("BUY", "SELL") and o["price"] for o in cancelled)
    for trade in answer["trades"]:
        assert trade["aggressor"] in ("BUY", "SELL") and trade["buyAccount"] > 0


def test_thinning_bounds_and_bad_parameters(history: History) -> None:
    replay = BookReplay(history.data_dir, CONFIG)
    thin = timeline(replay, SYM, 1, 400, (), levels=LEVELS, max_samples=10)
    full = timeline(replay, SYM, 1, 400, (), levels=LEVELS)
    assert len(thin["samples"]) == 10 and thin["sampled"] == len(full["samples"]) > 10
    assert thin["samples"][0] == full["samples"][0]
    assert thin["samples"][-1] == full["samples"][-1]
    with pytest.raises(BookQueryError, match="'to' is before"):
        timeline(replay, SYM, 200, 100)
    with pytest.raises(BookQueryError, match="levels"):
        timeline(replay, SYM, 1, 2, levels=0)
    with pytest.raises(BookQueryError, match="symbol"):
        timeline(replay, "NOPE-USDT", 1, 2)
    short = BookReplay(history.data_dir, dataclasses.replace(CONFIG, max_records=50))
    with pytest.raises(ReplayTooLong):
        timeline(short, SYM, 300, 400)  # 140 records past the snapshot at 260


def test_the_api_serves_the_timeline(history: History) -> None:
    page = BookPage(BookReplay(history.data_dir, CONFIG), lambda: 400)

    async def body() -> None:
        app = web.Application()
        page.add_routes(app)
        async with TestClient(TestServer(app)) as client:
            query = {"symbol": SYM, "from": "100", "to": "300", "accounts": "1,2", "levels": "3"}
            response = await client.get("/v1/surveillance/timeline", params=query)
            assert response.status == 200
            data = await response.json()
            assert data["fromSeq"] == 100 and data["toSeq"] == 300 and data["samples"]
            for bad, field in (
                ({**query, "accounts": "1,x"}, "accounts"),
                ({**query, "levels": "99"}, "levels"),
                ({k: v for k, v in query.items() if k != "to"}, "to"),
                ({**query, "to": "999"}, "at"),
                ({**query, "extra": "1"}, "extra"),
            ):
                response = await client.get("/v1/surveillance/timeline", params=bad)
                error = await response.json()
                assert response.status == 400 and field in error["msg"], (bad, error)

    asyncio.run(body())


def test_an_empty_window_is_the_book_as_it_stands(tmp_path: Path, history: History) -> None:
    replay = BookReplay(history.data_dir, CONFIG)
    answer = timeline(replay, SYM, 250, 250, WATCHED, levels=LEVELS)
    assert [x["seq"] for x in answer["samples"]] == [250]
    assert answer["trades"] == [] and answer["orders"] == []
