"""Bounded, seeded fuzz of the REST door's parameter reading: whatever a client sends as order
parameters, the door answers a Binance refusal (``ApiError``, or the edge's ``Refusal`` that the
door turns into one) or builds a command; it never raises anything else."""

from __future__ import annotations

import random

import pytest

from engine.instrument import spec_from_decimals
from gateway.edge.refusals import Refusal
from gateway.edge.requests import Edge
from gateway.rest.dialect import Params, order_request
from gateway.rest.errors import ApiError, from_refusal

SPEC = spec_from_decimals(
    "BTC-USDT", "BTC", "USDT", "0.01", "0.00001", "0.00001", "9000", "5", 1000, "95000"
)
EDGE = Edge([SPEC], {"BTC": 8, "USDT": 8})
NAMES = [
    "side",
    "type",
    "timeInForce",
    "quantity",
    "quoteOrderQty",
    "price",
    "stopPrice",
    "icebergQty",
    "newClientOrderId",
    "selfTradePreventionMode",
    "goodTillDate",
    "trailingDelta",
]
VALUES = [
    "BUY",
    "SELL",
    "LIMIT",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
    "LIMIT_MAKER",
    "GTC",
    "IOC",
    "FOK",
    "GTD",
    "DAY",
    "EXPIRE_TAKER",
    "DECREMENT",
    "0",
    "1",
    "0.1",
    "95000.00",
    "1e5",
    "-1",
    "NaN",
    "0.000000001",
    "9" * 60,
    "",
    " ",
    "é",
    "\x00",
    "1.2.3",
    ".5",
    "5.",
    "x" * 40,
    "a:b/c",
]


#: A valid order the fuzz starts from most of the time, changing a few of its parameters.
VALID = {
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.1",
    "price": "95000.00",
}


def _random_text(rng: random.Random) -> str:
    return "".join(chr(rng.randint(0, 0x2FF)) for _ in range(rng.randint(0, 12)))


@pytest.mark.parametrize("seed", range(8))
def test_order_parameters_are_refused_cleanly_or_turned_into_a_command(seed: int) -> None:
    rng = random.Random(seed)
    outcomes = {"command": 0, "refused": 0}
    for _ in range(600):
        fields = dict(VALID) if rng.random() < 0.6 else {}
        for name in rng.sample(NAMES, rng.randint(0, 3 if fields else len(NAMES))):
            value = rng.choice(VALUES) if rng.random() < 0.85 else _random_text(rng)
            fields[name] = value
        pairs = list(fields.items())
        if rng.random() < 0.05 and pairs:
            pairs.append(pairs[0])  # a duplicate
        try:
            params = Params(pairs)
            request = order_request(params, 1001, SPEC)
            EDGE.new_order(request)
        except ApiError as error:
            assert error.code < 0 and error.msg and 400 <= error.status < 500
            outcomes["refused"] += 1
        except Refusal as refusal:
            answer = from_refusal(refusal)
            assert answer.code < 0 and answer.msg
            outcomes["refused"] += 1
        else:
            outcomes["command"] += 1
    assert outcomes["refused"] > 0 and outcomes["command"] > 0, outcomes
