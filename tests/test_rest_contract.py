"""The REST door against its OpenAPI document (``gateway.rest.openapi``).

- The document and the application's routes are the same set, both ways.
- ``/openapi.json`` serves the document, ``/docs`` a page that loads nothing from outside.
- schemathesis sends every operation bounded, seeded requests (positive and negative) to a
  running venue, SIGNED ones signed by a ``requests`` auth hook with an HMAC key of an account
  funded through the admin API; every answer must be no 5xx and match the document: a documented
  status code, content type and body schema. The venue's ``[rest]`` limits are raised for the
  run (``request_weight_per_minute`` and the order counts): Binance's 6000 weight a minute would
  cut the run short with 429s.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from staff_auth import admin_token

from gateway.rest.openapi import (
    NOT_DOCUMENTED,
    OPERATIONS,
    PUBLIC,
    TRADE,
    USER_DATA,
    USER_STREAM,
    document,
)
from venue.admin import start_admin
from venue.config import DEFAULT_CONFIG_PATH, load_config
from venue.rest import RestGateway, extensions
from venue.runtime import Venue

#: How many cases schemathesis makes per operation and mode (seeded: derandomize).
EXAMPLES = 30


@dataclasses.dataclass
class Door:
    url: str
    admin: str
    trade_key: str
    trade_secret: str
    maker_key: str
    maker_secret: str
    routes: set[tuple[str, str]]
    session: requests.Session


async def _open(data_dir: Path, ready: dict[str, Any], stop: asyncio.Event) -> None:
    config = load_config(DEFAULT_CONFIG_PATH)
    rest = dataclasses.replace(
        config.rest,
        port=0,
        request_weight_per_minute=10**9,
        raw_requests_per_5m=10**9,
        orders_per_10s=10**6,
        orders_per_day=10**9,
    )
    config = dataclasses.replace(config, data_dir=data_dir, ledger=None, fix=None, rest=rest)
    venue = Venue(config)
    await venue.start()
    gateway = RestGateway(venue, config.rest, extensions())
    app = gateway.build()
    await gateway.start()
    runner, host, port = await start_admin(venue, "127.0.0.1", 0)
    assert gateway.keys is not None
    key, secret = gateway.keys.create_hmac(1001, {"TRADE", "USER_DATA"}, "contract", (), "test")
    maker, maker_secret = gateway.keys.create_hmac(1002, {"TRADE"}, "contract", (), "test")
    ready.update(
        url=gateway.url,
        admin=f"http://{host}:{port}",
        token=admin_token(config),
        key=key.api_key,
        secret=secret,
        maker_key=maker.api_key,
        maker_secret=maker_secret,
        routes={(r.method, r.resource.canonical) for r in app.router.routes() if r.resource},
    )
    ready["event"].set()
    try:
        await stop.wait()
    finally:
        await gateway.stop()
        await runner.cleanup()
        await venue.stop()


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Door]:
    """A venue with the REST door, run on its own loop in a thread; account 1001 funded."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    ready: dict[str, Any] = {"event": threading.Event()}
    failed: list[BaseException] = []

    def run() -> None:
        try:
            loop.run_until_complete(_open(tmp_path_factory.mktemp("contract"), ready, stop))
        except BaseException as exc:
            failed.append(exc)
            ready["event"].set()

    thread = threading.Thread(target=run, name="venue", daemon=True)
    thread.start()
    assert ready["event"].wait(60), "the venue did not start"
    if failed:
        raise failed[0]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {ready['token']}"
    deposits = (
        (1001, "USDT", "1000000"),
        (1001, "BTC", "100"),
        (1001, "ETH", "1000"),
        (1002, "BTC", "100"),
    )
    for account, asset, amount in deposits:
        answer = session.post(
            f"{ready['admin']}/v1/deposits",
            json={
                "account": account,
                "asset": asset,
                "amount": amount,
                "ref": f"c{account}{asset}",
            },
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
    yield Door(
        ready["url"],
        ready["admin"],
        ready["key"],
        ready["secret"],
        ready["maker_key"],
        ready["maker_secret"],
        ready["routes"],
        session,
    )
    session.close()
    loop.call_soon_threadsafe(stop.set)
    thread.join(30)
    assert not thread.is_alive()
    loop.close()


def test_the_document_and_the_routes_are_the_same(door: Door) -> None:
    served = {(m, p) for m, p in door.routes if m != "HEAD"} - NOT_DOCUMENTED
    documented = {(op.method, op.path) for op in OPERATIONS}
    assert served - documented == set(), "routes missing from the document"
    assert documented - served == set(), "documented operations the door does not serve"
    assert door.routes >= NOT_DOCUMENTED
    served_document = door.session.get(f"{door.url}/openapi.json", timeout=10).json()
    listed = {(m.upper(), p) for p, ops in served_document["paths"].items() for m in ops}
    assert listed == documented
    assert served_document == document(_NAMES)


def test_the_page_loads_nothing_from_outside(door: Door) -> None:
    page = door.session.get(f"{door.url}/docs", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "http://" not in page.text and "https://" not in page.text and "//" not in page.text
    for asset in ("swagger-ui.css", "swagger-ui-bundle.js"):
        answer = door.session.get(f"{door.url}/docs/{asset}", timeout=10)
        assert answer.status_code == 200 and len(answer.content) > 1000
    missing = door.session.get(f"{door.url}/docs/nope.js", timeout=10)
    assert missing.status_code == 404 and missing.json()["code"] == -1000


class Signed(requests.auth.AuthBase):
    """Binance's SIGNED request: the key header, a fresh ``timestamp`` and the HMAC of the query
    string as it is sent (any ``timestamp``/``signature`` schemathesis made are replaced)."""

    def __init__(self, key: str, secret: str, sign: bool) -> None:
        self.key = key
        self.secret = secret.encode()
        self.sign = sign

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["X-MBX-APIKEY"] = self.key
        if not self.sign:
            return r
        assert r.url is not None
        parts = urlsplit(r.url)
        kept = [
            pair
            for pair in parts.query.split("&")
            if pair and pair.split("=", 1)[0] not in ("timestamp", "signature")
        ]
        kept.append(f"timestamp={int(time.time() * 1000)}")
        payload = "&".join(kept)
        body = r.body.encode() if isinstance(r.body, str) else (r.body or b"")
        signature = hmac.new(self.secret, payload.encode() + body, hashlib.sha256).hexdigest()
        r.url = urlunsplit(parts._replace(query=f"{payload}&signature={signature}"))
        return r


_SECURITY = {(op.method, op.path): op.security for op in OPERATIONS}


#: The document, for the instruments of the default configuration the test's venue runs.
_NAMES = [spec.base + spec.quote for spec in load_config(DEFAULT_CONFIG_PATH).instruments]
schema = schemathesis.openapi.from_dict(document(_NAMES))


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _call(
    door: Door,
    method: str,
    path: str,
    expect: int = 200,
    maker: bool = False,
    **query: str,
) -> Any:
    """One request made by hand, signed as its operation needs, checked like schemathesis's."""
    case = schema[path][method].Case(query=query)
    security = _SECURITY[(method, path)]
    auth = None
    if security != PUBLIC:
        key, secret = (
            (door.maker_key, door.maker_secret) if maker else (door.trade_key, door.trade_secret)
        )
        auth = Signed(key, secret, sign=security != USER_STREAM)
    response = case.call_and_validate(
        base_url=door.url, session=door.session, auth=auth, timeout=10, checks=CHECKS
    )
    assert response.status_code == expect, response.text
    return response.json()


def test_a_trading_session_keeps_to_the_document(door: Door) -> None:
    """The answers random cases seldom reach (orders placed, filled, amended, replaced,
    cancelled; trades in the history; listen keys), each checked against the document."""
    btc = {"symbol": "BTCUSDT"}
    limit = {**btc, "type": "LIMIT", "timeInForce": "GTC"}
    tested = _call(
        door,
        "POST",
        "/api/v3/order/test",
        **limit,
        side="BUY",
        quantity="0.01",
        price="95000.00",
        computeCommissionRates="true",
    )
    assert "standardCommissionForOrder" in tested
    buy = _call(
        door,
        "POST",
        "/api/v3/order",
        **limit,
        side="BUY",
        quantity="0.01",
        price="95000.00",
        newClientOrderId="buy-1",
        newOrderRespType="FULL",
    )
    assert buy["status"] == "NEW"
    sell = _call(
        door,
        "POST",
        "/api/v3/order",
        maker=True,
        **limit,
        side="SELL",
        quantity="0.004",
        price="95000.00",
    )
    assert sell["status"] == "FILLED" and sell["fills"]
    got = _call(door, "GET", "/api/v3/order", **btc, orderId=str(buy["orderId"]))
    assert got["status"] == "PARTIALLY_FILLED"
    _call(
        door,
        "PUT",
        "/api/v3/order/amend/keepPriority",
        **btc,
        origClientOrderId="buy-1",
        newQty="0.008",
    )
    own = _call(
        door,
        "POST",
        "/api/v3/order",
        **limit,
        side="SELL",
        quantity="0.001",
        price="95000.00",
        newOrderRespType="RESULT",
    )
    assert own["status"] == "EXPIRED_IN_MATCH"
    prevented = _call(door, "GET", "/api/v3/myPreventedMatches", **btc, orderId=str(own["orderId"]))
    assert prevented
    assert _call(door, "GET", "/api/v3/openOrders", **btc)
    assert _call(door, "GET", "/api/v3/allOrders", **btc)
    assert _call(door, "GET", "/api/v3/myTrades", **btc)
    _call(door, "GET", "/api/v3/account", omitZeroBalances="true")
    _call(door, "GET", "/api/v3/account/commission", **btc)
    _call(door, "GET", "/api/v3/rateLimit/order")
    replaced = _call(
        door,
        "POST",
        "/api/v3/order/cancelReplace",
        **limit,
        side="BUY",
        quantity="0.002",
        price="94000.00",
        newClientOrderId="buy-2",
        cancelReplaceMode="STOP_ON_FAILURE",
        cancelOrigClientOrderId="buy-1",
    )
    assert replaced["cancelResult"] == "SUCCESS" and replaced["newOrderResult"] == "SUCCESS"
    failed = _call(
        door,
        "POST",
        "/api/v3/order/cancelReplace",
        400,
        **limit,
        side="BUY",
        quantity="0.002",
        price="94000.00",
        cancelReplaceMode="STOP_ON_FAILURE",
        cancelOrigClientOrderId="buy-1",
    )
    assert failed["code"] == -2022 and failed["data"]["newOrderResult"] == "NOT_ATTEMPTED"
    _call(door, "DELETE", "/api/v3/order", **btc, origClientOrderId="buy-2")
    _call(
        door,
        "POST",
        "/api/v3/order",
        **limit,
        side="BUY",
        quantity="0.001",
        price="94000.00",
        newOrderRespType="ACK",
    )
    assert len(_call(door, "DELETE", "/api/v3/openOrders", **btc)) == 1
    assert _call(door, "GET", "/api/v3/trades", **btc)
    assert _call(door, "GET", "/api/v3/historicalTrades", **btc, fromId="0")
    assert _call(door, "GET", "/api/v3/aggTrades", **btc)
    assert _call(door, "GET", "/api/v3/klines", **btc, interval="1m")
    assert _call(door, "GET", "/api/v3/uiKlines", **btc, interval="1d", timeZone="8")
    _call(door, "GET", "/api/v3/avgPrice", **btc)
    _call(door, "GET", "/api/v3/ticker/24hr", **btc)
    _call(door, "GET", "/api/v3/ticker/24hr", type="MINI")
    _call(door, "GET", "/api/v3/ticker/price")
    _call(door, "GET", "/api/v3/ticker/bookTicker", symbols='["BTCUSDT","ETHUSDT"]')
    _call(door, "GET", "/api/v3/ticker", **btc, windowSize="2h")
    _call(door, "GET", "/api/v3/ticker/tradingDay", symbols='["BTCUSDT"]')
    _call(door, "GET", "/api/v3/depth", **btc, limit="5")
    _call(door, "GET", "/api/v3/exchangeInfo", symbolStatus="TRADING")
    listen = _call(door, "POST", "/api/v3/userDataStream")["listenKey"]
    _call(door, "PUT", "/api/v3/userDataStream", listenKey=listen)
    _call(door, "DELETE", "/api/v3/userDataStream", listenKey=listen)
    _call(door, "PUT", "/api/v3/userDataStream", 400, listenKey=listen)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_keeps_to_the_document(case: Any, door: Door) -> None:
    security = _SECURITY[(case.operation.method.upper(), case.operation.path)]
    auth = None
    if security in (TRADE, USER_DATA, USER_STREAM):
        auth = Signed(door.trade_key, door.trade_secret, sign=security != USER_STREAM)
    case.call_and_validate(
        base_url=door.url, session=door.session, auth=auth, timeout=10, checks=CHECKS
    )
