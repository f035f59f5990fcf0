"""python-binance (``binance.Client``), the community client many bots are written with, against
the venue's door.

Run by tests/test_rest_clients.py with ``.venv-clients/bin/python`` (common.py: the job and the
results). Role ``trader`` places a resting ETH/BTC bid, reads it back, cancels it, and is refused
once.
python-binance signs the urlencoded parameters (sorted by its own rules) and sends them in the
query string of a GET and the form body of a POST or DELETE.
"""

from __future__ import annotations

from typing import Any

from binance.client import Client
from binance.exceptions import BinanceAPIException
from common import emit, read_job, run


class Ctx:
    def __init__(self, job: dict[str, Any]) -> None:
        key = job["keys"]["trader"]
        # ping=False: the constructor would otherwise call the real Binance before the URL is set
        self.client = Client(key["key"], key["secret"], ping=False)
        self.client.API_URL = job["base"] + "/api"
        self.state: dict[str, Any] = {}


def exchange_info(ctx: Ctx) -> Any:
    info = ctx.client.get_symbol_info("ETHBTC")
    assert info is not None
    return {"symbol": info["symbol"], "status": info["status"], "base": info["baseAsset"]}


def depth(ctx: Ctx) -> Any:
    return ctx.client.get_order_book(symbol="ETHBTC", limit=5)


def new_order(ctx: Ctx) -> Any:
    placed = ctx.client.order_limit_buy(
        symbol="ETHBTC", quantity="0.5", price="0.03100", newClientOrderId="pb-order-1"
    )
    ctx.state["order"] = placed["orderId"]
    return {k: placed[k] for k in ("symbol", "clientOrderId", "status", "price", "origQty")}


def get_order(ctx: Ctx) -> Any:
    seen = ctx.client.get_order(symbol="ETHBTC", orderId=ctx.state["order"])
    return {k: seen[k] for k in ("status", "executedQty", "type", "side")}


def open_orders(ctx: Ctx) -> Any:
    return [o["clientOrderId"] for o in ctx.client.get_open_orders(symbol="ETHBTC")]


def cancel(ctx: Ctx) -> Any:
    done = ctx.client.cancel_order(symbol="ETHBTC", orderId=ctx.state["order"])
    return {"status": done["status"], "origClientOrderId": done["origClientOrderId"]}


def account(ctx: Ctx) -> Any:
    balances = ctx.client.get_account()["balances"]
    return {b["asset"]: [b["free"], b["locked"]] for b in balances if b["asset"] == "BTC"}


def refused(ctx: Ctx) -> Any:
    try:
        ctx.client.order_limit_buy(symbol="ETHBTC", quantity="0.5", price="0.031001")
    except BinanceAPIException as exc:
        return {"status": exc.status_code, "code": exc.code, "message": exc.message}
    return {"raised": None}


SCENARIOS = {
    f.__name__: f
    for f in (exchange_info, depth, new_order, get_order, open_orders, cancel, account, refused)
}


def main() -> None:
    job = read_job()
    emit(run(SCENARIOS, Ctx(job), job["scenarios"]))


if __name__ == "__main__":
    main()
