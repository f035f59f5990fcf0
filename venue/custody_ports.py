"""The doors' ports onto custody: ``WalletPort`` answers the REST door's wallet questions
(``gateway.rest.wallet.Wallet``: Binance's capital endpoints) and ``AdminCustodyPort`` the admin
API's treasury (``gateway.admin.custody.AdminCustody``), both in the venue's units, over the
running ``venue.custody.CustodyPart``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from venue.config import VenueConfig

if TYPE_CHECKING:
    from custody.service import Custody
    from custody.store import DepositRow
    from custody.withdrawals import WithdrawalRow, Withdrawals
    from venue.custody import CustodyPart
    from venue.runtime import Venue

__all__ = ["AdminCustodyPort", "WalletPort"]


class WalletPort:
    """``gateway.rest.wallet.Wallet`` over custody: the door's questions in venue units."""

    def __init__(
        self,
        venue: Venue,
        config: VenueConfig,
        custody: Custody,
        withdrawals: Withdrawals,
        part: CustodyPart | None = None,
    ) -> None:
        self.part = part
        self.venue = venue
        self.config = config
        self.custody = custody
        self.withdrawals = withdrawals

    def coins(self) -> list[dict[str, Any]]:
        from custody.config import decimal_text as _decimal
        from custody.config import network_of as _network

        out = []
        for asset, rules in sorted(self.custody.config.assets.items()):
            places = self.config.assets[asset]
            out.append(
                {
                    "coin": asset,
                    "name": asset,
                    "depositAllEnable": True,
                    "withdrawAllEnable": True,
                    "trading": True,
                    "networkList": [
                        {
                            "network": _network(rules.chain),
                            "coin": asset,
                            "name": rules.chain.title(),
                            "isDefault": True,
                            "depositEnable": True,
                            "withdrawEnable": True,
                            "withdrawFee": _decimal(rules.withdraw_fee, places),
                            "withdrawMin": _decimal(rules.withdraw_min, places),
                            "withdrawMax": _decimal(rules.daily_limit, places),
                            "withdrawIntegerMultiple": _decimal(
                                10 ** max(0, places - rules.chain_decimals), places
                            ),
                            "minConfirm": rules.confirmations,
                            "unLockConfirm": rules.confirmations,
                            "sameAddress": False,
                            "depositDust": "0",
                        }
                    ],
                }
            )
        return out

    async def deposit_address(self, account: int, coin: str, network: str | None) -> str:
        from custody.config import network_of as _network
        from custody.service import CustodyError
        from gateway.rest.wallet import WalletRefused

        rules = self.custody.config.assets.get(coin)
        if rules is None:
            raise WalletRefused(-4018, f"{coin} cannot be deposited here.")
        if network is not None and network != _network(rules.chain):
            raise WalletRefused(-4018, f"{coin} is deposited on network {_network(rules.chain)}.")
        try:
            return await self.custody.deposit_address(account, coin)
        except CustodyError as exc:
            raise WalletRefused(-4018, str(exc)) from None

    def deposit_history(
        self, account: int, coin: str | None, start_ms: int, end_ms: int, limit: int
    ) -> list[dict[str, Any]]:
        return self.custody.deposit_history(account, coin or "", start_ms, end_ms, limit)

    async def withdraw(
        self,
        account: int,
        coin: str,
        network: str | None,
        address: str,
        amount: str,
        client_id: str,
        origin: Any = None,
    ) -> str:
        from custody.withdrawals import WithdrawRefused
        from gateway.rest.wallet import WalletRefused

        places = self.config.assets.get(coin)
        if places is None:
            raise WalletRefused(-4018, f"{coin} cannot be withdrawn here.")
        units = _units(amount, places)
        if units is None:
            raise WalletRefused(-1100, "Illegal characters found in parameter 'amount'.")
        try:
            row = await self.withdrawals.apply(
                account, coin, address, units, client_id, network, origin
            )
        except WithdrawRefused as exc:
            raise WalletRefused(exc.code, exc.msg) from None
        return str(row.id)

    def reserves(self) -> dict[str, Any] | None:
        return self.part.reserves() if self.part is not None else None

    def reserves_proof(self, account: int) -> dict[str, Any] | None:
        return self.part.reserves_proof(account) if self.part is not None else None

    def withdraw_history(
        self, account: int, coin: str | None, start_ms: int, end_ms: int, limit: int
    ) -> list[dict[str, Any]]:
        rows = self.withdrawals.account_history(account, coin or "", start_ms, end_ms, limit)
        return [self.withdrawals.history_json(r) for r in rows]


def _units(text: str, places: int) -> int | None:
    """A positive amount in the asset's minor units, through the venue's one decimal codec
    (``engine.units``); None when malformed, too fine for the asset, or not above zero."""
    from engine.units import Malformed, NotMultiple, UnitScale

    try:
        units = UnitScale(Decimal(1).scaleb(-places)).parse(text)
    except (Malformed, NotMultiple):
        return None
    return units if units > 0 else None


class AdminCustodyPort:
    """``gateway.admin.custody.AdminCustody`` over the running custody part."""

    def __init__(self, part: CustodyPart) -> None:
        assert part.custody is not None and part.withdrawals is not None
        self.part = part
        self.custody = part.custody
        self.pipeline = part.withdrawals

    async def deposit_address(self, account: int, asset: str) -> str:
        from custody.service import CustodyError
        from gateway.admin.custody import CustodyRefused

        try:
            return await self.custody.deposit_address(account, asset)
        except CustodyError as exc:
            raise CustodyRefused(-4018, str(exc)) from None

    def deposits(self, account: int | None, limit: int) -> list[dict[str, Any]]:
        rows = self.custody.store.deposits()
        if account is not None:
            rows = [d for d in rows if d.account == account]
        places = self.part.config.assets
        from custody.config import decimal_text as _decimal

        return [
            {
                **self._confirmations(d),
                "ref": d.ref, "chain": d.chain, "asset": d.asset, "account": d.account,
                "address": d.address, "txid": d.txid, "index": d.idx,
                "amount": _decimal(d.amount, places.get(d.asset, 8)),
                "amountChain": str(d.amount_chain), "dustChain": str(d.dust),
                "height": d.height, "status": d.status, "seenTime": d.seen_ms,
                "creditedSeq": d.credited_seq,
            }
            for d in rows[-limit:]
        ]  # fmt: skip

    def _confirmations(self, d: DepositRow) -> dict[str, int]:
        """What the deposit has (the chain's tip as last scanned) and what its asset needs."""
        from custody.store import CREDITED, PENDING

        rules = self.custody.config.assets.get(d.asset)
        need = rules.confirmations if rules is not None else 0
        watcher = self.custody.watchers.get(d.chain)
        have = 0
        if d.status == CREDITED:
            have = need
        elif d.status == PENDING and watcher is not None:
            have = min(need, watcher.confirmations(d, self.custody.store.cursor(d.chain) or 0))
        return {"confirmations": have, "required": need}

    def withdrawals(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        rows = self.pipeline.queue() if status == "open" else self.pipeline.recent(limit)
        if status not in (None, "open"):
            rows = [r for r in rows if r.status == status]
        return [self._row(r) for r in rows[:limit]]

    def _row(self, r: WithdrawalRow) -> dict[str, Any]:
        out = self.pipeline.history_json(r)
        out.update(
            {"account": r.account, "state": r.status, "approval": r.approval, "kind": r.kind}
        )
        return out

    async def withdraw(
        self, account: int, asset: str, address: str, amount: str, client_id: str, who: str
    ) -> dict[str, Any]:
        from custody.withdrawals import WithdrawRefused
        from engine.commands import Origin
        from engine.types import Door
        from gateway.admin.custody import CustodyRefused

        units = _units(amount, self.part.config.assets.get(asset, 8))
        if units is None:
            raise CustodyRefused(-1100, f"amount {amount!r} is not a positive {asset} amount")
        origin = Origin(Door.ADMIN, who, client_id)
        try:
            row = await self.pipeline.apply(account, asset, address, units, client_id, None, origin)
        except WithdrawRefused as exc:
            raise CustodyRefused(exc.code, exc.msg) from None
        return self._row(row)

    async def approved(self, withdrawal_id: int) -> dict[str, Any]:
        row = await self.pipeline.approved(withdrawal_id)
        return {} if row is None else self._row(row)

    async def reject(self, withdrawal_id: int, why: str) -> dict[str, Any]:
        row = await self.pipeline.reject(withdrawal_id, why)
        return {} if row is None else self._row(row)

    def whitelist(self, account: int) -> list[dict[str, Any]]:
        return self.pipeline.whitelist(account)

    def whitelist_add(self, account: int, chain: str, address: str, label: str) -> None:
        from gateway.admin.custody import CustodyRefused

        payer = self.part.payers.get(chain)
        if payer is None:
            raise CustodyRefused(-4018, f"custody has no chain {chain!r}")
        if not payer.valid_address(address):
            raise CustodyRefused(-4033, f"{address!r} is not a {chain} address")
        self.pipeline.whitelist_add(account, chain, address, label)

    def sweeps(self, limit: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        tokens = [t for group in self.part.token_sweepers.values() for t in group]
        for sweeper in [*self.part.sweepers.values(), *tokens]:
            out.extend(sweeper.history(limit))
        return sorted(out, key=lambda s: -int(s["created_ms"]))[:limit]

    async def wallets(self) -> list[dict[str, Any]]:
        return await self.part.wallets()

    async def publish_reserves(self) -> dict[str, Any]:
        return await self.part.publish_reserves()

    def reserves(self) -> dict[str, Any] | None:
        return self.part.reserves()
