"""From clearing events to ledger rows: balanced transactions, their postings and the balance
deltas of a batch.

Only the money movements count: ``TradeSettled``, ``Deposited``, ``WithdrawalConfirmed``,
``BalanceAdjusted``, ``DepositReversed`` and ``CustodyMoved``. Every other event (the engine's,
holds and releases of withdrawals, which live only in the core's locked balance, account states,
fees configured) is ignored.

- ``TradeSettled``: one ``trade`` transaction. Base: seller -base_amount, buyer +base_amount;
  quote: buyer -quote_amount, seller +quote_amount; each non-zero fee: the side -fee, ``fees``
  +fee in the fee's asset (a negative fee is a rebate and flows the other way by its sign).
  A self-trade posts every leg too.
- ``Deposited``: ``world`` -amount, participant +amount.
- ``WithdrawalConfirmed``: participant -amount, ``world`` +(amount - fee), ``fees`` +fee (the
  network fee custody deducted; no posting when 0).
- ``BalanceAdjusted``: participant +amount, ``adjustments`` -amount (amount signed).
- ``DepositReversed``: participant -amount, ``world`` +amount (a credited chain deposit taken
  back; nothing when the whole of it was a shortfall).
- ``CustodyMoved``: one ``custody`` transaction: ``source`` -amount, ``target`` +amount; the
  network fee ``source`` -fee, ``custody_chain`` +fee in its own asset (a token's transfer pays
  its gas in ether). The custody accounts are the coins the venue holds, apart from what it owes:
  a chain deposit posts both (``Deposited``, then ``custody_chain`` -> ``custody_omnibus``).

Every transaction balances per asset before anything is written (an invariant: a failure is a
bug upstream, and the batch is refused with ``LedgerError``): deposits, withdrawals and
adjustments are checked; a trade's postings are pairs of opposite amounts in one asset, so it
balances by construction and is not re-checked (it runs for every trade).

A posting's account is the ledger account id when the cache knows it, otherwise its key
``(kind, owner, asset)``; the projector resolves the keys (creating the accounts) and patches
the rows before writing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from clearing.ledger.schema import (
    ADJUSTMENT,
    ADJUSTMENTS,
    CUSTODY,
    CUSTODY_CHAIN,
    DEPOSIT,
    DEPOSIT_REVERSAL,
    FEES,
    LEG_BASE,
    LEG_FEE,
    LEG_QUOTE,
    PARTICIPANT,
    TRADE,
    VENUE_KINDS,
    VENUE_OWNER,
    WITHDRAWAL,
    WORLD,
)
from engine.events import (
    BalanceAdjusted,
    CustodyMoved,
    Deposited,
    DepositReversed,
    TradeSettled,
    WithdrawalConfirmed,
)


class LedgerError(Exception):
    """A batch the ledger refuses (an account that may not go negative would, an event that
    does not balance or carries an invalid amount); nothing of the batch was written."""


AccountKey = tuple[str, int, str]  # kind, owner, asset
Account = int | AccountKey  # a ledger account id, or its key while unresolved
#: seq, idx, kind, ts, ref, instrument, price, qty, buyer, seller, buyer_is_maker, withdrawal_id
TxnRow = tuple[
    int, int, str, int, str, str | None, int | None, int | None, int | None, int | None,
    bool | None, int | None,
]  # fmt: skip
#: seq, idx, n, account, asset, amount, leg
PostingRow = tuple[int, int, int, Account, str, int, str]
#: (seq, ts, events of the command with that seq)
BatchItem = tuple[int, int, Sequence[object]]

TRANSACTION_COLUMNS = (
    "seq", "idx", "kind", "ts", "ref", "instrument", "price", "qty", "buyer", "seller",
    "buyer_is_maker", "withdrawal_id",
)  # fmt: skip
POSTING_COLUMNS = ("seq", "idx", "n", "account_id", "asset", "amount", "leg")


def may_go_negative(key: AccountKey) -> bool:
    """Whether an account of this kind may hold less than zero (participants never)."""
    kind = key[0]
    if kind == PARTICIPANT:
        return False
    try:
        return VENUE_KINDS[kind]
    except KeyError:
        raise LedgerError(f"unknown ledger account kind {kind!r}") from None


@dataclass(slots=True)
class Built:
    """The rows of a batch, ready to be resolved and written. ``touched`` holds, per account
    posted to, ``[sum of its postings, its first seq, its last seq]`` in the batch."""

    transactions: list[TxnRow] = field(default_factory=list)
    postings: list[PostingRow] = field(default_factory=list)
    touched: dict[Account, list[int]] = field(default_factory=dict)
    missing: set[AccountKey] = field(default_factory=set)  # keys the cache did not know

    @property
    def deltas(self) -> dict[Account, int]:
        """Account -> the sum of its postings in the batch."""
        return {a: t[0] for a, t in self.touched.items()}

    def resolve(self, ids: Mapping[AccountKey, int]) -> None:
        """Replace account keys by ids (``ids`` must hold every key in ``missing``)."""
        if not self.missing:
            return
        self.postings = [
            r if type(r[3]) is int else (r[0], r[1], r[2], ids[r[3]], r[4], r[5], r[6])  # type: ignore[index]
            for r in self.postings
        ]
        # Within one batch an account is either known (an id everywhere) or not (its key
        # everywhere), so a key never meets its own id here.
        table = self.touched
        for acct in [a for a in table if isinstance(a, tuple)]:
            table[ids[acct]] = table.pop(acct)
        self.missing = set()


def build(
    items: Sequence[BatchItem], ids: Mapping[AccountKey, int], out: Built | None = None
) -> Built:
    """The transactions, postings and balance deltas of ``items`` (all of them: the caller
    has already dropped what was applied before), appended to ``out`` (a new ``Built`` when
    None; the projector builds a batch piece by piece into one). Raises ``LedgerError`` on an
    event that is invalid or does not balance.

    Lean on purpose (it runs for every trade settled; measured with ``bench.settlement``, from
    14 to 6 us a trade): postings are appended as tuples inline, an account's sums are one
    list per account (one dict look-up a posting), a trade's side pays its fee from the
    account that receives that asset (looked up once), and the fees account of each asset is
    looked up once a batch."""
    if out is None:
        out = Built()
    txns = out.transactions
    rows = out.postings
    add_txn = txns.append
    add = rows.append
    touched = out.touched
    touched_get = touched.get
    missing = out.missing
    get_id = ids.get
    fee_accounts: dict[str, Account] = {}
    # module globals as locals: the loop below runs for every event of every command
    trade_cls, deposit_cls, withdrawal_cls, adjustment_cls = (
        TradeSettled, Deposited, WithdrawalConfirmed, BalanceAdjusted
    )  # fmt: skip
    money = {trade_cls, deposit_cls, withdrawal_cls, adjustment_cls, DepositReversed, CustodyMoved}
    participant, leg_base, leg_quote, trade_kind = PARTICIPANT, LEG_BASE, LEG_QUOTE, TRADE

    def acct(kind: str, owner: int, asset: str) -> Account:
        key = (kind, owner, asset)
        found = get_id(key)
        if found is None:
            missing.add(key)
            return key
        return found

    def post(seq: int, idx: int, n: int, a: Account, asset: str, amount: int, leg: str) -> None:
        add((seq, idx, n, a, asset, amount, leg))
        t = touched_get(a)
        if t is None:
            touched[a] = [amount, seq, seq]
        else:
            t[0] += amount
            t[2] = seq

    for seq, ts, events in items:
        idx = 0
        for ev in events:
            cls = type(ev)
            if cls not in money:
                continue
            first = len(rows)
            if cls is trade_cls:
                e: TradeSettled = ev  # type: ignore[assignment]
                base = e.base_asset
                quote = e.quote_asset
                ba = e.base_amount
                qa = e.quote_amount
                if ba < 0 or qa < 0:
                    raise LedgerError(
                        f"seq {seq}: trade {e.trade_id} has a negative amount (base {ba}, "
                        f"quote {qa})"
                    )
                buyer = e.buyer
                seller = e.seller
                add_txn(
                    (seq, idx, trade_kind, ts, str(e.trade_id), e.instrument, e.price, e.qty, buyer,
                     seller, e.buyer_is_maker, None)
                )  # fmt: skip
                # (ids start at 1: "or" falls back to acct only for an unknown account)
                sb = get_id((participant, seller, base)) or acct(participant, seller, base)
                bb = get_id((participant, buyer, base)) or acct(participant, buyer, base)
                bq = get_id((participant, buyer, quote)) or acct(participant, buyer, quote)
                sq = get_id((participant, seller, quote)) or acct(participant, seller, quote)
                add((seq, idx, 0, sb, base, -ba, leg_base))
                add((seq, idx, 1, bb, base, ba, leg_base))
                add((seq, idx, 2, bq, quote, -qa, leg_quote))
                add((seq, idx, 3, sq, quote, qa, leg_quote))
                # the four accounts' sums, each fee taken from its side's sum at once below
                bfee = e.buyer_fee
                sfee = e.seller_fee
                n = 4
                for a, amount in ((sb, -ba), (bb, ba), (bq, -qa), (sq, qa)):
                    t = touched_get(a)
                    if t is None:
                        touched[a] = [amount, seq, seq]
                    else:
                        t[0] += amount
                        t[2] = seq
                if bfee:
                    fa = e.buyer_fee_asset
                    pay = bb if fa == base else bq if fa == quote else acct(PARTICIPANT, buyer, fa)
                    fees = fee_accounts.get(fa) or acct(FEES, VENUE_OWNER, fa)
                    fee_accounts[fa] = fees
                    post(seq, idx, 4, pay, fa, -bfee, LEG_FEE)
                    post(seq, idx, 5, fees, fa, bfee, LEG_FEE)
                    n = 6
                if sfee:
                    fa = e.seller_fee_asset
                    pay = sq if fa == quote else sb if fa == base else acct(PARTICIPANT, seller, fa)
                    fees = fee_accounts.get(fa) or acct(FEES, VENUE_OWNER, fa)
                    fee_accounts[fa] = fees
                    post(seq, idx, n, pay, fa, -sfee, LEG_FEE)
                    post(seq, idx, n + 1, fees, fa, sfee, LEG_FEE)
                # No _check_balanced here: every posting above comes in a pair of opposite
                # amounts in one asset, so a trade balances by construction (the check cost
                # 2 us a trade, a tenth of the budget at 50,000 trades/s).
            elif cls is deposit_cls:
                d: Deposited = ev  # type: ignore[assignment]
                _positive(seq, "deposit", d.amount)
                add_txn((seq, idx, DEPOSIT, ts, d.ref, None, None, None, None, None, None, None))
                post(seq, idx, 0, acct(WORLD, VENUE_OWNER, d.asset), d.asset, -d.amount, DEPOSIT)
                post(seq, idx, 1, acct(PARTICIPANT, d.account, d.asset), d.asset, d.amount, DEPOSIT)
            elif cls is withdrawal_cls:
                w: WithdrawalConfirmed = ev  # type: ignore[assignment]
                _positive(seq, "withdrawal", w.amount)
                add_txn(
                    (seq, idx, WITHDRAWAL, ts, w.ref, None, None, None, None, None, None,
                     w.withdrawal_id)
                )  # fmt: skip
                a = acct(PARTICIPANT, w.account, w.asset)
                post(seq, idx, 0, a, w.asset, -w.amount, WITHDRAWAL)
                out_amount = w.amount - w.fee
                post(
                    seq, idx, 1, acct(WORLD, VENUE_OWNER, w.asset), w.asset, out_amount, WITHDRAWAL
                )
                if w.fee:
                    a = acct(FEES, VENUE_OWNER, w.asset)
                    post(seq, idx, 2, a, w.asset, w.fee, LEG_FEE)
            elif cls is DepositReversed:
                r: DepositReversed = ev  # type: ignore[assignment]
                if r.amount == 0:  # all of it a shortfall: the account was frozen instead
                    continue
                _positive(seq, "deposit reversal", r.amount)
                add_txn(
                    (seq, idx, DEPOSIT_REVERSAL, ts, r.ref, None, None, None, None, None, None,
                     None)
                )  # fmt: skip
                a = acct(PARTICIPANT, r.account, r.asset)
                post(seq, idx, 0, a, r.asset, -r.amount, DEPOSIT_REVERSAL)
                a = acct(WORLD, VENUE_OWNER, r.asset)
                post(seq, idx, 1, a, r.asset, r.amount, DEPOSIT_REVERSAL)
            elif cls is CustodyMoved:
                m: CustodyMoved = ev  # type: ignore[assignment]
                if (
                    type(m.amount) is not int
                    or type(m.fee) is not int
                    or m.amount < 0
                    or (m.fee < 0 or m.amount + m.fee == 0)
                ):
                    raise LedgerError(f"seq {seq}: custody movement of {m.amount!r}, fee {m.fee!r}")
                add_txn((seq, idx, CUSTODY, ts, m.ref, None, None, None, None, None, None, None))
                n = 0
                if m.amount:
                    a = acct(m.source, VENUE_OWNER, m.asset)
                    post(seq, idx, 0, a, m.asset, -m.amount, CUSTODY)
                    a = acct(m.target, VENUE_OWNER, m.asset)
                    post(seq, idx, 1, a, m.asset, m.amount, CUSTODY)
                    n = 2
                if m.fee:
                    a = acct(m.source, VENUE_OWNER, m.fee_asset)
                    post(seq, idx, n, a, m.fee_asset, -m.fee, LEG_FEE)
                    a = acct(CUSTODY_CHAIN, VENUE_OWNER, m.fee_asset)
                    post(seq, idx, n + 1, a, m.fee_asset, m.fee, LEG_FEE)
            else:
                j: BalanceAdjusted = ev  # type: ignore[assignment]
                if type(j.amount) is not int or j.amount == 0:
                    raise LedgerError(f"seq {seq}: adjustment of {j.amount!r}")
                add_txn((seq, idx, ADJUSTMENT, ts, j.ref, None, None, None, None, None, None, None))
                a = acct(PARTICIPANT, j.account, j.asset)
                post(seq, idx, 0, a, j.asset, j.amount, ADJUSTMENT)
                a = acct(ADJUSTMENTS, VENUE_OWNER, j.asset)
                post(seq, idx, 1, a, j.asset, -j.amount, ADJUSTMENT)
            if cls is not trade_cls:
                _check_balanced(rows, first)
            idx += 1
    return out


def _positive(seq: int, what: str, amount: int) -> None:
    if type(amount) is not int or amount <= 0:
        raise LedgerError(f"seq {seq}: {what} of {amount!r}: the amount must be positive")


def _check_balanced(rows: list[PostingRow], start: int) -> None:
    """The invariant: the postings of one transaction sum to zero in every asset."""
    sums: dict[str, int] = {}
    for r in rows[start:]:
        sums[r[4]] = sums.get(r[4], 0) + r[5]
    for asset, total in sums.items():
        if total:
            r = rows[start]
            raise LedgerError(
                f"seq {r[0]} transaction {r[1]} does not balance: {asset} sums to {total}"
            )
