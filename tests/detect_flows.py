"""A core driven with commands, its events fed to the detectors as the venue publishes them:
the streams the detector tests are built from are the core's own."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from helpers import SYM, T0, spec

from clearing.risk import RiskEngine
from engine.codec import encode
from engine.commands import (
    CancelOrder,
    ConfigureAccount,
    Deposit,
    NewOrder,
    ReplaceOrder,
    Withdraw,
)
from engine.core import Core
from engine.events import Event, OrderAccepted
from engine.journal import JournalWriter
from engine.recovery import JOURNAL_DIR
from engine.types import OrdType, Side, StpMode, TimeInForce
from surveillance.alerts import Alert, AlertSink, AlertType
from surveillance.detect import CollectingSink, LatestSink, Surveillance
from surveillance.detect.params import AmlParams, InstrumentParams, SurveillanceConfig

MS = 1_000_000
ASSETS = {"BTC": 8, "USD": 8}
USD = 100_000_000  # one USD in minor units
PRICE = 10_000  # 100.00


def params(**changes: Any) -> InstrumentParams:
    return dataclasses.replace(InstrumentParams(), **changes)


SPECS = (spec(SYM, band_bps=5_000, reference_price=PRICE),)


def new_core(money: bool = False) -> Core:
    risk = RiskEngine(SPECS, ASSETS) if money else None
    return Core(list(SPECS), default_stp=StpMode.EXPIRE_TAKER, risk=risk)


class Flow(AlertSink):
    """Commands one millisecond apart (unless told), their events fed live to ``Surveillance``."""

    def __init__(
        self,
        instrument: InstrumentParams | None = None,
        aml: AmlParams | None = None,
        *,
        money: bool = False,
    ) -> None:
        self.core = new_core(money)
        specs = list(SPECS)
        self.money = money
        config = SurveillanceConfig(
            defaults=instrument or InstrumentParams(), aml=aml or AmlParams()
        )
        self.sink = LatestSink()
        self.every = CollectingSink()
        self.surveillance = Surveillance(config, specs, self, ASSETS)
        self.seq = 0
        self.ts = T0
        self.clid = 0
        self.wid = 0
        self.stream: list[tuple[int, int, list[Event]]] = []
        self.commands: list[Any] = []

    # the sink the detectors see: both the latest per key and every raise
    def raise_alert(self, alert: Alert) -> None:
        self.sink.raise_alert(alert)
        self.every.raise_alert(alert)

    def send(self, cmd: Any, *, after_ms: int = 1) -> list[Event]:
        self.seq += 1
        self.ts += after_ms * MS
        cmd.seq, cmd.ts = self.seq, self.ts
        events = self.core.apply(cmd)
        assert not self.core.check_invariants()
        self.commands.append(cmd)
        self.stream.append((self.seq, self.ts, events))
        self.surveillance.on_events(self.seq, self.ts, events)
        return events

    def wait(self, ms: int) -> None:
        self.ts += ms * MS

    # -- orders ------------------------------------------------------------------------------
    def order(
        self,
        account: int,
        side: Side,
        price: int,
        qty: int,
        *,
        tif: TimeInForce = TimeInForce.GTC,
        display: int = 0,
    ) -> int:
        """The order id (0 when it was not accepted)."""
        self.clid += 1
        cmd = NewOrder(account, SYM, f"c{self.clid}", side, OrdType.LIMIT, qty=qty, price=price)
        cmd.tif = tif
        cmd.display_qty = display
        events = self.send(cmd)
        accepted = [e for e in events if isinstance(e, OrderAccepted)]
        return accepted[0].order_id if accepted else 0

    def buy(self, account: int, price: int, qty: int, **kw: Any) -> int:
        return self.order(account, Side.BUY, price, qty, **kw)

    def sell(self, account: int, price: int, qty: int, **kw: Any) -> int:
        return self.order(account, Side.SELL, price, qty, **kw)

    def cancel(self, account: int, order_id: int, *, after_ms: int = 1) -> list[Event]:
        return self.send(CancelOrder(account, SYM, order_id, ""), after_ms=after_ms)

    def replace(self, account: int, order_id: int, qty: int, price: int) -> list[Event]:
        return self.send(ReplaceOrder(account, SYM, order_id, "", "", qty, price, 0))

    def write_journal(self, directory: Path) -> None:
        """The commands sent so far as a journal (``directory``/journal)."""
        with JournalWriter(directory / JOURNAL_DIR, fsync=False) as writer:
            for cmd in self.commands:
                writer.append(cmd.seq, bytes(encode(cmd)))

    def configure(self, account: int, owner: int, stp: StpMode = StpMode.NONE) -> None:
        self.send(ConfigureAccount(account, owner, stp))

    # -- money -------------------------------------------------------------------------------
    def fund(self, *accounts: int) -> None:
        for account in accounts:
            self.send(Deposit(account, "USD", 10_000_000 * USD, f"fund-{account}"))
            self.send(Deposit(account, "BTC", 100_000 * 100_000_000, f"fund-{account}"))

    def deposit(self, account: int, asset: str, amount: int, *, after_ms: int = 1) -> None:
        self.send(Deposit(account, asset, amount, f"d{self.seq}"), after_ms=after_ms)

    def withdraw(self, account: int, asset: str, amount: int, *, after_ms: int = 1) -> None:
        self.wid += 1
        self.send(Withdraw(account, asset, amount, self.wid, f"w{self.wid}"), after_ms=after_ms)

    # -- what was raised ---------------------------------------------------------------------
    def alerts(self, kind: AlertType | None = None) -> list[Alert]:
        return [a for a in self.sink.latest() if kind is None or a.type is kind]

    def types(self) -> set[AlertType]:
        return {a.type for a in self.sink.latest()}

    def background(self, accounts: tuple[int, ...] = (50, 51, 52, 53), qty: int = 10) -> None:
        """A resting book of normal-size orders from other accounts (the typical size)."""
        for i in range(20):
            account = accounts[i % len(accounts)]
            self.buy(account, PRICE - 10 - i, qty)
            self.sell(account, PRICE + 10 + i, qty)
