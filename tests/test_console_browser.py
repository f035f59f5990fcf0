"""The staff console in a real browser (headless chromium through Playwright): a venue runs in
process with its admin API and its audit chain (the parts of ``venue run``) and an operator
made in its store; the operator
signs in with a real TOTP code, halts an instrument from the instruments page (the venue's own
status must say HALTED), finds the halt in the audit trail page under their name, exports the
trail as CSV, and the other pages draw. One browser for the whole module.

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

from engine.commands import Deposit, NewOrder, Origin
from engine.types import Door, OrdType, Side
from gateway.staff.operators import OperatorStore
from surveillance.config import AuditConfig
from venue.config import DEFAULT_CONFIG_PATH, AdminConfig, load_config
from venue.parts import AdminPart, AuditPart
from venue.runtime import Venue

CHROMIUM = os.environ.get("VENUE_CHROMIUM", "/usr/bin/chromium")
NAME = "carol"
PASSWORD = "correct horse battery"
SYMBOL = "BTC-USDT"
ACCOUNT = 1001
T = TypeVar("T")


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
            self.audit = AuditPart(self.venue, self.config)
            await self.audit.start()
            # as ``venue run`` serves it: staff events and exports chained
            self.admin = AdminPart(self.venue, self.config, None, chain=self.audit.chain)
            await self.admin.start()
            self.url = self.admin.url

        self.run(start())

    def stop(self) -> None:
        async def stop() -> None:
            await self.admin.stop()
            await self.audit.stop()
            await self.venue.stop()

        try:
            self.run(stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)

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
    uri = OperatorStore(data / "staff").add(NAME, ["operator", "compliance"], PASSWORD, "test")
    secret = urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query)["secret"][0]
    running = RunningVenue(data)
    running.totp = pyotp.TOTP(secret)
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


def sign_in(page: Page, password: str, code: str) -> None:
    """Name and password first, then the code."""
    expect(page.locator("#code-form")).to_be_hidden()
    page.fill("#login-name", NAME)
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


def test_signing_out_ends_the_session(page: Page, venue: RunningVenue) -> None:
    page.click("#logout")
    expect(page.locator("h1")).to_have_text("Sign in")
    page.goto("/console/#/instruments")
    expect(page.locator("h1")).to_have_text("Sign in")
