"""The feed: ``Surveillance`` takes the venue's durable events ``(seq, ts, events)`` (live from
``Venue.subscribe``, or from the journal through ``engine.replay.Replayer``) and hands each
event to the detectors that want it, in order; they raise alerts to one sink. The same events
give the same alerts, in the same order, live or in a batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from engine.core import Core
from engine.events import Event
from engine.instrument import InstrumentSpec
from surveillance.alerts import Alert, AlertSink
from surveillance.detect.money import MoneyFlows
from surveillance.detect.otr import OrderToTradeRatio
from surveillance.detect.params import SurveillanceConfig
from surveillance.detect.spoofing import Spoofing
from surveillance.detect.state import State
from surveillance.detect.wash import WashTrades

__all__ = ["CollectingSink", "LatestSink", "Surveillance"]


class Surveillance:
    """Every detector over one stream. ``instruments`` and ``decimals`` (asset -> decimals of
    its minor unit) are the venue's static data; each account's owner comes from the events
    (``AccountConfigured``), or from the core when the stream starts part-way (``seed``)."""

    def __init__(
        self,
        config: SurveillanceConfig,
        instruments: Iterable[InstrumentSpec],
        sink: AlertSink,
        decimals: Mapping[str, int] | None = None,
    ) -> None:
        self.state = State(config, instruments, sink)
        self.spoofing = Spoofing(self.state)
        self.otr = OrderToTradeRatio(self.state)  # its counts are served as they stand
        self.detectors: list[Any] = [
            self.otr,
            WashTrades(self.state),
            self.spoofing,
            MoneyFlows(self.state, decimals or {}),
        ]
        # the shared state first: the detectors read the book as it stands after each event
        table: dict[type, list[Callable[[Any], None]]] = {}
        for part in (self.state, *self.detectors):
            for kind, handler in part.handlers().items():
                table.setdefault(kind, []).append(handler)
        self._table = {kind: tuple(handlers) for kind, handlers in table.items()}
        self.last_seq = 0

    def seed(self, core: Core) -> None:
        """Start from ``core``'s state (owners, open orders): for a stream that does not begin
        at the journal's start (``Replayer.events(..., at_start=surveillance.seed)``)."""
        self.state.seed(core)
        self.last_seq = core.last_seq

    def on_events(self, seq: int, ts: int, events: list[Event]) -> None:
        """One durable command's events (``Venue.subscribe``'s callback)."""
        state = self.state
        state.seq = seq
        state.ts = ts
        table = self._table
        for event in events:
            handlers = table.get(type(event))
            if handlers is not None:
                for handler in handlers:
                    handler(event)
        self.spoofing.end_command()
        self.last_seq = seq


class LatestSink(AlertSink):
    """Keeps the latest alert of each key, and how many times it was raised (the store's
    behaviour, in memory)."""

    def __init__(self) -> None:
        self.alerts: dict[str, Alert] = {}
        self.counts: dict[str, int] = {}

    def raise_alert(self, alert: Alert) -> None:
        self.alerts[alert.key] = alert
        self.counts[alert.key] = self.counts.get(alert.key, 0) + 1

    def latest(self) -> list[Alert]:
        """The alerts in the order their keys were first raised."""
        return list(self.alerts.values())


class CollectingSink(AlertSink):
    """Every alert raised, in order (the batch command prints them as they come)."""

    def __init__(self, on_alert: Callable[[Alert], None] | None = None) -> None:
        self.alerts: list[Alert] = []
        self.on_alert = on_alert

    def raise_alert(self, alert: Alert) -> None:
        self.alerts.append(alert)
        if self.on_alert is not None:
            self.on_alert(alert)
