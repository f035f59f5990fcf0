"""A deterministic stream of clearing events for the ledger's tests, a dump of a ledger database
that can be compared across runs, and (run as a script) a projector that applies the stream in
small batches, printing its mark after each, for the crash test to kill.

    python tests/ledger_stream.py URL SEED COUNT BATCH
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

if __name__ == "__main__":  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clearing.ledger.postings import BatchItem
from engine.events import (
    AccountStateChanged,
    BalanceAdjusted,
    BalanceChanged,
    Deposited,
    KillSwitchChanged,
    TradeSettled,
    WithdrawalConfirmed,
    WithdrawalHeld,
    WithdrawalReleased,
)
from engine.types import AccountState

ASSETS = {"BTC": 8, "USDT": 6, "ETH": 18}
ACCOUNTS = 12
T0 = 1_700_000_000_000_000_000


def stream(seed: int, count: int) -> list[BatchItem]:
    """``count`` commands (seq 1..count): the first ones fund every account, then trades (with
    fees, rebates and self-trades), deposits, withdrawals, adjustments, and events the ledger
    ignores. Amounts stay far below the funding, so nothing goes negative."""
    rng = random.Random(seed)
    items: list[BatchItem] = []
    trade_id = 0
    withdrawal_id = 0
    funded = [(a, asset) for a in range(1, ACCOUNTS + 1) for asset in ("BTC", "USDT")]
    for seq in range(1, count + 1):
        ts = T0 + seq * 1_000
        events: list[Any] = []
        if seq <= len(funded):
            account, asset = funded[seq - 1]
            events.append(Deposited(account, asset, 10**12, f"fund-{seq}"))
        else:
            for _ in range(rng.choice((0, 1, 1, 2, 3))):
                roll = rng.random()
                account = rng.randint(1, ACCOUNTS)
                if roll < 0.7:
                    trade_id += 1
                    buyer = account
                    seller = buyer if rng.random() < 0.05 else rng.randint(1, ACCOUNTS)
                    qty = rng.randint(1, 500)
                    price = rng.randint(90_000, 110_000)
                    base, quote = qty * 1_000, price * qty // 10
                    maker_is_buyer = rng.random() < 0.5
                    bfee = -(base // 5_000) if maker_is_buyer else base // 1_000
                    sfee = quote // 1_000 if maker_is_buyer else -(quote // 5_000)
                    if rng.random() < 0.1:
                        bfee = 0
                    events.append(
                        TradeSettled(
                            trade_id,
                            "BTC-USDT",
                            price,
                            qty,
                            buyer,
                            seller,
                            maker_is_buyer,
                            "BTC",
                            "USDT",
                            base,
                            quote,
                            "BTC",
                            bfee,
                            "USDT",
                            sfee,
                        )
                    )
                elif roll < 0.78:
                    events.append(Deposited(account, "ETH", rng.randint(1, 10**6), f"tx{seq}"))
                elif roll < 0.86:
                    withdrawal_id += 1
                    amount = rng.randint(1, 10**5)
                    ref = f"w{withdrawal_id}"
                    events.append(WithdrawalHeld(withdrawal_id, account, "USDT", amount, ref))
                    events.append(
                        WithdrawalConfirmed(withdrawal_id, account, "USDT", amount, f"chain{seq}")
                    )
                elif roll < 0.92:
                    amount = rng.randint(1, 10**4) * rng.choice((1, -1))
                    events.append(BalanceAdjusted(account, "BTC", amount, f"op{seq}"))
                elif roll < 0.96:
                    events.append(WithdrawalReleased(99, account, "USDT", 5, "refused"))
                else:
                    events.append(KillSwitchChanged(False))
                    events.append(AccountStateChanged(account, AccountState.ACTIVE))
                    events.append(BalanceChanged(account, "BTC", 10**12, 0, "participant"))
        items.append((seq, ts, events))
    return items


def batched(items: list[BatchItem], sizes: list[int]) -> list[list[BatchItem]]:
    """``items`` cut into batches of the given sizes, cycled."""
    out: list[list[BatchItem]] = []
    i = 0
    k = 0
    while i < len(items):
        size = sizes[k % len(sizes)]
        out.append(items[i : i + size])
        i += size
        k += 1
    return out


Dump = dict[str, Any]


def dump(url: str) -> Dump:
    """The ledger's content with accounts named by their key, not their id (ids are not
    stable across runs: a refused or killed batch may use up some)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            accounts = {
                r[0]: (r[1], int(r[2]), r[3], bool(r[4]))
                for r in conn.exec_driver_sql(
                    "SELECT id, kind, owner, asset, may_go_negative FROM ledger_accounts"
                )
            }

            def rows(sql: str) -> list[tuple[Any, ...]]:
                return [tuple(r) for r in conn.exec_driver_sql(sql)]

            txns = rows(
                "SELECT seq, idx, kind, ts, ref, instrument, price, qty, buyer, seller, "
                "buyer_is_maker, withdrawal_id FROM ledger_transactions ORDER BY seq, idx"
            )
            txns = [(*r[:10], None if r[10] is None else bool(r[10]), r[11]) for r in txns]
            postings = [
                (r[0], r[1], r[2], accounts[r[3]], r[4], r[5], r[6])
                for r in rows(
                    "SELECT seq, idx, n, account_id, asset, amount, leg FROM ledger_postings "
                    "ORDER BY seq, idx, n"
                )
            ]
            balances = sorted(
                (accounts[r[0]], r[1], r[2])
                for r in rows("SELECT account_id, balance, last_seq FROM ledger_balances")
            )
            state = rows("SELECT name, last_seq FROM projector_state ORDER BY name")
            assets = rows("SELECT asset, decimals FROM ledger_assets ORDER BY asset")
    finally:
        engine.dispose()
    return {
        "accounts": sorted(accounts.values()),
        "transactions": txns,
        "postings": postings,
        "balances": balances,
        "state": state,
        "assets": assets,
    }


def _main(argv: list[str]) -> None:
    from clearing.ledger import Projector

    url, seed, count, batch = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    items = stream(seed, count)
    with Projector(url, assets=ASSETS) as projector:
        projector.migrate()
        print("ready", flush=True)
        for chunk in batched(items, [batch, batch // 2 + 1, batch * 2]):
            print(projector.apply(chunk), flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    _main(sys.argv[1:])
