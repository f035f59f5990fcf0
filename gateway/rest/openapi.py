"""The REST door's contract as an OpenAPI 3.0 document, and the pages that serve it.

The document is built here from a compact table of operations (:data:`OPERATIONS`): each names
its method, path, security (public, an API key alone, or SIGNED with a permission), parameters
and success body; the error answers (Binance's ``{"code", "msg"}``) follow from the kind of
operation. Symbols are the venue's own instruments, so the document a running venue serves
lists them as the values ``symbol`` may take. A test keeps the table and the application's
routes equal both ways, and runs schemathesis against a running venue with the document.

:func:`add_contract` serves ``GET /openapi.json`` (the document), ``GET /docs`` (Swagger UI over
it) and ``GET /docs/{asset}`` (Swagger UI's files, from the ``swagger-ui-bundle`` package: the
page loads nothing from outside the venue).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.rest.context import SERVED
from gateway.rest.errors import ApiError

__all__ = ["ASSETS", "NOT_DOCUMENTED", "OPERATIONS", "Operation", "add_contract", "document"]

Schema = dict[str, Any]

#: Routes of the application the document leaves out: the WebSocket paths (not REST; their
#: contract is Binance's web-socket-streams.md and web-socket-api.md), the KYC provider's webhook
#: (not for clients: ``gateway.rest.kyc`` and the README describe it), and HEAD, which aiohttp
#: adds to every GET.
NOT_DOCUMENTED = frozenset(
    {
        ("GET", "/ws"),
        ("GET", "/ws/{streams}"),
        ("GET", "/stream"),
        ("GET", "/ws-api/v3"),
        ("GET", "/status"),  # the public status page and its JSON (gateway.rest.status)
        ("GET", "/status.json"),
        ("POST", "/webhooks/kyc"),  # the KYC provider's (gateway.rest.kyc)
    }
)

#: Swagger UI's files the page needs, served from the package.
ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png")

_DECIMAL = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "example": "0.01000000"}
_INT64 = {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**63 - 1}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def _object(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    return {
        "type": "object",
        "required": sorted(required),
        "properties": {**required, **(optional or {})},
    }


def _one_or_many(name: str) -> Schema:
    """One row for ``symbol``, a list for ``symbols`` or every symbol."""
    return {"oneOf": [_ref(name), _array(_ref(name))]}


_STR = {"type": "string"}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}

_ORDER_STATUS = {
    "type": "string",
    "enum": [
        "NEW",
        "PARTIALLY_FILLED",
        "FILLED",
        "CANCELED",
        "EXPIRED",
        "REJECTED",
        "EXPIRED_IN_MATCH",
    ],
}
_SIDE = {"type": "string", "enum": ["BUY", "SELL"]}
_ORDER_TYPE = {
    "type": "string",
    "enum": [
        "LIMIT",
        "MARKET",
        "STOP_LOSS",
        "STOP_LOSS_LIMIT",
        "TAKE_PROFIT",
        "TAKE_PROFIT_LIMIT",
        "LIMIT_MAKER",
    ],
}
_TIF = {"type": "string", "enum": ["GTC", "IOC", "FOK", "GTD", "DAY"]}
_STP = {
    "type": "string",
    "enum": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT", "TRANSFER"],
}

_ORDER_FIELDS: dict[str, Schema] = {
    "price": _DECIMAL,
    "origQty": _DECIMAL,
    "executedQty": _DECIMAL,
    "origQuoteOrderQty": _DECIMAL,
    "cummulativeQuoteQty": _DECIMAL,
    "status": _ORDER_STATUS,
    "timeInForce": _TIF,
    "type": _ORDER_TYPE,
    "side": _SIDE,
    "stopPrice": _DECIMAL,
    "icebergQty": _DECIMAL,
    "selfTradePreventionMode": _STP,
}
_RATES = _object({"maker": _DECIMAL, "taker": _DECIMAL}, {"buyer": _DECIMAL, "seller": _DECIMAL})
_DISCOUNT = _object(
    {
        "enabledForAccount": _BOOL,
        "enabledForSymbol": _BOOL,
        "discountAsset": _STR,
        "discount": _DECIMAL,
    }
)

SCHEMAS: dict[str, Schema] = {
    "Error": _object({"code": _INT, "msg": _STR}),
    "Decimal": _DECIMAL,
    "Empty": {"type": "object", "maxProperties": 0},
    "ServerTime": _object({"serverTime": _INT}),
    "ExchangeInfo": _object(
        {
            "timezone": _STR,
            "serverTime": _INT,
            "rateLimits": _array(
                _object(
                    {
                        "rateLimitType": _STR,
                        "interval": _STR,
                        "intervalNum": _INT,
                        "limit": _INT,
                    }
                )
            ),
            "exchangeFilters": _array({"type": "object"}),
            "symbols": _array(_ref("SymbolInfo")),
        }
    ),
    "SymbolInfo": _object(
        {
            "symbol": _STR,
            "status": {"type": "string", "enum": ["TRADING", "HALT", "BREAK"]},
            "baseAsset": _STR,
            "baseAssetPrecision": _INT,
            "quoteAsset": _STR,
            "quotePrecision": _INT,
            "quoteAssetPrecision": _INT,
            "orderTypes": _array(_ORDER_TYPE),
            "icebergAllowed": _BOOL,
            "ocoAllowed": _BOOL,
            "quoteOrderQtyMarketAllowed": _BOOL,
            "cancelReplaceAllowed": _BOOL,
            "isSpotTradingAllowed": _BOOL,
            "isMarginTradingAllowed": _BOOL,
            "filters": _array(_object({"filterType": _STR})),
            "permissionSets": _array(_array(_STR)),
            "defaultSelfTradePreventionMode": _STP,
            "allowedSelfTradePreventionModes": _array(_STP),
        }
    ),
    "Depth": _object(
        {
            "lastUpdateId": _INT,
            "bids": _array({**_array(_DECIMAL), "minItems": 2, "maxItems": 2}),
            "asks": _array({**_array(_DECIMAL), "minItems": 2, "maxItems": 2}),
        }
    ),
    "Trade": _object(
        {
            "id": _INT,
            "price": _DECIMAL,
            "qty": _DECIMAL,
            "quoteQty": _DECIMAL,
            "time": _INT,
            "isBuyerMaker": _BOOL,
            "isBestMatch": _BOOL,
        }
    ),
    "AggTrade": _object(
        {
            "a": _INT,
            "p": _DECIMAL,
            "q": _DECIMAL,
            "f": _INT,
            "l": _INT,
            "T": _INT,
            "m": _BOOL,
            "M": _BOOL,
        }
    ),
    "Kline": {
        "description": "open time, open, high, low, close, volume, close time, quote volume, "
        "trades, taker buy base volume, taker buy quote volume, unused",
        "type": "array",
        "minItems": 12,
        "maxItems": 12,
        "items": {"oneOf": [_INT, _DECIMAL]},
    },
    "AvgPrice": _object({"mins": _INT, "price": _DECIMAL, "closeTime": _INT}),
    "Ticker": _object(
        {
            "symbol": _STR,
            "openPrice": _DECIMAL,
            "highPrice": _DECIMAL,
            "lowPrice": _DECIMAL,
            "lastPrice": _DECIMAL,
            "volume": _DECIMAL,
            "quoteVolume": _DECIMAL,
            "openTime": _INT,
            "closeTime": _INT,
            "firstId": _INT,
            "lastId": _INT,
            "count": _INT,
        },
        {
            "priceChange": _DECIMAL,
            "priceChangePercent": _DECIMAL,
            "weightedAvgPrice": _DECIMAL,
            "prevClosePrice": _DECIMAL,
            "lastQty": _DECIMAL,
            "bidPrice": _DECIMAL,
            "bidQty": _DECIMAL,
            "askPrice": _DECIMAL,
            "askQty": _DECIMAL,
        },
    ),
    "TickerPrice": _object({"symbol": _STR, "price": _DECIMAL}),
    "BookTicker": _object(
        {
            "symbol": _STR,
            "bidPrice": _DECIMAL,
            "bidQty": _DECIMAL,
            "askPrice": _DECIMAL,
            "askQty": _DECIMAL,
        }
    ),
    "Order": _object(
        {
            "symbol": _STR,
            "orderId": _INT,
            "orderListId": _INT,
            "clientOrderId": _STR,
            **_ORDER_FIELDS,
            "time": _INT,
            "updateTime": _INT,
            "isWorking": _BOOL,
            "workingTime": _INT,
        }
    ),
    "Fill": _object(
        {
            "price": _DECIMAL,
            "qty": _DECIMAL,
            "commission": _DECIMAL,
            "commissionAsset": _STR,
            "tradeId": _INT,
        }
    ),
    "NewOrder": _object(
        {
            "symbol": _STR,
            "orderId": _INT,
            "orderListId": _INT,
            "clientOrderId": _STR,
            "transactTime": _INT,
        },
        {**_ORDER_FIELDS, "workingTime": _INT, "fills": _array(_ref("Fill"))},
    ),
    "TestOrder": {
        "type": "object",
        "properties": {
            "standardCommissionForOrder": _RATES,
            "specialCommissionForOrder": _RATES,
            "taxCommissionForOrder": _RATES,
            "discount": _DISCOUNT,
        },
    },
    "CancelledOrder": _object(
        {"orderId": _INT, "origClientOrderId": _STR, "clientOrderId": _STR},
        {
            "symbol": _STR,
            "orderListId": _INT,
            "transactTime": _INT,
            **_ORDER_FIELDS,
        },
    ),
    "CancelReplace": _object(
        {
            "cancelResult": {"type": "string", "enum": ["SUCCESS", "FAILURE"]},
            "newOrderResult": {
                "type": "string",
                "enum": ["SUCCESS", "FAILURE", "NOT_ATTEMPTED"],
            },
            "cancelResponse": {"anyOf": [_ref("CancelledOrder"), _ref("Error")]},
            "newOrderResponse": {
                "anyOf": [_ref("NewOrder"), _ref("Error")],
                "nullable": True,
            },
        }
    ),
    "CancelReplaceFailure": _object({"code": _INT, "msg": _STR}, {"data": _ref("CancelReplace")}),
    "Amended": _object(
        {
            "transactTime": _INT,
            "executionId": _INT,
            "amendedOrder": _object(
                {
                    "symbol": _STR,
                    "orderId": _INT,
                    "orderListId": _INT,
                    "origClientOrderId": _STR,
                    "clientOrderId": _STR,
                    "price": _DECIMAL,
                    "qty": _DECIMAL,
                    "executedQty": _DECIMAL,
                    "preventedQty": _DECIMAL,
                    "quoteOrderQty": _DECIMAL,
                    "cumulativeQuoteQty": _DECIMAL,
                    "status": _ORDER_STATUS,
                    "timeInForce": _TIF,
                    "type": _ORDER_TYPE,
                    "side": _SIDE,
                    "selfTradePreventionMode": _STP,
                },
                {"workingTime": _INT},
            ),
        }
    ),
    "MyTrade": _object(
        {
            "symbol": _STR,
            "id": _INT,
            "orderId": _INT,
            "orderListId": _INT,
            "price": _DECIMAL,
            "qty": _DECIMAL,
            "quoteQty": _DECIMAL,
            "commission": _DECIMAL,
            "commissionAsset": _STR,
            "time": _INT,
            "isBuyer": _BOOL,
            "isMaker": _BOOL,
            "isBestMatch": _BOOL,
        }
    ),
    "PreventedMatch": _object(
        {
            "symbol": _STR,
            "preventedMatchId": _INT,
            "takerOrderId": _INT,
            "makerSymbol": _STR,
            "makerOrderId": _INT,
            "tradeGroupId": _INT,
            "selfTradePreventionMode": _STP,
            "price": _DECIMAL,
            "makerPreventedQuantity": _DECIMAL,
            "transactTime": _INT,
        }
    ),
    "Account": _object(
        {
            "makerCommission": _INT,
            "takerCommission": _INT,
            "buyerCommission": _INT,
            "sellerCommission": _INT,
            "commissionRates": _RATES,
            "canTrade": _BOOL,
            "canWithdraw": _BOOL,
            "canDeposit": _BOOL,
            "brokered": _BOOL,
            "requireSelfTradePrevention": _BOOL,
            "preventSor": _BOOL,
            "updateTime": _INT,
            "accountType": _STR,
            "balances": _array(_object({"asset": _STR, "free": _DECIMAL, "locked": _DECIMAL})),
            "permissions": _array(_STR),
            "uid": _INT,
        }
    ),
    "Commission": _object(
        {
            "symbol": _STR,
            "standardCommission": _RATES,
            "specialCommission": _RATES,
            "taxCommission": _RATES,
            "discount": _DISCOUNT,
        }
    ),
    "OrderCount": _object(
        {
            "rateLimitType": _STR,
            "interval": _STR,
            "intervalNum": _INT,
            "limit": _INT,
            "count": _INT,
        }
    ),
    "ListenKey": _object({"listenKey": _STR}),
    "Document": {"type": "object", "description": "This document."},
}


# -- parameters --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    schema: Schema
    required: bool = False
    description: str = ""


def _p(name: str, schema: Schema, description: str = "", required: bool = False) -> Param:
    return Param(name, schema, required, description)


_SYMBOL = "symbol"  # its schema is the venue's symbols: see document()
_SYMBOLS = {
    "type": "string",
    "pattern": r'^\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}")*)?\]$',
    "example": '["BTCUSDT"]',
}
_LIMIT = {"type": "integer", "minimum": 1, "maximum": 1000}
_TIME = {**_INT64, "description": "ms since the epoch"}
_CLIENT_ID = {"type": "string", "pattern": r"^[.A-Za-z0-9_-]{1,36}$"}
_TICKER_TYPE = {"type": "string", "enum": ["FULL", "MINI"]}
_TIME_ZONE = {
    "type": "string",
    "pattern": r"^[+-]?[0-9]{1,2}(:[0-9]{2})?$",
    "description": "hours[:minutes] from UTC, -12:00 to +14:00 (default 0)",
}
_INTERVAL = {
    "type": "string",
    "enum": [
        "1s",
        "1m",
        "3m",
        "5m",
        "15m",
        "30m",
        "1h",
        "2h",
        "4h",
        "6h",
        "8h",
        "12h",
        "1d",
        "3d",
        "1w",
        "1M",
    ],
}


def symbol(required: bool = True) -> Param:
    return Param(_SYMBOL, {}, required)


def symbols() -> Param:
    return _p("symbols", _SYMBOLS, 'JSON array of symbols, e.g. ["BTCUSDT","ETHUSDT"]')


_ORDER_PARAMS = (
    symbol(),
    _p("side", _SIDE, required=True),
    _p("type", _ORDER_TYPE, required=True),
    _p("timeInForce", _TIF, "LIMIT, STOP_LOSS_LIMIT and TAKE_PROFIT_LIMIT need it"),
    _p("quantity", _DECIMAL),
    _p("quoteOrderQty", _DECIMAL, "MARKET only, instead of quantity"),
    _p("price", _DECIMAL),
    _p("newClientOrderId", _CLIENT_ID),
    _p("stopPrice", _DECIMAL),
    _p("icebergQty", _DECIMAL),
    _p("newOrderRespType", {"type": "string", "enum": ["ACK", "RESULT", "FULL"]}),
    _p("selfTradePreventionMode", _STP),
    _p("goodTillDate", {**_TIME, "minimum": 1}, "timeInForce GTD: expiry, ms since the epoch"),
)
_ORDER_REF = (
    _p("orderId", {**_INT64, "minimum": 1}),
    _p("origClientOrderId", _CLIENT_ID),
)


# -- operations --------------------------------------------------------------------------------

PUBLIC = "NONE"
USER_STREAM = "USER_STREAM"  # an API key, no signature
TRADE = "TRADE"
USER_DATA = "USER_DATA"


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    summary: str
    tag: str
    security: str
    weight: str
    params: tuple[Param, ...]
    body: Schema
    #: other success or failure answers than the usual: status -> schema
    extra: tuple[tuple[int, Schema], ...] = ()
    content: str = "application/json"


def _op(
    method: str,
    path: str,
    summary: str,
    tag: str,
    security: str,
    weight: str,
    params: tuple[Param, ...],
    body: Schema,
    *extra: tuple[int, Schema],
) -> Operation:
    return Operation(method, path, summary, tag, security, weight, params, body, extra)


_API = "/api/v3"
OPERATIONS: tuple[Operation, ...] = (
    # general
    _op("GET", f"{_API}/ping", "Test connectivity", "General", PUBLIC, "1", (), _ref("Empty")),
    _op("GET", f"{_API}/time", "Server time", "General", PUBLIC, "1", (), _ref("ServerTime")),
    _op(
        "GET",
        f"{_API}/exchangeInfo",
        "Trading rules and symbols",
        "General",
        PUBLIC,
        "20",
        (
            symbol(False),
            symbols(),
            _p("symbolStatus", {"type": "string", "enum": ["TRADING", "HALT", "BREAK"]}),
        ),
        _ref("ExchangeInfo"),
    ),
    # market data
    _op(
        "GET",
        f"{_API}/depth",
        "Order book",
        "Market",
        PUBLIC,
        "5 to 100 levels, 25 to 500, 50 to 1000, 250 to 5000",
        (symbol(), _p("limit", {"type": "integer", "minimum": 1, "maximum": 5000})),
        _ref("Depth"),
    ),
    _op(
        "GET",
        f"{_API}/trades",
        "Recent trades",
        "Market",
        PUBLIC,
        "25",
        (symbol(), _p("limit", _LIMIT)),
        _array(_ref("Trade")),
    ),
    _op(
        "GET",
        f"{_API}/historicalTrades",
        "Older trades",
        "Market",
        PUBLIC,
        "25",
        (symbol(), _p("limit", _LIMIT), _p("fromId", _INT64)),
        _array(_ref("Trade")),
    ),
    _op(
        "GET",
        f"{_API}/aggTrades",
        "Aggregate trades",
        "Market",
        PUBLIC,
        "4",
        (
            symbol(),
            _p("fromId", _INT64),
            _p("startTime", _TIME),
            _p("endTime", _TIME),
            _p("limit", _LIMIT),
        ),
        _array(_ref("AggTrade")),
    ),
    *(
        _op(
            "GET",
            f"{_API}/{path}",
            summary,
            "Market",
            PUBLIC,
            "2",
            (
                symbol(),
                _p("interval", _INTERVAL, required=True),
                _p("startTime", _TIME),
                _p("endTime", _TIME),
                _p("timeZone", _TIME_ZONE),
                _p("limit", _LIMIT),
            ),
            _array(_ref("Kline")),
        )
        for path, summary in (("klines", "Candles"), ("uiKlines", "Candles for display"))
    ),
    _op(
        "GET",
        f"{_API}/avgPrice",
        "Average price over 5 minutes",
        "Market",
        PUBLIC,
        "2",
        (symbol(),),
        _ref("AvgPrice"),
    ),
    _op(
        "GET",
        f"{_API}/ticker/24hr",
        "24 hour statistics",
        "Market",
        PUBLIC,
        "2 for one symbol, 40 for up to 100, 80 for more or all",
        (symbol(False), symbols(), _p("type", _TICKER_TYPE)),
        _one_or_many("Ticker"),
    ),
    _op(
        "GET",
        f"{_API}/ticker/price",
        "Last price",
        "Market",
        PUBLIC,
        "2 for one symbol, 4 otherwise",
        (symbol(False), symbols()),
        _one_or_many("TickerPrice"),
    ),
    _op(
        "GET",
        f"{_API}/ticker/bookTicker",
        "Best bid and ask",
        "Market",
        PUBLIC,
        "2 for one symbol, 4 otherwise",
        (symbol(False), symbols()),
        _one_or_many("BookTicker"),
    ),
    _op(
        "GET",
        f"{_API}/ticker",
        "Rolling window statistics",
        "Market",
        PUBLIC,
        "4 per symbol, at most 200",
        (
            symbol(False),
            symbols(),
            _p(
                "windowSize",
                {"type": "string", "pattern": r"^[0-9]{1,2}[mhd]$"},
                "1m to 59m, 1h to 23h, 1d to 7d (default 1d)",
            ),
            _p("type", _TICKER_TYPE),
        ),
        _one_or_many("Ticker"),
    ),
    _op(
        "GET",
        f"{_API}/ticker/tradingDay",
        "Trading day statistics",
        "Market",
        PUBLIC,
        "4 per symbol, at most 200",
        (symbol(False), symbols(), _p("timeZone", _TIME_ZONE), _p("type", _TICKER_TYPE)),
        _one_or_many("Ticker"),
    ),
    # trading
    _op(
        "POST",
        f"{_API}/order",
        "New order",
        "Trading",
        TRADE,
        "1",
        _ORDER_PARAMS,
        _ref("NewOrder"),
    ),
    _op(
        "POST",
        f"{_API}/order/test",
        "Check a new order without placing it",
        "Trading",
        TRADE,
        "1",
        (*_ORDER_PARAMS, _p("computeCommissionRates", _BOOL)),
        _ref("TestOrder"),
    ),
    _op(
        "DELETE",
        f"{_API}/order",
        "Cancel an order",
        "Trading",
        TRADE,
        "1",
        (symbol(), *_ORDER_REF, _p("newClientOrderId", _CLIENT_ID, "an id for the cancel")),
        _ref("CancelledOrder"),
    ),
    _op(
        "POST",
        f"{_API}/order/cancelReplace",
        "Cancel an order and place a new one, as one command",
        "Trading",
        TRADE,
        "1",
        (
            *_ORDER_PARAMS,
            _p(
                "cancelReplaceMode",
                {"type": "string", "enum": ["STOP_ON_FAILURE", "ALLOW_FAILURE"]},
                required=True,
            ),
            _p("cancelOrderId", {**_INT64, "minimum": 1}),
            _p("cancelOrigClientOrderId", _CLIENT_ID),
            _p("cancelNewClientOrderId", _CLIENT_ID),
        ),
        _ref("CancelReplace"),
        (400, _ref("CancelReplaceFailure")),
        (409, _ref("CancelReplaceFailure")),
    ),
    _op(
        "PUT",
        f"{_API}/order/amend/keepPriority",
        "Reduce an order's quantity, keeping its priority",
        "Trading",
        TRADE,
        "4",
        (
            symbol(),
            *_ORDER_REF,
            _p("newClientOrderId", _CLIENT_ID),
            _p("newQty", _DECIMAL, required=True),
        ),
        _ref("Amended"),
    ),
    _op(
        "DELETE",
        f"{_API}/openOrders",
        "Cancel every open order of a symbol",
        "Trading",
        TRADE,
        "1",
        (symbol(),),
        _array(_ref("CancelledOrder")),
    ),
    # account
    _op(
        "GET",
        f"{_API}/order",
        "An order",
        "Account",
        USER_DATA,
        "4",
        (symbol(), *_ORDER_REF),
        _ref("Order"),
    ),
    _op(
        "GET",
        f"{_API}/openOrders",
        "Open orders",
        "Account",
        USER_DATA,
        "6 for one symbol, 80 for all",
        (symbol(False),),
        _array(_ref("Order")),
    ),
    _op(
        "GET",
        f"{_API}/allOrders",
        "Orders of a symbol",
        "Account",
        USER_DATA,
        "20",
        (
            symbol(),
            _p("orderId", _INT64, "from this order id on"),
            _p("startTime", _TIME),
            _p("endTime", _TIME),
            _p("limit", _LIMIT),
        ),
        _array(_ref("Order")),
    ),
    _op(
        "GET",
        f"{_API}/myTrades",
        "The account's trades",
        "Account",
        USER_DATA,
        "20",
        (
            symbol(),
            _p("orderId", _INT64),
            _p("startTime", _TIME),
            _p("endTime", _TIME),
            _p("fromId", _INT64),
            _p("limit", _LIMIT),
        ),
        _array(_ref("MyTrade")),
    ),
    _op(
        "GET",
        f"{_API}/myPreventedMatches",
        "Matches prevented by self-trade prevention",
        "Account",
        USER_DATA,
        "20",
        (
            symbol(),
            _p("preventedMatchId", _INT64),
            _p("orderId", _INT64),
            _p("fromPreventedMatchId", _INT64),
            _p("limit", _LIMIT),
        ),
        _array(_ref("PreventedMatch")),
    ),
    _op(
        "GET",
        f"{_API}/account",
        "Balances and permissions",
        "Account",
        USER_DATA,
        "20",
        (_p("omitZeroBalances", _BOOL),),
        _ref("Account"),
    ),
    _op(
        "GET",
        f"{_API}/account/commission",
        "Commission rates",
        "Account",
        USER_DATA,
        "20",
        (symbol(),),
        _ref("Commission"),
    ),
    _op(
        "GET",
        f"{_API}/rateLimit/order",
        "The account's order counts",
        "Account",
        USER_DATA,
        "40",
        (),
        _array(_ref("OrderCount")),
    ),
    _op(
        "GET",
        "/sapi/v1/asset/tradeFee",
        "The account's maker and taker rates per symbol (Binance's wallet endpoint)",
        "Account",
        USER_DATA,
        "1",
        (symbol(False),),
        _array(_object({"symbol": _STR, "makerCommission": _DECIMAL, "takerCommission": _DECIMAL})),
    ),
    _op(
        "POST",
        f"{_API}/userDataStream",
        "Open a listen key",
        "User data stream",
        USER_STREAM,
        "2",
        (),
        _ref("ListenKey"),
    ),
    _op(
        "PUT",
        f"{_API}/userDataStream",
        "Keep a listen key alive",
        "User data stream",
        USER_STREAM,
        "2",
        (_p("listenKey", _STR, required=True),),
        _ref("Empty"),
    ),
    _op(
        "DELETE",
        f"{_API}/userDataStream",
        "Close a listen key",
        "User data stream",
        USER_STREAM,
        "2",
        (_p("listenKey", _STR, required=True),),
        _ref("Empty"),
    ),
    # the contract itself
    _op("GET", "/openapi.json", "This document", "Contract", PUBLIC, "1", (), _ref("Document")),
    Operation(
        "GET",
        "/docs",
        "This document, to read",
        "Contract",
        PUBLIC,
        "1",
        (),
        _STR,
        content="text/html",
    ),
    Operation(
        "GET",
        "/docs/{asset}",
        "Swagger UI's files",
        "Contract",
        PUBLIC,
        "1",
        (Param("asset", {"type": "string", "enum": list(ASSETS)}, True),),
        {"type": "string", "format": "binary"},
        content="text/css, text/javascript, image/png",
    ),
)

_SIGNED_PARAMS = (
    _p(
        "recvWindow",
        {"type": "integer", "minimum": 1, "maximum": 60000},
        "ms the request stays valid after timestamp (default 5000, at most 60000)",
    ),
    _p("timestamp", _TIME, "ms (or µs) since the epoch when the request was made", True),
    _p("signature", _STR, "HMAC-SHA256 (hex) or Ed25519 (base64) of the payload", True),
)

_ERRORS = {
    400: "Bad request: a parameter or a business rule (Binance's code and text)",
    401: "Missing, unknown or unpermitted API key, bad signature",
    404: "Not found",
    409: "Cancel-replace: the cancel or the new order failed, not both",
    413: "Request too large",
    418: "The address is banned for going on past 429",
    429: "Rate limit exceeded: see Retry-After",
    503: "The venue is stopping or stopped",
}


def _errors(op: Operation) -> list[int]:
    statuses = [400, 418, 429, 503]
    if op.security != PUBLIC:
        statuses.append(401)
    if op.path == "/docs/{asset}":
        statuses.append(404)
    if op.method != "GET":
        statuses.append(413)
    return sorted(statuses)


def _parameter(param: Param, symbol_schema: Schema, where: str = "query") -> Schema:
    schema = symbol_schema if param.name == _SYMBOL and not param.schema else param.schema
    out: Schema = {"name": param.name, "in": where, "required": param.required, "schema": schema}
    if param.description:
        out["description"] = param.description
    return out


def _operation(op: Operation, symbol_schema: Schema) -> Schema:
    where = "path" if op.path == "/docs/{asset}" else "query"
    params = [_parameter(p, symbol_schema, where) for p in op.params]
    if op.security in (TRADE, USER_DATA):
        params += [_parameter(p, symbol_schema) for p in _SIGNED_PARAMS]
    content = {kind.strip(): {"schema": op.body} for kind in op.content.split(",")}
    responses: dict[str, Schema] = {"200": {"description": "OK", "content": content}}
    for status in _errors(op):
        responses[str(status)] = {"$ref": f"#/components/responses/E{status}"}
    for status, schema in op.extra:
        responses[str(status)] = {
            "description": _ERRORS.get(status, "Failure"),
            "content": {"application/json": {"schema": schema}},
        }
    security = {
        PUBLIC: "NONE",
        USER_STREAM: "USER_STREAM (an API key, no signature)",
        TRADE: "TRADE (SIGNED)",
        USER_DATA: "USER_DATA (SIGNED)",
    }[op.security]
    out: Schema = {
        "operationId": f"{op.method.lower()}{_camel(op.path)}",
        "summary": op.summary,
        "description": f"Weight: {op.weight}. Security: {security}.",
        "tags": [op.tag],
        "parameters": params,
        "responses": responses,
    }
    if op.security != PUBLIC:
        out["security"] = [{"apiKey": []}]
    return out


def _camel(path: str) -> str:
    parts = [p.strip("{}") for p in path.replace(".", "/").split("/") if p]
    return "".join(p[:1].upper() + p[1:] for p in parts)


def document(symbol_names: list[str]) -> dict[str, Any]:
    """The OpenAPI 3.0 document of the door, ``symbol`` being one of ``symbol_names``."""
    symbol_schema: Schema = {"type": "string", "example": symbol_names[0] if symbol_names else ""}
    if symbol_names:
        symbol_schema["enum"] = sorted(symbol_names)
    paths: dict[str, dict[str, Schema]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, symbol_schema)
    responses = {
        f"E{status}": {
            "description": text,
            "content": {"application/json": {"schema": _ref("Error")}},
        }
        for status, text in _ERRORS.items()
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Venue REST API (Binance Spot dialect)",
            "version": "3",
            "description": (
                "The venue's REST door speaks Binance Spot's /api/v3. Parameters go in the query "
                "string or, for POST, PUT and DELETE, in an application/x-www-form-urlencoded "
                "body. SIGNED endpoints need the X-MBX-APIKEY header, a timestamp and a signature "
                "of the query string and body (HMAC-SHA256 hex, or Ed25519 base64). Every "
                'refusal is {"code", "msg"} with Binance\'s code and text. Prices and quantities '
                "are decimal strings."
            ),
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": name}
            for name in ("General", "Market", "Trading", "Account", "User data stream", "Contract")
        ],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "responses": responses,
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-MBX-APIKEY"}
            },
        },
    }


# -- serving -----------------------------------------------------------------------------------

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Venue REST API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true});
</script>
</body>
</html>
"""

#: Swagger UI's files by name: their type, and their bytes once read.
_TYPES = {".css": "text/css", ".js": "text/javascript", ".png": "image/png"}
_ASSET_BYTES: dict[str, bytes] = {}


def _assets_dir() -> Path:
    import swagger_ui_bundle

    return Path(swagger_ui_bundle.swagger_ui_path)


def add_contract(app: web.Application) -> None:
    """Serve the document, its page and the page's files."""
    app.router.add_get("/openapi.json", _openapi, allow_head=False)
    app.router.add_get("/docs", _docs, allow_head=False)
    app.router.add_get("/docs/{asset}", _asset, allow_head=False)


async def _asset(request: web.Request) -> web.Response:
    await request.app[SERVED].request(request, 1)
    name = request.match_info["asset"]
    if name not in ASSETS:
        raise ApiError(-1000, "Not found: this path is not served.", 404)
    body = _ASSET_BYTES.get(name)
    if body is None:
        body = _ASSET_BYTES[name] = (_assets_dir() / name).read_bytes()
    return web.Response(body=body, content_type=_TYPES[Path(name).suffix])


async def _openapi(request: web.Request) -> web.Response:
    served = request.app[SERVED]
    await served.request(request, 1)
    body = served.extra.get("openapi")
    if body is None:
        body = served.extra["openapi"] = json.dumps(
            document(sorted(served.symbols.by_name)), separators=(",", ":")
        ).encode()
    return web.Response(body=body, content_type="application/json")


async def _docs(request: web.Request) -> web.Response:
    await request.app[SERVED].request(request, 1)
    return web.Response(text=_PAGE, content_type="text/html")
