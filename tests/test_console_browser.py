"""The staff console in a real browser (headless chromium through Playwright): a venue runs in
process with its admin API and its audit chain (the parts of ``venue run``) and an operator
made in its store; the operator
signs in with a real TOTP code, halts an instrument from the instruments page (the venue's own
status must say HALTED), finds the halt in the audit trail page under their name, exports the
trail as CSV, and the other pages draw. A spoofing episode is driven through the venue (a large
order resting, a small execution on the other side by the same account, the large order
cancelled), which the venue's detectors raise into the alert store beside two order-to-trade
breaches put there: the compliance pages list the alert, draw the market
around it from the journal, open a case from it and close the case, as the store then says. The
treasury pages draw custody's rows (a fixed ``AdminCustody``: the pages are tested, not custody)
with the shortfall in red and the hot share against its band, refresh themselves and drop an
older answer; an approver, a second person signed in beside, approves and rejects withdrawals
through the real approvals endpoints and store. One browser for the whole module.

Screenshots go to ``$CONSOLE_SCREENSHOTS`` when set (``docs/console`` holds the committed
ones), else to a temporary folder. Debian's chromium (``/usr/bin/chromium``; scripts/lib.sh
installs it) is driven, never a browser Playwright would download.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import json
import os
import re
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from engine.commands import CancelOrder, Deposit, NewOrder, Origin
from engine.events import OrderAccepted
from engine.types import Door, OrdType, Side, TimeInForce
from gateway.admin.custody import WITHDRAWAL_ACTION
from gateway.staff.operators import OperatorStore
from surveillance.alertquery import parse_alert_query
from surveillance.alerts import Alert, AlertType
from surveillance.config import AuditConfig
from surveillance.store import AlertStore
from venue.config import DEFAULT_CONFIG_PATH, AdminConfig, load_config
from venue.parts import AdminPart, AuditPart, SurveillancePart
from venue.runtime import Venue

CHROMIUM = os.environ.get("VENUE_CHROMIUM", "/usr/bin/chromium")
NAME = "carol"
APPROVER = "dave"  # holds the approver role only (carol does not)
PASSWORD = "correct horse battery"
SYMBOL = "BTC-USDT"
ACCOUNT = 1001
MAKER, SPOOFER = 1002, 1003  # the spoofing episode's other member and its spoofer
T = TypeVar("T")


class FakeCustody:
    """``gateway.admin.custody.AdminCustody`` answering fixed rows in the shapes the venue's
    port answers (``venue.custody.AdminCustodyPort``): the treasury pages are tested here, not
    custody (its own tests run it on the test chains). Withdrawals awaiting approvers are filed
    in the venue's real approval store, as the custody part files them; what an approval or a
    rejection runs here is recorded."""

    def __init__(self) -> None:
        self.approvals: Any = None  # the staff approvals, given by the admin part as to custody
        self.approved_ids: list[int] = []  # what approvals ran (``approved``)
        self.rejected_ids: list[tuple[int, str]] = []  # and rejections (``reject``)
        self.slow_s = 0.0  # the next wallets answer waits this long (with the rows of its call)
        self.slow_taken = threading.Event()  # the slow answer's rows are taken
        self.slow_done = threading.Event()  # and it is on its way
        self.wallet_rows: list[dict[str, Any]] = [
            wallet(
                "BTC",
                "bitcoin",
                "0.08",
                "0.9",
                "0.02",
                "1",
                "0.95",
                "0.05",
                8,
                book={"hot": "0.07", "deposits": "0.9", "cold": "0"},  # a payout in flight
            ),
            wallet("ETH", "ethereum", "14.5", "0.5", "0", "15", "12.25", "2.75", 96),
            wallet("USDT", "ethereum", "1000", "24000", "0", "25000", "25100.5", "-100.5", 4),
        ]
        self.rows = [
            withdrawal(8, 1003, "ETH", "2.999", "0.001", "awaiting_approval", 2,
                       "0x5c1b7c4b7e0f8a9d2b3a4c5d6e7f8091a2b3c4d5", info="from a flagged account"),
            withdrawal(7, ACCOUNT, "BTC", "0.4995", "0.0005", "awaiting_approval", 2,
                       "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080",
                       info="amount above the approval threshold"),
            withdrawal(6, MAKER, "ETH", "1.999", "0.001", "batched", 4,
                       "0x8ba1f109551bd432803012645ac136ddd64dba72", tx="0x" + "ab" * 32),
            withdrawal(5, ACCOUNT, "USDT", "499", "1", "completed", 6,
                       "0x8ba1f109551bd432803012645ac136ddd64dba72", tx="0x" + "cd" * 32),
            withdrawal(4, SPOOFER, "BTC", "0.25", "0.0005", "rejected", 3,
                       "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080",
                       info="rejected by approval 1"),
            withdrawal(3, 0, "ETH", "0.0002", "0", "completed", 6,
                       "0x8ba1f109551bd432803012645ac136ddd64dba72", tx="0x" + "ef" * 32,
                       kind="gas"),
        ]  # fmt: skip
        self.deposit_rows = [
            deposit("a1", "ethereum", "ETH", MAKER, "3", "credited", 12, 12, 41),
            deposit("b2", "bitcoin", "BTC", ACCOUNT, "0.5", "credited", 3, 3, 57),
            deposit("c3", "bitcoin", "BTC", ACCOUNT, "0.125", "pending", 1, 3, None),
        ]
        self.sweep_rows = [
            {"id": 2, "chain": "bitcoin", "asset": "BTC", "source": "*", "status": "broadcast",
             "raw": "", "txid": "e" * 64, "amount_chain": "62490000", "fee_chain": "10000",
             "created_ms": 1_780_000_060_000, "updated_ms": 1_780_000_061_000},
            {"id": 1, "chain": "ethereum", "asset": "ETH", "source": "0x" + "12" * 20,
             "status": "done", "raw": "", "txid": "0x" + "f0" * 32,
             "amount_chain": "2999580000000000000", "fee_chain": "420000000000000",
             "created_ms": 1_780_000_000_000, "updated_ms": 1_780_000_030_000},
        ]  # fmt: skip

    @property
    def admin(self) -> FakeCustody:
        return self

    def file_approvals(self) -> dict[int, int]:
        """Each withdrawal awaiting approvers as an approval of one approver (withdrawal id ->
        approval id), as ``CustodyPart`` files them."""
        made = {}
        for row in self.rows:
            if row["state"] == "awaiting_approval":
                item = self.approvals.create(
                    WITHDRAWAL_ACTION,
                    f"withdraw {row['amount']} {row['coin']} of account {row['account']}",
                    "POST",
                    f"/v1/custody/withdrawals/{row['id']}",
                    {"withdrawalId": row["id"]},
                    f"account:{row['account']}",
                    1,
                )
                row["approval"] = str(item.approval_id)
                made[int(row["id"])] = item.approval_id
        return made

    def row(self, withdrawal_id: int) -> dict[str, Any]:
        return next(r for r in self.rows if r["id"] == str(withdrawal_id))

    async def deposit_address(self, account: int, asset: str) -> str:
        return "bcrt1q" + "q" * 38

    def deposits(self, account: int | None, limit: int) -> list[dict[str, Any]]:
        return [d for d in self.deposit_rows if account in (None, d["account"])][-limit:]

    def withdrawals(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        if status == "open":
            done = ("completed", "rejected", "failed")
            return [dict(r) for r in self.rows if r["state"] not in done][:limit]
        return [dict(r) for r in self.rows if status in (None, r["state"])][:limit]

    async def withdraw(
        self, account: int, asset: str, address: str, amount: str, client_id: str, who: str
    ) -> dict[str, Any]:
        raise AssertionError("no withdrawal is made here")

    async def approved(self, withdrawal_id: int) -> dict[str, Any]:
        self.approved_ids.append(withdrawal_id)
        self.row(withdrawal_id).update(state="queued", status=4)
        return dict(self.row(withdrawal_id))

    async def reject(self, withdrawal_id: int, why: str) -> dict[str, Any]:
        self.rejected_ids.append((withdrawal_id, why))
        self.row(withdrawal_id).update(state="rejected", status=3, info=why)
        return dict(self.row(withdrawal_id))

    def whitelist(self, account: int) -> list[dict[str, Any]]:
        return []

    def whitelist_add(self, account: int, chain: str, address: str, label: str) -> None:
        raise AssertionError("no address is whitelisted here")

    def sweeps(self, limit: int) -> list[dict[str, Any]]:
        return self.sweep_rows[:limit]

    async def wallets(self) -> list[dict[str, Any]]:
        rows = [dict(w) for w in self.wallet_rows]
        if self.slow_s:
            wait, self.slow_s = self.slow_s, 0.0
            self.slow_taken.set()
            await asyncio.sleep(wait)
            self.slow_done.set()
        return rows


def wallet(
    asset: str,
    chain: str,
    hot: str,
    deps: str,
    flight: str,
    total: str,
    owed: str,
    surplus: str,
    pct: int,
    cold: str = "0",
    book: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "asset": asset, "chain": chain, "hot": hot, "deposits": deps, "cold": cold,
        "inFlight": flight, "onChain": total, "liabilities": owed, "surplus": surplus,
        "hotPercent": pct, "hotBand": [2, 10], "dustChain": "0", "onChainUnits": "0",
        "liabilitiesUnits": 0, "book": book or {"hot": hot, "deposits": deps, "cold": cold},
    }  # fmt: skip


def withdrawal(
    wid: int,
    account: int,
    coin: str,
    amount: str,
    fee: str,
    state: str,
    status: int,
    to: str,
    tx: str = "",
    info: str = "",
    kind: str = "user",
) -> dict[str, Any]:
    return {
        "id": str(wid), "amount": amount, "transactionFee": fee, "coin": coin, "status": status,
        "address": to, "txId": tx, "applyTime": f"2026-12-07 09:1{wid}:00",
        "network": "BTC" if coin == "BTC" else "ETH", "transferType": 0,
        "withdrawOrderId": f"w-{wid}", "info": info, "confirmNo": 0, "walletType": 0,
        "txKey": "", "completeTime": "", "account": account, "state": state, "approval": "",
        "kind": kind,
    }  # fmt: skip


def deposit(
    ref: str,
    chain: str,
    asset: str,
    account: int,
    amount: str,
    status: str,
    have: int,
    need: int,
    seq: int | None,
) -> dict[str, Any]:
    txid = (ref * 32)[:64]
    return {
        "ref": f"{chain}:{txid}:0", "chain": chain, "asset": asset, "account": account,
        "address": "bcrt1q" + ref * 19 if chain == "bitcoin" else "0x" + ref * 20,
        "txid": txid, "index": 0, "amount": amount, "amountChain": "0", "dustChain": "0",
        "height": 100 + have, "status": status, "seenTime": 1_780_000_000_000 + have,
        "creditedSeq": seq, "confirmations": have, "required": need,
    }  # fmt: skip


class RunningVenue:
    """A venue, its audit chain and its admin API on an event loop in a thread of its own (the
    browser is driven synchronously from the test's thread)."""

    def __init__(self, data: Path) -> None:
        config = load_config(DEFAULT_CONFIG_PATH)
        self.config = dataclasses.replace(
            config,
            data_dir=data,
            admin=AdminConfig("127.0.0.1", 0),
            ledger=None,
            journal=dataclasses.replace(config.journal, fsync=False),
            audit=AuditConfig(True, 1000, 3600),
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.url = ""
        self.totp: pyotp.TOTP | None = None  # the operator's authenticator
        self.approver_totp: pyotp.TOTP | None = None  # the approver's
        self.points: dict[str, tuple[int, int]] = {}  # the episode's steps: (seq, ms)
        self.custody = FakeCustody()
        self.filed: dict[int, int] = {}  # withdrawal id -> its approval's id

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        self.thread.start()

        async def start() -> None:
            self.venue = Venue(self.config)
            await self.venue.start()
            # something for the pages to show: funds and a resting order of account 1001
            custody = Origin(Door.CUSTODY, "custody", "tx-7f3a", "")
            for asset, amount in (("USDT", 100_000 * 10**8), ("BTC", 2 * 10**8)):
                await self.venue.submit(Deposit(ACCOUNT, asset, amount, "tx-7f3a", origin=custody))
            fix = Origin(Door.FIX, "MM1", "", "10.0.0.9:5001")
            bid = NewOrder(
                ACCOUNT,
                SYMBOL,
                "b1",
                Side.BUY,
                OrdType.LIMIT,
                qty=50_000,
                price=9_400_000,
                origin=fix,
            )  # 0.5 BTC at 94000.00
            await self.venue.submit(bid)
            url = self.config.alert_store.url_for(self.config.data_dir)
            self.store = await asyncio.to_thread(AlertStore.connect, url)
            self.store.start()
            # the detectors, raising into the store as ``venue run`` has them
            self.surveillance = SurveillancePart(self.venue, self.config, sink=self.store)
            await self.surveillance.start()
            await self.spoof()
            self.audit = AuditPart(self.venue, self.config)
            await self.audit.start()
            # as ``venue run`` serves it: staff events and exports chained
            self.admin = AdminPart(
                self.venue,
                self.config,
                None,
                chain=self.audit.chain,
                alerts=self.store,
                surveillance=self.surveillance,
                custody=self.custody,  # type: ignore[arg-type]
            )
            await self.admin.start()
            self.url = self.admin.url
            self.filed = self.custody.file_approvals()

        self.run(start())

    def stop(self) -> None:
        async def stop() -> None:
            await self.admin.stop()
            await self.audit.stop()
            await self.surveillance.stop()
            await self.venue.stop()
            await asyncio.to_thread(self.store.close)

        try:
            self.run(stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)

    async def step(self, name: str, cmd: NewOrder | CancelOrder | Deposit) -> int:
        """Submit ``cmd`` and note its seq and time as ``name``; the new order's id (else 0).
        The steps are a little apart, so that the chart spreads them."""
        events = await self.venue.submit(cmd)
        self.points[name] = await self.venue.read(
            lambda core: (core.last_seq, core.last_ts // 10**6)
        )
        await asyncio.sleep(0.15)
        return next((e.order_id for e in events if isinstance(e, OrderAccepted)), 0)

    async def spoof(self) -> None:
        """A spoofing episode through the venue, which the detectors raise as an alert, and two
        order-to-trade breaches put in the store (a breach needs a thousand messages a day)."""
        custody = Origin(Door.CUSTODY, "custody", "tx-9c01", "")
        for account in (MAKER, SPOOFER):
            for asset, amount in (("USDT", 400_000 * 10**8), ("BTC", 5 * 10**8)):
                ref = f"tx-{account}-{asset}"
                await self.venue.submit(Deposit(account, asset, amount, ref, origin=custody))
        maker = Origin(Door.FIX, "MM2", "", "10.0.0.10:5002")
        spoofer = Origin(Door.FIX, "SP1", "", "10.0.0.11:5003")

        def order(account: int, cl: str, side: Side, lots: int, ticks: int, **kw: Any) -> NewOrder:
            origin = spoofer if account == SPOOFER else maker
            return NewOrder(
                account, SYMBOL, cl, side, OrdType.LIMIT, qty=lots, price=ticks, origin=origin, **kw
            )

        for cl, side, lots, ticks in (
            ("m1", Side.SELL, 20_000, 9_410_000),  # 0.2 at 94100.00
            ("m2", Side.SELL, 30_000, 9_415_000),
            ("m3", Side.SELL, 40_000, 9_425_000),
            ("m4", Side.BUY, 10_000, 9_395_000),
        ):
            await self.step(cl, order(MAKER, cl, side, lots, ticks))
        big = await self.step("big", order(SPOOFER, "s1", Side.SELL, 300_000, 9_420_000))  # 3 BTC
        await self.step(
            "lift", order(SPOOFER, "s2", Side.BUY, 5_000, 9_410_000, tif=TimeInForce.IOC)
        )
        await self.step("cancel", CancelOrder(SPOOFER, SYMBOL, order_id=big, origin=spoofer))
        await self.step("m5", order(MAKER, "m5", Side.SELL, 10_000, 9_405_000))
        big_ms, cancel_ms = self.points["big"][1], self.points["cancel"][1]
        # the detectors saw the episode: its alert reaches the store
        spoofing = parse_alert_query({"type": ["SPOOFING"]})
        deadline = time.monotonic() + 10
        while not (await asyncio.to_thread(self.store.alerts, spoofing)).alerts:
            assert time.monotonic() < deadline, "no spoofing alert"
            await asyncio.sleep(0.05)
        day = big_ms // 86_400_000
        breaches = ((SPOOFER, 1_400, 2, 310, 0.35), (MAKER, 1_200, 4, 120, 0.4))
        for account, messages, trades, volume, traded in breaches:
            self.store.raise_alert(
                Alert(
                    key=f"OTR_BREACH:{SYMBOL}:account:{account}:{day}",
                    type=AlertType.OTR_BREACH,
                    symbol=SYMBOL,
                    accounts=(account,),
                    from_ms=big_ms - 60_000,
                    to_ms=cancel_ms,
                    score=min(100.0, 50.0 * messages / trades / 250),
                    evidence={
                        "scope": "account",
                        "id": account,
                        "day": day,
                        "messages": messages,
                        "trades": trades,
                        "orderVolume": f"{volume:.5f}",
                        "tradedVolume": f"{traded:.5f}",
                        "numberRatio": f"{messages / trades:.2f}",
                        "volumeRatio": f"{volume / traded:.2f}",
                        "maxNumberRatio": 250,
                        "maxVolumeRatio": 1000,
                    },
                    summary=f"account {account} on {SYMBOL}: number ratio over the maximum 250",
                )
            )
        assert await asyncio.to_thread(self.store.flush, 10)

    def status(self) -> dict[str, Any]:
        """The venue's status, read on its loop (not through the API the page uses)."""
        return self.run(self.venue.read(lambda core: self.venue.status()))


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("CONSOLE_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("console-shots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningVenue]:
    data = tmp_path_factory.mktemp("console") / "data"
    operators = OperatorStore(data / "staff")
    uri = operators.add(NAME, ["operator", "compliance"], PASSWORD, "test")
    secret = urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query)["secret"][0]
    approver = operators.add(APPROVER, ["approver"], PASSWORD, "test")
    running = RunningVenue(data)
    running.totp = pyotp.TOTP(secret)
    running.approver_totp = pyotp.TOTP(
        urllib.parse.parse_qs(urllib.parse.urlsplit(approver).query)["secret"][0]
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def page(browser: Browser, venue: RunningVenue) -> Iterator[Page]:
    context = browser.new_context(
        base_url=venue.url, viewport={"width": 1440, "height": 800}, accept_downloads=True
    )
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield tab
    finally:
        context.close()
    assert errors == [], errors  # no script error on any page


def code(venue: RunningVenue, *, fresh: bool = False) -> str:
    """The operator's code now; ``fresh``: the next step's, which no login has used yet (a
    code is accepted once, and one step early)."""
    assert venue.totp is not None
    return venue.totp.at(time.time() + 30) if fresh else venue.totp.now()


def api(venue: RunningVenue, path: str) -> tuple[int, Any]:
    """A request without the browser's cookie."""
    try:
        with urllib.request.urlopen(venue.url + path, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def sign_in(page: Page, password: str, code: str, name: str = NAME) -> None:
    """Name and password first, then the code."""
    expect(page.locator("#code-form")).to_be_hidden()
    page.fill("#login-name", name)
    page.fill("#login-password", password)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-form")).to_be_hidden()
    page.fill("#login-code", code)
    page.click("#code-form button[type=submit]")


def test_an_operator_signs_in_with_password_and_totp(
    page: Page, venue: RunningVenue, shots: Path
) -> None:
    page.goto("/")
    expect(page).to_have_url(f"{venue.url}/console/")
    expect(page.locator("h1")).to_have_text("Sign in")
    assert api(venue, "/v1/status")[0] == 401  # the data needs a login; the page does not
    page.screenshot(path=str(shots / "login.png"))
    sign_in(page, "wrong password!!", code(venue))
    expect(page.locator("#login-error")).to_have_text("Login failed.")
    sign_in(page, PASSWORD, code(venue, fresh=True))
    expect(page.locator("#operator")).to_have_text(NAME)
    expect(page.locator("#nav")).to_contain_text("Audit trail")  # compliance's page too


def test_halting_an_instrument_from_its_page(page: Page, venue: RunningVenue, shots: Path) -> None:
    page.goto("/console/#/instruments")
    state = page.locator(f'span.state[data-symbol="{SYMBOL}"]')
    expect(state).to_have_text("OPEN")
    assert venue.status()["instruments"][SYMBOL] == "OPEN"
    page.click(f'button[data-action="HALTED:{SYMBOL}"]')
    expect(page.locator("#flash")).to_contain_text(f"{SYMBOL}: Halted (seq ")
    expect(state).to_have_text("HALTED")
    assert venue.status()["instruments"][SYMBOL] == "HALTED"  # the venue's state, not the page's
    page.screenshot(path=str(shots / "instruments.png"), full_page=True)


def test_the_halt_is_in_the_audit_trail_with_its_operator(
    page: Page, venue: RunningVenue, shots: Path
) -> None:
    page.goto("/console/#/audit")
    page.fill("#audit-action", "SetInstrumentState")
    page.click("#audit-filters button[type=submit]")
    row = page.locator("#audit-results tbody tr").first
    expect(row).to_contain_text("SetInstrumentState")
    expect(row).to_contain_text("state=HALTED")
    expect(row).to_contain_text(NAME)
    expect(row).to_contain_text("ADMIN")
    page.fill("#audit-action", "")
    page.click("#audit-filters button[type=submit]")
    everything = page.locator("#audit-results")
    expect(everything).to_contain_text("Deposit")  # the custody door's, and the FIX order
    expect(everything).to_contain_text("MM1")
    expect(everything).to_contain_text("login")  # staff actions beside the commands
    expect(page.locator("#audit-results tbody tr").first).to_contain_text("SetInstrumentState")
    page.screenshot(path=str(shots / "audit.png"), full_page=True)

    page.fill("#audit-actor", NAME)
    page.click("#audit-filters button[type=submit]")
    expect(page.locator("#audit-results tbody tr").first).to_contain_text(NAME)
    with page.expect_download() as download:
        page.click("#audit-export")
    text = Path(download.value.path()).read_text(encoding="utf-8")
    table = list(csv.DictReader(io.StringIO(text)))
    assert [(r["actor"], r["action"], r["detail"]) for r in table if r["kind"] == "command"] == [
        (NAME, "SetInstrumentState", "state=HALTED")
    ]
    # the export itself is in the chain, under the operator's name
    assert venue.audit.chain is not None
    venue.run(venue.audit.chain.flush())
    page.fill("#audit-action", "audit.export")
    page.click("#audit-filters button[type=submit]")
    expect(page.locator("#audit-results tbody tr").first).to_contain_text(f"actor={NAME}")


def test_the_other_pages_draw(page: Page, venue: RunningVenue, shots: Path) -> None:
    page.goto("/console/#/kill-switch")
    expect(page.locator("#kill-toggle")).to_have_text("Activate the kill switch")
    page.screenshot(path=str(shots / "kill-switch.png"), full_page=True)
    page.goto("/console/#/accounts")
    page.fill("#account-id", str(ACCOUNT))
    page.click("#main form.row button[type=submit]")
    expect(page.locator("#account-state")).to_have_text("ACTIVE")
    balances = page.locator("#account table").first
    expect(balances).to_contain_text("USDT")
    expect(balances).to_contain_text("47000")  # 0.5 BTC at 94000 held of 100000 USDT
    expect(page.locator("#account")).to_contain_text("94000.00")  # the resting bid
    expect(page.locator("#account-kyc")).to_have_text("INSTITUTIONAL")
    page.select_option("#kyc-tier", "2")
    page.click("#kyc-set")
    expect(page.locator("#account-kyc")).to_have_text("2")
    assert venue.run(venue.venue.read(lambda core: venue.venue.risk.kyc_tier(ACCOUNT).label)) == "2"
    expect(page.locator("#account")).to_contain_text("API keys")
    page.screenshot(path=str(shots / "accounts.png"), full_page=True)
    page.goto("/console/#/operators")
    expect(page.locator("#main table")).to_contain_text(NAME)
    page.screenshot(path=str(shots / "operators.png"), full_page=True)


def test_the_kill_switch_and_its_release_held_for_a_second_person(
    page: Page, venue: RunningVenue, shots: Path
) -> None:
    page.goto("/console/#/kill-switch")
    page.click("#kill-toggle")
    page.click("#kill-confirm")
    expect(page.locator("#flash")).to_contain_text("Kill switch ON")
    expect(page.locator("#kill-toggle")).to_have_text("Release the kill switch")
    assert venue.status()["killSwitch"] is True
    page.click("#kill-toggle")
    page.click("#kill-confirm")
    expect(page.locator("#flash")).to_contain_text("Held for approval #")
    assert venue.status()["killSwitch"] is True  # lifting it waits for an approver
    page.goto("/console/#/approvals")
    row = page.locator("#approvals tbody tr").first
    expect(row).to_contain_text("PENDING")
    expect(row).to_contain_text(NAME)
    expect(row.locator("button", has_text="Approve")).to_be_disabled()  # not one's own,
    expect(row.locator("button", has_text="Reject")).to_be_disabled()  # nor without the role
    page.screenshot(path=str(shots / "approvals.png"), full_page=True)


def test_an_alert_from_the_queue_to_its_chart_and_a_closed_case(
    page: Page, venue: RunningVenue, shots: Path
) -> None:
    page.goto("/console/#/alerts")
    for title in ("Alerts", "Cases", "Order-to-trade"):
        expect(page.locator("#nav")).to_contain_text(title)
    rows = page.locator("#alerts-results tbody tr.clickable")
    expect(rows).to_have_count(3)
    spoof = rows.filter(has_text="SPOOFING")
    expect(spoof).to_contain_text(str(SPOOFER))
    raised = venue.store.alerts(parse_alert_query({"type": ["SPOOFING"]})).alerts
    assert [(a["accounts"], a["state"]) for a in raised] == [([SPOOFER], "OPEN")]  # the detector's
    score = f"{raised[0]['score']:g}"
    expect(spoof.locator("svg.score-bar")).to_have_attribute("data-score", score)
    page.screenshot(path=str(shots / "alerts.png"), full_page=True)
    page.select_option("#alerts-type", "OTR_BREACH")
    page.click("#alerts-filters button[type=submit]")
    expect(rows).to_have_count(2)
    page.select_option("#alerts-type", "SPOOFING")
    page.click("#alerts-filters button[type=submit]")
    expect(rows).to_have_count(1)
    rows.first.locator("td").nth(3).click()  # a click on the row opens the alert

    expect(page.locator("#alert-title")).to_contain_text(f"SPOOFING on {SYMBOL}")
    chart = page.locator("#alert-chart svg.market-chart")
    expect(chart).to_be_visible()
    # the journal's market: the spoofer's trade, its two orders placed and the large one cancelled
    expect(chart.locator("circle.trade.mine")).to_have_count(1)
    expect(chart.locator("path.order.new")).to_have_count(2)
    expect(chart.locator("path.order.cancelled")).to_have_count(1)
    assert chart.locator("rect.level.ask").count() > 0
    assert chart.locator("rect.level.bid").count() > 0
    expect(chart.locator("path.best.bid")).to_have_count(1)
    expect(chart.locator(".legend")).to_contain_text("order cancelled")
    lift_seq = venue.points["lift"][0]
    expect(chart.locator("circle.trade.mine")).to_have_attribute("data-seq", str(lift_seq))
    box = chart.bounding_box()
    assert box is not None
    chart.click(position={"x": box["width"] * 0.55, "y": box["height"] * 0.4})  # pick a time
    expect(page.locator("#book-at")).to_have_value(re.compile(r"^\d{4}-\d\d-\d\dT.*Z$"))
    expect(page.locator("#book-ladder")).to_be_visible()
    page.fill("#book-at", str(venue.points["big"][0]))  # as the large order rested
    page.click("#book-show")
    ladder = page.locator("#book-ladder")
    expect(ladder.locator(".ladder-order.mine")).to_contain_text(f"3.00000 · acct {SPOOFER}")
    expect(ladder).to_contain_text("94200.00")
    expect(page.locator("#alert-evidence")).to_contain_text("medianOrderQty")
    page.screenshot(path=str(shots / "alert.png"), full_page=True)

    page.fill("#alert-case-title", "Spoofing by 1003")
    page.click("#alert-open-case")
    expect(page.locator("#case-title")).to_contain_text("Spoofing by 1003")
    expect(page.locator("#case-state")).to_have_text("OPEN")
    case_id = int(page.url.rsplit("/", 1)[1])
    page.fill("#case-operator", NAME)
    page.click("#case-assign")
    expect(page.locator("#case-assignee")).to_have_text(NAME)
    page.fill("#case-comment", "Cancelled 3 BTC right after buying 0.05.")
    page.click("#case-comment-add")
    expect(page.locator("#case-comments")).to_contain_text("right after buying 0.05")
    notes = {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"call with the member"}
    page.set_input_files("#case-file", files=[notes])
    page.click("#case-attach")
    expect(page.locator("#case-attachments")).to_contain_text("notes.txt")
    page.select_option("#case-disposition", "REPORTED")
    page.fill("#case-reason", "Spoofing the ask to buy below it.")
    page.click("#case-close")
    expect(page.locator("#case-state")).to_have_text("CLOSED")
    expect(page.locator("#case-comment-add")).to_be_disabled()
    expect(page.locator("#case-history")).to_contain_text("close")
    expect(page.locator("#stor-html")).to_have_attribute(
        "href", f"/v1/surveillance/cases/{case_id}/stor.html"
    )
    page.screenshot(path=str(shots / "case.png"), full_page=True)
    stored = venue.store.case(case_id)  # the store's word, not the page's
    assert (stored["state"], stored["disposition"], stored["operator"]) == (
        "CLOSED",
        "REPORTED",
        NAME,
    )
    assert [c["text"] for c in stored["comments"]] == ["Cancelled 3 BTC right after buying 0.05."]
    assert [a["name"] for a in stored["attachments"]] == ["notes.txt"]
    assert [a["state"] for a in stored["alerts"]] == ["CLOSED"]

    page.click("text=← Cases")
    page.select_option("#cases-state", "CLOSED")
    closed = page.locator("#cases tbody tr.clickable")
    expect(closed).to_have_count(1)
    expect(closed).to_contain_text("REPORTED")
    closed.locator("td").nth(1).click()
    expect(page.locator("#case-state")).to_have_text("CLOSED")

    assert venue.audit.chain is not None
    venue.run(venue.audit.chain.flush())
    page.click("a.audit-link:text-is('case.close')")
    expect(page.locator("#audit-action")).to_have_value("case.close")
    expect(page.locator("#audit-results tbody tr").first).to_contain_text(f"case {case_id}")


def test_the_order_to_trade_ratios_and_a_case_of_alerts_ticked_in_the_queue(
    page: Page, venue: RunningVenue, shots: Path
) -> None:
    # the detector's own counts of the day (GET /v1/surveillance/otr), not the alerts': the maker
    # sent 5 orders and traded once (with the spoofer's lift), the spoofer sent 2 orders and a
    # cancellation, account 1001 one order, never traded
    page.goto("/console/#/otr")
    bars = page.locator("#otr-number rect.otr-bar")
    expect(bars).to_have_count(3)
    ratios = [bars.nth(n).get_attribute("data-ratio") for n in range(3)]
    assert ratios == ["5", "3", "1"]  # highest first
    expect(page.locator("#otr-number rect.otr-bar.over")).to_have_count(0)  # the maximum is 500
    expect(page.locator("#otr-number line.otr-max")).to_have_count(3)
    expect(page.locator("#otr-volume rect.otr-bar")).to_have_count(3)
    over = page.locator("#otr-volume rect.otr-bar.over")  # 0.5 BTC ordered, nothing traded
    expect(over).to_have_count(1)
    expect(over).to_have_attribute("data-ratio", "50000")
    expect(page.locator("#otr")).to_contain_text(f"account {SPOOFER}")
    spoofer = page.locator("#otr tbody tr").nth(1)
    expect(spoofer).to_contain_text("0.05000")  # it traded 0.05 BTC
    page.screenshot(path=str(shots / "otr.png"), full_page=True)

    # both breaches into one case, ticked in the alerts queue
    page.goto("/console/#/alerts")
    page.select_option("#alerts-state", "OPEN")
    page.click("#alerts-filters button[type=submit]")
    ticks = page.locator("#alerts-results input.pick")
    expect(ticks).to_have_count(2)
    expect(page.locator("#case-open")).to_be_disabled()
    ticks.nth(0).check()
    ticks.nth(1).check()
    page.fill("#case-title", "Order-to-trade breaches")
    page.click("#case-open")
    expect(page.locator("#case-title")).to_contain_text("Order-to-trade breaches")
    case_id = int(page.url.rsplit("/", 1)[1])
    held = venue.store.case(case_id)["alerts"]
    assert sorted((a["type"], a["state"]) for a in held) == [("OTR_BREACH", "IN_CASE")] * 2


def test_the_chart_draws_a_long_timeline_thinned_and_skips_what_has_no_price(page: Page) -> None:
    """``MarketChart.draw`` over a made timeline: 6,000 book changes drawn as at most 1,500
    bands a level, every trade and every priced order marked, a market order's and a rejection's
    (no price) left off the price axis, each kind of order event its own marker."""
    page.goto("/console/#/alerts")
    expect(page.locator("#alerts-results")).to_be_visible()
    counts = page.evaluate(
        """() => {
        const t0 = Date.UTC(2026, 0, 5, 10, 0, 0);
        const samples = [];
        for (let i = 0; i < 6000; i += 1) {
          const bid = 100 + (i % 7) / 100;
          samples.push({seq: i + 1, ts: t0 + i * 10, bids: [[bid.toFixed(2), "1.5"]],
                        asks: [[(bid + 0.05).toFixed(2), String(1 + (i % 3))]]});
        }
        const trade = (seq, price, buy, sell) => ({seq, ts: t0 + seq * 10, price, qty: "0.5",
          buyAccount: buy, sellAccount: sell, aggressor: "BUY"});
        const order = (seq, event, side, price) => ({seq, ts: t0 + seq * 10, event,
          orderId: seq, account: 7, side, price, qty: "2"});
        const svg = MarketChart.draw({
          symbol: "X-Y", fromSeq: 1, toSeq: 6000, samples,
          trades: [trade(10, "100.03", 7, 8), trade(20, "100.04", 8, 9)],
          orders: [order(5, "NEW", "BUY", "100.01"), order(6, "NEW", "SELL", "100.09"),
                   order(30, "CANCELLED", "", "100.01"), order(31, "REPLACED", "SELL", "100.08"),
                   order(32, "EXPIRED", "BUY", "100.00"), order(33, "REJECTED", "", ""),
                   order(34, "NEW", "BUY", "")],
        }, {accounts: [7], windowFrom: t0 + 1000, windowTo: t0 + 2000});
        const n = (selector) => svg.querySelectorAll(selector).length;
        return {bids: n("rect.level.bid"), asks: n("rect.level.ask"), trades: n("circle.trade"),
                mine: n("circle.trade.mine"), placed: n("path.order.new"),
                cancelled: n("path.order.cancelled"), replaced: n("path.order.replaced"),
                expired: n("path.order.expired"), rejected: n("path.order.rejected"),
                window: n("rect.alert-window"), best: n("path.best")};
    }"""
    )
    assert counts == {
        "bids": 1500,
        "asks": 1500,
        "trades": 2,
        "mine": 1,
        "placed": 2,  # the third NEW is a market order: no price to place it at
        "cancelled": 1,
        "replaced": 1,
        "expired": 1,
        "rejected": 0,
        "window": 1,
        "best": 2,
    }


RED, GREEN, AMBER = "rgb(180, 35, 24)", "rgb(6, 118, 71)", "rgb(181, 71, 8)"  # danger, ok, warn


def test_the_treasury_wallets_against_liabilities_and_the_hot_band(
    page: Page, venue: RunningVenue, shots: Path
) -> None:
    page.goto("/console/#/instruments")
    expect(page.locator("#nav")).to_contain_text("Treasury")
    page.click("#nav a:text-is('Treasury')")
    expect(page).to_have_url(re.compile(r"#/treasury$"))
    rows = page.locator("#treasury-wallets tbody tr")
    expect(rows).to_have_count(3)
    usdt = page.locator('#treasury-wallets tr[data-asset="USDT"]')
    for text in ("1000", "24000", "25000", "25100.5", "-100.5", "4% (band 2 to 10%)"):
        expect(usdt).to_contain_text(text)
    short = usdt.locator("span.surplus")
    expect(short).to_have_class(re.compile(r"\bshort\b"))
    expect(short).to_have_css("color", RED)  # a shortfall in red
    btc = page.locator('#treasury-wallets tr[data-asset="BTC"] span.surplus')
    expect(btc).to_have_text("0.05")
    expect(btc).to_have_css("color", GREEN)
    # the books beside the chain: the same for USDT, apart for BTC (marked in amber)
    expect(usdt.locator("span.books.same")).to_have_text("1000 / 24000 / 0")
    apart = page.locator('#treasury-wallets tr[data-asset="BTC"] span.books')
    expect(apart).to_have_class(re.compile(r"\bdiffers\b"))
    expect(apart).to_have_text("0.07 / 0.9 / 0")
    expect(apart).to_have_css("color", AMBER)
    chart = page.locator("#treasury-hot-chart svg.hot-chart")
    bars = chart.locator("rect.hot-bar")
    expect(bars).to_have_count(3)
    assert [bars.nth(n).get_attribute("data-percent") for n in range(3)] == ["8", "96", "4"]
    expect(chart.locator('rect.hot-bar.above[data-asset="ETH"]')).to_have_count(1)  # 96 > 10
    expect(chart.locator("rect.hot-bar.within")).to_have_count(2)
    band = chart.locator('rect.hot-band[data-asset="BTC"]')
    assert (band.get_attribute("data-low"), band.get_attribute("data-high")) == ("2", "10")
    page.screenshot(path=str(shots / "treasury.png"), full_page=True)

    # the page asks again by itself: ETH swept down into its band, a new shortfall in BTC
    started = time.monotonic()
    venue.custody.wallet_rows[1].update(hot="1.2", hotPercent=8)
    venue.custody.wallet_rows[0].update(liabilities="1.1", surplus="-0.1")
    expect(chart.locator('rect.hot-bar.within[data-asset="ETH"]')).to_have_count(1, timeout=5000)
    expect(btc).to_have_text("-0.1")
    expect(btc).to_have_css("color", RED)
    assert time.monotonic() - started < 4.5

    # an older answer arriving after a newer request is dropped
    venue.custody.slow_taken.clear()
    venue.custody.slow_done.clear()
    venue.custody.slow_s = 0.6  # the next answer (the rows as they are now) comes late
    page.click("#treasury-refresh")
    assert venue.custody.slow_taken.wait(4)
    venue.custody.wallet_rows[0].update(liabilities="0.9", surplus="0.1")
    page.click("#treasury-refresh")
    expect(btc).to_have_text("0.1")
    assert venue.custody.slow_done.wait(3)
    page.wait_for_timeout(300)  # the late answer reached the page, which kept the newer
    assert btc.text_content() == "0.1"  # now (an expect would wait for the next refresh)


@pytest.fixture(scope="module")
def approver(browser: Browser, venue: RunningVenue) -> Iterator[Page]:
    """A second person, signed in with the approver role only."""
    context = browser.new_context(base_url=venue.url, viewport={"width": 1440, "height": 800})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    assert venue.approver_totp is not None
    tab.goto("/console/")
    sign_in(tab, PASSWORD, venue.approver_totp.now(), APPROVER)
    expect(tab.locator("#operator")).to_have_text(APPROVER)
    try:
        yield tab
    finally:
        context.close()
    assert errors == [], errors


def test_withdrawals_awaiting_approvers_approved_and_rejected_from_the_treasury(
    page: Page, approver: Page, venue: RunningVenue, shots: Path
) -> None:
    btc, eth = venue.filed[7], venue.filed[8]  # the approvals custody filed for 7 and 8
    approvals = venue.admin.access.approvals
    page.goto("/console/#/treasury/withdrawals")
    expect(page.locator("#treasury-tabs a.here")).to_have_text("Withdrawals")
    queue = page.locator("#treasury-queue tbody tr")
    expect(queue).to_have_count(3)  # 8 and 7 await approvers, 6 is in a batch
    seven = page.locator('#treasury-queue tr[data-withdrawal="7"]')
    for text in ("0.4995", "0.0005", str(ACCOUNT), "awaiting_approval", "amount above"):
        expect(seven).to_contain_text(text)
    expect(seven.locator("a.approval-link")).to_have_attribute("href", f"#/approvals/{btc}")
    expect(seven.locator("a.approval-link")).to_have_text(f"#{btc} (0/1)")
    expect(seven.locator("button[data-approve]")).to_be_disabled()  # carol is no approver
    recent = page.locator("#treasury-recent tbody tr")
    expect(recent).to_have_count(6)
    expect(page.locator('#treasury-recent tr[data-withdrawal="4"]')).to_contain_text("rejected")
    expect(seven.locator("span.kind-user")).to_have_text("withdrawal")
    gas = page.locator('#treasury-recent tr[data-withdrawal="3"]')
    expect(gas.locator("span.kind-gas")).to_have_text("gas for a token sweep")
    expect(page.locator('#treasury-recent tr[data-withdrawal="5"]')).to_contain_text("completed")
    seven.locator("a.approval-link").click()  # the link leads to the approval, marked
    expect(page.locator(f'#approvals tr.here[data-approval="{btc}"]')).to_contain_text(
        f"account {ACCOUNT}"
    )

    approver.goto("/console/#/treasury/withdrawals")
    row = approver.locator('#treasury-queue tr[data-withdrawal="7"]')
    expect(row.locator("button[data-approve]")).to_be_enabled()
    approver.screenshot(path=str(shots / "treasury-withdrawals.png"), full_page=True)
    row.locator("button[data-approve]").click()
    assert venue.approver_totp is not None
    approver.fill("#approve-code-7", venue.approver_totp.at(time.time() + 30))  # unused code
    approver.click("#approve-confirm-7")
    expect(approver.locator("#flash")).to_contain_text(f"Withdrawal 7 approved (approval #{btc})")
    assert venue.custody.approved_ids == [7]  # the approval ran custody's step
    assert approvals.get(btc).status == "EXECUTED"
    expect(row).to_contain_text("queued")
    expect(row.locator("button")).to_have_count(0)

    other = approver.locator('#treasury-queue tr[data-withdrawal="8"]')
    other.locator("button[data-reject]").click()
    approver.fill("#reject-reason-8", "the account is under review")
    approver.click("#reject-confirm-8")
    expect(approver.locator("#flash")).to_contain_text("Withdrawal 8 rejected")
    assert venue.custody.rejected_ids == [(8, f"rejected by approval {eth}")]
    assert approvals.get(eth).status == "REJECTED"
    assert approvals.get(eth).result == "the account is under review"
    expect(approver.locator("#treasury-queue tbody tr")).to_have_count(2)  # 7 queued, 6
    expect(approver.locator('#treasury-recent tr[data-withdrawal="8"]')).to_contain_text("rejected")
    assert venue.custody.approved_ids == [7]


def test_the_treasury_deposits_and_sweeps(page: Page, venue: RunningVenue, shots: Path) -> None:
    page.goto("/console/#/treasury/deposits")
    deposits = page.locator("#deposits-table tbody tr")
    expect(deposits).to_have_count(3)
    newest = deposits.first  # the fake's last row: newest first
    for text in ("0.125", "1/3", "pending", "c3c3c3c3", str(ACCOUNT)):
        expect(newest).to_contain_text(text)
    expect(deposits.nth(2)).to_contain_text("12/12")
    sweeps = page.locator("#sweeps-table tbody tr")
    expect(sweeps).to_have_count(2)
    expect(sweeps.first).to_contain_text("62490000")
    expect(sweeps.first).to_contain_text("several addresses")
    expect(sweeps.nth(1)).to_contain_text("done")
    page.fill("#deposits-account", str(MAKER))
    page.click("#deposits-filters button[type=submit]")
    expect(deposits).to_have_count(1)
    expect(deposits.first).to_contain_text("12/12")
    page.screenshot(path=str(shots / "treasury-deposits.png"), full_page=True)


def test_signing_out_ends_the_session(page: Page, venue: RunningVenue) -> None:
    page.click("#logout")
    expect(page.locator("h1")).to_have_text("Sign in")
    page.goto("/console/#/instruments")
    expect(page.locator("h1")).to_have_text("Sign in")
