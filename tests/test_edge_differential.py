"""The same requests through FIX, the admin API and the REST door give the same commands and the
same outcomes: every door goes through the one edge (``gateway.edge``).

Each case is written once, door-neutrally, and sent through the doors of one running venue (a
FIX order entry session, the admin API and signed REST requests, on the same account). REST
has no replace of its own (Binance's cancelReplace cancels and places a new order, another
command), so replace cases compare FIX and admin only. The commands each door posts
are captured from the venue's command stream and compared field by field (their origins and
client order ids aside); a refusal must have the same reason at both doors: FIX says it in
VenueRejectReason (25006), the admin API with the Binance code the edge gives that reason.
The disagreements the doors used to have are among the cases: an off-grid cash quantity, a
replace without a price, a client order id FIX took and admin did not, a quantity of 0.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fix_client import FixClient, now
from rest_client import signed
from venue_doors import config_with_fix, fix_session, serving

from engine.commands import Command, Deposit
from engine.events import Event
from engine.types import RejectReason
from gateway.edge.refusals import Refusal, binance_error
from venue.config import VenueConfig
from venue.runtime import Venue

ACCOUNT = 1001
SYM = "BTC-USDT"
COIN = 10**8


@dataclass
class Case:
    """A request in the doors' common vocabulary."""

    name: str
    kind: str  # new, replace, cancel
    fields: dict[str, str] = field(default_factory=dict)
    #: the refusal expected at both doors (None: accepted as a command)
    refused: RejectReason | None = None
    refused_field: str = ""
    refused_kind: str = ""
    #: fields the command must have (integer units), checked at both doors
    expect: dict[str, int] = field(default_factory=dict)


CASES = [
    Case(
        "limit",
        "new",
        {"side": "BUY", "type": "LIMIT", "quantity": "0.5", "price": "94000.00"},
        expect={"qty": 50_000, "price": 9_400_000},
    ),
    Case(
        "iceberg GTC",
        "new",
        {
            "side": "SELL",
            "type": "LIMIT",
            "quantity": "0.3",
            "price": "99000",
            "icebergQty": "0.1",
        },
    ),
    Case(
        "stop limit",
        "new",
        {
            "side": "BUY",
            "type": "STOP_LOSS_LIMIT",
            "quantity": "0.01",
            "price": "96100.00",
            "stopPrice": "96000.00",
        },
    ),
    Case(
        "off tick",
        "new",
        {"side": "BUY", "type": "LIMIT", "quantity": "0.5", "price": "94000.001"},
        RejectReason.PRICE_NOT_TICK_MULTIPLE,
        "price",
        Refusal.OFF_STEP,
    ),
    Case(
        "off lot",
        "new",
        {"side": "BUY", "type": "LIMIT", "quantity": "0.000001", "price": "94000.00"},
        RejectReason.QTY_NOT_LOT_MULTIPLE,
        "quantity",
        Refusal.OFF_STEP,
    ),
    Case(
        "off-grid cash quantity",
        "new",
        {"side": "BUY", "type": "MARKET", "quoteOrderQty": "10.000000001"},
        RejectReason.INVALID_QUANTITY,
        "quoteOrderQty",
        Refusal.OFF_STEP,
    ),
    Case(
        "zero quantity",
        "new",
        {"side": "BUY", "type": "LIMIT", "quantity": "0", "price": "94000.00"},
        RejectReason.INVALID_QUANTITY,
        "quantity",
        Refusal.ZERO,
    ),
    Case(
        "client order id too long",
        "new",
        {"side": "BUY", "type": "LIMIT", "quantity": "0.1", "price": "94000.00", "clid": "x" * 37},
        RejectReason.INVALID_COMMAND,
        "clientOrderId",
    ),
    Case(
        "client order id with a colon and a slash",
        "new",
        {"side": "BUY", "type": "LIMIT", "quantity": "0.1", "price": "94000.00", "clid": "a:b/c"},
    ),
    Case(
        "replace without a price keeps it",
        "replace",
        {"quantity": "0.2"},
        expect={"qty": 20_000, "price": 9_400_000},
    ),
    Case(
        "replace without a quantity keeps it",
        "replace",
        {"price": "93000.00"},
        expect={"qty": 50_000, "price": 9_300_000},
    ),
    Case(
        "replace to a quantity of 0",
        "replace",
        {"quantity": "0"},
        RejectReason.INVALID_QUANTITY,
        "quantity",
        Refusal.ZERO,
    ),
    Case(
        "replace off tick",
        "replace",
        {"price": "93000.005"},
        RejectReason.PRICE_NOT_TICK_MULTIPLE,
        "price",
        Refusal.OFF_STEP,
    ),
    Case("cancel by client order id", "cancel"),
]

_FIX_SIDES = {"BUY": b"1", "SELL": b"2"}
_FIX_TYPES = {"LIMIT": b"2", "MARKET": b"1", "STOP_LOSS_LIMIT": b"4"}


def _config(data_dir: Path) -> VenueConfig:
    return config_with_fix(data_dir, fix_session("A", accounts=(ACCOUNT,)))


@dataclass
class Doors:
    venue: Venue
    fix: FixClient
    http: aiohttp.ClientSession
    posted: list[tuple[Command, list[Event] | None]]
    rest_url: str = ""
    rest_key: tuple[str, str] = ("", "")


@asynccontextmanager
async def doors(data_dir: Path) -> AsyncIterator[Doors]:
    async with serving(_config(data_dir), http_timeout=10, rest_accounts=(ACCOUNT,)) as served:
        venue = served.venue
        posted: list[tuple[Command, list[Event] | None]] = []
        venue.subscribe_commands(lambda cmd, events: posted.append((cmd, events)))
        client = FixClient(served.fix_port, "A")
        try:
            await venue.submit(Deposit(ACCOUNT, "USDT", 10_000_000 * COIN, "usdt"))
            await venue.submit(Deposit(ACCOUNT, "BTC", 100 * COIN, "btc"))
            await client.logon()
            posted.clear()
            yield Doors(venue, client, served.http, posted, served.rest_url, served.keys[ACCOUNT])
        finally:
            await client.close()


@dataclass
class Outcome:
    commands: list[tuple[Any, ...]]
    refused: RejectReason | None = None
    admin_code: int | None = None


def _shape(cmd: Command) -> tuple[Any, ...]:
    """A command's fields without what differs by door: origin, session, client order ids."""
    values = dataclasses.asdict(cmd)
    for key in (
        "origin",
        "session",
        "seq",
        "ts",
        "client_order_id",
        "orig_client_order_id",
        "order_id",
    ):
        values.pop(key, None)
    return (type(cmd).__name__, tuple(sorted(values.items())))


async def _fix(d: Doors, case: Case, clid: str, target: str) -> Outcome:
    f = case.fields
    before = len(d.posted)
    if case.kind == "new":
        tags: list[tuple[int, Any]] = [(11, clid), (55, SYM), (54, _FIX_SIDES[f["side"]])]
        tags += [(60, now()), (40, _FIX_TYPES[f["type"]])]
        for key, tag in (
            ("quantity", 38),
            ("quoteOrderQty", 152),
            ("price", 44),
            ("stopPrice", 99),
            ("icebergQty", 111),
        ):
            if key in f:
                tags.append((tag, f[key]))
        d.fix.send(b"D", tags)
        report = await d.fix.expect_type(b"8", _11=clid.encode())
        refused = report.get(150) == b"8"
    elif case.kind == "replace":
        tags = [(41, target), (11, clid), (55, SYM), (54, b"1"), (60, now()), (40, b"2")]
        for key, tag in (("quantity", 38), ("price", 44)):
            if key in f:
                tags.append((tag, f[key]))
        d.fix.send(b"G", tags)
        report = await d.fix.expect(lambda m: m.get(11) == clid.encode())
        refused = report.msg_type == b"9"
    else:
        d.fix.send(b"F", [(41, target), (11, clid), (55, SYM), (54, b"1"), (60, now())])
        report = await d.fix.expect(lambda m: m.get(11) == clid.encode())
        refused = report.msg_type == b"9"
    await asyncio.sleep(0.05)
    reason = RejectReason(int(report.get(25006) or 0)) if refused else None
    if refused and report.get(37) is None and report.msg_type == b"8":
        reason = RejectReason(int(report.get(25006) or 0))
    return Outcome([_shape(c) for c, _ in d.posted[before:] if _door_command(c)], reason)


def _door_command(cmd: Command) -> bool:
    return type(cmd).__name__ in ("NewOrder", "ReplaceOrder", "CancelOrder")


async def _admin(d: Doors, case: Case, clid: str, target: str) -> Outcome:
    f = dict(case.fields)
    before = len(d.posted)
    body: dict[str, Any] = {"account": ACCOUNT, "symbol": SYM}
    if case.kind == "new":
        f.pop("clid", None)
        body.update(f, clientOrderId=clid)
        method = "POST"
    elif case.kind == "replace":
        body.update(f, origClientOrderId=target, newClientOrderId=clid)
        method = "PUT"
    else:
        body.update(clientOrderId=target)
        method = "DELETE"
    async with d.http.request(method, "/v1/orders", json=body) as response:
        data = await response.json()
    code = None if response.status == 200 else int(data["code"])
    return Outcome([_shape(c) for c, _ in d.posted[before:]], None, code)


async def _rest(d: Doors, case: Case, clid: str, target: str) -> Outcome:
    f = dict(case.fields)
    before = len(d.posted)
    params: dict[str, Any] = {"symbol": SYM.replace("-", "")}
    if case.kind == "new":
        f.pop("clid", None)
        params.update(f, newClientOrderId=clid)
        if f["type"] in ("LIMIT", "STOP_LOSS_LIMIT"):
            params["timeInForce"] = "GTC"
        status, body = await signed(
            d.http, d.rest_url, "POST", "/api/v3/order", d.rest_key, **params
        )
    else:
        params.update(origClientOrderId=target)
        status, body = await signed(
            d.http, d.rest_url, "DELETE", "/api/v3/order", d.rest_key, **params
        )
    code = None if status == 200 else int(body["code"])
    return Outcome([_shape(c) for c, _ in d.posted[before:]], None, code)


def test_fix_and_admin_turn_the_same_requests_into_the_same_commands(tmp_path: Path) -> None:
    async def body() -> None:
        async with doors(tmp_path) as d:
            for number, case in enumerate(CASES):
                target_fix = target_admin = ""
                if case.kind != "new":  # an order of each door's own to replace or cancel
                    base = Case("base", "new", {**CASES[0].fields, "clid": ""})
                    target_fix, target_admin = f"fb{number}", f"ab{number}"
                    await _fix(d, base, target_fix, "")
                    await _admin(d, base, target_admin, "")
                clid = case.fields.get("clid", "")
                fix_clid = clid or f"f{number}"
                admin_clid = clid or f"a{number}"
                if clid and case.refused is None:  # the same id once per door
                    admin_clid = clid + "2"
                by_fix = await _fix(d, case, fix_clid, target_fix)
                by_admin = await _admin(d, case, admin_clid, target_admin)
                assert by_fix.commands == by_admin.commands, case.name
                if case.kind != "replace":
                    target_rest = ""
                    if case.kind == "cancel":
                        target_rest = f"rb{number}"
                        base = Case("base", "new", {**CASES[0].fields, "clid": ""})
                        await _rest(d, base, target_rest, "")
                    rest_clid = (
                        clid + "3" if clid and case.refused is None else clid or f"r{number}"
                    )
                    by_rest = await _rest(d, case, rest_clid, target_rest)
                    assert by_rest.commands == by_fix.commands, case.name
                    assert by_rest.admin_code == by_admin.admin_code, (case.name, by_rest)
                if case.refused is None:
                    assert by_fix.refused is None and by_admin.admin_code is None, case.name
                    assert len(by_fix.commands) == 1, case.name
                    values = dict(by_fix.commands[0][1])
                    assert {k: values[k] for k in case.expect} == case.expect, case.name
                else:
                    assert by_fix.commands == [], case.name
                    assert by_fix.refused == case.refused, (case.name, by_fix.refused)
                    expected = binance_error(case.refused, case.refused_field, case.refused_kind)
                    assert by_admin.admin_code == expected.code, (case.name, by_admin)
            assert d.fix.invalid == []

    asyncio.run(asyncio.wait_for(body(), 60))


@pytest.mark.parametrize("case", [c for c in CASES if c.refused is not None], ids=lambda c: c.name)
def test_every_refusal_case_names_a_reason_both_doors_can_say(case: Case) -> None:
    from gateway.edge.refusals import FIX_REASONS

    assert case.refused in FIX_REASONS
    assert binance_error(case.refused, case.refused_field, case.refused_kind).code < 0
