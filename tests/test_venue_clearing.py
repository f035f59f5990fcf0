"""The venue with clearing, end to end, on SQLite and the real PostgreSQL: money in through the
admin API, orders that trade, withdrawals; the ledger settled by the running venue, caught up
from the journal after a restart or a lost ledger, reconciled by the venue and by ``venue
reconcile``, which finds a tampered posting and corrects nothing."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from staff_auth import admin_headers, approve

from clearing.reconcile import reconcile
from engine.commands import ConfirmWithdrawal, Deposit, NewOrder, Withdraw
from engine.types import OrdType, Side
from venue.admin import set_settlement, start_admin
from venue.cli import run_cli
from venue.config import DEFAULT_CONFIG_PATH, AdminConfig, LedgerConfig, VenueConfig, load_config
from venue.runtime import Venue
from venue.settlement import Settlement

SYM = "BTC-USDT"
COIN = 10**8


def make_config(data_dir: Path, ledger_url: str, **ledger: Any) -> VenueConfig:
    config = load_config(DEFAULT_CONFIG_PATH)
    settings = {"url": ledger_url, "batch_max": 100, "reconcile_every_s": 0, **ledger}
    return dataclasses.replace(
        config,
        data_dir=data_dir,
        admin=AdminConfig("127.0.0.1", 0),
        ledger=LedgerConfig(**settings),
    )


def run(body: Callable[[], Awaitable[None]], timeout: float = 60) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(body(), timeout)

    asyncio.run(bounded())


async def trading(venue: Venue, rounds: int = 20) -> None:
    """Two funded accounts trade; one withdraws part of what it bought."""
    await venue.submit(Deposit(1, "USDT", 1_000_000 * COIN, "tx-a"))
    await venue.submit(Deposit(2, "BTC", 10 * COIN, "tx-b"))
    for i in range(rounds):
        price = 9_500_000 + i * 100
        await venue.submit(NewOrder(2, SYM, "", Side.SELL, OrdType.LIMIT, 10_000, price))
        await venue.submit(NewOrder(1, SYM, "", Side.BUY, OrdType.LIMIT, 7_000, price))
    await venue.submit(Withdraw(1, "BTC", COIN // 10, 1, "addr"))
    await venue.submit(ConfirmWithdrawal(1, "chain-tx"))


def ledger_rows(url: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    sa.text(
                        "SELECT p.seq, p.idx, p.n, a.kind, a.owner, p.asset, p.amount, p.leg "
                        "FROM ledger_postings p JOIN ledger_accounts a ON a.id = p.account_id "
                        "ORDER BY p.seq, p.idx, p.n"
                    )
                )
            ]
    finally:
        engine.dispose()


def test_the_running_venue_settles_and_reconciles(tmp_path: Path, ledger_url: str) -> None:
    config = make_config(tmp_path / "data", ledger_url)
    seen: dict[str, Any] = {}

    async def body() -> None:
        venue = Venue(config)
        await venue.start()
        settlement = Settlement(venue, config.ledger, config.assets)  # type: ignore[arg-type]
        await settlement.start()
        await trading(venue)
        assert await settlement.wait_caught_up(venue.core.last_seq)
        risk = venue.risk
        assert risk is not None
        report = reconcile(ledger_url, risk.ledger_view(), venue.core.last_seq)
        assert report.ok, report.lines()
        assert report.compared >= 6
        seen["view"] = risk.ledger_view()
        seen["seq"] = venue.core.last_seq
        await venue.stop()
        await settlement.stop()

    run(body)
    rows = ledger_rows(ledger_url)
    trades = {r[0] for r in rows if r[7] == "base"}
    assert len(trades) == 20  # one settlement transaction per trade, each with its legs
    assert sum(r[6] for r in rows if r[5] == "BTC") == 0
    fees = [r for r in rows if r[7] == "fee" and r[3] == "fees"]
    assert fees and all(r[6] > 0 for r in fees)

    # the journal alone rebuilds what the ledger holds: venue reconcile agrees
    path = tmp_path / "venue.toml"
    # the ledger's url (a line of its own; the custody chains' rpc_url stay)
    text = DEFAULT_CONFIG_PATH.read_text().replace('\nurl = ""', f'\nurl = "{ledger_url}"')
    path.write_text(text)
    args = ["reconcile", "--config", str(path), "--data-dir", str(tmp_path / "data")]
    assert run_cli(args) == 0

    # a tampered posting is found, and nothing is corrected
    engine = sa.create_engine(ledger_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE ledger_postings SET amount = amount + 1 "
                "WHERE seq = (SELECT max(seq) FROM ledger_postings WHERE leg = 'base') "
                "AND leg = 'base' AND amount > 0"
            )
        )
    engine.dispose()
    before = ledger_rows(ledger_url)
    assert run_cli(args) == 2
    assert ledger_rows(ledger_url) == before


def test_a_lost_ledger_is_rebuilt_from_the_journal(tmp_path: Path, sqlite_url: str) -> None:
    config = make_config(tmp_path / "data", sqlite_url)
    first: list[Any] = []

    async def trade_then_stop() -> None:
        venue = Venue(config)
        await venue.start()
        settlement = Settlement(venue, config.ledger, config.assets)  # type: ignore[arg-type]
        await settlement.start()
        await trading(venue)
        assert await settlement.wait_caught_up(venue.core.last_seq)
        await venue.stop()
        await settlement.stop()
        first.extend(ledger_rows(sqlite_url))

    run(trade_then_stop)
    Path(sqlite_url.removeprefix("sqlite:///")).unlink()  # the ledger is lost

    async def restart() -> None:
        venue = Venue(config)
        await venue.start()
        settlement = Settlement(venue, config.ledger, config.assets)  # type: ignore[arg-type]
        await settlement.start()
        assert await settlement.wait_caught_up(venue.core.last_seq)
        risk = venue.risk
        assert risk is not None
        assert reconcile(sqlite_url, risk.ledger_view(), venue.core.last_seq).ok
        # and it keeps settling what happens next
        await venue.submit(Deposit(3, "ETH", COIN))
        assert await settlement.wait_caught_up(venue.core.last_seq)
        await venue.stop()
        await settlement.stop()

    run(restart)
    rows = ledger_rows(sqlite_url)
    assert rows[: len(first)] == first
    assert rows[len(first) :][-1][3:7] == ("participant", 3, "ETH", COIN)


def test_fees_are_journaled_once_and_again_when_they_change(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data", f"sqlite:///{tmp_path / 'l.sqlite'}")
    journaled: list[str] = []

    async def start_stop(cfg: VenueConfig) -> None:
        venue = Venue(cfg)
        venue.subscribe(
            lambda seq, ts, events: journaled.extend(
                type(e).__name__ for e in events if type(e).__name__ == "FeesConfigured"
            )
        )
        await venue.start()
        await venue.stop()

    run(lambda: start_stop(config))
    run(lambda: start_stop(config))
    assert journaled == ["FeesConfigured"]
    assert config.fees is not None
    cheaper = dataclasses.replace(config.fees, charge_in="quote")
    run(lambda: start_stop(dataclasses.replace(config, fees=cheaper)))
    assert journaled == ["FeesConfigured", "FeesConfigured"]


def test_admin_money_endpoints(tmp_path: Path, sqlite_url: str) -> None:
    config = make_config(tmp_path / "data", sqlite_url)

    async def body() -> None:
        venue = Venue(config)
        await venue.start()
        settlement = Settlement(venue, config.ledger, config.assets)  # type: ignore[arg-type]
        await settlement.start()
        runner, host, port = await start_admin(venue, "127.0.0.1", 0)
        set_settlement(runner.app, venue, settlement)
        try:
            headers = admin_headers(config)
            async with aiohttp.ClientSession(f"http://{host}:{port}", headers=headers) as http:

                async def post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
                    async with http.post(path, json=body) as response:
                        return response.status, await response.json()

                status, data = await post(
                    "/v1/deposits", {"account": 7, "asset": "BTC", "amount": "1.5", "ref": "tx"}
                )
                assert status == 200
                assert data["events"] == [
                    {"type": "Deposited", "account": 7, "asset": "BTC", "amount": "1.50000000",
                     "ref": "tx"},
                    {"type": "BalanceChanged", "account": 0, "asset": "BTC",
                     "total": "-1.50000000", "locked": "0.00000000", "kind": "world"},
                    {"type": "BalanceChanged", "account": 7, "asset": "BTC",
                     "total": "1.50000000", "locked": "0.00000000", "kind": "participant"},
                ]  # fmt: skip
                for bad, code in (
                    ({"account": 7, "asset": "BTC", "amount": "0.000000001"}, -1111),
                    ({"account": 7, "asset": "DOGE", "amount": "1"}, -1130),
                    ({"account": 7, "asset": "BTC", "amount": "-1"}, -1130),
                    ({"account": 7, "asset": "BTC"}, -1102),
                    ({"account": 7, "asset": "BTC", "amount": "1", "memo": "x"}, -1103),
                ):
                    status, data = await post("/v1/deposits", bad)
                    assert (status, data.get("code")) == (400, code), (bad, data)
                seq = venue.core.last_seq
                status, data = await post(
                    "/v1/withdrawals",
                    {"account": 7, "asset": "BTC", "amount": "1", "withdrawalId": 5},
                )
                assert data["events"][0]["type"] == "WithdrawalHeld"
                async with http.get("/v1/accounts/7/balances") as response:
                    balances = await response.json()
                assert balances["balances"] == [
                    {"asset": "BTC", "total": "1.50000000", "locked": "1.00000000",
                     "free": "0.50000000"}
                ]  # fmt: skip
                status, data = await post("/v1/withdrawals/5/release", {})
                assert data["events"][0]["type"] == "WithdrawalReleased"
                # no [admin.approvals] limit here: every adjustment waits for a second person
                status, data = await post(
                    "/v1/adjustments", {"account": 7, "asset": "BTC", "amount": "-0.25"}
                )
                assert status == 202 and data["summary"] == "adjust account 7 by -0.25000000 BTC"
                before = venue.core.last_seq
                status, _ = await post(f"/v1/approvals/{data['approvalId']}", {})
                assert status == 405  # read with GET; nothing ran
                assert venue.core.last_seq == before
                done = await approve(http, config, data["approvalId"])
                assert done["result"]["events"][0]["amount"] == "-0.25000000"
                assert done["approval"]["status"] == "EXECUTED"
                status, data = await post("/v1/accounts/7/state", {"state": "FROZEN"})
                assert data["events"][0] == {"type": "AccountStateChanged", "account": 7,
                                             "state": "FROZEN"}  # fmt: skip
                status, data = await post(
                    "/v1/withdrawals",
                    {"account": 7, "asset": "BTC", "amount": "0.1", "withdrawalId": 6},
                )
                assert data["events"][0]["reason"] == "ACCOUNT_NOT_ACTIVE"
                status, data = await post("/v1/reconcile", {})
                assert status == 200 and data["status"] == "ok" and data["atSeq"] > seq
                async with http.get("/v1/ledger") as response:
                    ledger = await response.json()
                assert ledger["halted"] == "" and ledger["ledgerSeq"] == venue.core.last_seq
        finally:
            await runner.cleanup()
            await venue.stop()
            await settlement.stop()

    run(body)


def test_settlement_survives_a_database_outage(tmp_path: Path) -> None:
    """The ledger's database is away: the venue keeps trading, settlement retries, and once the
    database is back the ledger catches up without loss."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    config = make_config(tmp_path / "data", url)

    async def body() -> None:
        venue = Venue(config)
        await venue.start()
        settlement = Settlement(venue, config.ledger, config.assets)  # type: ignore[arg-type]
        await settlement.start()
        real_apply = settlement.projector.apply
        failures = []

        def failing(batch: Any) -> int:
            failures.append(len(batch))
            raise sa.exc.OperationalError("INSERT", {}, Exception("database is away"))

        settlement.projector.apply = failing  # type: ignore[method-assign]
        await trading(venue, rounds=5)
        for _ in range(100):
            if failures and settlement.error:
                break
            await asyncio.sleep(0.02)
        assert settlement.error and settlement.ledger_seq < venue.core.last_seq
        settlement.projector.apply = real_apply  # type: ignore[method-assign]
        assert await settlement.wait_caught_up(venue.core.last_seq, timeout_s=20)
        assert settlement.error == ""
        risk = venue.risk
        assert risk is not None
        assert reconcile(url, risk.ledger_view(), venue.core.last_seq).ok
        await venue.stop()
        await settlement.stop()

    run(body)
