"""The venue's metrics (Prometheus) and readiness, served on the admin port.

One registry per venue (a process may run several in tests), read by a collector at scrape
time: the doors' gauges (FIX sessions and connections, REST and WebSocket connections and
subscriptions, rate-limit refusals), the ledger's lag and last reconciliation are read from what
the parts hold anyway, so they cost nothing between scrapes. What must be counted as it happens
is counted once per durable batch (``Venue.observe_batches``): commands, orders and rejects by
door and reason, the command-to-durable latency, the journal's fsync time and the batch sizes,
into plain integer lists and fixed buckets, with no lock (everything runs on the event loop,
the scrape too) and no dict lookup per command. The process's own figures come from
prometheus-client's process, platform and GC collectors.

Exported (``venue_`` first):

- ``venue_commands_total{door}``: durable commands by ``engine.types.Door`` of their origin.
- ``venue_orders_total{door}``: new orders (``NewOrder``, and ``CancelReplace``'s new order).
- ``venue_rejects_total{door,reason}``: orders, cancels, replaces and commands the core
  rejected, by ``engine.types.RejectReason`` (only the pairs seen so far are listed).
- ``venue_command_durable_seconds``: histogram, from a command's sequencer stamp to its batch's
  fsync; every command of a batch is counted at the batch's first stamp (its longest wait).
- ``venue_journal_fsync_seconds``: histogram of the journal's fsync per batch.
- ``venue_batch_commands``: histogram of the commands per batch.
- ``venue_sessions{door="FIX"}``: FIX sessions logged on.
- ``venue_connections{door}``: open connections, FIX, REST (HTTP) and WEBSOCKET.
- ``venue_websocket_connections{endpoint}``: ``streams``, ``api``, ``user_data``.
- ``venue_websocket_subscriptions{kind}``: ``market`` (a connection times a stream) and
  ``user_data`` (a connection times an account).
- ``venue_rate_limit_refusals_total{limit}``: ``REQUEST_WEIGHT``, ``RAW_REQUESTS``,
  ``IP_BANNED``, ``ORDERS``, ``WS_CONNECTIONS``.
- ``venue_journal_seq``, ``venue_ledger_seq``, ``venue_ledger_lag_commands``,
  ``venue_ledger_pending_commands``, ``venue_ledger_halted``: settlement against the journal.
- ``venue_reconcile_ok``, ``venue_reconcile_findings``, ``venue_reconcile_seq``: the last
  reconciliation (absent until one ran).
- ``venue_ready``: 1 when ``/ready`` answers 200.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from engine.commands import CancelReplace, NewOrder
from engine.events import CancelRejected, CommandRejected, OrderRejected, ReplaceRejected
from engine.types import Door, RejectReason
from gateway.rest.gauges import gauges

if TYPE_CHECKING:
    from venue.fix import FixGateway
    from venue.rest import RestGateway
    from venue.runtime import Venue
    from venue.settlement import Settlement

__all__ = ["Buckets", "VenueMetrics"]

#: Seconds: from 100 us (a batch on a fast disk) to 2.5 s (a disk in trouble).
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)

_DOORS = max(Door) + 1
_REASONS = max(RejectReason) + 1
_REJECTS = frozenset({OrderRejected, CancelRejected, ReplaceRejected, CommandRejected})


class Buckets:
    """A histogram kept on the event loop: fixed bounds, plain counts, ``n`` observations of
    one value at once (a batch's commands)."""

    __slots__ = ("bounds", "count", "counts", "total")

    def __init__(self, bounds: Iterable[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last: above every bound
        self.total = 0.0
        self.count = 0

    def observe(self, value: float, n: int = 1) -> None:
        self.counts[bisect_left(self.bounds, value)] += n
        self.total += value * n
        self.count += n

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        buckets: list[tuple[str, float]] = []
        seen = 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            seen += count
            buckets.append((repr(float(bound)), seen))
        buckets.append(("+Inf", self.count))
        return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=self.total)


class VenueMetrics:
    """The metrics and readiness of one venue and the doors the composition root shows it."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.commands = [0] * _DOORS
        self.orders = [0] * _DOORS
        self.rejects = [[0] * _REASONS for _ in range(_DOORS)]
        self.latency = Buckets(LATENCY_BUCKETS)
        self.fsync = Buckets(LATENCY_BUCKETS)
        self.batches = Buckets(BATCH_BUCKETS)
        self.fix: FixGateway | None = None
        self.rest: RestGateway | None = None
        self.settlement: Settlement | None = None
        #: every part started (``started()``): readiness waits for it
        self.all_started = False
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
        self._unsubscribe: Callable[[], None] | None = venue.observe_batches(self.on_batch)

    # -- what the composition root tells it --------------------------------------------------

    def watch_fix(self, gateway: FixGateway | None) -> None:
        self.fix = gateway

    def watch_rest(self, gateway: RestGateway | None) -> None:
        self.rest = gateway

    def watch_settlement(self, settlement: Settlement | None) -> None:
        self.settlement = settlement

    def started(self) -> None:
        """Every part has started: ready once the venue runs and the doors listen."""
        self.all_started = True

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    # -- the commit loop's batches -------------------------------------------------------------

    def on_batch(
        self, done: Sequence[tuple[Any, Any, list[Any]]], fsync_ns: int, durable_ns: int
    ) -> None:
        """Count one durable batch (``venue.runtime.BatchObserver``)."""
        n = len(done)
        self.batches.observe(n)
        self.fsync.observe(fsync_ns / 1e9)
        waited = durable_ns - done[0][0].ts
        self.latency.observe(waited / 1e9 if waited > 0 else 0.0, n)
        commands, orders, rejects = self.commands, self.orders, self.rejects
        for cmd, _, events in done:
            origin = cmd.origin
            door = origin.door if origin is not None else 0
            commands[door] += 1
            kind = type(cmd)
            if kind is NewOrder or kind is CancelReplace:
                orders[door] += 1
            for event in events:
                if type(event) in _REJECTS:
                    rejects[door][event.reason] += 1

    # -- the admin port's probes (gateway.admin.ports.Probes) ---------------------------------

    def metrics(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def not_ready(self) -> str:
        venue = self.venue
        if venue.report is None:
            return "The venue has not recovered yet."
        if not venue.running:
            if venue.failure is not None:
                return f"The venue stopped after a failure: {venue.failure}"
            return "The venue is not accepting commands: it is stopping or stopped."
        if not self.all_started:
            return "The venue is starting: its doors are not all listening yet."
        if self.fix is not None and not self.fix.acceptor.listening:
            return "The FIX acceptor is not listening."
        if self.rest is not None and not self.rest.listening:
            return "The REST and WebSocket door is not listening."
        return ""


class _Collector(Collector):
    """Reads the counts and the parts' gauges at scrape time."""

    def __init__(self, metrics: VenueMetrics) -> None:
        self.m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.m
        yield from self._commands()
        yield m.latency.family(
            "venue_command_durable_seconds",
            "From a command's sequencer stamp to its batch's fsync (the batch's first stamp).",
        )
        yield m.fsync.family("venue_journal_fsync_seconds", "The journal's fsync, per batch.")
        yield m.batches.family("venue_batch_commands", "Commands per durable batch.")
        yield from self._doors()
        yield from self._ledger()
        ready = GaugeMetricFamily("venue_ready", "1 when the venue takes orders (/ready).")
        ready.add_metric([], 0 if m.not_ready() else 1)
        yield ready

    def _commands(self) -> Iterator[Metric]:
        m = self.m
        commands = CounterMetricFamily(
            "venue_commands", "Durable commands by the door they came through.", labels=["door"]
        )
        orders = CounterMetricFamily(
            "venue_orders", "New orders by the door they came through.", labels=["door"]
        )
        rejects = CounterMetricFamily(
            "venue_rejects",
            "Orders, cancels, replaces and commands the core rejected, by door and reason.",
            labels=["door", "reason"],
        )
        for door in Door:
            commands.add_metric([door.name], m.commands[door])
            orders.add_metric([door.name], m.orders[door])
            for reason in RejectReason:
                count = m.rejects[door][reason]
                if count:
                    rejects.add_metric([door.name, reason.name], count)
        yield commands
        yield orders
        yield rejects

    def _doors(self) -> Iterator[Metric]:
        m = self.m
        sessions = GaugeMetricFamily(
            "venue_sessions", "Sessions logged on, by door.", labels=["door"]
        )
        connections = GaugeMetricFamily(
            "venue_connections", "Open connections, by door.", labels=["door"]
        )
        sockets = GaugeMetricFamily(
            "venue_websocket_connections",
            "Open WebSocket connections, by endpoint.",
            labels=["endpoint"],
        )
        subscriptions = GaugeMetricFamily(
            "venue_websocket_subscriptions",
            "WebSocket subscriptions: market streams and user data followers.",
            labels=["kind"],
        )
        refusals = CounterMetricFamily(
            "venue_rate_limit_refusals",
            "Requests, orders and connections refused by the REST door's rate limits.",
            labels=["limit"],
        )
        fix = m.fix
        if fix is not None:
            acceptor = fix.acceptor
            logged_on = sum(1 for session in acceptor.sessions.values() if session.logged_on)
            sessions.add_metric(["FIX"], logged_on)
            connections.add_metric(["FIX"], len(acceptor.connections))
        rest = m.rest
        if rest is not None and rest.app is not None:
            figures = gauges(rest.app)
            websockets = sum(figures.websockets.values())
            connections.add_metric(["REST"], max(0, rest.http_connections - websockets))
            connections.add_metric(["WEBSOCKET"], websockets)
            for endpoint, count in figures.websockets.items():
                sockets.add_metric([endpoint], count)
            for kind, count in figures.subscriptions.items():
                subscriptions.add_metric([kind], count)
            for limit, count in figures.refused.items():
                refusals.add_metric([limit], count)
        yield from (sessions, connections, sockets, subscriptions, refusals)

    def _ledger(self) -> Iterator[Metric]:
        m = self.m
        journal_seq = m.venue.durable_seq
        yield _gauge("venue_journal_seq", "The last seq durable in the journal.", journal_seq)
        settlement = m.settlement
        if settlement is None:
            return
        ledger_seq = settlement.ledger_seq
        yield _gauge("venue_ledger_seq", "The last seq settled into the ledger.", ledger_seq)
        yield _gauge(
            "venue_ledger_lag_commands",
            "Commands durable in the journal and not yet in the ledger.",
            max(0, journal_seq - ledger_seq),
        )
        yield _gauge(
            "venue_ledger_pending_commands",
            "Commands held in memory for the ledger.",
            settlement.pending,
        )
        yield _gauge(
            "venue_ledger_halted",
            "1 when settlement stopped for good (the ledger refused a batch).",
            1 if settlement.halted else 0,
        )
        report = settlement.last_report
        if report is None:
            return
        yield _gauge(
            "venue_reconcile_ok", "1 when the last reconciliation found nothing.", int(report.ok)
        )
        yield _gauge(
            "venue_reconcile_findings", "What the last reconciliation found.", report.findings
        )
        yield _gauge(
            "venue_reconcile_seq", "The seq the last reconciliation compared at.", report.at_seq
        )


def _gauge(name: str, documentation: str, value: float | None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value if value is not None else 0)
