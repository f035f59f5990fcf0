"""The deposit watcher's decisions over a chain model in process: confirmations, one credit per
deposit, dust, and reorganisations above and below the credit (the real test chains' end-to-end
runs are in tests/test_custody_e2e.py)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from pathlib import Path

import pytest

from custody.config import AssetRules
from custody.deposits import DepositWatcher, ReorgTooDeep, Transfer
from custody.store import CREDITED, DROPPED, DUST, PENDING, REVERSED, CustodyStore

ETH = AssetRules(
    asset="ETH", chain="ethereum", chain_decimals=18, contract=False, confirmations=12,
    withdraw_fee=500_000, withdraw_min=1_000_000, approval_above=10**10, daily_limit=10**12,
)  # fmt: skip
USDT = AssetRules(
    asset="USDT", chain="ethereum", chain_decimals=6, contract=True, confirmations=12,
    withdraw_fee=10**8, withdraw_min=2 * 10**8, approval_above=10**14, daily_limit=10**15,
)  # fmt: skip
DECIMALS = {"ETH": 8, "USDT": 8}
ALICE = "0x" + "aa" * 20


class ChainModel:
    """Blocks as lists of transfers, each with a hash of its own: a reorganisation gives the
    replaced heights new hashes."""

    def __init__(self) -> None:
        self.blocks: list[list[Transfer]] = [[]]
        self.hashes: list[str] = [self._new_hash(0)]
        self.made = 0

    def _new_hash(self, height: int) -> str:
        self.made = getattr(self, "made", 0) + 1
        return hashlib.sha256(f"{height}:{self.made}".encode()).hexdigest()

    def mine(self, *transfers: Transfer, empty: int = 0) -> None:
        """One block with ``transfers`` then ``empty`` empty ones (only the empty ones when
        there are no transfers and ``empty`` is given)."""
        first = [list(transfers)] if transfers or not empty else []
        for block in first + [[] for _ in range(empty)]:
            self.blocks.append(block)
            self.hashes.append(self._new_hash(len(self.blocks) - 1))

    def reorg(self, depth: int, keep: bool = False, extra: int = 1) -> int:
        """Replace the top ``depth`` blocks with ``depth + extra - 1`` new ones, the first
        holding the replaced transfers again if ``keep``; returns the first replaced height."""
        low = len(self.blocks) - depth
        dropped = [t for block in self.blocks[low:] for t in block]
        del self.blocks[low:]
        del self.hashes[low:]
        self.blocks.append(dropped if keep else [])
        self.hashes.append(self._new_hash(low))
        if depth + extra - 1 > 1:
            self.mine(empty=depth + extra - 2)
        return low

    def rehash_from(self, low: int) -> None:
        for h in range(low, len(self.hashes)):
            self.hashes[h] = self._new_hash(h)

    async def tip(self) -> int:
        return len(self.blocks) - 1

    async def block_hash(self, height: int) -> str | None:
        return self.hashes[height] if height < len(self.blocks) else None

    async def transfers(
        self, height: int, watched: Mapping[str, int]
    ) -> tuple[str, list[Transfer]]:
        return self.hashes[height], [t for t in self.blocks[height] if t.address in watched]


def deposit(txid: str, amount: int, asset: str = "ETH", index: int = 0) -> Transfer:
    return Transfer(asset, txid, index, ALICE, amount)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[ChainModel, CustodyStore, DepositWatcher]:
    chain = ChainModel()
    chain.mine(empty=5)
    store = CustodyStore(tmp_path / "custody.sqlite")
    store.add_address("ethereum", 7, ALICE, "deposit:ethereum:7", 0)
    watcher = DepositWatcher("ethereum", chain, store, {"ETH": ETH, "USDT": USDT}, DECIMALS)
    asyncio.run(watcher.poll(0))  # the first poll only marks where watching starts
    return chain, store, watcher


def poll(watcher: DepositWatcher, now: int = 1):  # type: ignore[no-untyped-def]
    return asyncio.run(watcher.poll(now))


def test_credited_once_at_its_confirmations_rounded_down_with_the_dust_kept(setup) -> None:  # type: ignore[no-untyped-def]
    chain, store, watcher = setup
    chain.mine(deposit("t1", 10**18 + 123))  # 1 ETH and 123 wei
    r = poll(watcher)
    d = store.deposit("ETH:t1:0")
    assert d is not None and d.status == PENDING and d.amount == 10**8 and d.dust == 123
    assert watcher.confirmations(d, r.tip) == 1 and r.credits == []
    assert store.dust() == {"ETH": 123}
    chain.mine(empty=10)  # 11 confirmations: not yet
    assert poll(watcher).credits == []
    chain.mine()
    credits = poll(watcher).credits
    assert [c.ref for c in credits] == ["ETH:t1:0"]
    watcher.credited(credits[0], 42, 2)
    assert store.deposit("ETH:t1:0").status == CREDITED  # type: ignore[union-attr]
    chain.mine(empty=3)
    assert poll(watcher).credits == []  # never twice
    assert store.dust() == {"ETH": 123}  # and the dust counted once


def test_a_deposit_below_the_venues_unit_is_all_dust(setup) -> None:  # type: ignore[no-untyped-def]
    chain, store, watcher = setup
    chain.mine(deposit("t2", 9_999_999_999))  # below 10**10 wei = 1e-8 ETH
    poll(watcher)
    assert store.deposit("ETH:t2:0").status == DUST  # type: ignore[union-attr]
    chain.mine(empty=20)
    assert poll(watcher).credits == []


def test_usdt_six_decimals_credited_exactly(setup) -> None:  # type: ignore[no-untyped-def]
    chain, _store, watcher = setup
    chain.mine(deposit("t3", 2_500_123_456, asset="USDT", index=4), empty=11)
    credits = poll(watcher).credits
    assert [(c.ref, c.deposit.amount, c.deposit.dust) for c in credits] == [
        ("USDT:t3:4", 250_012_345_600, 0)
    ]


def test_reorg_of_a_pending_deposit_drops_it_and_a_remined_one_is_kept(setup) -> None:  # type: ignore[no-untyped-def]
    chain, store, watcher = setup
    chain.mine(deposit("gone", 10**18), deposit("back", 2 * 10**18, index=1), empty=2)
    poll(watcher)
    # the block with both is replaced; "back" is mined again in the new branch, "gone" is not
    low = chain.reorg(3, keep=False)
    chain.blocks[low].append(deposit("back", 2 * 10**18, index=1))
    r = poll(watcher)
    assert r.reorg_depth == 3
    assert [d.ref for d in r.dropped] == ["ETH:gone:0"]
    assert store.deposit("ETH:gone:0").status == DROPPED  # type: ignore[union-attr]
    back = store.deposit("ETH:back:1")
    assert back is not None and back.status == PENDING and back.height == low
    assert r.reversals == []


def test_reorg_deeper_than_the_confirmations_reverses_the_credit(setup) -> None:  # type: ignore[no-untyped-def]
    chain, store, watcher = setup
    chain.mine(deposit("t4", 10**18), empty=11)
    r = poll(watcher)
    watcher.credited(r.credits[0], 50, 1)
    chain.reorg(12, keep=False, extra=2)
    r = poll(watcher)
    assert [(x.ref, x.depth) for x in r.reversals] == [("ETH:t4:0", 12)]
    watcher.reversed(r.reversals[0], 3)
    assert store.deposit("ETH:t4:0").status == REVERSED  # type: ignore[union-attr]
    assert poll(watcher).reversals == []  # reversed once
    # mined again later: credited again under a fresh ref, since the core never repeats one
    chain.mine(deposit("t4", 10**18), empty=11)
    r = poll(watcher)
    assert [c.ref for c in r.credits] == ["ETH:t4:0#1"]


def test_a_reversal_not_yet_made_is_asked_again(setup) -> None:  # type: ignore[no-untyped-def]
    chain, _store, watcher = setup
    chain.mine(deposit("t5", 10**18), empty=11)
    watcher.credited(poll(watcher).credits[0], 60, 1)
    chain.reorg(12)
    assert len(poll(watcher).reversals) == 1
    chain.mine()
    assert [x.ref for x in poll(watcher).reversals] == ["ETH:t5:0"]  # the venue did not ack


def test_a_fork_below_the_window_is_refused(setup) -> None:  # type: ignore[no-untyped-def]
    chain, _store, watcher = setup
    chain.mine(empty=watcher.window + 5)
    poll(watcher)
    chain.rehash_from(1)  # every block replaced
    with pytest.raises(ReorgTooDeep):
        poll(watcher)


def test_the_watcher_resumes_from_its_store(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain, store, watcher = setup
    chain.mine(deposit("t6", 10**18), empty=5)
    poll(watcher)
    again = DepositWatcher("ethereum", chain, store, {"ETH": ETH}, DECIMALS)
    chain.mine(empty=6)
    assert [c.ref for c in poll(again).credits] == ["ETH:t6:0"]


def test_an_address_added_between_polls_is_watched_from_the_next(setup) -> None:  # type: ignore[no-untyped-def]
    chain, store, watcher = setup
    bob = "0x" + "bb" * 20
    chain.mine(Transfer("ETH", "early", 0, bob, 10**18))
    poll(watcher)
    assert store.deposit("ETH:early:0") is None  # not a deposit address yet
    store.add_address("ethereum", 8, bob, "deposit:ethereum:8", 0)
    chain.mine(Transfer("ETH", "late", 0, bob, 10**18))
    poll(watcher)
    late = store.deposit("ETH:late:0")
    assert late is not None and late.account == 8


def test_addresses_read_inside_a_rolled_back_transaction_are_forgotten(setup) -> None:  # type: ignore[no-untyped-def]
    _chain, store, _watcher = setup
    with pytest.raises(RuntimeError), store.transaction():
        store.add_address("ethereum", 9, "0x" + "cc" * 20, "deposit:ethereum:9", 0)
        assert store.addresses("ethereum")["0x" + "cc" * 20] == 9
        raise RuntimeError("undone")
    # the next row takes the rolled-back one's rowid: only the rollback says the read is stale
    store.add_address("ethereum", 10, "0x" + "dd" * 20, "deposit:ethereum:10", 0)
    assert store.addresses("ethereum") == {ALICE: 7, "0x" + "dd" * 20: 10}


def test_a_poll_that_fails_midway_writes_nothing_and_the_next_finds_each_once(setup) -> None:  # type: ignore[no-untyped-def]
    chain, store, watcher = setup
    chain.mine(deposit("a", 10**18), deposit("b", 2 * 10**18), empty=3)
    fail_at = len(chain.blocks) - 2  # a block after the deposits' one
    read = chain.transfers

    async def failing(height: int, watched: Mapping[str, int]):  # type: ignore[no-untyped-def]
        if height == fail_at:
            raise ConnectionError("node went away")
        return await read(height, watched)

    cursor = store.cursor("ethereum")
    chain.transfers = failing  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        poll(watcher)
    assert store.deposits(chain="ethereum") == [] and store.cursor("ethereum") == cursor
    chain.transfers = read  # type: ignore[method-assign]
    poll(watcher)
    assert sorted(d.ref for d in store.deposits(chain="ethereum")) == ["ETH:a:0", "ETH:b:0"]
