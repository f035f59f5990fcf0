"""Trading endpoints (signed, TRADE): ``order`` (POST, DELETE), ``order/test``,
``order/cancelReplace``, ``order/amend/keepPriority``, ``openOrders`` (DELETE).

A request is read completely and turned into a command by the shared edge before anything is
sequenced; the answer is written only once the command is durable, from its events and the
order views they fed (``Activity``): nothing is shown that a crash could take back. The core's
refusals come back as Binance's -2010 / -2011 / -2038 with their exact texts
(``gateway.edge.refusals``).

``cancelReplace`` is one sequenced command (``engine.commands.CancelReplace``): the old order
is cancelled and a new one with a new order id placed with nothing in between, the new one only
if the cancel succeeded under STOP_ON_FAILURE; the answer nests ``cancelResponse`` and
``newOrderResponse`` with -2021 / -2022 and HTTP 409 / 400 as Binance answers them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from engine.commands import CancelReplace, Command, MassCancel, NewOrder, Origin
from engine.events import (
    CancelRejected,
    CommandRejected,
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    ReplaceRejected,
    Trade,
    TradeSettled,
)
from engine.types import Door, MassCancelScope, OrdType, RejectReason
from gateway.admin.ports import Unavailable, Unjournalable
from gateway.edge.orders import OrderView, side_fee
from gateway.edge.refusals import Refusal
from gateway.edge.requests import InstrumentUnits, ReplaceRequest
from gateway.rest.activity import fee_text
from gateway.rest.context import SERVED, Caller, Served
from gateway.rest.dialect import new_client_order_id, order_json, order_request, status_name
from gateway.rest.errors import ApiError, bad_param, compact, from_reason, from_refusal, mandatory

__all__ = ["Action", "Weight", "endpoint", "routes", "submit", "weight_of"]

_RESP_TYPES = ("ACK", "RESULT", "FULL")


#: What an endpoint does once its request is read and authenticated: the answer's body and
#: HTTP status; the WebSocket API calls the same functions.
Action = Callable[[Served, Caller], Awaitable[tuple[Any, int]]]
#: An endpoint's weight: a number, or a function of the request's raw parameters (Binance's
#: ``openOrders`` weighs 6 with a symbol and 80 without).
Weight = int | Callable[[Mapping[str, str]], int]


def weight_of(weight: Weight, params: Mapping[str, str]) -> int:
    return weight if isinstance(weight, int) else weight(params)


def endpoint(
    weight: Weight, need: str, action: Action
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler: count the weight, check the signature, run ``action``."""

    async def handler(request: web.Request) -> web.Response:
        served = request.app[SERVED]
        cost = weight if isinstance(weight, int) else weight(request.rel_url.query)
        caller = await served.request(request, cost, need)
        body, status = await action(served, caller)
        return web.json_response(body, status=status, dumps=compact)

    return handler


def routes(app: web.Application) -> None:
    app.router.add_post("/api/v3/order", endpoint(1, "TRADE", new_order))
    app.router.add_post("/api/v3/order/test", endpoint(1, "TRADE", test_order))
    app.router.add_delete("/api/v3/order", endpoint(1, "TRADE", cancel_order))
    app.router.add_post("/api/v3/order/cancelReplace", endpoint(1, "TRADE", cancel_replace))
    app.router.add_put(
        "/api/v3/order/amend/keepPriority", endpoint(4, "TRADE", amend_keep_priority)
    )
    app.router.add_delete("/api/v3/openOrders", endpoint(1, "TRADE", cancel_open_orders))


def origin(caller: Caller, request_id: str = "") -> Origin:
    """Who sent the command: the door, the key (its first 16 characters: enough to name it,
    never the whole), the request's id and the address. Without a request id the same object
    serves every command of one key from one address, so the journal's codec encodes it once
    (``engine.codec`` caches encoded origins by identity)."""
    key = caller.key
    principal = key.api_key[:16] if key is not None else ""
    if request_id:
        return Origin(Door.REST, principal, request_id, caller.ip)
    cache_key = (principal, caller.ip)
    found = _ORIGINS.get(cache_key)
    if found is None:
        if len(_ORIGINS) >= 4096:
            _ORIGINS.clear()
        found = _ORIGINS[cache_key] = Origin(Door.REST, principal, "", caller.ip)
    return found


#: (principal, address) -> their origin without a request id (bounded: cleared when full).
_ORIGINS: dict[tuple[str, str], Origin] = {}


@contextmanager
def cancel_named(
    served: Served, account: int, order_id: int, clid: str, cancel_id: str
) -> Iterator[None]:
    """While a cancel is sequenced, the id it gave itself, for the user data stream."""
    keys: list[tuple[int, int | str]] = []
    if order_id:
        keys.append((account, order_id))
    if clid:
        keys.append((account, clid))
    for key in keys:
        served.cancel_ids[key] = cancel_id
    try:
        yield
    finally:
        for key in keys:
            served.cancel_ids.pop(key, None)


async def submit(served: Served, cmd: Command) -> list[Event]:
    try:
        return await served.venue.submit(cmd)
    except Unavailable:
        raise ApiError(-1016, "This service is no longer available.", 503) from None
    except Unjournalable:
        raise ApiError(-1130, "Invalid data sent for a parameter.") from None


def _count_order(served: Served, caller: Caller) -> None:
    verdict = served.limiter.check_order(caller.account, served.venue.now_ms())
    if not verdict.ok:
        raise ApiError(verdict.code, verdict.msg, verdict.status)


def _resp_type(caller: Caller, ord_type: OrdType) -> str:
    value = caller.params.get("newOrderRespType")
    if value is None:
        return "FULL" if ord_type in (OrdType.MARKET, OrdType.LIMIT) else "ACK"
    if value not in _RESP_TYPES:
        raise bad_param("newOrderRespType")
    return value


def build_new_order(served: Served, caller: Caller) -> NewOrder:
    spec = served.symbols.spec(caller.params.required("symbol"))
    limit = served.config.max_num_orders
    if served.activity.open_count.get((caller.account, spec.symbol), 0) >= limit:
        raise ApiError(-1013, "Filter failure: MAX_NUM_ORDERS")
    request = order_request(caller.params, caller.account, spec)
    try:
        cmd = served.edge.new_order(request)
    except Refusal as refusal:
        raise from_refusal(refusal) from None
    if cmd.display_qty and -(-cmd.qty // cmd.display_qty) > served.config.iceberg_parts:
        raise ApiError(-1013, "Filter failure: ICEBERG_PARTS")
    cmd.origin = origin(caller, "")
    return cmd


async def new_order(served: Served, caller: Caller) -> tuple[Any, int]:
    cmd = build_new_order(served, caller)
    resp_type = _resp_type(caller, cmd.ord_type)
    _count_order(served, caller)
    events = await submit(served, cmd)
    placed = placed_order(served, cmd, events, resp_type)
    if isinstance(placed, ApiError):
        raise placed
    return placed, 200


def placed_order(
    served: Served, cmd: NewOrder, events: Sequence[Event], resp_type: str
) -> dict[str, Any] | ApiError:
    """The answer to a new order from its durable events: an order response, or the core's
    refusal."""
    accepted: OrderAccepted | None = None
    for event in events:
        if isinstance(event, OrderAccepted) and event.client_order_id == cmd.client_order_id:
            accepted = event
            break
        if isinstance(event, OrderRejected):
            return from_reason(event.reason)
        if isinstance(event, CommandRejected):
            return from_reason(event.reason)
    if accepted is None:
        return from_reason(RejectReason.INVALID_COMMAND)
    name = served.symbols.name(cmd.instrument)
    transact = cmd.ts // 1_000_000
    ack: dict[str, Any] = {
        "symbol": name,
        "orderId": accepted.order_id,
        "orderListId": -1,
        "clientOrderId": accepted.client_order_id,
        "transactTime": transact,
    }
    if resp_type == "ACK":
        return ack
    view = served.activity.orders.get(accepted.order_id)
    units = served.symbols.units[cmd.instrument]
    if view is None:  # not remembered (keep_done 0): what the events say
        return ack
    ack.update(_result(view, units, transact, served))
    if resp_type == "FULL":
        ack["fills"] = _fills(served, accepted.order_id, events, units)
    return ack


def _result(
    view: OrderView, units: InstrumentUnits, transact: int, served: Served
) -> dict[str, Any]:
    full = order_json(
        view,
        units,
        "",
        time_ms=transact,
        update_ms=transact,
        working_ms=transact,
        expired_in_match=view.order_id in served.activity.expired_in_match,
    )
    return _answer_fields({}, full, view, working=True)


#: What an order answer (RESULT, FULL, a cancel) shows of the order, in Binance's order.
_ANSWER_FIELDS = (
    "price",
    "origQty",
    "executedQty",
    "origQuoteOrderQty",
    "cummulativeQuoteQty",
    "status",
    "timeInForce",
    "type",
    "side",
)


def _answer_fields(
    answer: dict[str, Any], full: dict[str, Any], view: OrderView, *, working: bool
) -> dict[str, Any]:
    """``answer`` with the order's fields from ``full`` (``order_json``): the stop price and
    iceberg quantity only when the order has them, as Binance answers."""
    for name in _ANSWER_FIELDS:
        answer[name] = full[name]
    if working:
        answer["workingTime"] = full["workingTime"]
    answer["selfTradePreventionMode"] = full["selfTradePreventionMode"]
    if view.stop_price:
        answer["stopPrice"] = full["stopPrice"]
    if view.display_qty:
        answer["icebergQty"] = full["icebergQty"]
    return answer


def _fills(
    served: Served, order_id: int, events: Sequence[Event], units: InstrumentUnits
) -> list[dict[str, Any]]:
    settled = {e.trade_id: e for e in events if isinstance(e, TradeSettled)}
    fills = []
    for event in events:
        if isinstance(event, Trade) and event.taker_order_id == order_id:
            fee, asset = 0, ""
            settlement = settled.get(event.trade_id)
            if settlement is not None:
                fee, asset = side_fee(event.taker_side, settlement)
            fills.append(
                {
                    "price": units.tick.text(event.price),
                    "qty": units.lot.text(event.qty),
                    "commission": fee_text(fee, asset, served.assets),
                    "commissionAsset": asset or units.spec.quote,
                    "tradeId": event.trade_id,
                }
            )
    return fills


async def test_order(served: Served, caller: Caller) -> tuple[Any, int]:
    build_new_order(served, caller)  # every check of the edge; nothing is sequenced
    if not caller.params.boolean("computeCommissionRates", False):
        return {}, 200
    maker, taker = await _rates(served, caller.account)
    zero = "0.00000000"
    return {
        "standardCommissionForOrder": {"maker": maker, "taker": taker},
        "specialCommissionForOrder": {"maker": zero, "taker": zero},
        "taxCommissionForOrder": {"maker": zero, "taker": zero},
        "discount": {
            "enabledForAccount": False,
            "enabledForSymbol": False,
            "discountAsset": "",
            "discount": zero,
        },
    }, 200


async def _rates(served: Served, account: int) -> tuple[str, str]:
    money = served.venue.money
    if money is None:
        return "0.00000000", "0.00000000"
    maker, taker = await served.venue.read(lambda core: money.commission_ppm(account))
    return ppm_text(maker), ppm_text(taker)


def ppm_text(ppm: int) -> str:
    """A rate in parts per million as Binance writes rates (``0.00100000``)."""
    sign = "-" if ppm < 0 else ""
    whole, frac = divmod(abs(ppm), 1_000_000)
    return f"{sign}{whole}.{frac:06d}00"


def _order_ref(caller: Caller, id_name: str, clid_name: str) -> tuple[int, str]:
    order_id = caller.params.optional_integer(id_name, low=1) or 0
    clid = caller.params.get(clid_name) or ""
    if not order_id and not clid:
        raise ApiError(
            -1102, f"Param '{clid_name}' or '{id_name}' must be sent, but both were empty/null!"
        )
    return order_id, clid


def _find(
    served: Served, caller: Caller, symbol: str, order_id: int, clid: str
) -> OrderView | None:
    activity = served.activity
    if order_id:
        view = activity.order(caller.account, order_id)
        if view is None or view.instrument != symbol:
            return None
        if clid and view.client_order_id != clid and view.orig_client_order_id != clid:
            return None
        return view
    return activity.by_client_id(caller.account, symbol, clid)


async def cancel_order(served: Served, caller: Caller) -> tuple[Any, int]:
    spec = served.symbols.spec(caller.params.required("symbol"))
    order_id, clid = _order_ref(caller, "orderId", "origClientOrderId")
    cancel_id = _new_clid(caller, "newClientOrderId")
    if order_id and clid:
        view = _find(served, caller, spec.symbol, order_id, clid)
        if view is None:
            raise ApiError(-2011, "Unknown order sent.")
    cmd = served.edge.cancel_order(caller.account, spec.symbol, order_id, clid)
    cmd.origin = origin(caller, cancel_id)
    with cancel_named(served, caller.account, order_id, clid, cancel_id):
        events = await submit(served, cmd)
    answer = cancelled(served, events, cancel_id)
    if isinstance(answer, ApiError):
        raise answer
    return answer, 200


def _new_clid(caller: Caller, name: str) -> str:
    value = caller.params.get(name)
    if value is None:
        return new_client_order_id()
    from gateway.edge.requests import CLIENT_ORDER_ID

    if not CLIENT_ORDER_ID.fullmatch(value):
        raise from_refusal(Refusal(RejectReason.INVALID_COMMAND, "", name))
    return value


def cancelled(served: Served, events: Sequence[Event], cancel_id: str) -> dict[str, Any] | ApiError:
    """The answer to a cancel from its durable events."""
    for event in events:
        if isinstance(event, OrderCancelled):
            return cancel_json(served, event.order_id, cancel_id, event.client_order_id)
        if isinstance(event, CancelRejected):
            if event.reason is RejectReason.UNKNOWN_ORDER:
                return ApiError(-2011, "Unknown order sent.")
            answer = from_reason(event.reason)
            return ApiError(-2011, answer.msg)
    return ApiError(-2011, "Unknown order sent.")


def cancel_json(served: Served, order_id: int, cancel_id: str, orig_clid: str) -> dict[str, Any]:
    view = served.activity.orders.get(order_id)
    if view is None:
        return {"orderId": order_id, "origClientOrderId": orig_clid, "clientOrderId": cancel_id}
    units = served.symbols.units[view.instrument]
    created, updated, _ = served.activity.times_of(order_id)
    full = order_json(
        view,
        units,
        served.symbols.name(view.instrument),
        time_ms=created,
        update_ms=updated,
        working_ms=created,
    )
    answer: dict[str, Any] = {
        "symbol": full["symbol"],
        "origClientOrderId": orig_clid,
        "orderId": order_id,
        "orderListId": -1,
        "clientOrderId": cancel_id,
        "transactTime": updated,
    }
    return _answer_fields(answer, full, view, working=False)


async def cancel_open_orders(served: Served, caller: Caller) -> tuple[Any, int]:
    spec = served.symbols.spec(caller.params.required("symbol"))
    cmd = MassCancel(
        MassCancelScope.ACCOUNT_INSTRUMENT,
        caller.account,
        spec.symbol,
        origin=origin(caller, ""),
    )
    events = await submit(served, cmd)
    answers = []
    for event in events:
        if isinstance(event, OrderCancelled):
            answers.append(
                cancel_json(served, event.order_id, new_client_order_id(), event.client_order_id)
            )
        elif isinstance(event, CommandRejected):
            raise from_reason(event.reason)
    if not answers:
        raise ApiError(-2011, "Unknown order sent.")
    return answers, 200


async def cancel_replace(served: Served, caller: Caller) -> tuple[Any, int]:
    mode = caller.params.required("cancelReplaceMode")
    if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
        raise bad_param("cancelReplaceMode")
    if caller.params.get("cancelRestrictions") is not None:
        raise ApiError(-1130, "Data sent for parameter 'cancelRestrictions' is not valid.")
    new = build_new_order(served, caller)
    resp_type = _resp_type(caller, new.ord_type)
    order_id, clid = _order_ref(caller, "cancelOrderId", "cancelOrigClientOrderId")
    cancel_id = _new_clid(caller, "cancelNewClientOrderId")
    cancel = served.edge.cancel_order(caller.account, new.instrument, order_id, clid)
    _count_order(served, caller)
    cmd = CancelReplace(cancel, new, mode == "ALLOW_FAILURE", origin=origin(caller, cancel_id))
    with cancel_named(served, caller.account, order_id, clid, cancel_id):
        events = await submit(served, cmd)
    cancel_events = [e for e in events if isinstance(e, OrderCancelled | CancelRejected)]
    cancel_answer = cancelled(served, cancel_events, cancel_id)
    cancel_ok = not isinstance(cancel_answer, ApiError)
    if not cancel_ok and mode == "STOP_ON_FAILURE":
        new_answer: dict[str, Any] | ApiError | None = None
    else:
        new_answer = placed_order(served, new, events, resp_type)
    new_ok = new_answer is not None and not isinstance(new_answer, ApiError)
    data = {
        "cancelResult": "SUCCESS" if cancel_ok else "FAILURE",
        "newOrderResult": "SUCCESS"
        if new_ok
        else ("NOT_ATTEMPTED" if new_answer is None else "FAILURE"),
        "cancelResponse": _body(cancel_answer),
        "newOrderResponse": None if new_answer is None else _body(new_answer),
    }
    if cancel_ok and new_ok:
        return data, 200
    if cancel_ok or new_ok:
        body = {"code": -2021, "msg": "Order cancel-replace partially failed.", "data": data}
        return body, 409
    body = {"code": -2022, "msg": "Order cancel-replace failed.", "data": data}
    return body, 400


def _body(answer: dict[str, Any] | ApiError) -> dict[str, Any]:
    return answer.body() if isinstance(answer, ApiError) else answer


async def amend_keep_priority(served: Served, caller: Caller) -> tuple[Any, int]:
    spec = served.symbols.spec(caller.params.required("symbol"))
    order_id, clid = _order_ref(caller, "orderId", "origClientOrderId")
    new_qty = caller.params.get("newQty")
    if new_qty is None:
        raise mandatory("newQty")
    new_clid = caller.params.get("newClientOrderId") or ""
    view = _find(served, caller, spec.symbol, order_id, clid)
    if view is None or view.status.name not in ("NEW", "PARTIALLY_FILLED", "PENDING_TRIGGER"):
        raise ApiError(-2038, "Unknown order sent.")
    units = served.symbols.units[spec.symbol]
    try:
        qty = served.edge.quantity(spec.symbol, new_qty)
    except Refusal as refusal:
        raise from_refusal(refusal) from None
    if qty >= view.qty:
        if qty == view.qty:
            raise ApiError(-2038, "The requested action would change no state; rejecting")
        raise ApiError(-2038, "Order amend (quantity increase) is not supported.")
    replace = ReplaceRequest(
        caller.account, spec.symbol, view.order_id, "", new_clid, qty=units.lot.text(qty)
    )
    try:
        live = await served.venue.read(lambda core: core.order(caller.account, view.order_id))
        cmd = served.edge.replace_order(live, replace)
    except Refusal as refusal:
        raise ApiError(-2038, from_refusal(refusal).msg) from None
    cmd.origin = origin(caller, new_clid)
    events = await submit(served, cmd)
    for event in events:
        if isinstance(event, ReplaceRejected):
            raise ApiError(-2038, from_reason(event.reason).msg)
        if isinstance(event, CommandRejected):
            raise ApiError(-2038, from_reason(event.reason).msg)
    amended = served.activity.orders.get(view.order_id)
    assert amended is not None
    created, updated, working = served.activity.times_of(view.order_id)
    full = order_json(
        amended,
        units,
        served.symbols.name(spec.symbol),
        time_ms=created,
        update_ms=updated,
        working_ms=working,
    )
    amended_json = {
        "symbol": full["symbol"],
        "orderId": amended.order_id,
        "orderListId": -1,
        "origClientOrderId": amended.orig_client_order_id or view.client_order_id,
        "clientOrderId": amended.client_order_id,
        "price": full["price"],
        "qty": full["origQty"],
        "executedQty": full["executedQty"],
        "preventedQty": "0",
        "quoteOrderQty": full["origQuoteOrderQty"],
        "cumulativeQuoteQty": full["cummulativeQuoteQty"],
        "status": status_name(amended),
        "timeInForce": full["timeInForce"],
        "type": full["type"],
        "side": full["side"],
        "workingTime": working,
        "selfTradePreventionMode": full["selfTradePreventionMode"],
    }
    return {
        "transactTime": cmd.ts // 1_000_000,
        "executionId": cmd.seq,
        "amendedOrder": amended_json,
    }, 200
