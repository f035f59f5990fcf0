"""Domain enumerations shared by every part of the venue.

All values are small integers so that they encode compactly in the journal and compare fast in
the matching loop. Names follow the Binance Spot API where one exists (``LIMIT_MAKER``,
``EXPIRE_TAKER``...), so that gateways map them one to one.
"""

from __future__ import annotations

from enum import IntEnum


class Side(IntEnum):
    BUY = 1
    SELL = 2


class OrdType(IntEnum):
    LIMIT = 1
    MARKET = 2
    STOP_LOSS = 3
    STOP_LOSS_LIMIT = 4
    TAKE_PROFIT = 5
    TAKE_PROFIT_LIMIT = 6
    LIMIT_MAKER = 7


#: Order types that wait in the stop book until the last trade price reaches their stop price.
STOP_TYPES = frozenset(
    {OrdType.STOP_LOSS, OrdType.STOP_LOSS_LIMIT, OrdType.TAKE_PROFIT, OrdType.TAKE_PROFIT_LIMIT}
)
#: Order types that carry a limit price.
PRICED_TYPES = frozenset(
    {OrdType.LIMIT, OrdType.LIMIT_MAKER, OrdType.STOP_LOSS_LIMIT, OrdType.TAKE_PROFIT_LIMIT}
)


class TimeInForce(IntEnum):
    GTC = 1
    IOC = 2
    FOK = 3
    GTD = 4
    DAY = 5


class StpMode(IntEnum):
    """Self-trade prevention, applied when taker and maker share an owner.

    ``DEFAULT`` on an order means "use the account's default".
    """

    DEFAULT = 0
    NONE = 1
    EXPIRE_TAKER = 2
    EXPIRE_MAKER = 3
    EXPIRE_BOTH = 4
    DECREMENT = 5


class OrderStatus(IntEnum):
    NEW = 1
    PARTIALLY_FILLED = 2
    FILLED = 3
    CANCELLED = 4
    EXPIRED = 5
    REJECTED = 6
    #: A stop order accepted and waiting for its trigger (Binance reports it as NEW).
    PENDING_TRIGGER = 7


class InstrumentState(IntEnum):
    """``OPEN`` trades; ``CANCEL_ONLY`` accepts cancels only; ``HALTED`` freezes participants.

    In ``HALTED`` no participant command on the instrument is accepted (new, replace, cancel);
    operator commands (mass cancel, state change) and time-driven expiry still run.
    """

    OPEN = 1
    CANCEL_ONLY = 2
    HALTED = 3


class RejectReason(IntEnum):
    """Why a command was refused. Stable numbers: they travel in the journal and on the wire."""

    NONE = 0
    UNKNOWN_INSTRUMENT = 1
    INSTRUMENT_NOT_OPEN = 2
    INSTRUMENT_HALTED = 3
    KILL_SWITCH = 4
    INVALID_QUANTITY = 5
    QTY_NOT_LOT_MULTIPLE = 6  # gateways use it when a decimal is off-lot
    PRICE_NOT_TICK_MULTIPLE = 7  # gateways use it when a decimal is off-tick
    QTY_BELOW_MIN = 8
    QTY_ABOVE_MAX = 9
    NOTIONAL_BELOW_MIN = 10
    PRICE_OUTSIDE_BAND = 11
    INVALID_PRICE = 12
    INVALID_STOP_PRICE = 13
    WOULD_TRIGGER_IMMEDIATELY = 14
    WOULD_TAKE = 15  # LIMIT_MAKER that would cross
    DUPLICATE_CLIENT_ORDER_ID = 16
    UNKNOWN_ORDER = 17
    ORDER_NOT_REPLACEABLE = 18
    INVALID_TIME_IN_FORCE = 19
    EXPIRE_TIME_IN_PAST = 20
    INVALID_DISPLAY_QTY = 21
    REPLACE_QTY_NOT_ABOVE_FILLED = 22
    INVALID_ORDER_TYPE = 23
    INVALID_STP_MODE = 24
    INSUFFICIENT_BALANCE = 25  # risk stage
    ACCOUNT_NOT_ACTIVE = 26  # risk stage
    NOT_PERMITTED = 27
    INVALID_COMMAND = 28
    KYC_TIER_NOT_PERMITTED = 29  # risk stage: the account's KYC tier (0) may not trade
    OTR_EXCEEDED = 30  # risk stage: over the order-to-trade ratio on the instrument today


class CancelReason(IntEnum):
    """Why an order left the book other than by filling."""

    USER = 1
    MASS_CANCEL = 2
    KILL_SWITCH = 3
    OPERATOR = 4
    SELF_TRADE = 5  # STP removed this order
    IOC_REMAINDER = 6  # unfilled part of an IOC / market order
    FOK_NOT_FILLED = 7
    GTD_EXPIRED = 8
    DAY_EXPIRED = 9
    MARKET_PROTECTION = 10  # a market order reached the price band
    NO_LIQUIDITY = 11
    TRIGGERED_OUTSIDE_BAND = 12
    DISCONNECT = 13  # cancel-on-disconnect
    ACCOUNT_FROZEN = 14  # risk stage
    KYC_TIER = 15  # risk stage: the account was put on KYC tier 0, which may not trade


class MassCancelScope(IntEnum):
    ACCOUNT = 1
    ACCOUNT_INSTRUMENT = 2
    SESSION = 3
    INSTRUMENT = 4  # operator: every order on an instrument
    ALL = 5  # operator: every order on the venue


class AccountState(IntEnum):
    """ACTIVE trades and moves money; FROZEN keeps its balances but places no orders and makes
    no withdrawals (its open orders are cancelled when it is frozen); CLOSED holds nothing and
    does nothing (an account closes only when it is empty)."""

    ACTIVE = 1
    FROZEN = 2
    CLOSED = 3


class Door(IntEnum):
    """Where a command entered the venue, journaled with it (``engine.commands.Origin``).
    Stable numbers: they live in journals on disk."""

    UNKNOWN = 0  # journaled before commands carried an origin
    FIX = 1
    REST = 2
    WEBSOCKET = 3
    ADMIN = 4  # the operators' admin API
    CONSOLE = 5  # the staff console
    CUSTODY = 6  # deposits seen on chain, withdrawals paid out
    SYSTEM = 7  # the venue itself: timers, configuration at start-up, disconnects
    CLI = 8  # an operator's command line


class KycTier(IntEnum):
    """An account's know-your-customer tier, which bounds what it may do (``clearing.risk``):
    TIER_0 (email only) views and deposits but neither trades nor withdraws; TIER_1, TIER_2 and
    TIER_3 withdraw up to 500, 10,000 and 100,000 USD over any 24 hours; INSTITUTIONAL has no
    limit. Spelled ``"0"``..``"3"`` and ``"INSTITUTIONAL"`` on the wire and in the configuration
    (``kyc_tier_label``, ``parse_kyc_tier``). Stable numbers: they live in journals on disk."""

    TIER_0 = 0
    TIER_1 = 1
    TIER_2 = 2
    TIER_3 = 3
    INSTITUTIONAL = 9

    @property
    def label(self) -> str:
        """``kyc_tier_label(self)``: "0".."3" or "INSTITUTIONAL"."""
        return kyc_tier_label(self)


def kyc_tier_label(tier: KycTier) -> str:
    """The tier as the doors and the configuration spell it: "0".."3" or "INSTITUTIONAL"."""
    return "INSTITUTIONAL" if tier == KycTier.INSTITUTIONAL else str(int(tier))


def parse_kyc_tier(text: object) -> KycTier:
    """The tier spelled ``text`` ("0".."3" or "INSTITUTIONAL"); ``ValueError`` otherwise."""
    if text == "INSTITUTIONAL":
        return KycTier.INSTITUTIONAL
    if isinstance(text, str) and text in ("0", "1", "2", "3"):
        return KycTier(int(text))
    raise ValueError('a KYC tier is "0", "1", "2", "3" or "INSTITUTIONAL"')
