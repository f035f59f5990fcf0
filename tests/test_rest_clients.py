"""The clients people use, against a real ``venue run`` over HTTP and WebSocket.

ccxt's ``binance`` class (sync), ccxt pro (async, WebSocket) and the official
``binance-sdk-spot`` run in their own processes from ``.venv-clients`` (made by scripts/test:
``ensure_clients`` in scripts/lib.sh, the pins in tests/clients/requirements.txt), each driving
many scenarios (tests/clients/*.py) and printing what the library parsed, which the tests here
compare with exact values: prices, quantities, fees, balances, the exception class each refusal
becomes. One venue serves the whole module (the shipped config/venue.toml, free ports, a
temporary data dir); each test trades its own accounts, and a symbol no other test trades where
it checks market data exactly (ccxt sync: BTC/USDT; FIX with ccxt: ETH/BTC; ccxt pro: ETH/USDT,
where the SDK only rests an order far from the market).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fix_client import FixClient, now

REPO = Path(__file__).resolve().parent.parent
CLIENTS = Path(__file__).resolve().parent / "clients"
#: The client libraries' interpreter (``VENUE_CLIENTS_PYTHON`` overrides it).
CLIENT_PYTHON = Path(os.environ.get("VENUE_CLIENTS_PYTHON", REPO / ".venv-clients/bin/python"))
RUNNING = re.compile(
    r"venue: running; admin API on (http://[0-9.]+:\d+); FIX on [0-9.]+:(\d+); "
    r"REST and WebSocket on (http://[0-9.]+:\d+);"
)
TIMEOUT_S = 90.0

#: The accounts each test trades (1001 and 1002 are the shipped FIX sessions CLIENT1, CLIENT2).
ACCOUNTS = {
    "fix1": 1001,
    "fix2": 1002,
    "ccxt_maker": 2001,
    "ccxt_taker": 2002,
    "fix_peer": 2003,
    "sdk": 2004,
    "python_binance": 2009,
    "pro_maker": 2005,
    "pro_taker": 2006,
    "user_maker": 2007,
    "user_taker": 2008,
}
FUNDS = (("USDT", "1000000"), ("BTC", "10"), ("ETH", "100"))


@dataclass(frozen=True)
class Credentials:
    key: str
    secret: str


@dataclass
class RunningVenue:
    proc: subprocess.Popen[str]
    admin: str
    fix_port: int
    rest: str
    keys: dict[int, Credentials] = field(default_factory=dict)
    stderr: list[str] = field(default_factory=list)
    token: str = ""  # a service token for the admin API

    def post(self, path: str, body: dict[str, object]) -> Any:
        request = urllib.request.Request(
            self.admin + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            assert response.status == 200
            return json.loads(response.read())

    def provision_keys(self) -> None:
        """An HMAC key with TRADE and USER_DATA for each account, made through the admin API as
        an operator makes them."""
        for account in ACCOUNTS.values():
            body = {"permissions": ["TRADE", "USER_DATA"], "label": "clients"}
            made = self.post(f"/v1/accounts/{account}/api-keys", body)
            self.keys[account] = Credentials(made["apiKey"], made["secretKey"])

    def get(self, url: str) -> Any:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            assert response.status == 200
            return json.loads(response.read())

    def job(self, roles: dict[str, str], scenarios: list[str]) -> dict[str, Any]:
        keys = {}
        for role, name in roles.items():
            credentials = self.keys[ACCOUNTS[name]]
            keys[role] = {"key": credentials.key, "secret": credentials.secret}
        return {
            "base": self.rest,
            "admin": self.admin,
            "adminToken": self.token,
            "keys": keys,
            "scenarios": scenarios,
        }


def _pump(stream: Any, into: queue.Queue[str] | None, lines: list[str]) -> None:
    for line in stream:
        lines.append(line)
        if into is not None:
            into.put(line)


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningVenue]:
    if not CLIENT_PYTHON.exists():
        pytest.fail(
            f"{CLIENT_PYTHON} is missing: scripts/test makes it (ensure_clients in "
            "scripts/lib.sh), or set VENUE_CLIENTS_PYTHON"
        )
    data_dir = tmp_path_factory.mktemp("clients") / "data"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "venue.cli",
            "run",
            "--config",
            str(REPO / "config" / "venue.toml"),
            "--data-dir",
            str(data_dir),
            "--admin-port",
            "0",
            "--fix-port",
            "0",
            "--rest-port",
            "0",
            "--admin-token-file",
            str(data_dir.parent / "admin.token"),
        ],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    out: list[str] = []
    err: list[str] = []
    threading.Thread(target=_pump, args=(proc.stdout, lines, out), daemon=True).start()
    threading.Thread(target=_pump, args=(proc.stderr, None, err), daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        match = None
        while match is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                match = RUNNING.search(lines.get(timeout=0.2))
            except queue.Empty:
                continue
        assert match is not None, f"the venue did not start: {''.join(out)} {''.join(err)}"
        running = RunningVenue(proc, match.group(1), int(match.group(2)), match.group(3))
        running.token = (data_dir.parent / "admin.token").read_text().strip()
        running.stderr = err
        running.provision_keys()
        for account in ACCOUNTS.values():
            for asset, amount in FUNDS:
                body = {"account": account, "asset": asset, "amount": amount, "ref": "clients"}
                running.post("/v1/deposits", body)
        yield running
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    text = "".join(err)
    assert "Traceback" not in text, text


def run_client(script: str, job: dict[str, Any]) -> dict[str, Any]:
    """Run tests/clients/<script> with the job on stdin; its results."""
    result = subprocess.run(
        [str(CLIENT_PYTHON), str(CLIENTS / script)],
        input=json.dumps(job) + "\n",
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
        cwd=CLIENTS,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return results


def ok(results: dict[str, Any], name: str) -> Any:
    """A scenario's result, failing with its traceback when it raised unexpectedly."""
    value = results[name]
    if isinstance(value, dict) and "unexpected" in value:
        pytest.fail(f"{name}: {value['unexpected']}\n{value.get('trace', '')}")
    return value


def pick(value: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: value[k] for k in keys}


ORDER_KEYS = ("status", "type", "side", "price", "amount", "filled", "remaining", "cost")


def order_of(o: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(o[k] for k in ORDER_KEYS)


# -- ccxt, synchronous ------------------------------------------------------------------------


SYNC_SCENARIOS = [
    "load_markets",
    "fetch_time",
    "maker_orders",
    "order_book",
    "taker_limit",
    "taker_market",
    "taker_market_cost",
    "taker_market_sell",
    "taker_ioc",
    "taker_fok",
    "stop_loss_limit",
    "take_profit_limit",
    "post_only",
    "edit_order",
    "cancel_order",
    "open_orders",
    "cancel_all_orders",
    "fetch_order",
    "closed_orders",
    "balances",
    "my_trades",
    "fetch_trades",
    "fetch_ohlcv",
    "fetch_ticker",
    "fetch_tickers",
    "errors",
    "trading_fees",
]


def test_ccxt_sync_trades_and_reads_back_everything(venue: RunningVenue) -> None:
    """The maker rests two asks and two bids on BTC/USDT; the taker trades them with every order
    type ccxt sends; every read, balance and refusal is checked to the unit."""
    before = int(time.time() * 1000)
    job = venue.job({"maker": "ccxt_maker", "taker": "ccxt_taker"}, SYNC_SCENARIOS)
    results = run_client("ccxt_sync.py", job)
    after = int(time.time() * 1000)

    assert ok(results, "trading_fees") == {
        "one": ["BTC/USDT", 0.001, 0.001],
        "symbols": ["BTC/USDT", "ETH/BTC", "ETH/USDT"],
    }
    markets = ok(results, "load_markets")
    assert markets["requests"] == [f"GET {venue.rest}/api/v3/exchangeInfo"]
    assert markets["symbols"] == ["BTC/USDT", "ETH/BTC", "ETH/USDT"]
    market = markets["market"]
    assert pick(market, "id", "base", "quote", "spot", "active", "lowercaseId") == {
        "id": "BTCUSDT",
        "base": "BTC",
        "quote": "USDT",
        "spot": True,
        "active": True,
        "lowercaseId": "btcusdt",
    }
    assert market["precision"] == {"amount": 1e-05, "price": 0.01, "base": 1e-08, "quote": 1e-08}
    assert market["limits"]["amount"] == {"min": 1e-05, "max": 9000.0}
    assert market["limits"]["cost"]["min"] == 5.0
    assert set(market["orderTypes"]) == {
        "LIMIT",
        "LIMIT_MAKER",
        "MARKET",
        "STOP_LOSS",
        "STOP_LOSS_LIMIT",
        "TAKE_PROFIT",
        "TAKE_PROFIT_LIMIT",
    }
    assert before <= ok(results, "fetch_time") <= after

    made = ok(results, "maker_orders")
    assert [order_of(o) for o in made] == [
        ("open", "limit", "sell", 95100.0, 0.5, 0.0, 0.5, 0.0),
        ("open", "limit", "sell", 95200.0, 0.3, 0.0, 0.3, 0.0),
        ("open", "limit", "buy", 94900.0, 0.4, 0.0, 0.4, 0.0),
        ("open", "limit", "buy", 94800.0, 0.2, 0.0, 0.2, 0.0),
    ]
    assert all(o["clientOrderId"].startswith("x-TKT5PX2F") for o in made)
    ask1, ask2, bid1, bid2 = (o["id"] for o in made)

    book = ok(results, "order_book")
    assert book["bids"] == [[94900.0, 0.4], [94800.0, 0.2]]
    assert book["asks"] == [[95100.0, 0.5], [95200.0, 0.3]]
    admin = book["admin"]  # the venue's own book, through its admin API
    assert book["nonce"] == book["raw"]["lastUpdateId"] == admin["updateId"]
    assert [[p, q] for p, q, _ in admin["bids"]] == book["raw"]["bids"]
    assert [[p, q] for p, q, _ in admin["asks"]] == book["raw"]["asks"]

    btc_fee = {"currency": "BTC", "cost": 0.0001}
    taken = ok(results, "taker_limit")
    assert order_of(taken) == ("closed", "limit", "buy", 95100.0, 0.1, 0.1, 0.0, 9510.0)
    assert (taken["average"], taken["fee"], taken["trades"]) == (95100.0, btc_fee, 1)
    market_buy = ok(results, "taker_market")
    assert order_of(market_buy) == ("closed", "market", "buy", 95100.0, 0.1, 0.1, 0.0, 9510.0)
    assert (market_buy["info_type"], market_buy["fee"]) == ("MARKET", btc_fee)
    by_cost = ok(results, "taker_market_cost")  # quoteOrderQty 9510
    assert order_of(by_cost) == ("closed", "market", "buy", 95100.0, 0.1, 0.1, 0.0, 9510.0)
    market_sell = ok(results, "taker_market_sell")
    assert order_of(market_sell) == ("closed", "market", "sell", 94900.0, 0.05, 0.05, 0.0, 4745.0)
    assert market_sell["fee"] == {"currency": "USDT", "cost": 4.745}
    ioc = ok(results, "taker_ioc")  # 0.2 at 95100 and 0.3 at 95200, the rest expires
    assert order_of(ioc) == ("expired", "limit", "buy", 95200.0, 1.0, 0.5, 0.5, 47580.0)
    assert (ioc["timeInForce"], ioc["average"], ioc["trades"]) == ("IOC", 95160.0, 2)
    assert ioc["fee"] == {"currency": "BTC", "cost": 0.0005}
    fok = ok(results, "taker_fok")  # nothing left to buy: killed whole
    assert order_of(fok) == ("expired", "limit", "buy", 95300.0, 1.0, 0.0, 1.0, 0.0)
    assert (fok["timeInForce"], fok["info_status"]) == ("FOK", "EXPIRED")

    for name, trigger, price, kind in (
        ("stop_loss_limit", 90000.0, 89900.0, "STOP_LOSS_LIMIT"),
        ("take_profit_limit", 99000.0, 99100.0, "TAKE_PROFIT_LIMIT"),
    ):
        stop = ok(results, name)
        for seen in (stop["placed"], stop["fetched"]):
            assert order_of(seen) == ("open", "limit", "sell", price, 0.1, 0.0, 0.1, 0.0)
            assert (seen["triggerPrice"], seen["info_type"]) == (trigger, kind)
        assert stop["fetched"]["timestamp"] > 0

    post = ok(results, "post_only")
    assert order_of(post) == ("open", "limit", "buy", 94700.0, 0.1, 0.0, 0.1, 0.0)
    assert (post["postOnly"], post["info_type"]) == (True, "LIMIT_MAKER")

    edit = ok(results, "edit_order")
    assert order_of(edit["edited"]) == ("open", "limit", "buy", 94850.0, 0.3, 0.0, 0.3, 0.0)
    assert int(edit["edited"]["id"]) > int(bid2)
    assert edit["old"]["id"] == bid2 and edit["old"]["status"] == "canceled"

    cancel = ok(results, "cancel_order")
    assert cancel["cancelled"]["id"] == post["id"]
    assert order_of(cancel["cancelled"]) == (
        "canceled",
        "limit",
        "buy",
        94700.0,
        0.1,
        0.0,
        0.1,
        0.0,
    )
    assert cancel["again"]["raised"] == "OrderNotFound"

    opened = ok(results, "open_orders")
    resting = [
        (bid1, ("open", "limit", "buy", 94900.0, 0.4, 0.05, 0.35, 4745.0)),
        (edit["edited"]["id"], ("open", "limit", "buy", 94850.0, 0.3, 0.0, 0.3, 0.0)),
    ]
    assert [(o["id"], order_of(o)) for o in opened["symbol"]] == resting
    assert [(o["id"], order_of(o)) for o in opened["all"]] == resting

    everything = ok(results, "cancel_all_orders")  # the taker's two stops
    assert [o["status"] for o in everything["cancelled"]] == ["canceled", "canceled"]
    assert [o["info_type"] for o in everything["cancelled"]] == [
        "STOP_LOSS_LIMIT",
        "TAKE_PROFIT_LIMIT",
    ]
    assert everything["open"] == []

    fetched = ok(results, "fetch_order")
    assert fetched["id"] == taken["id"]
    assert order_of(fetched) == order_of(taken)
    assert fetched["clientOrderId"] == taken["clientOrderId"]

    closed = ok(results, "closed_orders")
    assert [(o["id"], order_of(o)) for o in closed["closed"]] == [
        (ask1, ("closed", "limit", "sell", 95100.0, 0.5, 0.5, 0.0, 47550.0)),
        (ask2, ("closed", "limit", "sell", 95200.0, 0.3, 0.3, 0.0, 28560.0)),
    ]
    assert [o["id"] for o in closed["all"]] == [
        ask1,
        ask2,
        bid1,
        bid2,
        post["id"],
        edit["edited"]["id"],
    ]
    assert [o["id"] for o in closed["canceled"]] == [bid2, post["id"]]

    # the maker sold 0.5 at 95100 and 0.3 at 95200 (fee 0.1 % of the USDT received) and bought
    # 0.05 at 94900 (fee in BTC); 0.35 x 94900 + 0.3 x 94850 stay locked for its two bids
    assert ok(results, "balances") == {
        "maker": {
            "BTC": {
                "free": 9.24995,
                "used": 0.0,
                "total": 9.24995,
                "raw_free": "9.24995000",
                "raw_locked": "0.00000000",
            },
            "USDT": {
                "free": 1009618.89,
                "used": 61670.0,
                "total": 1071288.89,
                "raw_free": "1009618.89000000",
                "raw_locked": "61670.00000000",
            },
        },
        "taker": {
            "BTC": {
                "free": 10.7492,
                "used": 0.0,
                "total": 10.7492,
                "raw_free": "10.74920000",
                "raw_locked": "0.00000000",
            },
            "USDT": {
                "free": 928630.255,
                "used": 0.0,
                "total": 928630.255,
                "raw_free": "928630.25500000",
                "raw_locked": "0.00000000",
            },
        },
    }

    mine = ok(results, "my_trades")
    fills = [  # taker order, maker order, maker side, price, amount
        (taken["id"], ask1, "sell", 95100.0, 0.1),
        (market_buy["id"], ask1, "sell", 95100.0, 0.1),
        (by_cost["id"], ask1, "sell", 95100.0, 0.1),
        (market_sell["id"], bid1, "buy", 94900.0, 0.05),
        (ioc["id"], ask1, "sell", 95100.0, 0.2),
        (ioc["id"], ask2, "sell", 95200.0, 0.3),
    ]
    assert len(mine["maker"]) == len(mine["taker"]) == len(fills)
    for (taker_order, maker_order, side, price, amount), m, t in zip(
        fills, mine["maker"], mine["taker"], strict=True
    ):
        cost = float(Decimal(str(price)) * Decimal(str(amount)))
        other = "buy" if side == "sell" else "sell"
        assert m["id"] == t["id"]
        assert (m["order"], m["side"], m["price"], m["amount"], m["cost"]) == (
            maker_order,
            side,
            price,
            amount,
            cost,
        )
        assert (t["order"], t["side"], t["price"], t["amount"]) == (
            taker_order,
            other,
            price,
            amount,
        )
        assert (m["takerOrMaker"], t["takerOrMaker"]) == ("maker", "taker")
        fee_btc = float(Decimal(str(amount)) / 1000)
        fee_usdt = float(Decimal(str(cost)) / 1000)
        buyer_fee = {"currency": "BTC", "cost": fee_btc}
        seller_fee = {"currency": "USDT", "cost": fee_usdt}
        assert m["fee"] == (seller_fee if side == "sell" else buyer_fee)
        assert t["fee"] == (buyer_fee if side == "sell" else seller_fee)

    public = ok(results, "fetch_trades")
    assert [(t["id"], t["side"], t["price"], t["amount"]) for t in public] == [
        (t["id"], t["side"], t["price"], t["amount"]) for t in mine["taker"]
    ]
    candles = ok(results, "fetch_ohlcv")  # one candle, or two if a minute turned meanwhile
    assert 1 <= len(candles) <= 2
    assert candles[0][1] == 95100.0 and candles[-1][4] == 95200.0
    assert max(c[2] for c in candles) == 95200.0 and min(c[3] for c in candles) == 94900.0
    assert sum(Decimal(str(c[5])) for c in candles) == Decimal("0.85")

    ticker = ok(results, "fetch_ticker")
    assert pick(ticker, "symbol", "last", "open", "high", "low", "bid", "ask") == {
        "symbol": "BTC/USDT",
        "last": 95200.0,
        "open": 95100.0,
        "high": 95200.0,
        "low": 94900.0,
        "bid": 94900.0,
        "ask": None,
    }
    assert (ticker["baseVolume"], ticker["quoteVolume"]) == (0.85, 80855.0)
    tickers = ok(results, "fetch_tickers")
    assert sorted(tickers["some"]) == ["BTC/USDT", "ETH/USDT"]
    assert tickers["some"]["BTC/USDT"]["last"] == 95200.0
    assert tickers["every"] == ["BTC/USDT", "ETH/BTC", "ETH/USDT"]

    refused = ok(results, "errors")
    assert {name: r["raised"] for name, r in refused.items()} == {
        "insufficient": "InsufficientFunds",
        "lot_size": "InvalidOrder",
        "price_filter": "InvalidOrder",
        "unknown_order": "OrderNotFound",
        "cancel_unknown": "OrderNotFound",
        "bad_symbol": "BadSymbol",
        "bad_secret": "AuthenticationError",
        "would_take": "OrderImmediatelyFillable",
    }
    assert "Filter failure: LOT_SIZE" in refused["lot_size"]["message"]
    assert "Filter failure: PRICE_FILTER" in refused["price_filter"]["message"]
    assert "-1022" in refused["bad_secret"]["message"]


# -- FIX and ccxt trade with each other ------------------------------------------------------


def test_a_fix_order_and_a_ccxt_order_trade_and_each_side_sees_its_own(
    venue: RunningVenue,
) -> None:
    """CLIENT1 (account 1001) rests two ETH-BTC asks over FIX; a ccxt market buy takes all of
    the first and half of the second; FIX gets its ExecutionReports with the fills and
    commissions, ccxt its order and trades."""

    async def body() -> tuple[dict[str, Any], list[dict[int, bytes]]]:
        fix = FixClient(venue.fix_port, "CLIENT1")
        await fix.logon()
        try:
            for cl_ord_id, price in ((b"eb-1", b"0.03368"), (b"eb-2", b"0.03370")):
                fix.send(
                    b"D",
                    [
                        (11, cl_ord_id),
                        (55, b"ETH-BTC"),
                        (54, b"2"),
                        (60, now()),
                        (40, b"2"),
                        (38, b"1.000"),
                        (44, price),
                    ],
                )
                await fix.expect_type(b"8", _150=b"0", _11=cl_ord_id)
            job = venue.job({"fix_peer": "fix_peer"}, ["fix_peer_take"])
            results = await asyncio.to_thread(run_client, "ccxt_sync.py", job)
            reports = []
            for cl_ord_id in (b"eb-1", b"eb-2"):
                report = await fix.expect_type(b"8", _150=b"F", _11=cl_ord_id)
                reports.append({tag: report.get(tag) for tag in (31, 32, 39, 12, 479, 14, 151)})
            assert not fix.invalid, fix.invalid
            return results, reports
        finally:
            await fix.close()

    results, reports = asyncio.run(body())
    assert [
        {tag: Decimal(v.decode()) if tag in (31, 32, 12, 14, 151) else v for tag, v in r.items()}
        for r in reports
    ] == [
        {
            31: Decimal("0.03368"),
            32: Decimal("1"),
            39: b"2",
            12: Decimal("0.00003368"),
            479: b"BTC",
            14: Decimal("1"),
            151: Decimal("0"),
        },
        {
            31: Decimal("0.03370"),
            32: Decimal("0.5"),
            39: b"1",
            12: Decimal("0.00001685"),
            479: b"BTC",
            14: Decimal("0.5"),
            151: Decimal("0.5"),
        },
    ]
    taken = ok(results, "fix_peer_take")
    for seen in (taken["placed"], taken["fetched"]):
        assert order_of(seen) == ("closed", "market", "buy", seen["price"], 1.5, 1.5, 0.0, 0.05053)
        assert seen["average"] == pytest.approx(0.05053 / 1.5, rel=1e-12)
    assert [
        (t["order"], t["side"], t["price"], t["amount"], t["cost"], t["fee"], t["takerOrMaker"])
        for t in taken["trades"]
    ] == [
        (
            taken["placed"]["id"],
            "buy",
            0.03368,
            1.0,
            0.03368,
            {"currency": "ETH", "cost": 0.001},
            "taker",
        ),
        (
            taken["placed"]["id"],
            "buy",
            0.0337,
            0.5,
            0.01685,
            {"currency": "ETH", "cost": 0.0005},
            "taker",
        ),
    ]


# -- binance-sdk-spot --------------------------------------------------------------------------


def test_binance_sdk_spot_reads_the_market_and_places_a_signed_order(venue: RunningVenue) -> None:
    depth = venue.get(f"{venue.rest}/api/v3/depth?symbol=ETHUSDT&limit=5")
    job = venue.job(
        {"trader": "sdk"}, ["exchange_info", "depth", "new_order", "account", "refused"]
    )
    results = run_client("binance_sdk.py", job)

    info = ok(results, "exchange_info")
    assert pick(info, "symbols", "status", "base", "quote") == {
        "symbols": ["ETHUSDT"],
        "status": "TRADING",
        "base": "ETH",
        "quote": "USDT",
    }
    assert "LIMIT_MAKER" in info["orderTypes"] and "TAKE_PROFIT_LIMIT" in info["orderTypes"]
    assert info["filters"]["PRICE_FILTER"]["tickSize"] == "0.01"
    assert info["filters"]["LOT_SIZE"]["stepSize"] == "0.0001"
    assert info["filters"]["LOT_SIZE"]["minQty"] == "0.0001"
    assert Decimal(info["filters"]["NOTIONAL"]["minNotional"]) == 5
    assert info["rateLimits"] > 0
    assert ok(results, "depth") == depth  # nothing changed the book in between

    placed = ok(results, "new_order")
    assert placed == {
        "symbol": "ETHUSDT",
        "orderId": placed["orderId"],
        "clientOrderId": "sdk-order-1",
        "status": "NEW",
        "type": "LIMIT",
        "side": "BUY",
        "price": "3000.00",
        "origQty": "0.0100",
        "executedQty": "0.0000",
        "timeInForce": "GTC",
    }
    assert isinstance(placed["orderId"], int)
    assert ok(results, "account") == {
        "canTrade": True,
        "balances": {
            "ETH": {"free": "100.00000000", "locked": "0.00000000"},
            "USDT": {"free": "999970.00000000", "locked": "30.00000000"},
        },
    }
    refused = ok(results, "refused")
    assert refused["raised"] == "BadRequestError"
    assert "-1013" in refused["message"] and "PRICE_FILTER" in refused["message"]


# -- ccxt pro ----------------------------------------------------------------------------------


def _fix_order(cl_ord_id: bytes, price: bytes) -> list[tuple[int, Any]]:
    return [
        (11, cl_ord_id),
        (55, b"ETH-USDT"),
        (54, b"1"),
        (60, now()),
        (40, b"2"),
        (38, b"0.1000"),
        (44, price),
    ]


async def _pro_client(job: dict[str, Any], fix_burst: Any) -> dict[str, Any]:
    """Run ccxt_pro.py; when it says it is ready, run ``fix_burst()`` and let it go on."""
    proc = await asyncio.create_subprocess_exec(
        str(CLIENT_PYTHON),
        str(CLIENTS / "ccxt_pro.py"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=CLIENTS,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write((json.dumps(job) + "\n").encode())
        await proc.stdin.drain()
        first = b""
        if fix_burst is not None:
            first = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT_S)
            if first.startswith(b'{"ready"'):  # else the scenario broke first: its results
                first = b""
                await fix_burst()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                proc.stdin.write(b"go\n")
                await proc.stdin.drain()
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT_S)
        out = first + out
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()[-3000:]
    lines = out.decode().splitlines()
    assert lines, err.decode()[-3000:]
    results: dict[str, Any] = json.loads(lines[-1])["results"]
    return results


def test_ccxt_pro_keeps_the_book_and_follows_trades_candles_and_tickers(
    venue: RunningVenue,
) -> None:
    """ccxt pro subscribes ETH/USDT's book, trades, 1m candles and mini ticker; a trade shows in
    each; then a burst of order changes over REST and one over FIX (CLIENT2): the local book ccxt
    keeps from the diffs equals ``GET depth``."""

    async def fix_burst() -> None:
        fix = FixClient(venue.fix_port, "CLIENT2")
        await fix.logon()
        try:
            for cl_ord_id, price in (
                (b"pb-1", b"3150.00"),
                (b"pb-2", b"3151.00"),
                (b"pb-3", b"3152.00"),
            ):
                fix.send(b"D", _fix_order(cl_ord_id, price))
            for cl_ord_id in (b"pb-1", b"pb-2", b"pb-3"):
                await fix.expect_type(b"8", _150=b"0", _11=cl_ord_id)
            fix.send(
                b"F", [(41, b"pb-2"), (11, b"pb-2c"), (55, b"ETH-USDT"), (54, b"1"), (60, now())]
            )
            await fix.expect_type(b"8", _150=b"4", _11=b"pb-2c")
        finally:
            await fix.close()

    job = venue.job({"maker": "pro_maker", "taker": "pro_taker"}, ["market_streams"])
    results = asyncio.run(_pro_client(job, fix_burst))
    streams = ok(results, "market_streams")

    assert [pick(t, "symbol", "side", "price", "amount", "cost") for t in streams["trades"]] == [
        {"symbol": "ETH/USDT", "side": "buy", "price": 3210.0, "amount": 0.5, "cost": 1605.0}
    ]
    assert streams["ohlcv"][1:] == [3210.0, 3210.0, 3210.0, 3210.0, 0.5]
    assert streams["ticker"] == {
        "symbol": "ETH/USDT",
        "last": 3210.0,
        "open": 3210.0,
        "high": 3210.0,
        "low": 3210.0,
        "baseVolume": 0.5,
    }
    book, depth = streams["book"], streams["depth"]
    assert book["nonce"] == depth["lastUpdateId"] > streams["first_nonce"]
    assert (book["bids"], book["asks"]) == (depth["bids"], depth["asks"])
    # the REST burst left 3189 (half taken) and 3188; FIX left 3152 and 3150
    assert [level for level in book["bids"] if level[0] > 3100] == [
        [3189.0, 0.05],
        [3188.0, 0.1],
        [3152.0, 0.1],
        [3150.0, 0.1],
    ]
    assert book["asks"] == [[3212.0, 0.2], [3213.0, 0.2], [3214.0, 0.2], [3215.0, 0.2]]


def test_ccxt_pro_user_data(venue: RunningVenue) -> None:
    """watch_orders and watch_balance (the spot user data stream over the WebSocket API) see an
    order placed over REST and the balance it locks."""
    job = venue.job({"maker": "user_maker", "taker": "user_taker"}, ["user_data"])
    results = asyncio.run(_pro_client(job, None))
    seen = ok(results, "user_data")
    last = seen["placed"][-1]
    assert any(o["id"] == last and o["status"] == "open" for o in seen["orders"])
    assert [o["price"] for o in seen["orders"]] == [2900.0] * len(seen["orders"])
    placed = len(seen["placed"])
    # the balance event ccxt woke on is of one of the orders placed (on a busy machine the
    # client may place another before it wakes); the REST balance after them all is exact
    usdt = seen["balance"]["USDT"]
    assert usdt["used"] in [290.0 * n for n in range(1, placed + 1)]
    assert usdt["free"] + usdt["used"] == 1_000_000
    rest = seen["rest"]["USDT"]
    assert (rest["used"], rest["free"]) == (290.0 * placed, 1_000_000 - 290.0 * placed)


def test_python_binance_places_reads_and_cancels(venue: RunningVenue) -> None:
    scenarios = ["exchange_info", "depth", "new_order", "get_order", "open_orders", "cancel"]
    job = venue.job({"trader": "python_binance"}, [*scenarios, "account", "refused"])
    results = run_client("python_binance.py", job)
    assert ok(results, "exchange_info") == {"symbol": "ETHBTC", "status": "TRADING", "base": "ETH"}
    assert set(ok(results, "depth")) == {"lastUpdateId", "bids", "asks"}
    assert ok(results, "new_order") == {
        "symbol": "ETHBTC",
        "clientOrderId": "pb-order-1",
        "status": "NEW",
        "price": "0.03100",
        "origQty": "0.500",
    }
    assert ok(results, "get_order") == {
        "status": "NEW",
        "executedQty": "0.000",
        "type": "LIMIT",
        "side": "BUY",
    }
    assert ok(results, "open_orders") == ["pb-order-1"]
    assert ok(results, "cancel") == {"status": "CANCELED", "origClientOrderId": "pb-order-1"}
    assert ok(results, "account") == {"BTC": ["10.00000000", "0.00000000"]}
    assert ok(results, "refused") == {
        "status": 400,
        "code": -1013,
        "message": "Filter failure: PRICE_FILTER",
    }
