"""Custody at run time: deposit addresses from keys in the token, the chains' watchers, and the
commands they lead to.

``Custody`` is what the composition root starts after the venue: it asks each chain's watcher
(``custody.deposits``) what changed, submits the credits (``ChainDeposit``) and reversals
(``ReverseDeposit``) to the venue and records each once it is durable, and raises an alert when a
reorganisation reverses a credit. It never imports the venue: the venue's ``submit`` and the
alert sink are passed in.

Deposit addresses: one key per account and chain, generated inside the token (label
``deposit:<chain>:<account>``), never derived from a seed in software; ETH and every ERC-20 of the
chain share the account's Ethereum address. The README's custody section says why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from custody.config import AssetRules, CustodyConfig, decimal_text, network_of
from custody.deposits import ChainScanner, DepositWatcher, PollResult, ReorgTooDeep
from custody.signer import EcdsaSigner
from custody.store import CREDITED, DROPPED, DUST, PENDING, REVERSED, CustodyStore, DepositRow
from engine.commands import ChainDeposit, Origin, ReverseDeposit
from engine.events import ClearingReject, ClearingRejected, Deposited, DepositReversed
from engine.types import Door

__all__ = ["Custody", "CustodyAlert", "CustodyError", "KeySource"]

log = logging.getLogger("custody")


Submit = Callable[[Any], Awaitable[list[Any]]]


class KeySource(Protocol):
    """Keys in the token, by label."""

    def new_key(self, label: str) -> EcdsaSigner: ...

    def key(self, label: str) -> EcdsaSigner | None: ...


AddressOf = Callable[[str, bytes], str]  # (chain, compressed public key) -> address


@dataclass(frozen=True, slots=True)
class CustodyAlert:
    """An alert for compliance (the composition root hands it to surveillance's store):
    ``kind`` one of HOT_WALLET_BAND, RESERVE_SHORTFALL, DEPOSIT_REORG."""

    kind: str
    key: str
    accounts: tuple[int, ...]
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    ts_ms: int = 0  # the venue's clock when raised


class CustodyError(Exception):
    """A request custody cannot serve (unknown asset, no chain): a clear message for doors."""


class Custody:
    def __init__(
        self,
        config: CustodyConfig,
        data_dir: Path,
        venue_decimals: Mapping[str, int],
        *,
        submit: Submit,
        keys: KeySource,
        address_of: AddressOf,
        alert: Callable[[CustodyAlert], None] = lambda _a: None,
        now_ms: Callable[[], int],
    ) -> None:
        self.config = config
        self.decimals = venue_decimals
        self.store = CustodyStore(data_dir / "custody" / "custody.sqlite")
        self.submit = submit
        self.keys = keys
        self.address_of = address_of
        self.alert = alert
        self.now_ms = now_ms
        self.watchers: dict[str, DepositWatcher] = {}
        self._address_lock = asyncio.Lock()

    def close(self) -> None:
        self.store.close()

    def watch(self, chain: str, scanner: ChainScanner) -> DepositWatcher:
        watcher = DepositWatcher(chain, scanner, self.store, self.config.assets, self.decimals)
        self.watchers[chain] = watcher
        return watcher

    def rules(self, asset: str) -> AssetRules:
        rules = self.config.assets.get(asset)
        if rules is None:
            raise CustodyError(f"custody holds no {asset}")
        return rules

    # -- deposit addresses
    async def deposit_address(self, account: int, asset: str) -> str:
        """The account's deposit address for ``asset``'s chain, made (a new key in the token)
        on first use."""
        chain = self.rules(asset).chain
        found = self.store.address(chain, account)
        if found is not None:
            return found
        async with self._address_lock:  # two first requests make one key
            found = self.store.address(chain, account)
            if found is not None:
                return found
            label = f"deposit:{chain}:{account}"
            signer = self.keys.key(label)  # made before a crash that lost the address row
            if signer is None:
                signer = await asyncio.to_thread(self.keys.new_key, label)
            address = self.address_of(chain, signer.public_key())
            self.store.add_address(chain, account, address, label, self.now_ms())
            return address

    # -- deposits
    async def poll(self, chain: str) -> PollResult:
        """One round of ``chain``'s watcher, its credits and reversals submitted and recorded."""
        watcher = self.watchers[chain]
        now = self.now_ms()
        try:
            result = await watcher.poll(now)
        except ReorgTooDeep as exc:
            self.alert(
                CustodyAlert(
                    "DEPOSIT_REORG", f"DEPOSIT_REORG:{chain}:too-deep", (), str(exc),
                    {"chain": chain}, 0, now,
                )
            )  # fmt: skip
            raise
        for credit in result.credits:
            d = credit.deposit
            cmd = ChainDeposit(d.account, d.asset, d.amount, credit.ref, origin=_origin(credit.ref))
            events = await self.submit(cmd)
            if any(isinstance(e, Deposited) for e in events):
                watcher.credited(credit, cmd.seq, now)
            elif any(
                isinstance(e, ClearingRejected) and e.reason is ClearingReject.DUPLICATE_DEPOSIT
                for e in events
            ):  # credited before a crash lost the record of it
                watcher.credited(credit, 0, now)
            else:
                log.error("custody: the venue refused the credit of %s: %s", credit.ref, events)
        for reversal in result.reversals:
            d = reversal.deposit
            cmd2 = ReverseDeposit(
                reversal.ref, f"reorganisation of {reversal.depth} blocks", origin=_origin(d.ref)
            )
            events = await self.submit(cmd2)
            done = [e for e in events if isinstance(e, DepositReversed)]
            refused = [e for e in events if isinstance(e, ClearingRejected)]
            if done or (refused and refused[0].reason is ClearingReject.UNKNOWN_DEPOSIT):
                watcher.reversed(reversal, now)
            if done:
                rev = done[0]
                places = self.decimals.get(d.asset, 8)
                self.alert(
                    CustodyAlert(
                        "DEPOSIT_REORG", f"DEPOSIT_REORG:{reversal.ref}", (d.account,),
                        f"a reorganisation of {reversal.depth} blocks dropped credited deposit "
                        f"{reversal.ref}: {decimal_text(rev.amount, places)} {d.asset} taken back, "
                        f"{decimal_text(rev.shortfall, places)} short"
                        + (" (account frozen)" if rev.shortfall else ""),
                        {
                            "ref": reversal.ref, "asset": d.asset, "account": d.account,
                            "amount": decimal_text(d.amount, places),
                            "reversed": decimal_text(rev.amount, places),
                            "shortfall": decimal_text(rev.shortfall, places),
                            "depth": reversal.depth, "txid": d.txid, "chain": d.chain,
                        },
                        cmd2.seq, now,
                    )
                )  # fmt: skip
        return result

    def deposit_history(
        self, account: int, asset: str = "", start_ms: int = 0, end_ms: int = 0, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """The account's deposits in Binance's ``/sapi/v1/capital/deposit/hisrec`` shape."""
        out = []
        for d in self.store.account_deposits(account, asset, start_ms, end_ms, limit):
            watcher = self.watchers.get(d.chain)
            rules = self.config.assets.get(d.asset)
            need = rules.confirmations if rules else 0
            have = (
                min(need, watcher.confirmations(d, self._tip(d.chain)))
                if watcher is not None and d.status == PENDING
                else need
                if d.status == CREDITED
                else 0
            )
            out.append(
                {
                    "id": d.ref,
                    "amount": decimal_text(d.amount, self.decimals.get(d.asset, 8)),
                    "coin": d.asset,
                    "network": network_of(d.chain),
                    "status": _BINANCE_STATUS[d.status],
                    "address": d.address,
                    "addressTag": "",
                    "txId": d.txid,
                    "insertTime": d.seen_ms,
                    "transferType": 0,
                    "confirmTimes": f"{have}/{need}",
                    "unlockConfirm": need,
                    "walletType": 0,
                }
            )
        return out

    def _tip(self, chain: str) -> int:
        return self.store.cursor(chain) or 0

    def deposits(self, **kw: Any) -> list[DepositRow]:
        return self.store.deposits(**kw)


#: Binance's deposit statuses: 0 pending, 1 success, 2 rejected (here: a reorganisation took it
#: away), 7 wrong deposit (here: below the venue's unit, kept as dust).
_BINANCE_STATUS = {PENDING: 0, CREDITED: 1, DROPPED: 2, REVERSED: 2, DUST: 7}


def _origin(ref: str) -> Origin:
    return Origin(Door.CUSTODY, "custody", ref[:64])
