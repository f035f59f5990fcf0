"""A token's sweep with the real core and withdrawal pipeline in process and a chain modelled by
payers that record what they were asked: the gas asked of the hot wallet first (a ``gas`` move
rounded up to a venue unit), the transfer signed only once that move is confirmed, both booked;
a failed gas move frees the deposits; an ether sweep keeps off an address a token sweep is
using. (The real chains are in tests/test_custody_e2e.py.)"""

from __future__ import annotations

from typing import Any

import test_withdrawals
from test_withdrawals import COIN, Payer, run, settle

from custody import book
from custody.eth_payer import NeedsGas
from custody.store import CREDITED, DepositRow
from custody.sweeps import Sweeper
from custody.token_sweeps import TokenSweeper
from custody.withdrawals import COMPLETED, FAILED, GAS
from engine.commands import ChainDeposit, RecordCustody

world = test_withdrawals.world  # the fixture: the real core and pipeline, a modelled chain
DEP = "0x" + "de" * 20
LABEL = "deposit:ethereum:7"
GAS_WEI = 2 * 10**15 + 5  # the transfer's gas at the node's fees: not a whole venue unit


class TokenPayer:
    """The chain as a token sweep sees it: short of gas until the move is paid."""

    chain = "ethereum"

    def __init__(self) -> None:
        self.gas_paid = False
        self.sent: dict[str, str] = {}
        self.confirmed: dict[str, int] = {}
        self.built = 0

    async def sweep_token(self, source: Any, asset: str) -> tuple[str, str, int, int] | None:
        if not self.gas_paid:
            raise NeedsGas(GAS_WEI)
        self.built += 1
        return f"raw:sweep-{self.built}", f"sweep-{self.built}", 3000 * 10**6, GAS_WEI

    async def broadcast(self, raw: str) -> None:
        self.sent[raw.removeprefix("raw:")] = raw

    async def confirmations(self, txid: str) -> int | None:
        return self.confirmed.get(txid, 0) if txid in self.sent else None

    async def fee_paid(self, txid: str) -> int | None:
        return GAS_WEI // 2  # what the transfer burnt: less than the most it could


def books(venue: Any) -> dict[tuple[str, str], int]:
    view = venue.risk.ledger_view()
    kinds = (book.OMNIBUS, book.HOT, book.CHAIN)
    return {(k, a): v for (k, _o, a), v in view.items() if k in kinds and v}


def usdt_world(world: Any) -> tuple[Any, Payer, Any, TokenPayer, TokenSweeper, list[Any]]:
    venue, payer, w, clock, _ = world
    store = w.store
    store.add_address("ethereum", 7, DEP, LABEL, clock())
    store.put_deposit(
        DepositRow(
            "USDT:0xd:1",
            "ethereum",
            "USDT",
            7,
            DEP,
            "0xd",
            1,
            3000 * 10**6,
            3000 * COIN,
            0,
            5,
            "0xb",
            CREDITED,
            clock(),
            1,
            clock(),
        )
    )
    # the books as the credit and an earlier sweep left them
    run(venue.submit(ChainDeposit(7, "USDT", 3000 * COIN, "USDT:0xd:1")))
    run(venue.submit(RecordCustody("ETH", book.CHAIN, book.HOT, COIN, "", 0, "seed")))
    token = TokenPayer()
    recorded: list[Any] = []

    async def record(cmd: RecordCustody) -> bool:
        recorded.append(cmd)
        return await book.record(venue.submit, cmd)

    sweeper = TokenSweeper(
        "USDT", store, token, lambda label: object() if label == LABEL else None, w, clock,  # type: ignore[arg-type]
        record=record, decimals=(8, 6), gas_asset="ETH", gas_decimals=(8, 18),
    )  # fmt: skip
    return venue, payer, w, token, sweeper, recorded


def test_the_gas_first_then_all_the_tokens_and_both_in_the_books(world) -> None:  # type: ignore[no-untyped-def]
    venue, payer, w, token, sweeper, recorded = usdt_world(world)
    run(sweeper.run())
    [move] = w.open_internal("ETH")
    assert (move.kind, move.address, move.status) == (GAS, DEP, "queued")
    assert move.net_chain == 2 * 10**15 + 10**10  # rounded up to a whole venue unit
    [row] = sweeper.history()
    assert (row["status"], row["gas_move"], row["credited"]) == ("gas", move.id, 3000 * COIN)
    assert sweeper.sweepable() == {}  # its deposit is taken
    run(sweeper.run())
    assert token.built == 0  # nothing is signed before the gas is there
    settle(w, payer)  # the gas move paid and confirmed: hot wallet -> deposit addresses
    assert w.get(move.id).status == COMPLETED  # type: ignore[union-attr]
    assert books(venue)[(book.OMNIBUS, "ETH")] == 200_001
    # it left the hot wallet as a payout does: the band's drop watch does not call it a loss
    assert w.paid_since("ETH", 0) == move.net_chain + 21_000  # and the move's fee
    token.gas_paid = True
    run(sweeper.run())  # signed
    run(sweeper.run())  # sent
    assert list(token.sent) == ["sweep-1"]
    token.confirmed["sweep-1"] = 1
    run(sweeper.run())  # confirmed: booked, done
    assert sweeper.history()[0]["status"] == "done"
    assert [(c.asset, c.source, c.target, c.amount, c.fee, c.ref) for c in recorded] == [
        ("USDT", book.OMNIBUS, book.HOT, 3000 * COIN, 0, "USDT:sweep-1"),
        ("ETH", book.OMNIBUS, book.CHAIN, 0, 100_001, "ETH:sweep-1:gas"),  # burnt, rounded up
    ]
    after = books(venue)
    assert (book.OMNIBUS, "USDT") not in after and after[(book.HOT, "USDT")] == 3000 * COIN
    assert after[(book.OMNIBUS, "ETH")] == 200_001 - 100_001  # the unburnt gas stays there
    run(sweeper.run())
    assert token.built == 1 and len(recorded) == 2  # once


def test_a_failed_gas_move_frees_the_deposits_for_a_later_sweep(world) -> None:  # type: ignore[no-untyped-def]
    _venue, payer, w, token, sweeper, _ = usdt_world(world)
    run(sweeper.run())
    [move] = w.open_internal("ETH")
    payer.refuse = True
    settle(w, payer)
    assert w.get(move.id).status == FAILED  # type: ignore[union-attr]
    run(sweeper.run())
    assert sweeper.history()[0]["status"] == "failed"
    assert sweeper.sweepable() == {DEP: LABEL}
    assert token.built == 0


def test_an_ether_sweep_keeps_off_an_address_a_token_sweep_is_using(world) -> None:  # type: ignore[no-untyped-def]
    venue, _payer, w, _token, sweeper, _ = usdt_world(world)
    store = w.store
    store.put_deposit(
        DepositRow(
            "ETH:0xe:0",
            "ethereum",
            "ETH",
            7,
            DEP,
            "0xe",
            0,
            10**18,
            COIN,
            0,
            6,
            "0xc",
            CREDITED,
            1,
            2,
            1,
        )
    )

    async def nothing(_c: dict[str, str]) -> list[Any]:
        return []

    ether = Sweeper("ethereum", "ETH", store, nothing, _payer.broadcast, _payer.confirmations, int)
    assert ether.sweepable() == {DEP: LABEL}
    assert not ether.moving() and not sweeper.moving()
    run(sweeper.run())  # the token sweep starts: waiting for its gas at DEP
    assert ether.sweepable() == {}
    assert ether.moving() and sweeper.moving()  # the chain is moving, whichever asset
    assert ether.unswept({DEP: LABEL})[0].ref == "ETH:0xe:0"  # each sweeper its own asset
    assert venue is not None


def test_a_gas_move_waiting_for_ether_does_not_hold_back_the_refill(world) -> None:  # type: ignore[no-untyped-def]
    from custody.band import step
    from custody.withdrawals import REFILL

    _venue, _payer, w, _token, sweeper, _ = usdt_world(world)
    w.cold["ethereum"] = object()  # a cold wallet to refill from
    run(sweeper.run())  # a gas move queued; the hot wallet has almost no ether
    eth = w.config.assets["ETH"]
    low = {"hot": 10**14, "deposits": 0, "cold": 99 * 10**18, "in_flight": 0}
    _decision, row = step(w, eth, 8, low, "0x" + "c0" * 20, "0x" + "a1" * 20)
    assert row is not None and row.kind == REFILL
