"""The official connector, binance-sdk-spot (``binance_common``), against the venue's door.

Run by tests/test_rest_clients.py with ``.venv-clients/bin/python`` (common.py: the job and the
results). Role ``trader`` places an ETH/USDT limit order well below the market, so that it rests.
Its REST calls put every parameter in the query string (POST too), with ``timestamp`` appended
and ``signature`` last; the responses are parsed into the SDK's pydantic models, so a field of
the wrong type fails here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from binance_common.configuration import ConfigurationRestAPI
from binance_sdk_spot.rest_api.models import (
    NewOrderSideEnum,
    NewOrderTimeInForceEnum,
    NewOrderTypeEnum,
)
from binance_sdk_spot.spot import Spot
from common import emit, error_name, read_job, run


class Ctx:
    def __init__(self, job: dict[str, Any]) -> None:
        key = job["keys"]["trader"]
        config = ConfigurationRestAPI(
            api_key=key["key"],
            api_secret=key["secret"],
            base_path=job["base"],
            timeout=10000,
            retries=0,
        )
        self.api = Spot(config_rest_api=config).rest_api
        self.state: dict[str, Any] = {}


def exchange_info(ctx: Ctx) -> Any:
    info = ctx.api.exchange_info(symbol="ETHUSDT").data()
    symbol = info.symbols[0]
    filters = {}
    for f in symbol.filters:
        inner = f.actual_instance if hasattr(f, "actual_instance") else f
        data = inner.to_dict() if hasattr(inner, "to_dict") else dict(inner)
        filters[data["filterType"]] = data
    return {
        "symbols": [s.symbol for s in info.symbols],
        "status": symbol.status,
        "base": symbol.base_asset,
        "quote": symbol.quote_asset,
        "orderTypes": [str(getattr(t, "value", t)) for t in symbol.order_types],
        "filters": filters,
        "rateLimits": len(info.rate_limits or []),
    }


def depth(ctx: Ctx) -> Any:
    book = ctx.api.depth(symbol="ETHUSDT", limit=5).data()
    return {"lastUpdateId": book.last_update_id, "bids": book.bids, "asks": book.asks}


def new_order(ctx: Ctx) -> Any:
    order = ctx.api.new_order(
        symbol="ETHUSDT",
        side=NewOrderSideEnum.BUY,
        type=NewOrderTypeEnum.LIMIT,
        time_in_force=NewOrderTimeInForceEnum.GTC,
        quantity=Decimal("0.0100"),
        price=Decimal("3000.00"),
        new_client_order_id="sdk-order-1",
    ).data()
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "clientOrderId": order.client_order_id,
        "status": order.status,
        "type": order.type,
        "side": order.side,
        "price": order.price,
        "origQty": order.orig_qty,
        "executedQty": order.executed_qty,
        "timeInForce": order.time_in_force,
    }


def account(ctx: Ctx) -> Any:
    acct = ctx.api.get_account().data()
    return {
        "canTrade": acct.can_trade,
        "balances": {
            b.asset: {"free": b.free, "locked": b.locked}
            for b in acct.balances or []
            if b.asset in ("ETH", "USDT")
        },
    }


def refused(ctx: Ctx) -> Any:
    return error_name(
        lambda: ctx.api.new_order(
            symbol="ETHUSDT",
            side=NewOrderSideEnum.BUY,
            type=NewOrderTypeEnum.LIMIT,
            time_in_force=NewOrderTimeInForceEnum.GTC,
            quantity=Decimal("0.0100"),
            price=Decimal("3000.001"),
        )
    )


SCENARIOS = {f.__name__: f for f in (exchange_info, depth, new_order, account, refused)}


def main() -> None:
    job = read_job()
    emit(run(SCENARIOS, Ctx(job), job["scenarios"]))


if __name__ == "__main__":
    main()
