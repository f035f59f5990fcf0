"""Wiring of the Binance-dialect door (``gateway.rest``) to the running venue.

The door's port (:class:`RestPort`) over ``venue.runtime.Venue``; its read models rebuilt
before it listens: the market history (trades, candles) from its checkpoint under
``<data_dir>/rest`` and the journal after it, the accounts' activity (orders, fills, prevented
matches) from the journal's last ``[rest] replay_commands`` commands; then both follow every
durable command. The history checkpoint is written every minute and at stop, so a restart
replays only what came after it.

The KYC provider's webhook (``gateway.rest.kyc``) is served on the same port, with the secret
read from ``[kyc] webhook_secret_file`` when the door is built; calls refused for their
signature go to ``on_refused`` (``venue.cli`` records them in the audit chain).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from clearing.risk import RiskEngine
from engine.commands import Command
from engine.core import Core
from engine.events import Event
from engine.replay import Replayer, ReplayError
from engine.types import AccountState, KycTier
from gateway.admin.ports import Unavailable, Unjournalable
from gateway.rest.activity import Activity
from gateway.rest.app import Extension, make_app
from gateway.rest.config import RestConfig
from gateway.rest.history import MarketHistory
from gateway.rest.keys import KeyStore
from gateway.rest.kyc import OnRefused, add_kyc_webhook, load_webhook_secret
from gateway.rest.ports import BatchCallback, EventCallback
from gateway.rest.wallet import Wallet
from venue.config import VenueConfig
from venue.runtime import CommandRefused, Venue, VenueStopped, make_core

__all__ = ["REST_DIR", "RestGateway", "RestPort", "open_keys"]

log = logging.getLogger("venue.rest")

REST_DIR = "rest"
HISTORY_FILE = "history.ckpt"
#: How often the market history checkpoint is written (seconds).
CHECKPOINT_EVERY_S = 60.0
#: How often the door reads the keys other processes (``venue api-key``) made or revoked.
FOLLOW_KEYS_EVERY_S = 1.0

T = TypeVar("T")
_DAY_NS = 86_400 * 1_000_000_000


def open_keys(config: VenueConfig) -> KeyStore:
    """The venue's API key store, under ``<data_dir>/rest``: one per process, shared by the
    admin API (which makes keys) and the REST door (which checks them); ``venue api-key``
    opens the same files from its own process. Raises ``KeyStoreError`` or ``OSError``."""
    return KeyStore(config.data_dir / REST_DIR)


class _Money:
    """``gateway.rest.ports.Money`` over the risk stage."""

    def __init__(self, risk: RiskEngine, venue: Venue) -> None:
        self._risk = risk
        self._venue = venue

    def account_balances(self, account: int) -> dict[str, tuple[int, int]]:
        return self._risk.account_balances(account)

    def account_state(self, account: int) -> AccountState:
        return self._risk.account_state(account)

    def kyc_tier(self, account: int) -> KycTier:
        return self._risk.kyc_tier(account)

    def commission_ppm(self, account: int) -> tuple[int, int]:
        return self._risk.commission_ppm(account, self._venue.now_ns() // _DAY_NS)


class RestPort:
    """``gateway.rest.ports.RestVenue`` over the running venue."""

    def __init__(self, venue: Venue) -> None:
        self._venue = venue

    @property
    def core(self) -> Core:
        return self._venue.core

    @property
    def money(self) -> _Money | None:
        risk = self._venue.risk
        return _Money(risk, self._venue) if risk is not None else None

    async def submit(self, cmd: Command) -> list[Event]:
        try:
            return await self._venue.submit(cmd)
        except CommandRefused as exc:
            raise Unjournalable(str(exc)) from None
        except VenueStopped as exc:
            raise Unavailable(str(exc)) from None

    async def read(self, fn: Callable[[Core], T]) -> T:
        try:
            return await self._venue.read(fn)
        except VenueStopped as exc:
            raise Unavailable(str(exc)) from None

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        return self._venue.subscribe(callback)

    def subscribe_batches(self, callback: BatchCallback) -> Callable[[], None]:
        return self._venue.subscribe_batches(callback)

    def now_ms(self) -> int:
        return self._venue.now_ns() // 1_000_000


class RestGateway:
    """The door's application, its read models and its listening socket."""

    def __init__(
        self,
        venue: Venue,
        config: RestConfig,
        extensions: tuple[Extension, ...] = (),
        keys: KeyStore | None = None,
        on_refused: OnRefused | None = None,
        wallet: Wallet | None = None,
    ) -> None:
        self.venue = venue
        self.config = config
        self.extensions = extensions
        #: custody's wallet for the ``/sapi/v1/capital`` paths (None: not served)
        self.wallet = wallet
        #: hears of KYC webhook calls refused for their signature (the audit trail)
        self.on_refused = on_refused
        self.directory = venue.config.data_dir / REST_DIR
        #: the process's key store (``open_keys``), shared with the admin API; opened by
        #: ``build`` when not given
        self.keys = keys
        self.history = MarketHistory(venue.config.instruments, keep_trades=config.keep_trades)
        self.activity = Activity(config.keep_done_orders, trade_ids=self._trade_id)
        self.app: web.Application | None = None
        self.host = config.host
        self.port = config.port
        self._runner: web.AppRunner | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self._checkpoints: asyncio.Task[None] | None = None
        self._follow_keys: asyncio.Task[None] | None = None

    def _trade_id(self, symbol: str, engine_trade_id: int) -> int:
        return self.history.symbol_trade_id(symbol, engine_trade_id)

    def build(self) -> web.Application:
        """Open the key store (unless given), read the KYC webhook's secret, rebuild the read
        models and subscribe them: before listening. Raises ``KeyStoreError``,
        ``KycSecretError`` or ``OSError``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        secret_file = self.venue.config.kyc.webhook_secret_file
        secret = load_webhook_secret(secret_file) if secret_file is not None else None
        webhook = add_kyc_webhook(secret, self.on_refused)
        if self.keys is None:
            self.keys = open_keys(self.venue.config)
        keys = self.keys
        self._rebuild()
        # the history first: the activity and the streams read the ids it gives each trade
        self._unsubscribe.append(self.venue.subscribe(self.history.apply))
        self._unsubscribe.append(self.venue.subscribe(self.activity.apply))
        self.app = make_app(
            RestPort(self.venue),
            self.config,
            self.venue.config.instruments,
            self.venue.config.assets,
            activity=self.activity,
            history=self.history,
            keys=keys,
            extensions=(*self.extensions, webhook),
            wallet=self.wallet,
        )
        return self.app

    def _rebuild(self) -> None:
        venue = self.venue
        last = venue.core.last_seq
        history_path = self.directory / HISTORY_FILE
        loaded = self.history.load(history_path) if history_path.exists() else False
        history_seq = self.history.seq if loaded else 0
        if history_seq > last:  # a checkpoint from another journal: start over
            log.warning("%s is ahead of the journal: rebuilding the history", history_path)
            self.history.reset()
            history_seq = 0
        activity_seq = max(0, last - self.config.replay_commands)
        start = min(history_seq, activity_seq)
        if start >= last:
            self.activity.load(venue.core)
            return
        replayer = Replayer(venue.config.data_dir, lambda: make_core(venue.config))
        activity = self.activity
        if activity_seq == start:
            at_start: Callable[[Core], None] | None = activity.load
        else:
            at_start = None
        try:
            for seq, ts, events in replayer.events(start, last, at_start=at_start):
                if seq > history_seq:
                    self.history.apply(seq, ts, events)
                if seq > activity_seq:
                    activity.apply(seq, ts, events)
                elif seq == activity_seq:
                    activity.load(replayer.core)
        except ReplayError as exc:
            log.error("the REST read models cannot be rebuilt from the journal: %s", exc)
            activity.load(venue.core)
        if activity.seq != last:
            activity.load(venue.core)

    async def start(self) -> None:
        app = self.app if self.app is not None else self.build()
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        if runner.addresses:
            self.host, self.port = runner.addresses[0][:2]
        self._checkpoints = asyncio.create_task(self._checkpoint_loop(), name="rest-history")
        self._follow_keys = asyncio.create_task(self._follow_keys_loop(), name="rest-keys")

    async def _follow_keys_loop(self) -> None:
        """Keys revoked or made by another process (``venue api-key``) are seen within a
        second: a revocation must not wait for a restart. A lookup of a known key does no I/O,
        so this is how it learns; a look costs one ``stat`` when nothing changed."""
        keys = self.keys
        assert keys is not None
        while True:
            await asyncio.sleep(FOLLOW_KEYS_EVERY_S)
            keys.refresh(wait=False)

    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY_S)
            self.checkpoint()

    def checkpoint(self) -> None:
        try:
            self.history.save(self.directory / HISTORY_FILE)
        except OSError as exc:
            log.error("the market history checkpoint cannot be written: %s", exc)

    async def stop(self) -> None:
        for task in (self._checkpoints, self._follow_keys):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for unsubscribe in self._unsubscribe:
            with contextlib.suppress(ValueError):
                unsubscribe()
        self._unsubscribe.clear()
        self.checkpoint()

    @property
    def listening(self) -> bool:
        """Whether the door takes connections now."""
        return self._runner is not None

    @property
    def http_connections(self) -> int:
        """The door's open TCP connections (HTTP, and WebSocket once upgraded)."""
        runner = self._runner
        server = runner.server if runner is not None else None
        return len(server.connections) if server is not None else 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def extensions() -> tuple[Extension, ...]:
    """The WebSocket paths and the contract's page, added to the application: the market
    streams, then the WebSocket API and the user data (which follow the venue after the read
    models and the streams), then the OpenAPI document and its page."""
    from gateway.rest.openapi import add_contract
    from gateway.rest.status import add_status
    from gateway.rest.streams import add_streams
    from gateway.rest.wsapi import add_ws_api

    return (add_streams, add_ws_api, add_contract, add_status)
