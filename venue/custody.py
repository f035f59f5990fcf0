"""Custody in the running venue: the chains (embedded test chains or real nodes), the hot token's
keys, the deposit watchers, the withdrawal pipeline and the sweeps, each chain on its own loop.
The doors reach it through ``venue.custody_ports`` (the REST door's wallet, the admin API's
treasury).

Nothing when the configuration has no ``[custody]`` (or ``enabled = false``): deposits and
withdrawals are then the operators' admin commands only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from venue.config import VenueConfig
from venue.exits import EXIT_FAILED, CliError

if TYPE_CHECKING:
    from custody.hsm import Token
    from custody.reserves import ReservesTree
    from custody.service import Custody, CustodyAlert
    from custody.signer import EcdsaSigner
    from custody.sweeps import Sweeper
    from custody.withdrawals import Payer, WithdrawalRow, Withdrawals
    from gateway.staff.approvals import ApprovalStore
    from surveillance.alerts import AlertSink
    from venue.chains import EmbeddedChain
    from venue.custody_ports import AdminCustodyPort, WalletPort
    from venue.runtime import Venue

__all__ = ["CustodyPart", "TokenKeys", "alerts_into"]

log = logging.getLogger("venue.custody")

#: Seconds between two reconciliations of on-chain holdings with the participants' balances.
RECONCILE_S = 30
#: The hot wallet's band is looked at every this many polls of its chain (its holdings are read
#: with ``scantxoutset`` on Bitcoin, a scan of the whole UTXO set on a real node).
BAND_POLLS = 10


def alerts_into(sink: AlertSink | None) -> Callable[[CustodyAlert], None]:
    """Custody's alerts as surveillance's (``HOT_WALLET_BAND``, ``RESERVE_SHORTFALL``,
    ``DEPOSIT_REORG``) into ``sink`` (the alert store); dropped when there is none."""

    def raise_alert(alert: CustodyAlert) -> None:
        from surveillance.alerts import Alert, AlertType

        if sink is None:
            return
        now = alert.ts_ms
        sink.raise_alert(
            Alert(
                key=alert.key, type=AlertType(alert.kind), symbol="", accounts=alert.accounts,
                from_ms=now, to_ms=now, score=100.0, evidence=alert.evidence,
                first_seq=alert.seq, last_seq=alert.seq, summary=alert.summary,
            )
        )  # fmt: skip

    return raise_alert


class TokenKeys:
    """``custody.service.KeySource`` over a token: secp256k1 keys by label."""

    def __init__(self, token: Token) -> None:
        self.token = token

    def new_key(self, label: str) -> EcdsaSigner:
        return self.token.generate_secp256k1(label)

    def key(self, label: str) -> EcdsaSigner | None:
        return self.token.find_secp256k1(label)

    def key_or_new(self, label: str) -> EcdsaSigner:
        return self.key(label) or self.new_key(label)


@dataclass
class _Chain:
    name: str
    url: str
    embedded: EmbeddedChain | None
    client: Any = None  # BitcoinRpc or EthereumChain
    errors: dict[str, int] = field(default_factory=dict)


class CustodyPart:
    """Starts after the venue (it submits commands) and before the doors (the REST door serves
    its wallet)."""

    name = "custody"

    def __init__(
        self,
        venue: Venue,
        config: VenueConfig,
        alert: Callable[[CustodyAlert], None] | None = None,
        flagged: Callable[[int], bool] | None = None,
    ) -> None:
        self.venue = venue
        self.config = config
        self.alert = alert or (lambda _a: None)
        self.flagged = flagged or (lambda _a: False)
        self.custody: Custody | None = None
        self.withdrawals: Withdrawals | None = None
        self.chains: dict[str, _Chain] = {}
        self.payers: dict[str, Payer] = {}
        self.sweepers: dict[str, Sweeper] = {}  # chain -> its own coin's sweeps
        self.token_sweepers: dict[str, list[Sweeper]] = {}  # chain -> its tokens' sweeps
        from custody.book import BooksWatch

        self._books = BooksWatch()  # each wallet against the books, at each reconciliation
        self.token: Token | None = None
        self.cold_token: Token | None = None
        #: chain -> its cold wallet (``custody.cold``: BitcoinCold or EthereumCold)
        self.cold: dict[str, Any] = {}
        from custody.band import DropWatch

        self._drops = DropWatch()
        self._band_due: dict[str, float] = {}  # chain -> monotonic time of its next look
        #: the staff approvals (``gateway.staff.approvals``), given by the admin API's part
        self.approvals: ApprovalStore | None = None
        self._reserves: tuple[ReservesTree, dict[str, Any]] | None = None  # the latest proof
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def admin(self) -> AdminCustodyPort | None:
        from venue.custody_ports import AdminCustodyPort

        if self.custody is None or self.withdrawals is None:
            return None
        return AdminCustodyPort(self)

    def _request_approval(self, row: WithdrawalRow, reasons: list[str]) -> str:
        """A withdrawal for the approvers (``custody.withdrawal``), m of n, never the
        requester (the account, or the operator who asked for it)."""
        from custody.config import decimal_text as _decimal
        from gateway.admin.custody import WITHDRAWAL_ACTION

        if self.approvals is None:  # before the admin API started: filed by a later round
            return ""
        c = self.config.custody
        assert c is not None
        shown = _decimal(row.amount, self.config.assets.get(row.asset, 8))
        item = self.approvals.create(
            WITHDRAWAL_ACTION,
            f"withdraw {shown} {row.asset} of account {row.account} to {row.address} "
            f"({'; '.join(reasons)})",
            "POST",
            f"/v1/custody/withdrawals/{row.id}",
            {"withdrawalId": str(row.id)},
            f"account:{row.account}",
            c.approvals_required,
        )
        return str(item.approval_id)

    def _request_refill(self, row: WithdrawalRow) -> str:
        """A refill of the hot wallet from cold for the approvers (``custody.refill``)."""
        from custody.config import decimal_text as _decimal
        from gateway.admin.custody import REFILL_ACTION

        if self.approvals is None:
            return ""
        c = self.config.custody
        assert c is not None
        shown = _decimal(row.amount, self.config.assets.get(row.asset, 8))
        item = self.approvals.create(
            REFILL_ACTION,
            f"refill the {row.asset} hot wallet with {shown} {row.asset} from cold",
            "POST",
            f"/v1/custody/refills/{row.id}",
            {"withdrawalId": str(row.id)},
            "custody:cold",
            c.approvals_required,
        )
        return str(item.approval_id)

    @property
    def wallet(self) -> WalletPort | None:
        from venue.custody_ports import WalletPort

        if self.custody is None or self.withdrawals is None:
            return None
        return WalletPort(self.venue, self.config, self.custody, self.withdrawals, self)

    def now_ms(self) -> int:
        return self.venue.now_ns() // 1_000_000

    async def start(self) -> None:
        c = self.config.custody
        if c is None or not c.enabled:
            return
        try:
            await self._start()
        except CliError:
            await self.stop()
            raise
        except Exception as exc:
            await self.stop()
            raise CliError(f"custody cannot start: {exc}", EXIT_FAILED) from None

    async def _start(self) -> None:
        from custody.contracts import load_build
        from custody.hsm import Token
        from custody.service import Custody
        from custody.withdrawals import Withdrawals
        from venue.chains import EmbeddedChain, ensure_chain
        from venue.hsm import acquire_hot_token

        c = self.config.custody
        assert c is not None
        data_dir = self.config.data_dir
        # the embedded chains start (each a process of its own, seconds for py-evm), the token
        # opens and the chains' libraries import at the same time: one start, not their sum
        starting = {
            name: asyncio.to_thread(
                ensure_chain, name, data_dir / "chains" / name, block_ms=chain.test_block_ms
            )
            for name, chain in c.chains.items()
            if not chain.rpc_url
        }
        done = await asyncio.gather(
            asyncio.to_thread(acquire_hot_token, c, data_dir),
            asyncio.to_thread(_import_adapters, tuple(c.chains)),
            *starting.values(),
            return_exceptions=True,
        )
        opened, _imported, *embedded = done
        if isinstance(opened, Token):
            self.token = opened
        for name, started in zip(starting, embedded, strict=True):
            if isinstance(started, EmbeddedChain):
                self.chains[name] = _Chain(name, started.url, started)
        for name, chain in c.chains.items():
            if chain.rpc_url:
                self.chains[name] = _Chain(name, chain.rpc_url, None)
        failed = [d for d in done if isinstance(d, BaseException)]
        if failed:
            raise failed[0]  # start() stops what did start
        assert self.token is not None
        token = self.token
        keys = TokenKeys(token)
        scanners: dict[str, Any] = {}
        if "bitcoin" in self.chains:
            from custody.btc_payer import BitcoinPayer
            from custody.chains.bitcoin import BitcoinRpc
            from custody.scanners import BitcoinScanner

            entry = self.chains["bitcoin"]
            cfg = c.chains["bitcoin"]
            if entry.embedded is not None:
                rpc = BitcoinRpc.from_cookie(entry.url, entry.embedded.datadir / ".cookie")
            else:
                password = (
                    cfg.rpc_password_file.read_text().strip() if cfg.rpc_password_file else ""
                )
                rpc = BitcoinRpc(entry.url, cfg.rpc_user, password)
            entry.client = rpc

            async def btc_call(method: str, params: list[Any], rpc: Any = rpc) -> Any:
                return await rpc.call(method, *params)

            scanners["bitcoin"] = BitcoinScanner(btc_call)
            hot = await asyncio.to_thread(keys.key_or_new, "hot:bitcoin")
            self.payers["bitcoin"] = BitcoinPayer(rpc, hot, cfg.network)  # type: ignore[arg-type]
        if "ethereum" in self.chains:
            from custody.chains.ethereum import EthereumChain
            from custody.eth_payer import EthereumPayer
            from custody.scanners import EthereumScanner

            entry = self.chains["ethereum"]
            cfg = c.chains["ethereum"]
            node = EthereumChain(entry.url)
            entry.client = node
            tokens = dict(cfg.tokens)
            if entry.embedded is not None and not tokens:
                tokens = await _eth_request(node, "venue_contracts", [])

            async def eth_call(method: str, params: list[Any], node: Any = node) -> Any:
                return await _eth_request(node, method, params)

            scanners["ethereum"] = EthereumScanner(eth_call, tokens)
            hot = await asyncio.to_thread(keys.key_or_new, "hot:ethereum")
            abi = load_build("TestUSDT")["abi"]
            self.payers["ethereum"] = EthereumPayer(
                node, hot, {a: (addr, abi) for a, addr in tokens.items()}, await node.chain_id()
            )
        custody = Custody(
            c, data_dir, self.config.assets, submit=self.venue.submit, keys=keys,
            address_of=self._address_of, alert=self.alert, now_ms=self.now_ms,
        )  # fmt: skip
        for name, scanner in scanners.items():
            custody.watch(name, scanner)
            fresh = self.chains[name].embedded
            if fresh is not None and fresh.started and custody.store.cursor(name) is not None:
                # a new test chain (the last one stopped with the venue): its blocks are not the
                # ones scanned before; what was credited from the old one stays credited, and
                # the reconciliation says what the new chain does not hold
                log.warning("custody: a new %s test chain: watching from its tip", name)
                custody.store.forget_chain(name)
        self.custody = custody
        self.withdrawals = Withdrawals(
            c, custody.store, self.config.assets, self.payers, submit=self.venue.submit,
            available=self._available, now_ms=self.now_ms, flagged=self.flagged,
            request_approval=self._request_approval,
        )  # fmt: skip
        self.withdrawals.request_refill = self._request_refill
        await self.withdrawals.recover()
        await self._open_cold()
        self._sweepers(keys)
        for name in self.chains:
            await self._round(name)  # the first round before the doors open
            self._tasks.append(asyncio.create_task(self._loop(name)))
        self._tasks.append(asyncio.create_task(self._reconcile_loop()))
        print(f"venue: custody on {', '.join(sorted(self.chains))}", flush=True)

    async def holdings(self) -> dict[str, dict[str, int]]:
        """asset -> {"hot", "deposits", "cold", "in_flight"} in the chain's units, read from the
        nodes."""
        out: dict[str, dict[str, int]] = {}
        for name in self.payers:
            out.update(await self._chain_holdings(name))
        return out

    async def _chain_holdings(self, name: str) -> dict[str, dict[str, int]]:
        from custody.btc_payer import BitcoinPayer
        from custody.chains.bitcoin import btc_to_sats
        from custody.eth_payer import EthereumPayer

        assert self.custody is not None and self.withdrawals is not None
        payer = self.payers[name]
        cold = self.cold.get(name)
        out: dict[str, dict[str, int]] = {}
        deposit_addresses = sorted(self.custody.store.addresses(name))
        flight = self.withdrawals.in_flight(name)
        if isinstance(payer, BitcoinPayer):
            hot = await payer.node.scan_addresses([payer.address])
            deps = await payer.node.scan_addresses(deposit_addresses) if deposit_addresses else []
            out["BTC"] = {
                "hot": sum(btc_to_sats(c["amount"]) for c in hot),
                "deposits": sum(btc_to_sats(c["amount"]) for c in deps),
                "cold": 0 if cold is None else await cold.balance("BTC"),
                "in_flight": flight.get("BTC", 0),
            }
        elif isinstance(payer, EthereumPayer):
            node = payer.node
            out["ETH"] = {
                "hot": await node.balance(payer.address),
                "deposits": sum([await node.balance(a) for a in deposit_addresses]),
                "cold": 0 if cold is None else await cold.balance("ETH"),
                "in_flight": flight.get("ETH", 0),
            }
            for asset, (contract, abi) in payer.tokens.items():
                out[asset] = {
                    "hot": await node.erc20_balance(abi, contract, payer.address),
                    "deposits": sum(
                        [await node.erc20_balance(abi, contract, a) for a in deposit_addresses]
                    ),
                    "cold": 0 if cold is None else await cold.balance(asset),
                    "in_flight": flight.get(asset, 0),
                }
        return out

    async def liabilities(self) -> dict[str, int]:
        """asset -> what participants hold in the venue (venue units): what custody owes."""

        def read(core: Any) -> dict[str, int]:
            sums: dict[str, int] = {}
            for assets in core.risk.balances.values():
                for asset, (total, _locked) in assets.items():
                    sums[asset] = sums.get(asset, 0) + total
            return sums

        return await self.venue.read(read)

    async def booked(self) -> dict[str, dict[str, int]]:
        """asset -> custody account -> what the venue's books say it holds (venue units)."""
        from custody import book

        def read(core: Any) -> dict[str, dict[str, int]]:
            out: dict[str, dict[str, int]] = {}
            for (kind, asset), value in core.risk.venue.items():
                if kind in (book.OMNIBUS, book.HOT, book.COLD):
                    out.setdefault(asset, {})[kind] = value
            return out

        return await self.venue.read(read)

    async def wallets(self) -> list[dict[str, Any]]:
        """Each asset's on-chain holdings (hot wallet, deposit addresses, cold wallet, payouts
        and moves in flight) against the ledger's liabilities, in the asset's decimals, with
        what the books say each wallet holds (``book``: confirmed movements only)."""
        from custody import book
        from custody.config import decimal_text as _decimal
        from custody.config import from_chain_units

        c = self.config.custody
        assert c is not None and self.custody is not None
        held = await self.holdings()
        owed = await self.liabilities()
        books = await self.booked()
        dust = self.custody.store.dust()
        out = []
        for asset, h in sorted(held.items()):
            rules = c.assets.get(asset)
            if rules is None:
                continue
            places = self.config.assets[asset]

            def venue_units(chain_amount: int, places: int = places, rules: Any = rules) -> int:
                return from_chain_units(chain_amount, places, rules.chain_decimals)[0]

            on_chain = h["hot"] + h["deposits"] + h["cold"] + h["in_flight"]
            total = venue_units(on_chain)
            hot_pct = 0 if on_chain == 0 else h["hot"] * 100 // on_chain
            out.append(
                {
                    "asset": asset, "chain": rules.chain,
                    "hot": _decimal(venue_units(h["hot"]), places),
                    "deposits": _decimal(venue_units(h["deposits"]), places),
                    "cold": _decimal(venue_units(h["cold"]), places),
                    "coldAddress": getattr(self.cold.get(rules.chain), "address", ""),
                    "inFlight": _decimal(venue_units(h["in_flight"]), places),
                    "onChain": _decimal(total, places),
                    "liabilities": _decimal(owed.get(asset, 0), places),
                    "surplus": _decimal(total - owed.get(asset, 0), places),
                    "hotPercent": hot_pct, "hotBand": [rules.hot_min_pct, rules.hot_max_pct],
                    "dustChain": str(dust.get(asset, 0)),
                    "onChainUnits": str(on_chain), "liabilitiesUnits": owed.get(asset, 0),
                    "book": {
                        name: _decimal(books.get(asset, {}).get(kind, 0), places)
                        for name, kind in (
                            ("deposits", book.OMNIBUS), ("hot", book.HOT), ("cold", book.COLD)
                        )
                    },
                }
            )  # fmt: skip
        return out

    async def reconcile(self) -> list[dict[str, Any]]:
        """Holdings against liabilities: a RESERVE_SHORTFALL alert for an asset whose on-chain
        holdings are below what participants hold; and each wallet against the books
        (``custody.book.BooksWatch``): one whose chain holds less than the books say, with
        nothing moving, raises RESERVE_SHORTFALL too (the hot wallet's band is each round's:
        ``_band``)."""
        from custody.config import decimal_text
        from custody.service import CustodyAlert

        moving = {name: self._moving(name) for name in self.payers}
        rows = await self.wallets()
        moving = {name: was or self._moving(name) for name, was in moving.items()}
        now = self.now_ms()
        day = now // 86_400_000
        for row in rows:
            asset = row["asset"]
            if Decimal(row["surplus"]) < 0:
                self.alert(
                    CustodyAlert(
                        "RESERVE_SHORTFALL", f"RESERVE_SHORTFALL:{asset}:{day}", (),
                        f"{asset} on chain {row['onChain']} is below the participants' "
                        f"{row['liabilities']} (short {row['surplus']})",
                        dict(row), 0, now,
                    )
                )  # fmt: skip
            places = self.config.assets[asset]

            def units(text: str, places: int = places) -> int:
                return int(Decimal(text).scaleb(places))

            chain = {w: units(row[w]) for w in ("hot", "deposits", "cold")}
            books = {w: units(v) for w, v in row["book"].items()}
            for wallet, held, booked in self._books.look(
                asset, chain, books, moving.get(row["chain"], True)
            ):
                self.alert(
                    CustodyAlert(
                        "RESERVE_SHORTFALL", f"RESERVE_SHORTFALL:{asset}:{wallet}:books:{day}", (),
                        f"the {asset} {wallet} wallet holds {decimal_text(held, places)} on"
                        f" chain, less than the {decimal_text(booked, places)} the books record,"
                        " with nothing moving",
                        dict(row), 0, now,
                    )
                )  # fmt: skip
        return rows

    def _moving(self, chain: str) -> bool:
        """Whether a batch or a sweep of the chain is open (confirmed moves not yet recorded)."""
        assert self.withdrawals is not None
        sweeper = self.sweepers.get(chain)
        return self.withdrawals.moving(chain) or (sweeper is not None and sweeper.moving())

    async def publish_reserves(self) -> dict[str, Any]:
        """A proof of reserves now: the Merkle sum tree of every account's balances at the
        journal's durable sequence (salts from a secret seed kept 0600 under
        ``<data_dir>/custody``), its root and totals published with each wallet's signature of
        the challenge (the hot wallets and every deposit address, keys in the token). Kept
        under ``<data_dir>/custody/reserves/<snapshot>.json``; the tree stays in memory for the
        accounts' proofs."""
        from custody.btc_payer import BitcoinPayer
        from custody.eth_payer import EthereumPayer
        from custody.reserves import asset_attestation, build, challenge

        assert self.custody is not None and self.token is not None
        keys = TokenKeys(self.token)

        def read(core: Any) -> tuple[int, dict[int, dict[str, int]]]:
            return core.last_seq, {
                account: {asset: total for asset, (total, _locked) in assets.items() if total}
                for account, assets in core.risk.balances.items()
            }

        seq, balances = await self.venue.read(read)
        balances = {a: b for a, b in balances.items() if b}
        assets = sorted(self.config.assets.items())
        seed = self._reserves_seed()
        tree = await asyncio.to_thread(build, balances or {0: {}}, assets, seq, seed)
        published = tree.published()
        message = challenge(seq, tree.root_hash)
        wallets: list[tuple[str, str, Any]] = []
        for name, payer in self.payers.items():
            if isinstance(payer, BitcoinPayer | EthereumPayer):
                wallets.append((name, payer.address, payer.hot))
            for address, label in sorted(self._deposit_labels(name).items()):
                key = keys.key(label)
                if key is not None:
                    wallets.append((name, address, key))
        attestations = await asyncio.to_thread(asset_attestation, message, wallets)
        attestations.extend(await asyncio.to_thread(self._cold_attestations, message))
        document = {**published, "challenge": message.decode(), "attestations": attestations}
        folder = self.config.data_dir / "custody" / "reserves"
        folder.mkdir(parents=True, exist_ok=True)
        staging = folder / f"{seq}.json.tmp"
        staging.write_text(json.dumps(document, indent=1))
        os.replace(staging, folder / f"{seq}.json")
        self._reserves = (tree, document)
        return document

    def reserves(self) -> dict[str, Any] | None:
        return None if self._reserves is None else self._reserves[1]

    def _cold_attestations(self, message: bytes) -> list[dict[str, str]]:
        """The cold wallets' attestations: a 2-of-3 P2WSH address or a multisig contract has
        no key of its own, so each of its keys signs the challenge for its own single-key
        address (Bitcoin P2WPKH, the Ethereum owner), named with the cold wallet it controls
        (``coldWallet``; the P2WSH script or the contract's ``getOwners`` shows the link)."""
        from custody.chains.btc_tx import p2wpkh_address
        from custody.chains.ethereum_tx import address_of
        from custody.reserves import asset_attestation

        out: list[dict[str, str]] = []
        for chain, cold in sorted(self.cold.items()):
            if not cold.address:
                continue
            wallets = [
                (
                    chain,
                    p2wpkh_address(k.public_key(), cold.network)
                    if chain == "bitcoin"
                    else address_of(k.public_key()),
                    k,
                )
                for k in cold.keys
            ]
            for item in asset_attestation(message, wallets):
                item["coldWallet"] = cold.address
                out.append(item)
        return out

    async def _open_cold(self) -> None:
        """The cold token's keys (made on first use) and each chain's cold wallet; the
        Ethereum multisig is usable once its deployment (``_deploy_multisig``) is mined."""
        from custody.btc_payer import BitcoinPayer
        from custody.cold import BitcoinCold, EthereumCold, cold_labels
        from custody.contracts import load_build
        from custody.eth_payer import EthereumPayer
        from venue.hsm import acquire_token

        c = self.config.custody
        assert c is not None and self.withdrawals is not None and self.custody is not None
        token = await asyncio.to_thread(
            acquire_token, c.hsm, self.config.data_dir, c.hsm.cold_token
        )
        self.cold_token = token
        keys = TokenKeys(token)
        for name, payer in self.payers.items():
            signers = [await asyncio.to_thread(keys.key_or_new, lb) for lb in cold_labels(name)]
            if isinstance(payer, BitcoinPayer):
                self.cold[name] = BitcoinCold(payer.node, signers, payer.network, payer.address)
                self.withdrawals.cold[name] = self.cold[name]
            elif isinstance(payer, EthereumPayer):
                cold = EthereumCold(
                    payer.node, signers, payer.hot, payer.chain_id, load_build("MultiSigWallet"),
                    payer.tokens,
                )  # fmt: skip
                self.cold[name] = cold
                self._multisig_ready(name)

    def _multisig_ready(self, name: str) -> bool:
        """The Ethereum cold wallet in use once its deployment's batch is done; a deployment
        the chain refused is forgotten (a later round deploys again)."""
        assert self.custody is not None and self.withdrawals is not None
        cold = self.cold[name]
        if cold.address:
            return True
        store = self.custody.store
        address = store.cold_address(name)
        if address is None:
            return False
        status = self.withdrawals.batch_status(store.cold_batch(name))
        if status == "failed":
            store.forget_cold(name)
            return False
        if status != "done":
            return False
        cold.address = address
        self.payers[name].cold = address  # type: ignore[attr-defined]
        self.withdrawals.cold[name] = cold
        log.info("custody: the %s cold wallet is the multisig at %s", name, address)
        return True

    async def _deploy_multisig(self, name: str) -> None:
        """The multisig's deployment by the hot key, when the hot wallet has the gas and no
        batch is in flight (the pipeline owns the hot key's nonces: the deployment is a batch
        without members, its address recorded in custody's store in the same commit)."""
        from custody.withdrawals import InsufficientHot

        assert self.custody is not None and self.withdrawals is not None
        store = self.custody.store
        cold = self.cold[name]

        nonces: list[int] = []  # the nonce the pipeline gave the deployment

        async def build(nonce: int | None) -> tuple[str, str, int]:
            assert nonce is not None
            nonces.append(nonce)
            out: tuple[str, str, int] = await cold.deployment(nonce)
            return out

        def record(bid: int) -> None:
            store.set_cold_address(name, cold.deployed_at(nonces[-1]), bid)

        with contextlib.suppress(InsufficientHot):  # no ether for the gas yet
            await self.withdrawals.internal_batch(name, "ETH", build, record)

    async def _band(self, name: str) -> None:
        """The hot wallet's band for the chain's assets (``custody.band``): the excess to
        cold through the pipeline, a refill for the approvers, a HOT_WALLET_BAND alert when
        the hot wallet leaves its band or drops by more than its payouts explain."""
        from custody.band import step
        from custody.chains.btc_tx import DUST_P2WSH

        assert self.custody is not None and self.withdrawals is not None
        c = self.config.custody
        assert c is not None
        cold = self.cold.get(name)
        now = time.monotonic()
        if cold is None or now < self._band_due.get(name, 0.0):
            return
        self._band_due[name] = now + BAND_POLLS * c.chains[name].poll_ms / 1000
        if name == "ethereum" and not self._multisig_ready(name):
            if self.custody.store.cold_address(name) is None:
                await self._deploy_multisig(name)
            return
        held = await self._chain_holdings(name)
        for asset, h in held.items():
            rules = c.assets.get(asset)
            if rules is None or asset not in self.config.assets:
                continue
            self._check_drop(asset, h)
            places = self.config.assets[asset]
            floor = DUST_P2WSH if name == "bitcoin" else 0
            d, row = step(self.withdrawals, rules, places, h, cold.address, cold.hot_address, floor)
            if row is not None:
                log.info("custody: %s %s move %d of %s", asset, row.kind, row.id, row.net_chain)
            if d.outside:
                rules_band = f"{rules.hot_min_pct} to {rules.hot_max_pct} %"
                self._band_alert(
                    asset,
                    "band",
                    f"the {asset} hot wallet holds {d.hot_pct_x100 / 100:.2f} % of the "
                    f"holdings, outside its band of {rules_band}",
                    h,
                )

    def _check_drop(self, asset: str, h: dict[str, int]) -> None:
        """A loss: hot and cold fell by more than the payouts and fees explain."""
        assert self.withdrawals is not None
        lost = self._drops.look(asset, h, self.withdrawals.paid_since, self.now_ms())
        if lost:
            self._band_alert(
                asset,
                "drop",
                f"the {asset} hot and cold wallets fell by {lost} (chain units) more than the "
                "payouts and fees explain",
                h,
            )

    def _band_alert(self, asset: str, what: str, summary: str, h: dict[str, int]) -> None:
        from custody.service import CustodyAlert

        now = self.now_ms()
        day = now // 86_400_000
        self.alert(
            CustodyAlert(
                "HOT_WALLET_BAND", f"HOT_WALLET_BAND:{asset}:{what}:{day}", (), summary,
                {k: str(v) for k, v in h.items()}, 0, now,
            )
        )  # fmt: skip

    def reserves_proof(self, account: int) -> dict[str, Any] | None:
        """The account's inclusion proof in the latest published tree (None: not in it)."""
        if self._reserves is None:
            return None
        try:
            return self._reserves[0].proof(account)
        except KeyError:
            return None

    def _deposit_labels(self, chain: str) -> dict[str, str]:
        assert self.custody is not None
        store = self.custody.store
        return {a: store.key_label(chain, a) or "" for a in store.addresses(chain)}

    def _reserves_seed(self) -> bytes:
        path = self.config.data_dir / "custody" / "reserves.seed"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
                f.flush()
                os.fsync(f.fileno())
        return path.read_bytes()

    def _sweepers(self, keys: TokenKeys) -> None:
        """Each chain's sweeps of credited deposits into its hot wallet."""
        from custody import book
        from custody.btc_payer import BitcoinPayer
        from custody.config import native_asset
        from custody.eth_payer import EthereumPayer
        from custody.sweeps import Sweeper, SweepTx
        from engine.commands import RecordCustody

        assert self.custody is not None
        store = self.custody.store
        for name, payer in self.payers.items():
            if isinstance(payer, BitcoinPayer):
                btc = payer

                async def build_btc(candidates: dict[str, str], btc: Any = btc) -> list[SweepTx]:
                    rows = self.sweepers["bitcoin"].unswept(candidates)
                    found = [
                        (d.txid, d.idx, d.amount_chain, keys.key(candidates[d.address]))
                        for d in rows
                    ]
                    moved = await btc.sweep([f for f in found if f[3] is not None])
                    if moved is None:
                        return []
                    raw, txid, amount, fee = moved
                    return [SweepTx(raw, txid, amount, fee, "*")]

                build: Any = build_btc
            elif isinstance(payer, EthereumPayer):
                eth = payer

                async def build_eth(candidates: dict[str, str], eth: Any = eth) -> list[SweepTx]:
                    out = []
                    for address, label in candidates.items():
                        key = keys.key(label)
                        moved = None if key is None else await eth.sweep(key)
                        if moved is not None:
                            raw, txid, amount, fee = moved
                            out.append(SweepTx(raw, txid, amount, fee, address))
                    return out

                build = build_eth
            else:
                continue
            native = native_asset(self.config.custody, name)  # type: ignore[arg-type]
            rules = self.config.custody.assets.get(native)  # type: ignore[union-attr]

            async def record(cmd: RecordCustody) -> bool:
                return await book.record(self.venue.submit, cmd)

            native_decimals = (
                self.config.assets.get(native, 8), rules.chain_decimals if rules else 8
            )  # fmt: skip
            self.sweepers[name] = Sweeper(
                name, native, store, build, payer.broadcast, payer.confirmations, self.now_ms,
                record=record, decimals=native_decimals,
            )  # fmt: skip
            if isinstance(payer, EthereumPayer) and self.withdrawals is not None:
                from custody.token_sweeps import TokenSweeper

                custody = self.config.custody
                assert custody is not None
                group: list[Sweeper] = []
                for asset in sorted(payer.tokens):
                    if asset not in self.config.assets or asset not in custody.assets:
                        continue
                    places = (self.config.assets[asset], custody.assets[asset].chain_decimals)
                    sweeper = TokenSweeper(
                        asset, store, payer, keys.key, self.withdrawals, self.now_ms,
                        record=record, decimals=places, gas_asset=native,
                        gas_decimals=native_decimals,
                    )  # fmt: skip
                    group.append(sweeper)
                self.token_sweepers[name] = group

    def _address_of(self, chain: str, pubkey: bytes) -> str:
        if chain == "bitcoin":
            from custody.chains.btc_tx import p2wpkh_address

            network = self.config.custody.chains["bitcoin"].network  # type: ignore[union-attr]
            return p2wpkh_address(pubkey, network)
        from custody.chains.ethereum_tx import address_of

        return address_of(pubkey)

    async def _available(self, account: int, asset: str) -> int:
        def read(core: Any) -> int:
            total, locked = core.risk.balance(account, asset)
            return int(total - locked)

        return await self.venue.read(read)

    async def _loop(self, name: str) -> None:
        c = self.config.custody
        assert c is not None
        interval = c.chains[name].poll_ms / 1000
        embedded = self.chains[name].embedded
        while True:
            await asyncio.sleep(interval)
            if embedded is not None:
                from venue.chains import renew

                renew(embedded)
            await self._round(name)

    async def _reconcile_loop(self) -> None:
        """Holdings against liabilities every ``RECONCILE_S`` (alerts when they part)."""
        while True:
            await asyncio.sleep(RECONCILE_S)
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a node down: the next round tries again
                log.warning("custody: reconciliation failed: %s", exc)

    async def _round(self, name: str) -> None:
        """One poll of the chain's deposits and one step of its withdrawals; a failure is
        logged (once per kind until it clears) and the next round tries again."""
        from custody.withdrawals import InsufficientHot

        assert self.custody is not None and self.withdrawals is not None
        entry = self.chains[name]
        self.withdrawals.file_approvals()
        steps: list[tuple[str, Any]] = [
            ("deposits", self.custody.poll),
            ("withdrawals", self.withdrawals.process),
        ]
        if name in self.sweepers:
            sweepers = [self.sweepers[name], *self.token_sweepers.get(name, [])]

            async def sweep(_name: str) -> None:
                for sweeper in sweepers:
                    await sweeper.run()

            steps.append(("sweeps", sweep))
        steps.append(("band", self._band))
        for what, step in steps:
            try:
                await step(name)
                entry.errors.pop(what, None)
            except asyncio.CancelledError:
                raise
            except InsufficientHot as exc:
                if entry.errors.get(what) != 1:
                    log.warning("custody: %s: %s", name, exc)
                entry.errors[what] = 1
            except Exception as exc:  # a node down, a timeout: tried again next round
                if what not in entry.errors:
                    log.error("custody: %s %s: %s", name, what, exc)
                entry.errors[what] = entry.errors.get(what, 0) + 1

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        for entry in self.chains.values():
            with contextlib.suppress(Exception):
                if entry.client is not None:
                    await entry.client.close()
        if self.custody is not None:
            self.custody.close()
            self.custody = None
        from venue.hsm import release_token

        if self.cold_token is not None:
            release_token(self.cold_token)
            self.cold_token = None
        self.cold = {}
        if self.token is not None:
            release_token(self.token)
            self.token = None
        for entry in self.chains.values():
            if entry.embedded is not None:
                from venue.chains import stop_chain

                await asyncio.to_thread(stop_chain, entry.embedded)
        self.chains = {}


def _import_adapters(chains: tuple[str, ...]) -> None:
    """The chains' libraries (web3 and py_ecc take seconds to import), off the event loop."""
    if "bitcoin" in chains:
        import custody.btc_payer
    if "ethereum" in chains:
        import custody.eth_payer  # noqa: F401


async def _eth_request(node: Any, method: str, params: list[Any]) -> Any:
    answer = await node.w3.provider.make_request(method, params)
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer.get("result")
