"""The running venue: acknowledgement only after fsync, group commit, fail-stop, the Tick timer,
snapshots, and the admin HTTP API (round trip, and a 400 with code/msg for every bad input)."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from staff_auth import admin_headers, approve

from engine.commands import CancelOrder, NewOrder, Tick
from engine.events import Event, OrderAccepted, OrderExpired, Trade
from engine.journal import JournalWriter
from engine.types import CancelReason, OrdType, Side, TimeInForce
from venue.admin import start_admin
from venue.config import DEFAULT_CONFIG_PATH, AdminConfig, VenueConfig, load_config
from venue.runtime import CommandRefused, Venue, VenueStopped

SYM = "BTC-USDT"
PRICE = 9_500_000  # 95000.00 in ticks
LOT = 100_000  # 1 BTC in lots of 0.00001


def make_config(data_dir: Path, **changes: Any) -> VenueConfig:
    """The shipped configuration, matching only (no [[assets]]): these tests are about the
    journal and the runtime; tests/test_venue_clearing.py runs the venue with clearing."""
    config = load_config(DEFAULT_CONFIG_PATH)
    changes = {"assets": {}, "fees": None, "ledger": None, **changes}
    return dataclasses.replace(
        config, data_dir=data_dir, admin=AdminConfig("127.0.0.1", 0), **changes
    )


def run(coro_fn: Callable[[], Awaitable[None]], timeout: float = 30) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(coro_fn(), timeout)

    asyncio.run(bounded())


def limit(account: int, side: Side, price: int, qty: int = 1_000, clid: str = "") -> NewOrder:
    return NewOrder(account, SYM, clid, side, OrdType.LIMIT, qty=qty, price=price)


class BlockingSync:
    """Wraps a journal's ``sync`` so the test decides when the disk "finishes"."""

    def __init__(self, journal: JournalWriter) -> None:
        self.real = journal.sync
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0
        journal.sync = self  # type: ignore[method-assign]

    def __call__(self) -> int:
        self.calls += 1
        self.entered.set()
        assert self.release.wait(10), "the test never released the sync"
        return self.real()


async def wait_thread_event(event: threading.Event, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not event.is_set():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


# -- durability and group commit ----------------------------------------------------------------
def test_submit_resolves_only_after_fsync(tmp_path: Path) -> None:
    async def body() -> None:
        venue = Venue(make_config(tmp_path / "data"))
        await venue.start()
        assert venue._journal is not None
        blocker = BlockingSync(venue._journal)
        published: list[int] = []
        venue.subscribe(lambda seq, ts, events: published.append(seq))
        task = asyncio.create_task(venue.submit(limit(1, Side.BUY, PRICE)))
        await wait_thread_event(blocker.entered)
        await asyncio.sleep(0.05)
        assert not task.done(), "acknowledged before the journal was synced"
        assert published == []
        assert venue.core.last_seq == 1  # applied, written, not yet durable
        blocker.release.set()
        events = await task
        assert isinstance(events[0], OrderAccepted)
        assert published == [1]
        assert venue._journal.durable_seq == 1
        await venue.stop()

    run(body)


def test_group_commit_batches_concurrent_submits(tmp_path: Path) -> None:
    async def body() -> None:
        venue = Venue(make_config(tmp_path / "data"))
        await venue.start()
        assert venue._journal is not None
        blocker = BlockingSync(venue._journal)
        first = asyncio.create_task(venue.submit(limit(1, Side.BUY, PRICE - 100)))
        await wait_thread_event(blocker.entered)
        # while the first batch syncs, 50 more commands arrive: they form the next batch
        rest = [
            asyncio.create_task(venue.submit(limit(2 + i, Side.BUY, PRICE - 100 - i)))
            for i in range(50)
        ]
        await asyncio.sleep(0.05)
        assert not any(t.done() for t in rest)
        blocker.release.set()
        await first
        results = await asyncio.gather(*rest)
        assert all(isinstance(r[0], OrderAccepted) for r in results)
        assert blocker.calls == 2, f"expected 2 syncs for 51 commands, got {blocker.calls}"
        assert venue.core.last_seq == 51
        await venue.stop()

    run(body)


def test_events_are_published_in_sequence_order(tmp_path: Path) -> None:
    async def body() -> None:
        venue = Venue(make_config(tmp_path / "data"))
        await venue.start()
        seen: list[tuple[int, list[Event]]] = []
        venue.subscribe(lambda seq, ts, events: seen.append((seq, events)))
        await asyncio.gather(*(venue.submit(limit(i + 1, Side.SELL, PRICE + i)) for i in range(20)))
        await venue.submit(limit(99, Side.BUY, PRICE + 5, qty=6_000))
        assert [seq for seq, _ in seen] == list(range(1, 22))
        trades = [e for _, events in seen for e in events if isinstance(e, Trade)]
        assert [t.price for t in trades] == [PRICE + i for i in range(6)]
        await venue.stop()

    run(body)


def test_fail_stop_when_the_journal_cannot_sync(tmp_path: Path) -> None:
    async def body() -> None:
        venue = Venue(make_config(tmp_path / "data"))
        await venue.start()
        await venue.submit(limit(1, Side.BUY, PRICE))
        assert venue._journal is not None

        def broken() -> int:
            raise OSError(5, "Input/output error")

        venue._journal.sync = broken  # type: ignore[method-assign]
        published: list[int] = []
        venue.subscribe(lambda seq, ts, events: published.append(seq))
        with pytest.raises(VenueStopped, match="outcome"):
            await venue.submit(limit(2, Side.BUY, PRICE))
        await asyncio.wait_for(venue.wait_stopped(), 5)
        assert published == []
        assert not venue.running and isinstance(venue.failure, OSError)
        with pytest.raises(VenueStopped, match="failure"):
            await venue.submit(limit(3, Side.BUY, PRICE))
        await venue.stop()

    run(body)

    # the restart recovers whatever reached the disk; at least the acknowledged command
    async def again() -> None:
        venue = Venue(make_config(tmp_path / "data"))
        report = await venue.start()
        assert report.last_seq >= 1
        assert venue.core.order(1, 1) is not None
        await venue.stop()

    run(again)


def test_a_command_that_cannot_be_journaled_is_refused_without_a_gap(tmp_path: Path) -> None:
    async def body() -> None:
        venue = Venue(make_config(tmp_path / "data"))
        await venue.start()
        bad = limit(1, Side.BUY, PRICE, qty=2**70)  # out of the journal's 64-bit range
        results = await asyncio.gather(
            venue.submit(limit(1, Side.BUY, PRICE)), venue.submit(bad), return_exceptions=True
        )
        assert isinstance(results[1], CommandRefused)
        events = await venue.submit(limit(1, Side.BUY, PRICE))
        assert isinstance(events[0], OrderAccepted)
        assert venue.core.last_seq == 2
        await venue.stop()

    run(body)


def test_stop_drains_the_queue_and_takes_a_snapshot(tmp_path: Path) -> None:
    async def body() -> None:
        venue = Venue(make_config(tmp_path / "data"))
        await venue.start()
        tasks = [
            asyncio.create_task(venue.submit(limit(1, Side.BUY, PRICE - i))) for i in range(30)
        ]
        await asyncio.sleep(0)
        await venue.stop()
        assert all(t.done() and not t.exception() for t in tasks)
        assert venue.snapshot_seq == 30
        with pytest.raises(VenueStopped):
            await venue.submit(Tick())

    run(body)
    assert (tmp_path / "data" / "snapshots" / f"{30:020d}.snap").exists()


def test_snapshots_every_n_records_and_restart_from_them(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data", snapshot_every=10)
    hashes: list[str] = []
    taken: list[int] = []

    async def first() -> None:
        venue = Venue(config)
        await venue.start()
        for i in range(25):
            await venue.submit(limit(1 + i % 3, Side.BUY if i % 2 else Side.SELL, PRICE + i % 7))
        # At seq 20 the snapshot of seq 10 may still be being written (one at a time): then the
        # next commit takes it, or, when no command comes, the end of that write does.
        for _ in range(500):
            if venue.snapshot_seq >= 20:
                break
            await asyncio.sleep(0.01)
        # (when the seq-10 write ends after the last command, the one it starts is at seq 25)
        assert 20 <= venue.snapshot_seq <= 25
        taken.append(venue.snapshot_seq)
        hashes.append(venue.core.state_hash())
        await venue.stop()

    async def second() -> None:
        venue = Venue(config)
        report = await venue.start()
        assert report.snapshot_seq == 25 and report.records_replayed == 0
        assert venue.core.state_hash() == hashes[0]
        await venue.stop()

    run(first)
    snaps = sorted(p.name for p in (tmp_path / "data" / "snapshots").iterdir())
    assert snaps == [f"{n:020d}.snap" for n in sorted({10, taken[0], 25})]
    run(second)


# -- the Tick timer -------------------------------------------------------------------------------
def test_gtd_orders_expire_through_the_timer_without_traffic(tmp_path: Path) -> None:
    async def body() -> None:
        venue = Venue(make_config(tmp_path / "data"))
        await venue.start()
        expired: list[OrderExpired] = []
        venue.subscribe(
            lambda seq, ts, events: expired.extend(e for e in events if isinstance(e, OrderExpired))
        )
        expire_at = time.time_ns() + 300_000_000
        cmd = limit(1, Side.BUY, PRICE)
        cmd.tif = TimeInForce.GTD
        cmd.expire_time = expire_at
        events = await venue.submit(cmd)
        assert isinstance(events[0], OrderAccepted)
        deadline = time.monotonic() + 5
        while not expired and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert [e.reason for e in expired] == [CancelReason.GTD_EXPIRED]
        assert venue.core.resting_count() == 0
        assert venue.core.last_seq == 2  # the order, then one Tick
        assert venue.core.last_ts >= expire_at
        await asyncio.sleep(0.2)
        assert venue.core.last_seq == 2, "the timer must not tick without a deadline"
        await venue.stop()

    run(body)


# -- the admin HTTP API ---------------------------------------------------------------------------
class Admin:
    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http = http

    async def call(
        self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        async with self.http.request(method, path, json=body, params=params) as response:
            return response.status, await response.json()

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, data = await self.call(method, path, body)
        assert status == 200, data
        return data


def admin_test(tmp_path: Path, fn: Callable[[Admin, Venue], Awaitable[None]]) -> None:
    async def body() -> None:
        venue = Venue(make_config(tmp_path / "data"))
        await venue.start()
        runner, host, port = await start_admin(venue, "127.0.0.1", 0)
        try:
            timeout = aiohttp.ClientTimeout(total=10)
            headers = admin_headers(venue.config)
            async with aiohttp.ClientSession(
                f"http://{host}:{port}", timeout=timeout, headers=headers
            ) as http:
                await fn(Admin(http), venue)
        finally:
            await runner.cleanup()
            await venue.stop()

    run(body)


def order(who: Any, way: str, qty: str, px: str, **extra: Any) -> dict[str, Any]:
    body = {"account": who, "symbol": SYM, "side": way, "type": "LIMIT", "quantity": qty}
    body["price"] = px
    body.update(extra)
    return body


def test_admin_round_trip(tmp_path: Path) -> None:
    async def body(admin: Admin, venue: Venue) -> None:
        sell = await admin.ok(
            "POST", "/v1/orders", order(1, "SELL", "0.50000", "95010.00", clientOrderId="s1")
        )
        assert sell["seq"] == 1 and sell["ts"] > 0
        accepted = sell["events"][0]
        assert accepted["type"] == "OrderAccepted"
        assert accepted["price"] == "95010.00" and accepted["qty"] == "0.50000"
        assert accepted["side"] == "SELL" and accepted["tif"] == "GTC"
        assert accepted["stpMode"] == "EXPIRE_TAKER"
        await admin.ok("POST", "/v1/orders", order(1, "SELL", "0.25000", "95020.00"))
        buy = await admin.ok("POST", "/v1/orders", order(2, "BUY", "0.60000", "95015.00"))
        trade = buy["events"][1]
        assert trade["type"] == "Trade"
        assert (trade["price"], trade["qty"], trade["takerLeaves"]) == (
            "95010.00",
            "0.50000",
            "0.10000",
        )

        status, book = await admin.call("GET", f"/v1/book/{SYM}", params={"depth": "5"})
        assert status == 200
        assert book["asks"] == [["95020.00", "0.25000", 1]]
        assert book["bids"] == [["95015.00", "0.10000", 1]]
        assert book["lastPrice"] == "95010.00"
        assert book["updateId"] == 4  # two asks rested, one traded, the bid rested

        orders = (await admin.ok("GET", "/v1/accounts/1/orders"))["orders"]
        assert [(o["price"], o["leavesQty"]) for o in orders] == [("95020.00", "0.25000")]
        ask_id = orders[0]["orderId"]

        replaced = await admin.ok(
            "PUT",
            "/v1/orders",
            {
                "account": 1,
                "symbol": SYM,
                "orderId": ask_id,
                "quantity": "0.20000",
                "price": "95020.00",
                "newClientOrderId": "s2b",
            },
        )
        assert replaced["events"][0]["type"] == "OrderReplaced"
        assert replaced["events"][0]["priorityKept"] is True
        cancelled = await admin.ok(
            "DELETE", "/v1/orders", {"account": 1, "symbol": SYM, "clientOrderId": "s2b"}
        )
        assert cancelled["events"][0]["type"] == "OrderCancelled"
        assert cancelled["events"][0]["reason"] == "USER"
        # a business rule is the core's: journaled, answered with a rejection event
        again = await admin.ok(
            "DELETE", "/v1/orders", {"account": 1, "symbol": SYM, "orderId": ask_id}
        )
        assert again["events"][0]["type"] == "CancelRejected"
        assert again["events"][0]["reason"] == "UNKNOWN_ORDER"
        far = await admin.ok("POST", "/v1/orders", order(3, "BUY", "0.10000", "50000.00"))
        assert far["events"][0] == {
            **far["events"][0],
            "type": "OrderRejected",
            "reason": "PRICE_OUTSIDE_BAND",
        }

        market = await admin.ok(
            "POST",
            "/v1/orders",
            {"account": 4, "symbol": SYM, "side": "SELL", "type": "MARKET", "quantity": "0.10000"},
        )
        assert [e["type"] for e in market["events"]] == ["OrderAccepted", "Trade"]

        await admin.ok("POST", "/v1/orders", order(5, "BUY", "0.01000", "94000.00"))
        mass = await admin.ok("POST", "/v1/mass-cancel", {"scope": "ACCOUNT", "account": 5})
        assert (
            mass["events"][-1]["type"] == "MassCancelDone" and mass["events"][-1]["cancelled"] == 1
        )

        state = await admin.ok("POST", f"/v1/instruments/{SYM}/state", {"state": "HALTED"})
        assert state["events"] == [
            {"type": "InstrumentStateChanged", "instrument": SYM, "state": "HALTED"}
        ]
        await admin.ok("POST", f"/v1/instruments/{SYM}/state", {"state": "OPEN"})
        ref = await admin.ok(
            "POST", f"/v1/instruments/{SYM}/reference-price", {"price": "96000.00"}
        )
        assert ref["events"] == [
            {"type": "ReferencePriceSet", "instrument": SYM, "price": "96000.00"}
        ]
        acct = await admin.ok("POST", "/v1/accounts/7", {"owner": 8, "stpDefault": "EXPIRE_BOTH"})
        assert acct["events"] == [
            {"type": "AccountConfigured", "account": 7, "owner": 8, "stpDefault": "EXPIRE_BOTH"}
        ]
        kill = await admin.ok("POST", "/v1/kill-switch", {"active": True})
        assert {"type": "KillSwitchChanged", "active": True} in kill["events"]
        # lifting it needs a second person: held, then approved by an approver with TOTP
        status, held = await admin.call("POST", "/v1/kill-switch", {"active": False})
        assert status == 202 and held["status"] == "PENDING", held
        assert venue.core.kill_switch
        done = await approve(admin.http, venue.config, held["approvalId"])
        assert done["approval"]["status"] == "EXECUTED"
        assert {"type": "KillSwitchChanged", "active": False} in done["result"]["events"]
        assert not venue.core.kill_switch

        status_body = await admin.ok("GET", "/v1/status")
        assert status_body["lastSeq"] == venue.core.last_seq == status_body["journalLastSeq"]
        assert status_body["restingOrders"] == venue.core.resting_count()
        assert status_body["instruments"][SYM] == "OPEN"

    admin_test(tmp_path, body)


def test_admin_gtd_and_quote_quantity(tmp_path: Path) -> None:
    async def body(admin: Admin, venue: Venue) -> None:
        expire_ms = time.time_ns() // 1_000_000 + 60_000
        gtd = await admin.ok(
            "POST",
            "/v1/orders",
            order(1, "SELL", "0.10000", "95000.00", timeInForce="GTD", expireTime=expire_ms),
        )
        assert gtd["events"][0]["expireTime"] == expire_ms
        by_quote = await admin.ok(
            "POST",
            "/v1/orders",
            {
                "account": 2,
                "symbol": SYM,
                "side": "BUY",
                "type": "MARKET",
                "quoteOrderQty": "950.00",
            },
        )
        trade = by_quote["events"][1]
        assert (trade["type"], trade["qty"], trade["price"]) == ("Trade", "0.01000", "95000.00")

    admin_test(tmp_path, body)


BAD_INPUTS: list[tuple[str, str, Any, int]] = [
    ("POST", "/v1/orders", order(1, "BUY", "0.1", "95000.00", symbol="DOGE-USDT"), -1121),
    ("POST", "/v1/orders", order(1, "BUY", "0.1", "95000.00", symbol=7), -1121),
    ("POST", "/v1/orders", order(1, "BUY", "abc", "95000.00"), -1130),
    ("POST", "/v1/orders", order(1, "BUY", "-1", "95000.00"), -1130),
    ("POST", "/v1/orders", order(1, "BUY", "0", "95000.00"), -1130),
    ("POST", "/v1/orders", order(1, "BUY", "1e3", "95000.00"), -1130),
    ("POST", "/v1/orders", order(1, "BUY", "NaN", "95000.00"), -1130),
    ("POST", "/v1/orders", order(1, "BUY", "0.1", "95000.001"), -1013),
    ("POST", "/v1/orders", order(1, "BUY", "0.000001", "95000.00"), -1013),
    ("POST", "/v1/orders", order(1, "BUY", "0.1", "95000.00", side="BUYY"), -1117),
    ("POST", "/v1/orders", order(1, "BUY", "0.1", "95000.00", type="LIMITT"), -1116),
    ("POST", "/v1/orders", order(1, "BUY", "0.1", "95000.00", timeInForce="GTX"), -1115),
    ("POST", "/v1/orders", order(1, "BUY", "0.1", "95000.00", stpMode="SOMETIMES"), -1130),
    ("POST", "/v1/orders", order(1, "BUY", "0.1", "95000.00", timeInForce="GTD"), -1102),
    ("POST", "/v1/orders", order(1, "BUY", "0.1", "95000.00", expireTime=1), -1106),
    ("POST", "/v1/orders", order(1, "BUY", "0.1", "95000.00", stopPrice="1.00"), -1106),
    ("POST", "/v1/orders", order(1, "BUY", "0.1", "95000.00", clientOrderId="bad id!"), -1100),
    ("POST", "/v1/orders", order(1, "BUY", "0.1", "95000.00", colour="red"), -1103),
    ("POST", "/v1/orders", order(0, "BUY", "0.1", "95000.00"), -1130),
    ("POST", "/v1/orders", order(True, "BUY", "0.1", "95000.00"), -1130),
    (
        "POST",
        "/v1/orders",
        {"account": 1, "symbol": SYM, "side": "BUY", "type": "LIMIT", "price": "1.00"},
        -1102,
    ),
    (
        "POST",
        "/v1/orders",
        {"account": 1, "symbol": SYM, "side": "BUY", "type": "LIMIT", "quantity": "0.1"},
        -1102,
    ),
    (
        "POST",
        "/v1/orders",
        {
            "account": 1,
            "symbol": SYM,
            "side": "BUY",
            "type": "MARKET",
            "quantity": "0.1",
            "price": "1.00",
        },
        -1106,
    ),
    (
        "POST",
        "/v1/orders",
        {"account": 1, "symbol": SYM, "side": "BUY", "type": "STOP_LOSS", "quantity": "0.1"},
        -1102,
    ),
    ("POST", "/v1/orders", [1, 2], -1130),
    ("DELETE", "/v1/orders", {"account": 1, "symbol": SYM}, -1102),
    ("PUT", "/v1/orders", {"account": 1, "symbol": SYM, "orderId": 1}, -1102),
    ("PUT", "/v1/orders", {"account": 1, "symbol": SYM, "orderId": 1, "quantity": "0"}, -1130),
    ("PUT", "/v1/orders", {"account": 1, "symbol": SYM, "orderId": 1, "price": "1.001"}, -1013),
    ("POST", "/v1/mass-cancel", {"scope": "EVERYTHING"}, -1130),
    ("POST", "/v1/mass-cancel", {"scope": "ACCOUNT"}, -1102),
    ("POST", "/v1/mass-cancel", {"scope": "ALL", "account": 1}, -1106),
    ("POST", "/v1/instruments/BTC-USDT/state", {"state": "CLOSED"}, -1130),
    ("POST", "/v1/instruments/NOPE/state", {"state": "OPEN"}, -1121),
    ("POST", "/v1/instruments/BTC-USDT/reference-price", {"price": "1.001"}, -1013),
    ("POST", "/v1/kill-switch", {"active": "maybe"}, -1130),
    ("POST", "/v1/kill-switch", {}, -1102),
    ("POST", "/v1/accounts/abc", {"owner": 1}, -1130),
    ("POST", "/v1/accounts/1", {"stpDefault": "NEVER"}, -1130),
]


def test_admin_stop_market_order_waits_with_gtc_by_default(tmp_path: Path) -> None:
    async def body(admin: Admin, venue: Venue) -> None:
        stop = {
            "account": 1,
            "symbol": SYM,
            "side": "BUY",
            "type": "STOP_LOSS",
            "quantity": "0.10000",
            "stopPrice": "99000.00",
        }
        data = await admin.ok("POST", "/v1/orders", stop)
        accepted = data["events"][0]
        assert accepted["type"] == "OrderAccepted", data
        assert accepted["tif"] == "GTC" and accepted["status"] == "PENDING_TRIGGER"

    admin_test(tmp_path, body)


def test_admin_bad_inputs_are_400_with_code_and_msg_and_change_nothing(tmp_path: Path) -> None:
    async def body(admin: Admin, venue: Venue) -> None:
        await admin.ok("POST", "/v1/orders", order(1, "BUY", "0.10000", "94000.00"))
        before = venue.core.state_hash()
        for method, path, payload, code in BAD_INPUTS:
            status, data = await admin.call(method, path, payload)
            assert status == 400, (method, path, payload, data)
            assert set(data) == {"code", "msg"}, data
            assert data["code"] == code, (payload, data)
            assert isinstance(data["msg"], str) and len(data["msg"]) > 10, data
        # a body that is not JSON at all
        async with admin.http.post("/v1/orders", data=b"{not json") as response:
            assert response.status == 400
            assert (await response.json())["code"] == -1130
        status, data = await admin.call("GET", f"/v1/book/{SYM}", params={"depth": "x"})
        assert status == 400 and data["code"] == -1130
        status, data = await admin.call("GET", "/v1/book/NOPE")
        assert status == 400 and data["code"] == -1121
        status, data = await admin.call("GET", "/v1/nowhere")
        assert status == 404 and set(data) == {"code", "msg"}
        assert venue.core.state_hash() == before
        assert venue.core.last_seq == 1

    admin_test(tmp_path, body)


def test_admin_answers_503_once_the_venue_stopped(tmp_path: Path) -> None:
    async def body(admin: Admin, venue: Venue) -> None:
        await venue.stop()
        status, data = await admin.call(
            "POST", "/v1/orders", order(1, "BUY", "0.10000", "94000.00")
        )
        assert status == 503 and data["code"] == -1001

    admin_test(tmp_path, body)


def test_cancel_by_client_order_id_through_submit(tmp_path: Path) -> None:
    async def body() -> None:
        venue = Venue(make_config(tmp_path / "data"))
        await venue.start()
        await venue.submit(limit(1, Side.BUY, PRICE, clid="x1"))
        events = await venue.submit(CancelOrder(1, SYM, client_order_id="x1"))
        assert type(events[0]).__name__ == "OrderCancelled"
        await venue.stop()

    run(body)
