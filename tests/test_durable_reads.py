"""Nothing that is not durable is ever shown, through any door.

The journal's fsync is held back by a gate (the writer's ``sync`` waits in its worker thread), so
an order is applied to the core but not durable. While it is so: the admin API's orders, book,
balances and status, FIX OrderStatusRequest and OrderMassStatusRequest, and a FIX market data
snapshot all wait, and show it once its batch is durable; the requester's own order comes first
(the status answers after its ExecutionReport). Then a real ``venue run`` process is killed
with SIGKILL while a batch waits for its fsync: everything a client was shown before the kill is
there after the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fix_client import FixClient, now
from rest_client import public, signed
from venue_doors import config_with_fix, fix_session, serving

from engine.commands import Deposit
from engine.journal import JournalWriter
from venue.config import DEFAULT_CONFIG_PATH, VenueConfig
from venue.runtime import Venue

REPO = Path(__file__).resolve().parent.parent
SYM = b"BTC-USDT"
COIN = 10**8
#: How long "is not answered yet" is watched for.
QUIET_S = 0.4


def _config(data_dir: Path) -> VenueConfig:
    sessions = (fix_session("A", accounts=(1001,)), fix_session("MD", "market_data"))
    return config_with_fix(data_dir, *sessions)


class SyncGate:
    """Holds every journal fsync back while closed (the write has happened; durability not)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.open = threading.Event()
        self.open.set()
        self.waiting = threading.Event()
        original = JournalWriter.sync

        def sync(writer: JournalWriter) -> int:
            if not self.open.is_set():
                self.waiting.set()
                self.open.wait(30)
            return original(writer)

        monkeypatch.setattr(JournalWriter, "sync", sync)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> SyncGate:
    return SyncGate(monkeypatch)


@asynccontextmanager
async def running(data_dir: Path) -> AsyncIterator[tuple[Venue, int, aiohttp.ClientSession]]:
    async with serving(_config(data_dir), rest_accounts=(1001,)) as doors:
        await doors.venue.submit(Deposit(1001, "USDT", 1_000_000 * COIN, "usdt"))
        await doors.venue.submit(Deposit(1001, "BTC", 10 * COIN, "btc"))
        REST[data_dir] = (doors.rest_url, doors.keys[1001])
        yield doors.venue, doors.fix_port, doors.http


#: data dir -> the REST door's URL and key of the venue ``running`` serves there
REST: dict[Path, tuple[str, tuple[str, str]]] = {}


async def _get(http: aiohttp.ClientSession, path: str) -> Any:
    async with http.get(path) as response:
        assert response.status == 200
        return await response.json()


def _limit(cl_ord_id: bytes, qty: bytes, price: bytes) -> list[tuple[int, Any]]:
    return [(11, cl_ord_id), (55, SYM), (54, b"1"), (60, now()), (40, b"2"), (38, qty), (44, price)]


def _snapshot_request(req_id: bytes) -> list[tuple[int, Any]]:
    return [(262, req_id), (263, b"0"), (264, b"0"), (267, 1), (269, b"0"), (146, 1), (55, SYM)]


def test_an_order_is_shown_by_no_door_before_it_is_durable(tmp_path: Path, gate: SyncGate) -> None:
    async def body() -> None:
        async with running(tmp_path) as (venue, fix_port, http):
            a, md = FixClient(fix_port, "A"), FixClient(fix_port, "MD")
            await a.logon()
            await md.logon()
            gate.open.clear()
            a.send(b"D", _limit(b"o1", b"0.5", b"94000.00"))
            while not gate.waiting.is_set():  # applied and written, its fsync held back
                await asyncio.sleep(0.01)
            assert venue.core.open_orders(1001), "the core has applied the order"
            o1_seq = venue.core.last_seq

            reads = [
                asyncio.create_task(_get(http, path))
                for path in (
                    "/v1/accounts/1001/orders",
                    f"/v1/book/{SYM.decode()}",
                    "/v1/accounts/1001/balances",
                    "/v1/status",
                )
            ]
            rest_url, key = REST[tmp_path]
            rest_reads = [
                asyncio.create_task(public(http, rest_url, "/api/v3/depth", symbol="BTCUSDT")),
                asyncio.create_task(
                    signed(http, rest_url, "GET", "/api/v3/openOrders", key, symbol="BTCUSDT")
                ),
                asyncio.create_task(signed(http, rest_url, "GET", "/api/v3/account", key)),
                asyncio.create_task(
                    signed(
                        http,
                        rest_url,
                        "POST",
                        "/api/v3/order",
                        key,
                        symbol="BTCUSDT",
                        side="BUY",
                        type="LIMIT",
                        timeInForce="GTC",
                        quantity="0.1",
                        price="93000.00",
                        newClientOrderId="r1",
                    )
                ),
            ]
            a.send(b"H", [(11, b"o1"), (55, SYM), (54, b"1")])
            a.send(b"AF", [(584, b"ms-1"), (585, b"7")])
            md.send(b"V", _snapshot_request(b"snap-1"))
            seen_by_a = await a.drain(QUIET_S)
            seen_by_md = await md.drain(0.05)
            assert seen_by_a == [] and seen_by_md == []
            assert not any(task.done() for task in reads)
            assert not any(task.done() for task in rest_reads)

            gate.open.set()
            orders, book, balances, status = await asyncio.gather(*reads)
            depth, (_, open_orders), (_, account), (placed_status, placed) = await asyncio.gather(
                *rest_reads
            )
            assert depth["bids"][0] == ["94000.00", "0.50000"]
            assert depth["lastUpdateId"] >= 1
            assert [o["clientOrderId"] for o in open_orders] == ["o1"]
            usdt_rest = {b["asset"]: b for b in account["balances"]}["USDT"]
            assert Decimal(usdt_rest["locked"]) >= Decimal("47000")
            assert placed_status == 200 and placed["clientOrderId"] == "r1", placed
            assert [o["clientOrderId"] for o in orders["orders"]] == ["o1"]
            assert book["bids"] == [["94000.00", "0.50000", 1]]
            usdt = {b["asset"]: b for b in balances["balances"]}["USDT"]
            assert Decimal(usdt["locked"]) >= Decimal("47000")
            assert status["lastSeq"] == status["journalLastSeq"] == o1_seq
            # the order's own report first, then the answers that show it
            new = await a.expect_type(b"8", _150=b"0", _11=b"o1")
            status_report = await a.expect_type(b"8", _150=b"I", _11=b"o1")
            assert status_report.get(39) == b"0" and int(new.get(34) or 0) < int(
                status_report.get(34) or 0
            )
            mass = await a.expect_type(b"8", _150=b"I", _584=b"ms-1")
            assert mass.get(11) == b"o1"
            snapshot = await md.expect_type(b"W", _262=b"snap-1")
            assert snapshot.get(270) == b"94000.00"

    asyncio.run(asyncio.wait_for(body(), 60))


def orders_seq(venue: Venue) -> int:
    return venue.core.last_seq


def test_a_query_waits_behind_the_commands_posted_before_it(tmp_path: Path, gate: SyncGate) -> None:
    """Read-your-writes at the venue: a read sequenced after a command sees it, and a read
    sequenced before a command does not, even when both are in the same batch."""

    async def body() -> None:
        async with running(tmp_path) as (venue, _, _http):
            gate.open.clear()
            from engine.commands import CancelOrder, NewOrder
            from engine.types import OrdType, Side

            venue.post(NewOrder(1001, "BTC-USDT", "q1", Side.BUY, OrdType.LIMIT, 1000, 9_400_000))
            while not gate.waiting.is_set():
                await asyncio.sleep(0.01)
            seen: list[list[str]] = []

            def ids(core: Any) -> list[str]:
                return [o.client_order_id for o in core.open_orders(1001)]

            venue.query(lambda core: seen.append(ids(core)))
            venue.post(NewOrder(1001, "BTC-USDT", "q2", Side.BUY, OrdType.LIMIT, 1000, 9_400_000))
            after = asyncio.create_task(venue.read(ids))
            await asyncio.sleep(0)  # the task runs up to its wait: its query is queued
            venue.post(CancelOrder(1001, "BTC-USDT", client_order_id="q1"))
            last = asyncio.create_task(venue.read(ids))
            await asyncio.sleep(QUIET_S)
            assert seen == [] and not after.done()
            gate.open.set()
            assert await after == ["q1", "q2"]
            assert seen == [["q1"]]
            assert await last == ["q2"]

    asyncio.run(asyncio.wait_for(body(), 60))


# -- a real process killed while a batch waits for its fsync -------------------------------------

_GATED_VENUE = """
import os, sys, time
from engine.journal import JournalWriter
_sync = JournalWriter.sync
def sync(writer):
    while os.path.exists(sys.argv[1]):
        time.sleep(0.005)
    return _sync(writer)
JournalWriter.sync = sync
from venue.cli import main
main(sys.argv[2:])
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Process:
    def __init__(self, data_dir: Path, gate_file: Path) -> None:
        self.port = _free_port()
        self.log = (data_dir.parent / "venue.log").open("ab")
        args = [sys.executable, "-c", _GATED_VENUE, str(gate_file), "run"]
        args += ["--config", str(DEFAULT_CONFIG_PATH), "--data-dir", str(data_dir)]
        args += ["--admin-port", str(self.port), "--fix-port", "0", "--rest-port", "0"]
        self.token_file = data_dir.parent / "admin.token"
        args += ["--admin-token-file", str(self.token_file)]
        self.proc = subprocess.Popen(args, cwd=REPO, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.call("GET", "/v1/status", timeout=1)
                return
            except (OSError, urllib.error.URLError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("the venue did not start") from None
                time.sleep(0.1)

    def call(self, method: str, path: str, body: Any = None, timeout: float = 5) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=data, method=method
        )
        request.add_header("Content-Type", "application/json")
        request.add_header("Authorization", f"Bearer {self.token_file.read_text().strip()}")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()


@pytest.fixture
def processes() -> Iterator[list[_Process]]:
    started: list[_Process] = []
    yield started
    for process in started:
        if process.proc.poll() is None:
            process.kill()


def test_sigkill_while_a_batch_waits_for_its_fsync_loses_nothing_shown(
    tmp_path: Path, processes: list[_Process]
) -> None:
    data_dir, gate_file = tmp_path / "data", tmp_path / "gate"
    venue = _Process(data_dir, gate_file)
    processes.append(venue)
    venue.call("POST", "/v1/deposits", {"account": 7, "asset": "USDT", "amount": "100000"})
    order = {"account": 7, "symbol": "BTC-USDT", "side": "BUY", "type": "LIMIT"}
    venue.call("POST", "/v1/orders", {**order, "quantity": "0.1", "price": "94000.00"})
    shown_before = venue.call("GET", "/v1/accounts/7/orders")["orders"]
    assert len(shown_before) == 1

    gate_file.touch()
    pending = threading.Thread(
        target=lambda: _swallow(
            venue.call, "POST", "/v1/orders", {**order, "quantity": "0.2", "price": "93000.00"}
        ),
        daemon=True,
    )
    pending.start()
    time.sleep(0.3)
    shown: list[Any] = []
    for path in ("/v1/accounts/7/orders", "/v1/book/BTC-USDT", "/v1/status"):
        with contextlib.suppress(TimeoutError, urllib.error.URLError):  # not answered
            shown.append(venue.call("GET", path, timeout=QUIET_S))
    assert shown == [], f"shown before durable: {shown}"
    venue.kill()
    os.unlink(gate_file)

    restarted = _Process(data_dir, gate_file)
    processes.append(restarted)
    after = restarted.call("GET", "/v1/accounts/7/orders")["orders"]
    ids = {o["orderId"] for o in after}
    assert {o["orderId"] for o in shown_before} <= ids
    restarted.kill()


def _swallow(fn: Any, *args: Any) -> None:
    with contextlib.suppress(Exception):  # the venue is killed while this waits
        fn(*args)
