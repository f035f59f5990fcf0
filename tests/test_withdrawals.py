"""The withdrawal pipeline's decisions with the real core in process and a chain modelled by a
payer that records what it was asked: idempotency by client id, the policy's refusals, approvals,
one batch in flight, nonces never reused or skipped, and every crash point resumed without a
second payout (the real chains and a real SIGKILL are in tests/test_custody_e2e.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from clearing.risk import RiskEngine
from custody.config import AssetRules, CustodyConfig, HsmConfig
from custody.store import CustodyStore
from custody.withdrawals import (
    AWAITING_APPROVAL,
    COMPLETED,
    FAILED,
    QUEUED,
    REJECTED,
    InsufficientHot,
    PayoutRefused,
    Withdrawals,
    WithdrawRefused,
)
from engine.commands import Deposit, RecordCustody
from engine.core import Core
from engine.instrument import spec_from_decimals

COIN = 10**8
DAY_MS = 86_400_000
ETH = AssetRules(
    asset="ETH", chain="ethereum", chain_decimals=18, contract=False, confirmations=12,
    withdraw_fee=500_000, withdraw_min=1_000_000, approval_above=20 * COIN,
    daily_limit=100 * COIN,
)  # fmt: skip
USDT = AssetRules(
    asset="USDT", chain="ethereum", chain_decimals=6, contract=True, confirmations=12,
    withdraw_fee=COIN, withdraw_min=10 * COIN, approval_above=50_000 * COIN,
    daily_limit=1_000_000 * COIN,
)  # fmt: skip
GOOD = "0x" + "ab" * 20


class Venue:
    """The real core, commands sequenced in process."""

    def __init__(self) -> None:
        spec = spec_from_decimals(
            "ETH-USDT", "ETH", "USDT", "0.01", "0.0001", "0.0001", "1000", "0", 1000, "2500"
        )
        self.risk = RiskEngine([spec], {"ETH": 8, "USDT": 8})
        self.core = Core([spec], risk=self.risk)
        self.seq = 0
        self.commands: list[Any] = []

    async def submit(self, cmd: Any) -> list[Any]:
        self.seq += 1
        cmd.seq, cmd.ts = self.seq, self.seq
        self.commands.append(cmd)
        events = self.core.apply(cmd)
        assert not self.core.check_invariants()
        return events

    async def available(self, account: int, asset: str) -> int:
        total, locked = self.risk.balance(account, asset)
        return total - locked


class Payer:
    """A chain that records each transaction it was given and confirms on request."""

    chain = "ethereum"
    batch_limit = 1

    def __init__(self) -> None:
        self.nonce = 0  # the node's pending count
        self.sent: dict[str, str] = {}  # txid -> raw
        self.built: list[tuple[str, list[tuple[str, int]], int | None]] = []
        self.confirmed: dict[str, int] = {}
        self.short = False
        self.refuse = False

    def valid_address(self, address: str) -> bool:
        return address.startswith("0x") and len(address) == 42

    async def next_nonce(self) -> int | None:
        return self.nonce

    async def build(
        self, asset: str, payouts: list[tuple[str, int]], nonce: int | None
    ) -> tuple[str, str, int]:
        if self.short:
            raise InsufficientHot("hot wallet short")
        if self.refuse:
            raise PayoutRefused("refused for good")
        self.built.append((asset, payouts, nonce))
        txid = f"tx-{nonce}-{len(self.built)}"
        return f"raw:{txid}", txid, 21_000

    async def broadcast(self, raw: str) -> None:
        txid = raw.removeprefix("raw:")
        if txid not in self.sent:
            self.nonce += 1
        self.sent[txid] = raw

    async def fee_paid(self, txid: str) -> int | None:
        return None

    async def confirmations(self, txid: str) -> int | None:
        if txid not in self.sent:
            return None
        return self.confirmed.get(txid, 0)


class Clock:
    def __init__(self) -> None:
        self.ms = 1_700_000_000_000

    def __call__(self) -> int:
        return self.ms


def config(**kw: Any) -> CustodyConfig:
    return CustodyConfig(
        enabled=True, hsm=HsmConfig(), chains={}, assets={"ETH": ETH, "USDT": USDT},
        whitelist_cooldown_s=86400, **kw,
    )  # fmt: skip


@pytest.fixture
def world(tmp_path: Path) -> tuple[Venue, Payer, Withdrawals, Clock, list[Any]]:
    venue, payer, clock = Venue(), Payer(), Clock()
    approvals: list[Any] = []
    asyncio.run(venue.submit(Deposit(7, "ETH", 50 * COIN)))
    w = Withdrawals(
        config(), CustodyStore(tmp_path / "c.sqlite"), {"ETH": 8, "USDT": 8}, {"ethereum": payer},
        submit=venue.submit, available=venue.available, now_ms=clock,
        request_approval=lambda row, why: approvals.append((row.id, why)) or f"a{row.id}",
    )  # fmt: skip
    w.whitelist_add(7, "ethereum", GOOD, "mine")
    clock.ms += DAY_MS  # the cool-down passed
    return venue, payer, w, clock, approvals


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_the_same_client_id_never_makes_a_second_withdrawal(world) -> None:  # type: ignore[no-untyped-def]
    venue, _, w, _, _ = world
    first = run(w.apply(7, "ETH", GOOD, COIN // 2, "w-1"))
    again = run(w.apply(7, "ETH", GOOD, COIN // 2, "w-1"))
    assert first.id == again.id and first.status == QUEUED
    assert venue.risk.balance(7, "ETH") == (50 * COIN, COIN // 2)  # held once
    assert run(w.apply(7, "ETH", GOOD, COIN // 2, "w-2")).id != first.id


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"asset": "DOGE"}, -4018),
        ({"address": "0x1234"}, -4033),
        ({"amount": 999_999}, -4022),
        ({"network": "BTC"}, -4018),
        ({"amount": 101 * COIN}, -4023),  # over the daily limit
        ({"amount": 60 * COIN, "account": 7}, -4026),  # more than the balance (the core's)
    ],
)
def test_refusals_say_why_and_hold_nothing(world, kw: dict[str, Any], code: int) -> None:  # type: ignore[no-untyped-def]
    venue, _, w, _, _ = world
    args = {"account": 7, "asset": "ETH", "address": GOOD, "amount": COIN, "network": None}
    args.update(kw)
    with pytest.raises(WithdrawRefused) as refused:
        run(
            w.apply(
                args["account"],
                args["asset"],
                args["address"],
                args["amount"],
                "x",
                args["network"],
            )
        )
    assert refused.value.code == code
    assert venue.risk.balance(7, "ETH") == (50 * COIN, 0)


def test_a_usdt_amount_the_chain_cannot_carry_is_refused(world) -> None:  # type: ignore[no-untyped-def]
    _, _, w, _, _ = world
    with pytest.raises(WithdrawRefused) as refused:
        run(w.apply(7, "USDT", GOOD, 20 * COIN + 1, "u"))  # 1e-8 USDT: below USDT's 6 decimals
    assert refused.value.code == -4021


def test_large_amounts_new_addresses_and_flagged_accounts_wait_for_approval(world) -> None:  # type: ignore[no-untyped-def]
    venue, payer, w, _, approvals = world
    big = run(w.apply(7, "ETH", GOOD, 21 * COIN, "big"))
    new = run(w.apply(7, "ETH", "0x" + "cd" * 20, COIN, "new"))
    w.whitelist_add(7, "ethereum", "0x" + "ef" * 20, "fresh")
    fresh = run(w.apply(7, "ETH", "0x" + "ef" * 20, COIN, "fresh"))  # still in its cool-down
    w.flagged = lambda account: account == 7
    flagged = run(w.apply(7, "ETH", GOOD, COIN, "flagged"))  # small, whitelisted, but flagged
    w.flagged = lambda account: False
    assert [r.status for r in (big, new, fresh, flagged)] == [AWAITING_APPROVAL] * 4
    assert [a[0] for a in approvals] == [big.id, new.id, fresh.id, flagged.id]
    assert approvals[3][1] == ["account flagged by compliance"]
    assert "amount above" in approvals[0][1][0] and "whitelist" in approvals[1][1][0]
    run(w.process("ethereum"))
    assert payer.built == []  # nothing waiting for approval is paid
    assert run(w.approved(big.id)).status == QUEUED  # type: ignore[union-attr]
    rejected = run(w.reject(new.id, "unknown beneficiary"))
    assert rejected.status == REJECTED  # type: ignore[union-attr]
    assert venue.risk.balance(7, "ETH") == (50 * COIN, 23 * COIN)  # the others still held


def test_one_payout_per_nonce_in_order_and_the_fee_to_the_venue(world) -> None:  # type: ignore[no-untyped-def]
    venue, payer, w, _, _ = world
    a = run(w.apply(7, "ETH", GOOD, COIN, "a"))
    b = run(w.apply(7, "ETH", GOOD, 2 * COIN, "b"))
    run(w.process("ethereum"))  # batch of a: built, signed, broadcast
    run(w.process("ethereum"))  # not confirmed: b waits for a's batch
    assert [(x[1], x[2]) for x in payer.built] == [
        ([(GOOD, (COIN - ETH.withdraw_fee) * 10**10)], 0)
    ]
    payer.confirmed[next(iter(payer.sent))] = 1
    run(w.process("ethereum"))  # a paid
    assert w.get(a.id).status == COMPLETED  # type: ignore[union-attr]
    run(w.process("ethereum"))
    assert [x[2] for x in payer.built] == [0, 1]  # the next nonce, none skipped
    assert venue.risk.ledger_view()[("fees", 0, "ETH")] == ETH.withdraw_fee
    # the payout left the hot wallet in the books only once confirmed; with nothing recorded in
    # the hot wallet (no sweep here) the core refused it, and custody went on all the same
    [paid_out] = [c for c in venue.commands if isinstance(c, RecordCustody)]
    assert (paid_out.source, paid_out.target, paid_out.amount, paid_out.fee) == (
        "hot_wallet", "custody_chain", COIN - ETH.withdraw_fee, 1,
    )  # fmt: skip
    assert venue.risk.ledger_view().get(("hot_wallet", 0, "ETH"), 0) == 0
    assert venue.risk.balance(7, "ETH") == (49 * COIN, 2 * COIN)
    assert w.get(b.id).status != COMPLETED  # type: ignore[union-attr]


def test_a_short_hot_wallet_waits_and_a_refused_payout_gives_the_funds_back(world) -> None:  # type: ignore[no-untyped-def]
    venue, payer, w, _, _ = world
    a = run(w.apply(7, "ETH", GOOD, COIN, "a"))
    payer.short = True
    with pytest.raises(InsufficientHot):
        run(w.process("ethereum"))
    payer.short, payer.refuse = False, True
    run(w.process("ethereum"))
    assert w.get(a.id).status == FAILED  # type: ignore[union-attr]
    assert venue.risk.balance(7, "ETH") == (50 * COIN, 0)


def restart(w: Withdrawals, venue: Venue, payer: Payer, clock: Clock) -> Withdrawals:
    """Custody as a new process finds it: the same store and venue, nothing in memory."""
    again = Withdrawals(
        w.config, w.store, w.decimals, {"ethereum": payer}, submit=venue.submit,
        available=venue.available, now_ms=clock,
    )  # fmt: skip
    run(again.recover())
    return again


@pytest.mark.parametrize("step", ["batched", "signed", "broadcast", "paid"])
def test_a_crash_at_each_step_resumes_with_one_payout(world, step: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    venue, payer, w, clock, _ = world
    a = run(w.apply(7, "ETH", GOOD, COIN, "a"))

    class Crash(Exception):
        pass

    def crash(name: str) -> None:
        if name == step:
            raise Crash(name)

    monkeypatch.setattr("custody.withdrawals.crash_point", crash)
    with pytest.raises(Crash):
        for _ in range(4):
            run(w.process("ethereum"))
            for txid in payer.sent:
                payer.confirmed[txid] = 1
    monkeypatch.setattr("custody.withdrawals.crash_point", lambda name: None)
    w = restart(w, venue, payer, clock)
    for _ in range(4):
        run(w.process("ethereum"))
        for txid in payer.sent:
            payer.confirmed[txid] = 1
    assert w.get(a.id).status == COMPLETED  # type: ignore[union-attr]
    assert len(payer.sent) == 1  # one transaction ever reached the chain
    assert len({x[2] for x in payer.built}) == 1  # a rebuild kept the nonce
    paid = [c for c in venue.commands if type(c).__name__ == "PayWithdrawal"]
    assert venue.risk.balance(7, "ETH") == (49 * COIN, 0)  # debited once
    assert len(paid) in (1, 2)  # a resent payout after "paid" is refused by the core


def test_a_crash_after_the_hold_is_routed_at_the_restart(world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    venue, payer, w, clock, _ = world

    class Crash(Exception):
        pass

    def crash(name: str) -> None:
        if name == "held":
            raise Crash(name)

    monkeypatch.setattr("custody.withdrawals.crash_point", crash)
    with pytest.raises(Crash):
        run(w.apply(7, "ETH", GOOD, COIN, "a"))
    monkeypatch.setattr("custody.withdrawals.crash_point", lambda name: None)
    w = restart(w, venue, payer, clock)
    assert w.by_client_id(7, "a").status == QUEUED  # type: ignore[union-attr]
    assert venue.risk.balance(7, "ETH") == (50 * COIN, COIN)


def test_a_crash_between_the_request_and_its_hold_is_held_once(world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    venue, payer, w, clock, _ = world

    class Crash(Exception):
        pass

    def crash(name: str) -> None:
        if name == "requested":
            raise Crash(name)

    monkeypatch.setattr("custody.withdrawals.crash_point", crash)
    with pytest.raises(Crash):
        run(w.apply(7, "ETH", GOOD, COIN, "a"))
    monkeypatch.setattr("custody.withdrawals.crash_point", lambda name: None)
    assert venue.risk.balance(7, "ETH") == (50 * COIN, 0)
    w = restart(w, venue, payer, clock)
    assert venue.risk.balance(7, "ETH") == (50 * COIN, COIN)
    assert run(w.apply(7, "ETH", GOOD, COIN, "a")).status == QUEUED  # the client retries: same
    assert venue.risk.balance(7, "ETH") == (50 * COIN, COIN)


def test_funds_deposited_too_recently_cannot_leave(tmp_path: Path) -> None:
    """``deposit_hold_s``: a credited deposit younger than the hold is not withdrawable; the
    rest of the balance is."""
    from custody.store import CREDITED, DepositRow

    venue, payer, clock = Venue(), Payer(), Clock()
    run(venue.submit(Deposit(7, "ETH", 10 * COIN)))
    store = CustodyStore(tmp_path / "c.sqlite")
    w = Withdrawals(
        config(deposit_hold_s=3600), store, {"ETH": 8, "USDT": 8}, {"ethereum": payer},
        submit=venue.submit, available=venue.available, now_ms=clock,
    )  # fmt: skip
    w.whitelist_add(7, "ethereum", GOOD, "mine")
    clock.ms += DAY_MS
    store.put_deposit(
        DepositRow(
            "ETH:t:0", "ethereum", "ETH", 7, GOOD, "t", 0, 6 * 10**18, 6 * COIN, 0, 5, "h",
            CREDITED, clock.ms - 60_000, 3, clock.ms - 60_000,
        )
    )  # fmt: skip
    with pytest.raises(WithdrawRefused) as refused:
        run(w.apply(7, "ETH", GOOD, 5 * COIN, "too-much"))  # 10 held, 6 of them a minute old
    assert refused.value.code == -4026 and "deposited in the last" in refused.value.msg
    assert run(w.apply(7, "ETH", GOOD, 4 * COIN, "fine")).status == QUEUED
    clock.ms += 3600_000
    assert run(w.apply(7, "ETH", GOOD, 5 * COIN, "later")).status == QUEUED


# ---------------------------------------------------------------- the hot wallet's band
WEI = 10**18
COLD_ADDRESS = "0x" + "c0" * 20
HOT_ADDRESS = "0x" + "a0" * 20


class ColdSource:
    """The cold wallet modelled: records each refill it signed."""

    address = COLD_ADDRESS

    def __init__(self) -> None:
        self.built: list[tuple[str, list[tuple[str, int]], int | None]] = []

    async def build(
        self, asset: str, payouts: list[tuple[str, int]], nonce: int | None
    ) -> tuple[str, str, int]:
        self.built.append((asset, payouts, nonce))
        txid = f"refill-{nonce}-{len(self.built)}"
        return f"raw:{txid}", txid, 150_000


def held(hot: int, cold: int = 0, deposits: int = 0, in_flight: int = 0) -> dict[str, int]:
    return {"hot": hot, "deposits": deposits, "cold": cold, "in_flight": in_flight}


def band_world(world):  # type: ignore[no-untyped-def]
    venue, payer, w, _clock, _ = world
    cold = ColdSource()
    refills: list[int] = []
    w.cold["ethereum"] = cold
    w.request_refill = lambda row: refills.append(row.id) or f"r{row.id}"
    # the books know what the wallets hold (as confirmed sweeps and moves would have recorded)
    for kind in ("hot_wallet", "cold_wallet"):
        run(venue.submit(RecordCustody("ETH", "custody_chain", kind, 200 * COIN, "", 0, kind)))
    return venue, payer, w, cold, refills


def custody_books(venue: Venue) -> dict[str, int]:
    """custody account -> its ETH, as the core keeps it."""
    view = venue.risk.ledger_view()
    return {k: view.get((k, 0, "ETH"), 0) for k in ("hot_wallet", "cold_wallet", "custody_chain")}


def core_commands(venue: Venue) -> list[str]:
    return [type(c).__name__ for c in venue.commands]


def settle(w: Withdrawals, payer: Payer) -> None:
    """Rounds until the open batch is mined and recorded."""
    for _ in range(4):
        run(w.process("ethereum"))
        for txid in payer.sent:
            payer.confirmed[txid] = 1


def test_the_band_decides_from_the_midpoint_and_the_cold_wallet() -> None:
    from custody.band import decide

    inside = decide(ETH, hot=5, deposits=45, cold=50, in_flight=0, busy=False)
    assert (inside.to_cold, inside.refill, inside.outside) == (0, 0, False)
    above = decide(ETH, hot=40 * WEI, deposits=10 * WEI, cold=50 * WEI, in_flight=0, busy=False)
    assert above.to_cold == 34 * WEI and above.outside  # down to 6 % of 100
    below = decide(ETH, hot=WEI, deposits=0, cold=99 * WEI, in_flight=0, busy=False)
    assert below.refill == 5 * WEI and below.to_cold == 0
    poor = decide(ETH, hot=WEI, deposits=95 * WEI, cold=4 * WEI, in_flight=0, busy=False)
    assert poor.refill == 0 and poor.outside  # the cold wallet cannot cover it: an alert only
    assert decide(ETH, hot=WEI, deposits=0, cold=99 * WEI, in_flight=0, busy=True).refill == 0


def test_above_the_band_one_cold_payout_of_the_excess_without_the_core(world) -> None:  # type: ignore[no-untyped-def]
    from custody.band import step
    from custody.withdrawals import COLD

    venue, payer, w, _, _ = band_world(world)
    before = core_commands(venue)
    excess = 100 * WEI + 123  # wei below the venue's unit stay in the hot wallet
    decision, row = step(w, ETH, 8, held(excess), COLD_ADDRESS, HOT_ADDRESS)
    assert row is not None and row.kind == COLD and row.account == 0 and row.status == QUEUED
    assert row.net_chain == 94 * WEI and row.amount == 94 * COIN and decision.outside
    assert step(w, ETH, 8, held(excess), COLD_ADDRESS, HOT_ADDRESS)[1] is None  # never twice
    settle(w, payer)
    assert payer.built == [("ETH", [(COLD_ADDRESS, 94 * WEI)], 0)]
    assert w.get(row.id).status == COMPLETED  # type: ignore[union-attr]
    # the venue's own money: no Withdraw, no payout; the books move it from hot to cold, the
    # network fee (21,000 wei) rounded up to a venue unit
    assert core_commands(venue) == [*before, "RecordCustody"]
    assert venue.commands[-1].ref == f"ETH:{next(iter(payer.sent))}"
    assert custody_books(venue) == {
        "hot_wallet": 200 * COIN - 94 * COIN - 1, "cold_wallet": 294 * COIN,
        "custody_chain": -400 * COIN + 1,
    }  # fmt: skip
    assert w.open_internal("ETH") == []


def test_below_the_band_one_refill_for_the_approvers_then_built_from_cold(world) -> None:  # type: ignore[no-untyped-def]
    from custody.band import step
    from custody.withdrawals import REFILL

    venue, payer, w, cold, refills = band_world(world)
    before = core_commands(venue)
    _, row = step(w, ETH, 8, held(WEI, cold=99 * WEI), COLD_ADDRESS, HOT_ADDRESS)
    assert row is not None and row.kind == REFILL and row.status == AWAITING_APPROVAL
    assert row.net_chain == 5 * WEI and row.address == HOT_ADDRESS and row.approval == f"r{row.id}"
    assert step(w, ETH, 8, held(WEI, cold=99 * WEI), COLD_ADDRESS, HOT_ADDRESS)[1] is None
    assert refills == [row.id]  # filed once
    settle(w, payer)
    assert cold.built == [] and payer.built == []  # nothing moves before the approval
    payer.nonce = 3  # the hot key's pending count: the refill takes it under the pipeline's rule
    assert run(w.approved(row.id)).status == QUEUED  # type: ignore[union-attr]
    settle(w, payer)
    assert cold.built == [("ETH", [(HOT_ADDRESS, 5 * WEI)], 3)] and payer.built == []
    assert w.get(row.id).status == COMPLETED  # type: ignore[union-attr]
    # cold to hot in the books; the hot key sent the multisig's execution: its gas from hot
    assert core_commands(venue) == [*before, "RecordCustody", "RecordCustody"]
    assert [c.ref for c in venue.commands[-2:]] == ["ETH:refill-3-1", "ETH:refill-3-1:gas"]
    assert custody_books(venue) == {
        "hot_wallet": 205 * COIN - 1, "cold_wallet": 195 * COIN, "custody_chain": -400 * COIN + 1,
    }  # fmt: skip


def test_a_rejected_refill_moves_nothing(world) -> None:  # type: ignore[no-untyped-def]
    from custody.band import step

    venue, payer, w, cold, _refills = band_world(world)
    before = core_commands(venue)
    _, row = step(w, ETH, 8, held(WEI, cold=99 * WEI), COLD_ADDRESS, HOT_ADDRESS)
    assert row is not None
    assert run(w.reject(row.id, "no")).status == REJECTED  # type: ignore[union-attr]
    settle(w, payer)
    assert cold.built == [] and payer.built == [] and core_commands(venue) == before
    assert w.open_internal("ETH") == []


def test_a_refill_filed_before_the_approvers_were_there_is_filed_later(world) -> None:  # type: ignore[no-untyped-def]
    from custody.band import step

    _, _, w, _, refills = band_world(world)
    w.request_refill = lambda row: ""  # the staff store not open yet
    _, row = step(w, ETH, 8, held(WEI, cold=99 * WEI), COLD_ADDRESS, HOT_ADDRESS)
    assert row is not None and row.approval == ""
    w.request_refill = lambda row: refills.append(row.id) or f"r{row.id}"
    w.file_approvals()
    w.file_approvals()
    assert refills == [row.id] and w.get(row.id).approval == f"r{row.id}"  # type: ignore[union-attr]


def test_a_store_made_before_the_kind_column_gets_it(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "create table withdrawals (id integer primary key, account integer not null, "
        "client_id text not null, asset text not null, chain text not null, address text not "
        "null, amount integer not null, fee integer not null, net_chain text not null, status "
        "text not null, reason text not null default '', approval text not null default '', "
        "batch integer not null default 0, txid text not null default '', requested_ms integer "
        "not null, updated_ms integer not null, unique (account, client_id))"
    )
    db.execute(
        "insert into withdrawals values (1, 7, 'c', 'ETH', 'ethereum', 'x', 1, 0, '1', "
        "'completed', '', '', 0, '', 0, 0)"
    )
    db.commit()
    db.close()
    store = CustodyStore(path)
    store.close()
    store = CustodyStore(path)  # a second open leaves it as it is
    row = store.db.execute("select kind from withdrawals where id = 1").fetchone()
    assert row == ("user",)
    store.close()


def test_a_queued_payout_larger_than_the_hot_wallet_gets_a_refill_covering_it(world) -> None:  # type: ignore[no-untyped-def]
    from custody.band import decide, step

    _, payer, w, _, refills = band_world(world)
    payer.short = True  # the hot wallet cannot pay it now
    paying = run(w.apply(7, "ETH", GOOD, 10 * COIN, "big"))
    with pytest.raises(InsufficientHot):
        run(w.process("ethereum"))
    assert w.get(paying.id).status == "batched" and w.pending("ETH") == 9995 * WEI // 1000  # type: ignore[union-attr]
    hot = 6 * WEI  # inside its band of 100, yet short of the payout
    assert decide(ETH, hot, 0, 94 * WEI, 0, busy=False).refill == 0
    _, row = step(w, ETH, 8, held(hot, cold=94 * WEI), COLD_ADDRESS, HOT_ADDRESS)
    assert row is not None and row.net_chain == 9995 * WEI // 1000  # 6 % kept after the payout
    assert refills == [row.id]
    above = decide(ETH, 30 * WEI, 0, 70 * WEI, 0, busy=False, pending=10 * WEI)
    assert above.to_cold == 14 * WEI  # the excess never takes what the queue needs


def test_an_approved_refill_goes_before_the_payout_waiting_for_it(world) -> None:  # type: ignore[no-untyped-def]
    from custody.band import step

    _, payer, w, cold, _ = band_world(world)
    payer.short = True
    paying = run(w.apply(7, "ETH", GOOD, 10 * COIN, "big"))
    with pytest.raises(InsufficientHot):
        run(w.process("ethereum"))
    _, refill = step(w, ETH, 8, held(6 * WEI, cold=94 * WEI), COLD_ADDRESS, HOT_ADDRESS)
    assert refill is not None
    run(w.approved(refill.id))
    with pytest.raises(InsufficientHot):  # the payout's batch, unsigned, gives way
        run(w.process("ethereum"))
    assert w.get(paying.id).status == QUEUED  # type: ignore[union-attr]
    run(w.process("ethereum"))  # the refill built from cold and sent
    payer.confirmed = dict.fromkeys(payer.sent, 1)
    run(w.process("ethereum"))  # and recorded
    assert w.get(refill.id).status == COMPLETED  # type: ignore[union-attr]
    assert cold.built == [("ETH", [(HOT_ADDRESS, refill.net_chain)], 0)]  # its nonce, reused
    payer.short = False
    settle(w, payer)
    assert payer.built == [("ETH", [(GOOD, 9995 * WEI // 1000)], 1)]
    assert w.get(paying.id).status == COMPLETED  # type: ignore[union-attr]


def test_a_fall_of_hot_and_cold_beyond_the_payouts_is_a_loss() -> None:
    from custody.band import DropWatch

    paid: dict[str, int] = {"ETH": 0}
    watch = DropWatch()
    assert watch.look("ETH", held(10 * WEI, cold=90 * WEI), lambda a, s: paid[a], 1) == 0
    paid["ETH"] = 2 * WEI  # a payout and its fee since
    assert watch.look("ETH", held(8 * WEI, cold=90 * WEI), lambda a, s: paid[a], 2) == 0
    assert watch.look("ETH", held(3 * WEI, cold=80 * WEI, in_flight=5), lambda a, s: 0, 3) == 0
    lost = watch.look("ETH", held(3 * WEI, cold=90 * WEI), lambda a, s: 0, 4)
    assert lost == 5 * WEI  # 98 -> 93 with nothing paid out


def test_a_wallet_holding_less_than_the_books_twice_with_nothing_moving_is_short() -> None:
    from custody.book import BooksWatch

    watch = BooksWatch()
    books = {"hot": 100, "deposits": 50, "cold": 900}
    even = {"hot": 100, "deposits": 52, "cold": 900}  # dust at the deposit addresses: fine
    assert watch.look("ETH", even, books, moving=False) == []
    short = {"hot": 60, "deposits": 52, "cold": 900}
    assert watch.look("ETH", short, books, moving=False) == []  # once: a reorg being reversed
    assert watch.look("ETH", short, books, moving=True) == []  # a move open: not looked at
    assert watch.look("ETH", short, books, moving=False) == [("hot", 60, 100)]
    assert watch.look("ETH", even, books, moving=False) == []  # back: forgotten
    assert watch.look("ETH", short, books, moving=False) == []
    assert watch.look("BTC", short, books, moving=False) == []  # per asset


def test_a_batch_open_is_the_chain_moving(world) -> None:  # type: ignore[no-untyped-def]
    _venue, payer, w, _, _ = world
    assert not w.moving("ethereum")
    run(w.apply(7, "ETH", GOOD, COIN, "m"))
    run(w.process("ethereum"))  # built, signed, sent: not recorded until confirmed
    assert w.moving("ethereum")
    settle(w, payer)
    assert not w.moving("ethereum")


def test_payouts_gather_over_the_batch_window_into_one_transaction(world) -> None:  # type: ignore[no-untyped-def]
    _venue, payer, w, clock, _ = world
    payer.batch_limit = 3  # a chain whose transaction pays many outputs, as Bitcoin's
    assert w.config.batch_window_ms == 2000
    run(w.apply(7, "ETH", GOOD, COIN, "a"))
    run(w.process("ethereum"))
    assert payer.built == []  # the window is open
    clock.ms += 1_000
    run(w.apply(7, "ETH", GOOD, 2 * COIN, "b"))
    run(w.process("ethereum"))
    assert payer.built == []
    clock.ms += 1_000  # the oldest has waited the window: both go in one transaction
    run(w.process("ethereum"))
    assert [len(payouts) for _asset, payouts, _nonce in payer.built] == [2]
    settle(w, payer)
    for n in range(3):  # a full transaction goes at once
        run(w.apply(7, "ETH", GOOD, COIN, f"full-{n}"))
    run(w.process("ethereum"))
    assert [len(payouts) for _asset, payouts, _nonce in payer.built] == [2, 3]
