"""The audit trail, readable (``surveillance.trail`` and its admin endpoints): rows joining the
chain with the journal's commands and their origins; filters by actor, account, action and
time; newest first, paged by a cursor with no entry lost or repeated; the CSV export parsed
back and itself recorded in the chain; bad parameters refused; a seeded fuzz of the parser."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import random
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from staff_auth import admin_headers

from engine.commands import ConfigureAccount, NewOrder, Origin, SetInstrumentState, SetKillSwitch
from engine.types import Door, InstrumentState, OrdType, Side, StpMode
from surveillance.audit import StaffEvent
from surveillance.config import AuditConfig
from surveillance.trail import (
    COLUMNS,
    MAX_LIMIT,
    PARAMETERS,
    TrailError,
    TrailQuery,
    TrailQueryError,
    Units,
    iter_rows,
    parse_query,
    read_page,
)
from venue.admin import staff_access, start_admin
from venue.config import DEFAULT_CONFIG_PATH, AdminConfig, VenueConfig, load_config
from venue.parts import AuditPart
from venue.runtime import Venue

SYM = "BTC-USDT"
PRICE = 9_500_000
ADMIN = Origin(Door.ADMIN, "alice", "req-1", "10.0.0.5:4100")
FIX = Origin(Door.FIX, "MM1", "", "10.0.0.9:5001")
REST = Origin(Door.REST, "key-abc", "r-9", "10.0.0.7:443")
STAFF_TIME = 1_765_000_000_000_000_000  # ns


def make_config(data_dir: Path) -> VenueConfig:
    config = load_config(DEFAULT_CONFIG_PATH)
    return dataclasses.replace(
        config,
        data_dir=data_dir,
        admin=AdminConfig("127.0.0.1", 0),
        assets={},
        fees=None,
        ledger=None,
        journal=dataclasses.replace(config.journal, fsync=False),
        audit=AuditConfig(True, 1000, 3600),
    )


def order(i: int, origin: Origin) -> NewOrder:
    side = Side.BUY if i % 2 else Side.SELL
    price = PRICE - 100 - i if side is Side.BUY else PRICE + 100 + i
    return NewOrder(
        1001 + i % 2, SYM, f"c{i}", side, OrdType.LIMIT, qty=1000, price=price, origin=origin
    )


async def with_venue(data: Path, fn: Callable[[Venue, AuditPart], Awaitable[None]]) -> None:
    venue = Venue(make_config(data))
    await venue.start()
    part = AuditPart(venue, venue.config)
    await part.start()
    try:
        await fn(venue, part)
    finally:
        await part.stop()
        await venue.stop()


async def build(data: Path) -> None:
    async def work(venue: Venue, part: AuditPart) -> None:
        assert part.chain is not None
        part.chain.record(StaffEvent(STAFF_TIME, "alice", "login", "", "10.0.0.5", "ok"))
        for i in range(10):
            await venue.submit(order(i, FIX if i % 3 else REST))
        await venue.submit(ConfigureAccount(1002, 1001, StpMode.DEFAULT, origin=ADMIN))
        part.chain.record(
            StaffEvent(
                STAFF_TIME + 10**9, "bob", "view_personal_data", "account 1002", "10.0.0.6", "ok"
            )
        )
        await venue.submit(SetInstrumentState(SYM, InstrumentState.HALTED, origin=ADMIN))
        await venue.submit(SetKillSwitch(False, origin=ADMIN))
        part.chain.record(
            StaffEvent(
                STAFF_TIME + 2 * 10**9, "=cmd|evil", "login_failed", "", "10.6.6.6", "refused"
            )
        )

    await with_venue(data, work)


@pytest.fixture(scope="module")
def trail_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("trail") / "data"
    asyncio.run(asyncio.wait_for(build(data), 60))
    return data


def everything(data: Path) -> list[dict[str, Any]]:
    return list(iter_rows(data, TrailQuery()))


# -- rows ------------------------------------------------------------------------------------------


def test_rows_carry_each_command_origin_and_each_staff_action(trail_data: Path) -> None:
    rows = everything(trail_data)
    assert [r["n"] for r in rows] == list(range(1, len(rows) + 1))
    assert all(set(r) == set(COLUMNS) for r in rows)
    assert all(len(r["hash"]) == 64 for r in rows)
    staff = [r for r in rows if r["kind"] == "staff"]
    assert [(r["actor"], r["action"], r["subject"], r["ip"], r["outcome"]) for r in staff] == [
        ("alice", "login", "", "10.0.0.5", "ok"),
        ("bob", "view_personal_data", "account 1002", "10.0.0.6", "ok"),
        ("=cmd|evil", "login_failed", "", "10.6.6.6", "refused"),
    ]
    assert staff[0]["timeMs"] == STAFF_TIME // 1_000_000 and staff[0]["door"] == "STAFF"
    halt = next(r for r in rows if r["action"] == "SetInstrumentState")
    assert halt["kind"] == "command" and halt["door"] == "ADMIN"
    assert (halt["actor"], halt["requestId"], halt["ip"]) == ("alice", "req-1", "10.0.0.5:4100")
    assert (halt["symbol"], halt["account"], halt["subject"]) == (SYM, None, SYM)
    assert halt["detail"] == "state=HALTED" and halt["outcome"] == "journaled"
    first_order = next(r for r in rows if r["action"] == "NewOrder")
    assert (first_order["door"], first_order["actor"], first_order["account"]) == (
        "REST",
        "key-abc",
        1001,
    )
    assert first_order["subject"] == f"account 1001, {SYM}"
    assert "side=SELL" in first_order["detail"] and "client_order_id=c0" in first_order["detail"]
    # a staff action stands after the command chained before it, in the venue's order
    kinds = [(r["kind"], r["action"]) for r in rows]
    assert (
        kinds.index(("staff", "view_personal_data"))
        == kinds.index(("command", "ConfigureAccount")) + 1
    )
    times = [r["timeMs"] for r in rows if r["kind"] == "command"]
    assert times == sorted(times) and times[0] > 1_600_000_000_000


# -- filters ---------------------------------------------------------------------------------------


def test_filters_by_actor_account_action_and_time(trail_data: Path) -> None:
    rows = everything(trail_data)

    def page(**filters: Any) -> list[int]:
        return [r["n"] for r in read_page(trail_data, TrailQuery(**filters)).entries]

    by_alice = page(actor="alice")
    assert (
        by_alice == sorted((r["n"] for r in rows if r["actor"] == "alice"), reverse=True)
        and len(by_alice) == 4
    )  # the login and three admin commands
    # account: its commands, and staff actions whose subject names it (not account 10020)
    assert page(account=1002) == sorted(
        (r["n"] for r in rows if r["account"] == 1002 or r["subject"] == "account 1002"),
        reverse=True,
    )
    assert len(page(account=1002)) == 7  # 5 orders, ConfigureAccount and the staff view
    assert page(action="NewOrder", actor="MM1") == sorted(
        (r["n"] for r in rows if r["action"] == "NewOrder" and r["actor"] == "MM1"), reverse=True
    )
    assert page(action="NoSuchThing") == []
    orders = [r for r in rows if r["action"] == "NewOrder"]
    lo, hi = orders[3]["timeMs"], orders[6]["timeMs"]
    inside = page(action="NewOrder", from_ms=lo, to_ms=hi)
    assert (
        inside == sorted((r["n"] for r in orders if lo <= r["timeMs"] <= hi), reverse=True)
        and len(inside) >= 4
    )
    assert page(from_ms=STAFF_TIME // 1_000_000, to_ms=STAFF_TIME // 1_000_000) == [rows[0]["n"]]


def test_pages_newest_first_lose_and_repeat_nothing(trail_data: Path) -> None:
    rows = everything(trail_data)
    everyone = [r["n"] for r in rows]
    seen: list[int] = []
    before = None
    pages = 0
    while True:
        page = read_page(trail_data, TrailQuery(limit=4, before=before))
        pages += 1
        seen += [r["n"] for r in page.entries]
        # an unfiltered page reads only its own commands: the same rows as a full scan
        assert page.entries == [rows[r["n"] - 1] for r in page.entries]
        if page.next is None:
            break
        assert page.next == page.entries[-1]["n"]
        before = page.next
    assert seen == everyone[::-1]
    assert pages == -(-len(everyone) // 4)
    # a filtered page's cursor keeps the filter's rows only
    first = read_page(trail_data, TrailQuery(actor="MM1", limit=2))
    second = read_page(trail_data, TrailQuery(actor="MM1", limit=2, before=first.next))
    assert {r["actor"] for r in first.entries + second.entries} == {"MM1"}
    assert first.entries[-1]["n"] > second.entries[0]["n"]


def test_details_show_the_doors_decimals_given_the_units(trail_data: Path) -> None:
    config = make_config(trail_data)
    units = Units({spec.symbol: spec for spec in config.instruments}, {"USDT": 8})
    sell = read_page(trail_data, TrailQuery(action="NewOrder", limit=MAX_LIMIT), units).entries[-1]
    assert "qty=0.01000" in sell["detail"] and "price=95001.00" in sell["detail"]
    raw = read_page(trail_data, TrailQuery(action="NewOrder", limit=MAX_LIMIT)).entries[-1]
    assert "qty=1000" in raw["detail"] and "price=9500100" in raw["detail"]
    assert [r["hash"] for r in (sell, raw)] == [raw["hash"]] * 2


def test_a_venue_without_an_audit_store_says_so(tmp_path: Path) -> None:
    with pytest.raises(TrailError, match="no audit store"):
        read_page(tmp_path, TrailQuery())


# -- the admin endpoints ---------------------------------------------------------------------------


def test_the_admin_api_serves_the_trail_and_records_its_export(
    trail_data: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(trail_data, data)

    async def work(venue: Venue, part: AuditPart) -> None:
        runner, host, port = await start_admin(venue, "127.0.0.1", 0, audit=part.chain)
        base = f"http://{host}:{port}"
        _, operator_only = staff_access(venue.config).store.create_token(["operator"], 600, "t")
        try:
            async with aiohttp.ClientSession() as anyone:
                for path in ("/v1/audit", "/v1/audit.csv"):
                    async with anyone.get(base + path) as r:
                        assert r.status == 401
                    bearer = {"Authorization": f"Bearer {operator_only}"}
                    async with anyone.get(base + path, headers=bearer) as r:
                        assert r.status == 403  # the operator role has no audit.read
                        assert "audit.read" in (await r.json())["msg"]
            async with aiohttp.ClientSession(headers=admin_headers(venue.config)) as http:
                async with http.get(f"{base}/v1/audit", params={"limit": "5"}) as r:
                    assert r.status == 200
                    body = await r.json()
                assert [e["n"] for e in body["entries"]] == sorted(
                    (e["n"] for e in body["entries"]), reverse=True
                )
                assert len(body["entries"]) == 5 and isinstance(body["next"], int)
                async with http.get(f"{base}/v1/audit", params={"action": "NewOrder"}) as r:
                    assert "price=95001.00" in (await r.json())["entries"][-1]["detail"]
                async with http.get(f"{base}/v1/audit", params={"action": "login"}) as r:
                    assert [e["actor"] for e in (await r.json())["entries"]] == ["alice"]

                async with http.get(f"{base}/v1/audit.csv", params={"actor": "alice"}) as r:
                    assert r.status == 200
                    assert r.headers["Content-Type"].startswith("text/csv")
                    assert r.headers["Content-Disposition"].startswith("attachment; filename=")
                    text = await r.text()
                table = list(csv.DictReader(io.StringIO(text)))
                assert table and list(table[0]) == list(COLUMNS)
                rows = [r for r in everything(trail_data) if r["actor"] == "alice"]
                assert [int(t["n"]) for t in table] == [r["n"] for r in rows]  # oldest first
                assert [t["action"] for t in table] == [r["action"] for r in rows]
                assert [t["hash"] for t in table] == [r["hash"] for r in rows]

                # the export is in the chain, with its filters; the failed login's actor is
                # kept from a spreadsheet's formulas
                assert part.chain is not None
                await part.chain.flush()
                async with http.get(f"{base}/v1/audit", params={"action": "audit.export"}) as r:
                    exports = (await r.json())["entries"]
                assert [(e["kind"], e["subject"], e["outcome"]) for e in exports] == [
                    ("staff", "audit trail actor=alice", "ok")
                ]
                async with http.get(f"{base}/v1/audit.csv") as r:
                    full = list(csv.DictReader(io.StringIO(await r.text())))
                evil = next(t for t in full if t["action"] == "login_failed")
                assert evil["actor"] == "'=cmd|evil"
                assert full[-1]["action"] == "audit.export"  # the first export, before this one

                for params, why in [
                    ({"limit": "0"}, "'limit' must be between 1 and 1000"),
                    ({"account": "x"}, "'account' must be a whole number"),
                    ({"from": "5", "to": "4"}, "'from' must not be after 'to'"),
                    ({"colour": "red"}, "'colour' is not known"),
                ]:
                    for path in ("/v1/audit", "/v1/audit.csv"):
                        async with http.get(base + path, params=params) as r:
                            assert r.status == 400
                            answer = await r.json()
                            assert answer["code"] == -1130 and why in answer["msg"]
                async with http.get(f"{base}/v1/audit?limit=1&limit=2") as r:
                    assert r.status == 400
        finally:
            await runner.cleanup()

    asyncio.run(asyncio.wait_for(with_venue(data, work), 60))


def test_an_export_that_cannot_be_recorded_is_refused(trail_data: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(trail_data, data)

    async def work(venue: Venue, part: AuditPart) -> None:
        runner, host, port = await start_admin(venue, "127.0.0.1", 0)  # no chain given
        try:
            async with aiohttp.ClientSession(headers=admin_headers(venue.config)) as http:
                async with http.get(f"http://{host}:{port}/v1/audit.csv") as r:
                    assert r.status == 503
                    assert "audit chain" in (await r.json())["msg"]
                async with http.get(f"http://{host}:{port}/v1/audit") as r:
                    assert r.status == 200  # reading needs no chain running
        finally:
            await runner.cleanup()

    asyncio.run(asyncio.wait_for(with_venue(data, work), 60))


# -- the parser ------------------------------------------------------------------------------------


def test_the_parser_reads_what_it_documents() -> None:
    q = parse_query(
        {
            "actor": " alice ",
            "account": "1001",
            "action": "audit.export",
            "from": "1",
            "to": "2",
            "limit": "7",
            "before": "99",
        }
    )
    assert q == TrailQuery("alice", 1001, "audit.export", 1, 2, 7, 99)
    assert parse_query({"actor": "", "limit": ""}) == TrailQuery()
    with pytest.raises(TrailQueryError, match="'limit'"):
        parse_query({"limit": str(MAX_LIMIT + 1)})


def test_fuzzed_query_parameters_parse_or_are_refused_cleanly() -> None:
    rng = random.Random(20261207)
    pieces = [
        "",
        " ",
        "0",
        "1",
        "-1",
        "1001",
        "9" * 25,
        "1e3",
        "0x10",
        "abc",
        "a.b",
        "=1",
        "\x00",
        "é",
        "\u202e",
        "1 2",
        "18446744073709551615",
        "18446744073709551616",
        "9007199254740992",
        "9007199254740993",
        "1000",
        "1001",
        "\n",
    ]
    names = [*PARAMETERS, "bogus", "LIMIT", ""]
    for _ in range(3000):
        params: dict[str, str] = {}
        for _ in range(rng.randint(0, 5)):
            name = rng.choice(names)
            if rng.random() < 0.3:
                value = "".join(chr(rng.randint(0, 0x2FF)) for _ in range(rng.randint(0, 12)))
            else:
                value = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 3)))
            params[name] = value
        try:
            q = parse_query(params)
        except TrailQueryError as exc:
            msg = str(exc)
            assert msg and "\n" not in msg and len(msg) < 200
            continue
        assert set(params) <= set(PARAMETERS)
        assert 1 <= q.limit <= MAX_LIMIT
        assert q.account is None or 1 <= q.account < 2**64
        assert q.before is None or q.before >= 1
        assert q.actor == params.get("actor", "").strip() and q.actor.isprintable()
        if q.from_ms is not None and q.to_ms is not None:
            assert q.from_ms <= q.to_ms
