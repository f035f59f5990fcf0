"""Admin requests to commands: one builder per endpoint that changes state, each reading its
fields (``gateway.admin.fields``) and leaving units and rules to the shared edge."""

from __future__ import annotations

import re

from engine.commands import (
    AdjustBalance,
    CancelOrder,
    ConfigureAccount,
    ConfirmWithdrawal,
    Deposit,
    MassCancel,
    NewOrder,
    ReleaseWithdrawal,
    ReplaceOrder,
    SetAccountState,
    SetFeeSchedule,
    SetInstrumentState,
    SetKillSwitch,
    SetKycTier,
    SetReferencePrice,
    Withdraw,
)
from engine.core import Core
from engine.types import (
    PRICED_TYPES,
    STOP_TYPES,
    AccountState,
    CancelReason,
    InstrumentState,
    MassCancelScope,
    OrdType,
    Side,
    StpMode,
    TimeInForce,
    parse_kyc_tier,
)
from gateway.admin.fields import (
    _ANY_ID,
    _CLIENT_ID,
    _MAX_INT,
    _NS_PER_MS,
    _REF,
    _SCHEDULE,
    _SESSION,
    INVALID_PARAM,
    INVALID_SIDE,
    INVALID_TIF,
    INVALID_TYPE,
    MANDATORY,
    NOT_REQUIRED,
    Fields,
    _fail,
    edge_call,
)
from gateway.edge.requests import OrderRequest, ReplaceRequest, find_live


# -- building commands --------------------------------------------------------------------------
def new_order(f: Fields) -> NewOrder:
    """``POST /v1/orders``."""
    account = f.account()
    spec = f.symbol()
    side = f.enum("side", Side, INVALID_SIDE)
    ord_type = f.enum("type", OrdType, INVALID_TYPE)
    market = ord_type not in PRICED_TYPES
    if f.has("timeInForce"):
        tif = f.enum("timeInForce", TimeInForce, INVALID_TIF)
    else:
        # A stop-market order keeps its time in force while it waits for its trigger.
        tif = TimeInForce.IOC if ord_type == OrdType.MARKET else TimeInForce.GTC
    request = OrderRequest(
        account, spec.symbol, "", side, ord_type, tif, client_order_id_optional=True
    )
    if f.has("quoteOrderQty"):
        if ord_type != OrdType.MARKET:
            _fail(NOT_REQUIRED, "Parameter 'quoteOrderQty' sent when not required (MARKET only).")
        f.refuse("quantity", "quoteOrderQty is given")
        request.quote_qty = f.decimal("quoteOrderQty")
    else:
        request.qty = f.decimal("quantity")
    if market:
        f.refuse("price", f"{ord_type.name} orders take no limit price")
    else:
        request.price = f.decimal("price")
    if ord_type in STOP_TYPES:
        request.stop_price = f.decimal("stopPrice")
    else:
        f.refuse("stopPrice", f"{ord_type.name} orders take no stop price")
    request.display_qty = f.optional_decimal("icebergQty")
    if tif == TimeInForce.GTD:
        request.expire_time = f.integer("expireTime", minimum=1) * _NS_PER_MS
        if request.expire_time > _MAX_INT:
            _fail(INVALID_PARAM, "Parameter 'expireTime' is out of range.")
    else:
        f.refuse("expireTime", "only GTD orders expire at a given time")
    request.client_order_id = f.text("clientOrderId", _ANY_ID, "")
    if f.has("stpMode"):
        request.stp_mode = f.enum("stpMode", StpMode)
    request.session = f.text("session", _SESSION, "")
    return edge_call(f.edge.new_order, request)


def cancel_order(f: Fields) -> CancelOrder:
    """``DELETE /v1/orders``: by ``orderId`` or by the ``clientOrderId`` the order was given."""
    account = f.account()
    spec = f.symbol()
    order_id = f.integer("orderId", minimum=1, default=0)
    clid = f.text("clientOrderId", _ANY_ID, "")
    if not order_id and not clid:
        _fail(MANDATORY, "Param 'orderId' or 'clientOrderId' must be sent, but both were empty.")
    return edge_call(f.edge.cancel_order, account, spec.symbol, order_id, clid)


def replace_order(f: Fields, core: Core) -> ReplaceOrder:
    """``PUT /v1/orders``: ``quantity`` is the new total quantity (filled part included);
    what is not sent is kept. An order that is not live is refused by the core (journaled,
    answered with ``ReplaceRejected``)."""
    account = f.account()
    spec = f.symbol()
    order_id = f.integer("orderId", minimum=1, default=0)
    orig = f.text("origClientOrderId", _ANY_ID, "")
    if not order_id and not orig:
        _fail(
            MANDATORY, "Param 'orderId' or 'origClientOrderId' must be sent, but both were empty."
        )
    request = ReplaceRequest(
        account,
        spec.symbol,
        order_id,
        orig,
        f.text("newClientOrderId", _ANY_ID, ""),
        qty=f.optional_decimal("quantity"),
        price=f.optional_decimal("price"),
        stop_price=f.optional_decimal("stopPrice"),
    )
    if request.qty is None and request.price is None and request.stop_price is None:
        _fail(
            MANDATORY,
            "Param 'quantity', 'price' or 'stopPrice' must be sent: a replace changes one.",
        )
    order = find_live(core, account, order_id, orig)
    if order is None:
        return edge_call(f.edge.replace_unknown, request)
    return edge_call(f.edge.replace_order, order, request)


def mass_cancel(f: Fields) -> MassCancel:
    """``POST /v1/mass-cancel``; the admin API acts as the operator (reason OPERATOR)."""
    scope = f.enum("scope", MassCancelScope)
    cmd = MassCancel(scope, reason=CancelReason.OPERATOR)
    needs_account = scope in (MassCancelScope.ACCOUNT, MassCancelScope.ACCOUNT_INSTRUMENT)
    needs_symbol = scope in (MassCancelScope.ACCOUNT_INSTRUMENT, MassCancelScope.INSTRUMENT)
    if needs_account:
        cmd.account = f.account()
    else:
        f.refuse("account", f"scope {scope.name} is not about one account")
    if needs_symbol:
        cmd.instrument = f.symbol().symbol
    else:
        f.refuse("symbol", f"scope {scope.name} is not about one instrument")
    if scope == MassCancelScope.SESSION:
        cmd.session = f.text("session", _SESSION)
    else:
        f.refuse("session", f"scope {scope.name} is not about one session")
    cmd.request_id = f.text("requestId", _CLIENT_ID, "")
    return cmd


def set_state(f: Fields) -> SetInstrumentState:
    """``POST /v1/instruments/{symbol}/state``."""
    return SetInstrumentState(f.symbol().symbol, f.enum("state", InstrumentState))


def kill_switch(f: Fields) -> SetKillSwitch:
    """``POST /v1/kill-switch``."""
    return SetKillSwitch(f.boolean("active"), f.boolean("cancelOrders", True))


def configure_account(f: Fields) -> ConfigureAccount:
    """``POST /v1/accounts/{account}``; ``owner`` defaults to the account itself."""
    account = f.account()
    owner = f.integer("owner", minimum=1, default=account)
    stp = f.enum("stpDefault", StpMode) if f.has("stpDefault") else StpMode.DEFAULT
    return ConfigureAccount(account, owner, stp)


def reference_price(f: Fields) -> SetReferencePrice:
    """``POST /v1/instruments/{symbol}/reference-price``."""
    spec = f.symbol()
    return SetReferencePrice(spec.symbol, f.price("price", spec))


def deposit(f: Fields) -> Deposit:
    """``POST /v1/deposits``: credit funds that arrived (custody, or an operator)."""
    account = f.account()
    asset = f.asset()
    return Deposit(account, asset, f.amount("amount", asset), f.text("ref", _REF, ""))


def withdraw(f: Fields) -> Withdraw:
    """``POST /v1/withdrawals``: hold funds for a withdrawal (``withdrawalId`` chosen by the
    caller, unique for ever)."""
    account = f.account()
    asset = f.asset()
    amount = f.amount("amount", asset)
    wid = f.integer("withdrawalId", minimum=1)
    return Withdraw(account, asset, amount, wid, f.text("ref", _REF, ""))


def confirm_withdrawal(f: Fields) -> ConfirmWithdrawal:
    """``POST /v1/withdrawals/{withdrawalId}/confirm``: the funds left the venue."""
    return ConfirmWithdrawal(f.integer("withdrawalId", minimum=1), f.text("ref", _REF, ""))


def release_withdrawal(f: Fields) -> ReleaseWithdrawal:
    """``POST /v1/withdrawals/{withdrawalId}/release``: give the held funds back."""
    return ReleaseWithdrawal(f.integer("withdrawalId", minimum=1), f.text("ref", _REF, ""))


def adjust(f: Fields) -> AdjustBalance:
    """``POST /v1/adjustments``: an operator's correction, ``amount`` signed."""
    account = f.account()
    asset = f.asset()
    amount = f.amount("amount", asset, signed=True)
    return AdjustBalance(account, asset, amount, f.text("ref", _REF, ""))


def account_state(f: Fields) -> SetAccountState:
    """``POST /v1/accounts/{account}/state``: ACTIVE, FROZEN (open orders are cancelled) or
    CLOSED (only an empty account)."""
    return SetAccountState(f.account(), f.enum("state", AccountState))


def fee_schedule(f: Fields) -> SetFeeSchedule:
    """``POST /v1/accounts/{account}/fee-schedule``: a schedule of ``[fees]`` ("" = default)."""
    return SetFeeSchedule(f.account(), f.text("schedule", _SCHEDULE, ""))


#: A KYC review id: printable ASCII without spaces, as providers' ids are.
REVIEW_ID = re.compile(r"[!-~]{1,128}")
_TIERS = 'Parameter \'tier\' must be "0", "1", "2", "3" or "INSTITUTIONAL",'


def kyc_tier(f: Fields) -> SetKycTier:
    """``POST /v1/accounts/{account}/kyc``: put the account on KYC tier ``tier`` ("0".."3" or
    "INSTITUTIONAL"), optionally naming the ``reviewId`` that decided it (a review id is
    applied once: the core refuses it the second time)."""
    account = f.account()
    raw = f.string("tier")
    try:
        tier = parse_kyc_tier(raw)
    except ValueError:
        _fail(INVALID_PARAM, f"{_TIERS} got {raw[:32]!r}.")
    return SetKycTier(account, tier, f.text("reviewId", REVIEW_ID, ""))
