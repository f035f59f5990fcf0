"""Withdrawals: the request and its policy, approvals, batches, signing, broadcast, payout.

Every step is written to custody's store before the next one starts, and the venue's journal
holds the money side (``Withdraw`` holds the amount at request; ``PayWithdrawal`` pays it out
with its network fee to the venue; ``ReleaseWithdrawal`` gives it back), so after a crash at any
step (``custody.crashpoints``) the pipeline resumes where it was:

- ``requested`` (row written, hold unknown): the hold is asked again under the same id; the core
  answers DUPLICATE_WITHDRAWAL if it had taken it, which custody reads as held.
- a batch ``building`` (members chosen, nothing signed and stored): built and signed again with
  the same nonce; since nothing unstored was ever broadcast, nothing can go out twice.
- ``signed`` or ``broadcast``: the stored raw transaction is broadcast again, byte for byte; a
  node that already has it says so, and the chain can include it only once.
- ``paid``: PayWithdrawal is sent again for each member; the core refuses a second payout
  (UNKNOWN_WITHDRAWAL), which custody reads as paid.

Policy (``apply``): the asset and network, the address for its chain, the minimum, the amount
carried exactly on chain after the fee, the per-account daily limit of the asset (UTC day of the
venue's clock), funds deposited too recently (``deposit_hold_s``), then the core's own checks
(balance, account state, KYC tier limits) when it takes the hold. A withdrawal above the asset's
``approval_above``, to an address not on the account's whitelist for at least the cool-down, or
from a flagged account waits for m-of-n approvers (the staff approvals; never the requester).

One batch per chain is in flight at a time: Bitcoin pays every queued withdrawal of the asset in
one transaction (many outputs), gathered for ``batch_window_ms`` from the oldest one queued (or
until the transaction is full); Ethereum pays one withdrawal per transaction with the hot
address's next nonce, kept in the batch row before signing, so a nonce is never reused or
skipped. Said plainly: waiting for a batch to confirm before the next keeps Bitcoin's change and
Ethereum's nonces simple; a busier venue would chain unconfirmed change.

The venue's own money moves through the same pipeline (``internal``), as rows of account 0 with
no hold and no payout in the core (nothing changes hands between participants; the books record
the move between custody's accounts once confirmed, ``custody.book``): kind ``cold`` pays the
hot wallet's excess to the cold wallet (built by the hot payer), kind ``gas`` pays a deposit
address the ether its token sweep needs (``custody.token_sweeps``), kind ``refill`` pays the
cold wallet's coins back to the hot wallet once the approvers agreed (built by the chain's
``ColdSource``: two cold keys, sent with the pipeline's nonce rule on Ethereum). A transaction
that is no payout at all (the cold multisig's deployment) is a batch without members
(``internal_batch``), so it takes its nonce under the same rule.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from custody import book
from custody.config import (
    CustodyConfig,
    decimal_text,
    from_chain_units,
    native_asset,
    network_of,
    to_chain_units,
)
from custody.crashpoints import crash_point
from custody.store import CREDITED, CustodyStore
from engine.commands import Origin, PayWithdrawal, RecordCustody, ReleaseWithdrawal, Withdraw
from engine.events import ClearingReject, ClearingRejected, WithdrawalConfirmed, WithdrawalHeld
from engine.types import Door

__all__ = [
    "COLD",
    "GAS",
    "REFILL",
    "USER",
    "ColdSource",
    "InsufficientHot",
    "Payer",
    "PayoutRefused",
    "WithdrawRefused",
    "WithdrawalRow",
    "Withdrawals",
]

log = logging.getLogger("custody.withdrawals")

REQUESTED = "requested"
HELD = "held"
AWAITING_APPROVAL = "awaiting_approval"
QUEUED = "queued"
BATCHED = "batched"
COMPLETED = "completed"
REJECTED = "rejected"
FAILED = "failed"
#: Binance's withdrawal statuses: 2 awaiting approval, 3 rejected, 4 processing, 5 failure,
#: 6 completed.
BINANCE_STATUS = {
    REQUESTED: 4, HELD: 4, QUEUED: 4, BATCHED: 4, AWAITING_APPROVAL: 2, REJECTED: 3,
    FAILED: 5, COMPLETED: 6,
}  # fmt: skip
OPEN = (REQUESTED, HELD, AWAITING_APPROVAL, QUEUED, BATCHED)

# batch statuses
BUILDING = "building"
SIGNED = "signed"
BROADCAST = "broadcast"
DONE = "done"
BATCH_FAILED = "failed"

MS_PER_DAY = 86_400_000

# withdrawal kinds
USER = "user"  # an account's withdrawal
COLD = "cold"  # the hot wallet's excess to the cold wallet
REFILL = "refill"  # the cold wallet to the hot wallet, approved by m of n
GAS = "gas"  # ether from the hot wallet to a deposit address, for a token sweep's gas


class WithdrawRefused(Exception):
    """A request refused before anything was held: Binance's wallet code and a message."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


class InsufficientHot(Exception):
    """The hot wallet cannot cover a payout now: the batch waits (and custody alerts)."""


class PayoutRefused(Exception):
    """The chain refused a transaction for good (not a node being down): its members fail and
    their holds are released."""


class Payer(Protocol):
    """One chain's hot wallet: builds and signs payouts in the token, sends them, follows them."""

    chain: str
    #: payouts one transaction carries (Bitcoin: many outputs; Ethereum: 1)
    batch_limit: int

    def valid_address(self, address: str) -> bool: ...

    async def next_nonce(self) -> int | None:
        """The hot address's next nonce (None for a chain without nonces)."""
        ...

    async def build(
        self, asset: str, payouts: list[tuple[str, int]], nonce: int | None
    ) -> tuple[str, str, int]:
        """Sign a transaction paying ``(address, chain units)``: (raw hex, txid, fee paid in
        the chain's unit). Raises ``PayoutRefused`` when it can never be built (the hot wallet
        cannot cover it is not that: it raises ``InsufficientHot``)."""
        ...

    async def broadcast(self, raw: str) -> None:
        """Send; a transaction the node already has is not an error."""
        ...

    async def confirmations(self, txid: str) -> int | None:
        """Blocks on top of the transaction's (1: just mined); 0 in the mempool; None unknown."""
        ...

    async def fee_paid(self, txid: str) -> int | None:
        """What a mined transaction paid the network, in the chain's unit; None when the fee
        it was built with is what it paid (Bitcoin) or it is not known."""
        ...


class ColdSource(Protocol):
    """One chain's cold wallet: signs a refill of the hot wallet with two cold keys."""

    address: str

    async def build(
        self, asset: str, payouts: list[tuple[str, int]], nonce: int | None
    ) -> tuple[str, str, int]:
        """As ``Payer.build``, paid from the cold wallet (``InsufficientHot`` when it cannot
        cover it now)."""
        ...


@dataclass(frozen=True, slots=True)
class WithdrawalRow:
    id: int
    account: int
    client_id: str
    asset: str
    chain: str
    address: str
    amount: int  # venue units, the fee included (what leaves the account)
    fee: int  # venue units
    net_chain: int  # what the address receives, chain units
    status: str
    reason: str
    approval: str
    batch: int
    txid: str
    requested_ms: int
    updated_ms: int
    kind: str = USER


Submit = Callable[[Any], Awaitable[list[Any]]]


class Withdrawals:
    def __init__(
        self,
        config: CustodyConfig,
        store: CustodyStore,
        venue_decimals: Mapping[str, int],
        payers: Mapping[str, Payer],
        *,
        submit: Submit,
        available: Callable[[int, str], Awaitable[int]],
        now_ms: Callable[[], int],
        flagged: Callable[[int], bool] = lambda _a: False,
        request_approval: Callable[[WithdrawalRow, list[str]], str] | None = None,
        confirmations: int = 1,
    ) -> None:
        self.config = config
        self.store = store
        self.db = store.db
        self.decimals = venue_decimals
        self.payers = payers
        self.submit = submit
        self.available = available
        self.now_ms = now_ms
        self.flagged = flagged
        self.request_approval = request_approval
        self.confirmations = confirmations
        #: chain -> its cold wallet (refills); set by whoever opened the cold token
        self.cold: dict[str, ColdSource] = {}
        #: files a refill with the approvers: the approval's id ("" when not filed yet)
        self.request_refill: Callable[[WithdrawalRow], str] | None = None

    # ------------------------------------------------------------------ requests
    async def apply(
        self,
        account: int,
        asset: str,
        address: str,
        amount: int,
        client_id: str,
        network: str | None = None,
        origin: Origin | None = None,
    ) -> WithdrawalRow:
        """A withdrawal request; the same ``client_id`` of the account again answers the first
        one and never makes a second."""
        if client_id:
            found = self.by_client_id(account, client_id)
            if found is not None:
                return found
        rules = self.config.assets.get(asset)
        if rules is None:
            raise WithdrawRefused(-4018, f"{asset} cannot be withdrawn here.")
        payer = self.payers.get(rules.chain)
        if payer is None:
            raise WithdrawRefused(-4019, f"Withdrawals of {asset} are closed.")
        if network is not None and network != network_of(rules.chain):
            raise WithdrawRefused(
                -4018, f"{asset} is withdrawn on network {network_of(rules.chain)}."
            )
        if not payer.valid_address(address):
            raise WithdrawRefused(-4033, "Illegal withdrawal address.")
        if amount < rules.withdraw_min:
            raise WithdrawRefused(-4022, "The amount is below the minimum withdrawal.")
        net_chain = to_chain_units(
            amount - rules.withdraw_fee, self.decimals[asset], rules.chain_decimals
        )
        if net_chain is None:
            raise WithdrawRefused(
                -4021, f"The amount after the fee must be carried exactly on {rules.chain}."
            )
        now = self.now_ms()
        today = self.day_total(account, asset, now)
        if today + amount > rules.daily_limit:
            raise WithdrawRefused(-4023, "The amount is over the daily withdrawal limit.")
        if self.config.deposit_hold_s:
            recent = self._recent_deposits(account, asset, now)
            if recent and await self.available(account, asset) - recent < amount:
                raise WithdrawRefused(
                    -4026,
                    "Funds deposited in the last "
                    f"{self.config.deposit_hold_s // 3600 or 1} hours cannot be withdrawn yet.",
                )
        wid = self._next_id()
        row = WithdrawalRow(
            wid, account, client_id or f"venue-{wid}", asset, rules.chain, address, amount,
            rules.withdraw_fee, net_chain, REQUESTED, "", "", 0, "", now, now,
        )  # fmt: skip
        self._put(row)
        crash_point("requested")
        row = await self._hold(row, origin)
        return row

    async def _hold(self, row: WithdrawalRow, origin: Origin | None = None) -> WithdrawalRow:
        cmd = Withdraw(
            row.account, row.asset, row.amount, row.id, f"{row.chain}:{row.address}",
            origin=origin or _origin(row.id),
        )  # fmt: skip
        events = await self.submit(cmd)
        refused = [e for e in events if isinstance(e, ClearingRejected)]
        if any(isinstance(e, WithdrawalHeld) for e in events) or (
            refused and refused[0].reason is ClearingReject.DUPLICATE_WITHDRAWAL
        ):
            row = self._set(row, status=HELD)
            crash_point("held")
            return self._route(row)
        why = refused[0] if refused else None
        row = self._set(row, status=REJECTED, reason=why.detail if why else "refused")
        if why is not None:
            code, msg = _refusal(why.reason)
            raise WithdrawRefused(code, msg)
        raise WithdrawRefused(-4000, "The withdrawal was refused.")

    def _route(self, row: WithdrawalRow) -> WithdrawalRow:
        """Straight to the queue, or to the approvers with the reasons."""
        rules = self.config.assets[row.asset]
        reasons = []
        if row.amount > rules.approval_above:
            reasons.append("amount above the approval threshold")
        if not self.whitelisted(row.account, row.chain, row.address):
            reasons.append("address not on the whitelist for the cool-down")
        if self.flagged(row.account):
            reasons.append("account flagged by compliance")
        if reasons and self.request_approval is not None:
            approval = self.request_approval(row, reasons)
            return self._set(
                row, status=AWAITING_APPROVAL, approval=approval, reason="; ".join(reasons)
            )
        return self._set(row, status=QUEUED)

    def file_approvals(self) -> None:
        """Withdrawals waiting for approvers whose approval could not be filed yet (the staff
        store was not open) get it now."""
        if self.request_approval is None:
            return
        for row in self._rows("status = ? and approval = ''", (AWAITING_APPROVAL,)):
            if row.kind == REFILL:
                approval = self.request_refill(row) if self.request_refill else ""
            else:
                approval = self.request_approval(row, row.reason.split("; "))
            if approval:
                self._set(row, approval=approval)

    async def approved(self, wid: int) -> WithdrawalRow | None:
        """The approvers agreed: the withdrawal joins its asset's queue."""
        row = self.get(wid)
        if row is None or row.status != AWAITING_APPROVAL:
            return row
        return self._set(row, status=QUEUED)

    async def reject(self, wid: int, why: str) -> WithdrawalRow | None:
        """An approver (or the policy) refused it: its hold is released."""
        row = self.get(wid)
        if row is None or row.status not in (HELD, AWAITING_APPROVAL, QUEUED):
            return row
        if row.kind != USER:  # nothing was held
            return self._set(row, status=REJECTED, reason=why)
        await self.submit(ReleaseWithdrawal(wid, f"rejected: {why}"[:120], origin=_origin(wid)))
        return self._set(row, status=REJECTED, reason=why)

    # ------------------------------------------------------------------ the venue's own moves
    def internal(self, kind: str, asset: str, address: str, net_chain: int) -> WithdrawalRow:
        """A move between the venue's wallets of ``net_chain`` (chain units): ``cold`` and
        ``gas`` queued at once, ``refill`` to the approvers (filed now, or by a later round)."""
        if kind not in (COLD, REFILL, GAS):
            raise ValueError(f"not an internal kind: {kind!r}")
        rules = self.config.assets[asset]
        amount = from_chain_units(net_chain, self.decimals[asset], rules.chain_decimals)[0]
        wid = self._next_id()
        now = self.now_ms()
        status = AWAITING_APPROVAL if kind == REFILL else QUEUED
        row = WithdrawalRow(
            wid, 0, f"{kind}-{wid}", asset, rules.chain, address, amount, 0, net_chain, status,
            "", "", 0, "", now, now, kind,
        )  # fmt: skip
        self._put(row)
        if kind == REFILL and self.request_refill is not None:
            approval = self.request_refill(row)
            if approval:
                row = self._set(row, approval=approval)
        return row

    def open_internal(self, asset: str) -> list[WithdrawalRow]:
        """The asset's moves between the venue's wallets not finished yet."""
        return self._rows(
            "asset = ? and kind != ? and status in (?, ?, ?, ?, ?) order by id",
            (asset, USER, *OPEN),
        )

    async def internal_batch(
        self,
        chain: str,
        asset: str,
        build: Callable[[int | None], Awaitable[tuple[str, str, int]]],
        record: Callable[[int], None],
    ) -> int | None:
        """A transaction of the hot key that pays no withdrawal (a contract's deployment), as a
        batch without members when none is in flight: its nonce under the pipeline's rule,
        signed and stored with ``record(batch id)`` in one commit, then sent and followed by the
        rounds like any batch. None while another batch is in flight."""
        if self._open_batch(chain) is not None:
            return None
        nonce = self._nonce(chain, await self.payers[chain].next_nonce())
        raw, txid, fee = await build(nonce)
        now = self.now_ms()
        with self.store.transaction():
            cur = self.db.execute(
                "insert into batches (asset, chain, status, nonce, raw, txid, fee_chain, "
                "created_ms, updated_ms) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (asset, chain, SIGNED, nonce, raw, txid, str(fee), now, now),
            )
            bid = int(cur.lastrowid or 0)
            record(bid)
        return bid

    def pending(self, asset: str) -> int:
        """Chain units of the asset's withdrawals queued for the hot wallet, not signed yet."""
        rows = self._rows(
            "asset = ? and kind = ? and (status = ? or (status = ? and batch in "
            "(select id from batches where status = ?)))",
            (asset, USER, QUEUED, BATCHED, BUILDING),
        )
        return sum(r.net_chain for r in rows)

    def paid_since(self, asset: str, since_ms: int) -> int:
        """Chain units that left the hot and cold wallets since ``since_ms``: the asset's
        completed withdrawals and gas moves (to the deposit addresses) and, for the chain's
        native asset, every batch's fee on that chain."""
        rules = self.config.assets[asset]
        paid = sum(
            r.net_chain
            for r in self._rows(
                "asset = ? and kind in (?, ?) and status = ? and updated_ms >= ?",
                (asset, USER, GAS, COMPLETED, since_ms),
            )
        )
        if not rules.contract:
            rows = self.db.execute(
                "select fee_chain from batches where chain = ? and status in (?, ?, ?) "
                "and updated_ms >= ?",
                (rules.chain, SIGNED, BROADCAST, DONE, since_ms),
            )
            paid += sum(int(f) for (f,) in rows)
        return paid

    def batch_status(self, bid: int) -> str:
        row = self.db.execute("select status from batches where id = ?", (bid,)).fetchone()
        return "" if row is None else str(row[0])

    # ------------------------------------------------------------------ whitelist
    def whitelist_add(self, account: int, chain: str, address: str, label: str) -> None:
        self.db.execute(
            "insert or ignore into whitelist values (?, ?, ?, ?, ?)",
            (account, chain, address, label, self.now_ms()),
        )

    def whitelist(self, account: int) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "select chain, address, label, added_ms from whitelist where account = ? "
            "order by added_ms",
            (account,),
        )
        cool = self.config.whitelist_cooldown_s * 1000
        return [
            {"chain": c, "address": a, "label": lb, "addedTime": t, "usableFrom": t + cool}
            for c, a, lb, t in rows
        ]

    def whitelisted(self, account: int, chain: str, address: str) -> bool:
        row = self.db.execute(
            "select added_ms from whitelist where account = ? and chain = ? and address = ?",
            (account, chain, address),
        ).fetchone()
        if row is None:
            return False
        return self.now_ms() >= int(row[0]) + self.config.whitelist_cooldown_s * 1000

    # ------------------------------------------------------------------ the pipeline
    async def recover(self) -> None:
        """After a start: holds asked again for requests whose answer was lost, and held ones
        routed (to the queue or the approvers) if a crash came between."""
        for row in self._rows("status = ?", (REQUESTED,)):
            with contextlib.suppress(WithdrawRefused):  # refused now: recorded as rejected
                await self._hold(row)
        for row in self._rows("status = ?", (HELD,)):
            self._route(row)

    async def process(self, chain: str) -> None:
        """One round for ``chain``: the batch in flight moves on, or a new one starts."""
        payer = self.payers[chain]
        batch = self._open_batch(chain)
        if batch is None:
            batch = self._new_batch(chain, payer, await payer.next_nonce())
            if batch is None:
                return
            crash_point("batched")
        try:
            await self._advance(batch, payer)
        except InsufficientHot:
            if batch["status"] == BUILDING and self._refill_queued(chain):
                self._unbatch(batch["id"])  # the refill goes first; then this batch again
            raise

    def _refill_queued(self, chain: str) -> bool:
        return chain in self.cold and bool(
            self._rows("chain = ? and kind = ? and status = ?", (chain, REFILL, QUEUED))
        )

    def _unbatch(self, bid: int) -> None:
        """A batch the hot wallet cannot pay yet, nothing of it signed: its members back to the
        queue and its nonce free again (never used), so an approved refill can go first."""
        now = self.now_ms()
        with self.store.transaction():
            self.db.execute(
                "update withdrawals set status = ?, batch = 0, updated_ms = ? where batch = ?",
                (QUEUED, now, bid),
            )
            self.db.execute(
                "update batches set status = ?, updated_ms = ? where id = ? and status = ?",
                (BATCH_FAILED, now, bid, BUILDING),
            )

    def _new_batch(self, chain: str, payer: Payer, nonce: int | None) -> dict[str, Any] | None:
        queued = self._rows("status = ? and chain = ? order by id", (QUEUED, chain))
        queued = [r for r in queued if r.kind != REFILL or chain in self.cold]
        queued.sort(key=lambda r: (r.kind != REFILL, r.id))  # a refill first: it pays the rest
        if not queued:
            return None
        asset, kind = queued[0].asset, queued[0].kind
        limit = 1 if kind == REFILL else payer.batch_limit
        members = [r for r in queued if r.asset == asset and r.kind == kind][:limit]
        now = self.now_ms()
        room = kind == USER and limit > 1 and len(members) < limit  # more outputs fit
        opened = min(r.updated_ms for r in members)  # when the oldest was queued
        if room and now < opened + self.config.batch_window_ms:
            return None  # the window is open: later payouts may join this transaction
        nonce = self._nonce(chain, nonce)
        with self.store.transaction():
            cur = self.db.execute(
                "insert into batches (asset, chain, status, nonce, created_ms, updated_ms) "
                "values (?, ?, ?, ?, ?, ?)",
                (asset, chain, BUILDING, nonce, now, now),
            )
            bid = int(cur.lastrowid or 0)
            for r in members:
                self.db.execute(
                    "update withdrawals set status = ?, batch = ?, updated_ms = ? where id = ?",
                    (BATCHED, bid, now, r.id),
                )
        return self._batch(bid)

    def _nonce(self, chain: str, nonce: int | None) -> int | None:
        """The node's next nonce, or the last batch's next: never a nonce used before, never
        one skipped."""
        last = self.db.execute(
            "select max(nonce) from batches where chain = ? and status != ?",
            (chain, BATCH_FAILED),
        ).fetchone()[0]
        if nonce is not None and last is not None:
            nonce = max(nonce, int(last) + 1)
        return nonce

    async def _advance(self, batch: dict[str, Any], payer: Payer) -> None:
        bid = batch["id"]
        members = self._rows("batch = ? order by id", (bid,))
        if batch["status"] == BUILDING:
            payouts = [(r.address, r.net_chain) for r in members]
            refill = bool(members) and members[0].kind == REFILL
            builder = self.cold[payer.chain].build if refill else payer.build
            try:
                raw, txid, fee = await builder(batch["asset"], payouts, batch["nonce"])
            except PayoutRefused as exc:
                await self._fail(bid, members, str(exc))
                return
            self.db.execute(
                "update batches set status = ?, raw = ?, txid = ?, fee_chain = ?, updated_ms = ? "
                "where id = ?",
                (SIGNED, raw, txid, str(fee), self.now_ms(), bid),
            )
            crash_point("signed")
            batch = self._batch(bid)
        if batch["status"] == SIGNED:
            try:
                await payer.broadcast(batch["raw"])
            except PayoutRefused as exc:
                await self._fail(bid, members, str(exc))
                return
            self._batch_status(bid, BROADCAST)
            crash_point("broadcast")
            return
        if batch["status"] == BROADCAST:
            try:
                seen = await payer.confirmations(batch["txid"])
            except PayoutRefused as exc:  # mined and failed (a reverted token transfer)
                await self._fail(bid, members, str(exc))
                return
            if seen is None:  # gone from the node (a reorganisation, a restart): send it again
                await payer.broadcast(batch["raw"])
                return
            if seen < self.confirmations:
                return
            paid = await payer.fee_paid(batch["txid"])
            if paid is not None:
                batch = {**batch, "fee_chain": str(paid)}
            for cmd in self._movements(batch, members):
                await book.record(self.submit, cmd)
            for r in members:
                if r.status == COMPLETED:
                    continue
                if r.kind != USER:  # the venue's own money: nothing to pay out in the ledger
                    self._set(r, status=COMPLETED, txid=batch["txid"])
                    continue
                events = await self.submit(
                    PayWithdrawal(r.id, r.fee, batch["txid"], origin=_origin(r.id))
                )
                paid = any(isinstance(e, WithdrawalConfirmed) for e in events) or any(
                    isinstance(e, ClearingRejected)
                    and e.reason is ClearingReject.UNKNOWN_WITHDRAWAL
                    for e in events
                )  # UNKNOWN: paid before a crash lost the record
                if paid:
                    self._set(r, status=COMPLETED, txid=batch["txid"])
                    crash_point("paid")
                else:
                    log.error("custody: the venue refused payout %d: %s", r.id, events)
            self._batch_status(bid, DONE)

    def _movements(
        self, batch: dict[str, Any], members: list[WithdrawalRow]
    ) -> list[RecordCustody]:
        """What a confirmed batch moved between custody's accounts: payouts from the hot wallet
        to the chain, the excess from hot to cold, a refill from cold to hot, a transaction
        without members (a deployment) only its fee. The fee is paid in the chain's own asset by
        the key that sent the transaction: the hot key, except a Bitcoin refill (the cold
        multisig pays its own fee)."""
        asset, chain, txid = batch["asset"], batch["chain"], batch["txid"]
        native = native_asset(self.config, chain)
        rules, native_rules = self.config.assets.get(asset), self.config.assets.get(native)
        if rules is None or native_rules is None:
            return []
        fee = book.fee_units(
            int(batch["fee_chain"] or 0), self.decimals[native], native_rules.chain_decimals
        )
        amount = sum(
            from_chain_units(r.net_chain, self.decimals[asset], rules.chain_decimals)[0]
            for r in members
        )
        kind = members[0].kind if members else ""
        source, target = {
            COLD: (book.HOT, book.COLD), REFILL: (book.COLD, book.HOT),
            GAS: (book.HOT, book.OMNIBUS),
        }.get(kind, (book.HOT, book.CHAIN))  # fmt: skip
        ref = book.movement_ref(asset, txid)
        if kind == REFILL and batch["nonce"] is not None:  # the hot key sent it: its gas
            out = [RecordCustody(asset, source, target, amount, native, 0, ref)] if amount else []
            if fee:
                gas = book.movement_ref(native, txid, "gas")
                out.append(RecordCustody(native, book.HOT, book.CHAIN, 0, native, fee, gas))
            return out
        if not amount and not fee:
            return []
        return [RecordCustody(asset, source, target, amount, native, fee, ref)]

    async def _fail(self, bid: int, members: list[WithdrawalRow], why: str) -> None:
        log.error("custody: batch %d refused by the chain: %s", bid, why)
        for r in members:
            if r.kind != USER:
                self._set(r, status=FAILED, reason=why)
                continue
            await self.submit(ReleaseWithdrawal(r.id, f"failed: {why}"[:120], origin=_origin(r.id)))
            self._set(r, status=FAILED, reason=why)
        self._batch_status(bid, BATCH_FAILED)

    # ------------------------------------------------------------------ reads
    def get(self, wid: int) -> WithdrawalRow | None:
        rows = self._rows("id = ?", (wid,))
        return rows[0] if rows else None

    def by_client_id(self, account: int, client_id: str) -> WithdrawalRow | None:
        rows = self._rows("account = ? and client_id = ?", (account, client_id))
        return rows[0] if rows else None

    def account_history(
        self, account: int, asset: str = "", start_ms: int = 0, end_ms: int = 0, limit: int = 1000
    ) -> list[WithdrawalRow]:
        sql, args = "account = ?", [account]
        if asset:
            sql += " and asset = ?"
            args.append(asset)  # type: ignore[arg-type]
        if start_ms:
            sql += " and requested_ms >= ?"
            args.append(start_ms)
        if end_ms:
            sql += " and requested_ms <= ?"
            args.append(end_ms)
        return self._rows(sql + " order by requested_ms desc, id desc limit ?", (*args, limit))

    def recent(self, limit: int = 500) -> list[WithdrawalRow]:
        return self._rows("1 = 1 order by id desc limit ?", (limit,))

    def in_flight(self, chain: str) -> dict[str, int]:
        """asset -> chain units broadcast (or signed) for withdrawals not yet recorded as paid:
        gone from the hot wallet, still owed in the ledger (or, for the venue's own moves, not
        arrived in the other wallet yet)."""
        out: dict[str, int] = {}
        for r in self._rows(
            "status = ? and chain = ? and batch in (select id from batches where status in (?, ?))",
            (BATCHED, chain, SIGNED, BROADCAST),
        ):
            out[r.asset] = out.get(r.asset, 0) + r.net_chain
        return out

    def queue(self) -> list[WithdrawalRow]:
        return self._rows("status in (?, ?, ?, ?, ?) order by id", OPEN)

    def batches(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.db.execute("select * from batches order by id desc limit ?", (limit,))
        names = [c[0] for c in rows.description]
        return [dict(zip(names, r, strict=True)) for r in rows]

    def day_total(self, account: int, asset: str, now_ms: int) -> int:
        start = now_ms - now_ms % MS_PER_DAY
        row = self.db.execute(
            "select coalesce(sum(amount), 0) from withdrawals where account = ? and asset = ? "
            "and requested_ms >= ? and status not in (?, ?)",
            (account, asset, start, REJECTED, FAILED),
        ).fetchone()
        return int(row[0])

    def _recent_deposits(self, account: int, asset: str, now_ms: int) -> int:
        since = now_ms - self.config.deposit_hold_s * 1000
        return sum(
            d.amount
            for d in self.store.account_deposits(account, asset, since, 0, 10_000)
            if d.status == CREDITED and d.updated_ms >= since
        )

    # ------------------------------------------------------------------ rows
    def _next_id(self) -> int:
        row = self.db.execute("select coalesce(max(id), 0) from withdrawals").fetchone()
        return int(row[0]) + 1

    def _put(self, row: WithdrawalRow) -> None:
        self.db.execute(
            "insert into withdrawals values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.id, row.account, row.client_id, row.asset, row.chain, row.address,
                row.amount, row.fee, str(row.net_chain), row.status, row.reason, row.approval,
                row.batch, row.txid, row.requested_ms, row.updated_ms, row.kind,
            ),
        )  # fmt: skip

    def _set(self, row: WithdrawalRow, **changes: Any) -> WithdrawalRow:
        changes["updated_ms"] = self.now_ms()
        names = ", ".join(f"{k} = ?" for k in changes)
        self.db.execute(f"update withdrawals set {names} where id = ?", (*changes.values(), row.id))
        found = self.get(row.id)
        assert found is not None
        return found

    def _rows(self, where: str, args: tuple[Any, ...] | list[Any]) -> list[WithdrawalRow]:
        out = []
        for r in self.db.execute(f"select * from withdrawals where {where}", tuple(args)):
            values = list(r)
            values[8] = int(values[8])
            out.append(WithdrawalRow(*values))
        return out

    def moving(self, chain: str) -> bool:
        """Whether a batch of the chain is open (built, signed or sent, not yet recorded)."""
        return self._open_batch(chain) is not None

    def _open_batch(self, chain: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "select id from batches where chain = ? and status in (?, ?, ?) order by id limit 1",
            (chain, BUILDING, SIGNED, BROADCAST),
        ).fetchone()
        return None if row is None else self._batch(int(row[0]))

    def _batch(self, bid: int) -> dict[str, Any]:
        cur = self.db.execute("select * from batches where id = ?", (bid,))
        names = [c[0] for c in cur.description]
        return dict(zip(names, cur.fetchone(), strict=True))

    def _batch_status(self, bid: int, status: str) -> None:
        self.db.execute(
            "update batches set status = ?, updated_ms = ? where id = ?",
            (status, self.now_ms(), bid),
        )

    # ------------------------------------------------------------------ Binance's shape
    def history_json(self, row: WithdrawalRow) -> dict[str, Any]:
        decimals = self.decimals.get(row.asset, 8)
        return {
            "id": str(row.id),
            "amount": _trimmed(row.amount - row.fee, decimals),
            "transactionFee": _trimmed(row.fee, decimals),
            "coin": row.asset,
            "status": BINANCE_STATUS[row.status],
            "address": row.address,
            "txId": row.txid,
            "applyTime": _utc(row.requested_ms),
            "network": network_of(row.chain),
            "transferType": 0,
            "withdrawOrderId": row.client_id,
            "info": row.reason,
            "confirmNo": self.confirmations if row.status == COMPLETED else 0,
            "walletType": 0,
            "txKey": "",
            "completeTime": _utc(row.updated_ms) if row.status == COMPLETED else "",
        }


def _refusal(reason: ClearingReject) -> tuple[int, str]:
    if reason is ClearingReject.INSUFFICIENT_BALANCE:
        return -4026, "Insufficient balance."
    if reason in (ClearingReject.KYC_TIER_NOT_PERMITTED, ClearingReject.KYC_LIMIT_EXCEEDED):
        return -4023, "Over the withdrawal limit of the account's verification tier."
    if reason in (ClearingReject.ACCOUNT_NOT_ACTIVE, ClearingReject.ACCOUNT_CLOSED):
        return -4019, "The account may not withdraw."
    return -4000, f"The withdrawal was refused ({reason.name})."


def _utc(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _origin(wid: int) -> Origin:
    return Origin(Door.CUSTODY, "custody", f"withdrawal:{wid}")


def _trimmed(amount: int, decimals: int) -> str:
    return decimal_text(amount, decimals, trim=True)
