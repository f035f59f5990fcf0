"""Wiring of the admin API (``gateway.admin``) to the running venue, its ledger and its API key
store: the ports the gateway defines, implemented over ``venue.runtime.Venue``,
``venue.settlement`` and ``gateway.rest.keys.KeyStore`` (which is the key port as it is), and
``start_admin`` for the command line and the tests.

It also serves the console pages of packages the gateway may not import (surveillance's audit
trail, ``audit_page``; its book replay, ``book_page``; its alerts and cases, ``alerts_page``;
the order-to-trade ratios its running detector counts, ``otr_page``): their routes, each with
the permission it declares, and their scripts listed in the console."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from clearing.reconcile import (
    LedgerError,
    ReconcileReport,
    ledger_engine,
    reconcile,
    wait_for_ledger,
)
from engine.commands import Command
from engine.core import Core
from engine.events import Event
from gateway.admin.app import Page, make_app, serve, set_ledger
from gateway.admin.auth import (
    PUBLIC,
    ApprovalPolicy,
    StaffAccess,
    add_route,
    caller_ip,
    principal,
)
from gateway.admin.auth import audit as staff_audit
from gateway.admin.console import add_script
from gateway.admin.custody import AdminCustody
from gateway.admin.ports import Balances, Unavailable, Unjournalable
from gateway.admin.render import render_event
from gateway.adminconfig import is_loopback
from gateway.edge.orders import OrderViews
from gateway.rest.keys import KeyStore
from gateway.staff import STAFF_DIR
from gateway.staff.approvals import ApprovalStore
from gateway.staff.operators import OperatorStore, StaffEvent
from gateway.staff.roles import ROLES
from surveillance.casepages import AlertPages
from surveillance.chain import AuditChain
from surveillance.detect.feed import Surveillance
from surveillance.pages import AuditTrailPage, BookPage, OtrPage, Route
from surveillance.replay import BookReplay, ReplayConfig
from surveillance.stor import Entity
from surveillance.store import AlertStore
from surveillance.trail import Units
from venue.config import VenueConfig
from venue.fix import FixGateway
from venue.metrics import VenueMetrics
from venue.rest import open_keys
from venue.runtime import CommandRefused, Venue, VenueStopped, make_core
from venue.settlement import Settlement

__all__ = [
    "alerts_page",
    "audit_page",
    "book_page",
    "otr_page",
    "register_page",
    "render_event",
    "service_token",
    "set_settlement",
    "staff_access",
    "start_admin",
    "tls_context",
]

T = TypeVar("T")

#: Pages of the staff console that other packages provide (surveillance, treasury...), added
#: here by the composition root so that the gateway never imports them.
_PAGES: list[Page] = []


def register_page(page: Page) -> None:
    """Serve ``page`` (it adds its routes to the admin application) from every admin API
    started after this call."""
    _PAGES.append(page)


def _add_routes(app: web.Application, routes: list[Route]) -> None:
    """Add another package's routes, each with the permission it declares (none: anyone may
    read it, as the console's static files)."""
    for route in routes:
        add_route(app, route.method, route.path, route.handler, route.permission or PUBLIC)


def _caller(request: web.Request) -> tuple[str, str]:
    """Who calls, for the audit chain: the operator and their address."""
    return principal(request).name, caller_ip(request)


def audit_page(config: VenueConfig, chain: AuditChain | None) -> Page:
    """Surveillance's audit trail of the venue's data folder (``surveillance.pages``): its
    endpoints and its console page; exports are recorded in ``chain`` (refused without one)."""
    units = Units({spec.symbol: spec for spec in config.instruments}, dict(config.assets))
    record = chain.record if chain is not None else None
    trail = AuditTrailPage(config.data_dir, record, _caller, units=units)

    def add(app: web.Application) -> None:
        _add_routes(app, trail.routes())
        add_script(app, trail.script_url)

    return add


def book_page(venue: Venue) -> Page:
    """Surveillance's book replay over the venue's data folder (``surveillance.replay``),
    built with the venue's own core and reading the journal up to its durable seq."""
    config = venue.config
    replay = BookReplay(
        config.data_dir, ReplayConfig(config.instruments, lambda: make_core(config))
    )
    page = BookPage(replay, lambda: venue.durable_seq)

    def add(app: web.Application) -> None:
        _add_routes(app, page.routes())

    return add


def otr_page(config: VenueConfig, detectors: Callable[[], Surveillance | None]) -> Page:
    """The order-to-trade ratios (``surveillance.pages.OtrPage``) of the running detectors
    ``detectors`` gives (None while they are off or catching up: the page answers 503)."""

    def detector() -> Any:
        surveillance = detectors()
        return surveillance.otr if surveillance is not None else None

    page = OtrPage(detector, [spec.symbol for spec in config.instruments])

    def add(app: web.Application) -> None:
        _add_routes(app, page.routes())

    return add


def alerts_page(config: VenueConfig, store: AlertStore, venue: Venue | None = None) -> Page:
    """Surveillance's alerts and cases (``surveillance.casepages``) over ``store``: every change
    and export a staff event of the admin API's audit; the STOR names the venue as
    ``[surveillance_store]`` says and groups the accounts by the owners ``venue`` knows."""
    named = config.alert_store
    entity = Entity(named.entity_name, named.entity_lei, named.entity_address, named.contact)

    async def owners(accounts: list[int]) -> dict[int, int]:
        if venue is None:
            return {}
        try:
            return await venue.read(lambda core: {a: core.owners.get(a, a) for a in accounts})
        except VenueStopped:
            return {}

    pages = AlertPages(store, staff_audit, _caller, entity, owners)

    def add(app: web.Application) -> None:
        _add_routes(app, pages.routes())
        for url in pages.script_urls:
            add_script(app, url)

    return add


class VenuePort:
    """``gateway.admin.ports.AdminVenue`` over the running venue."""

    def __init__(self, venue: Venue) -> None:
        self._venue = venue
        self._orders = OrderViews()
        self._unpriced: set[int] = set()
        self._unsubscribe: Callable[[], None] | None = None

    def _start_orders(self) -> None:
        """Load the open orders and follow the events from the same durable point. Started on
        the first order query (which runs at a durable point, ``Venue.read``) rather than with
        the API: following every order costs every command some work (measurable in
        ``bench/fix_load.py``), worth paying only once an operator lists orders. Orders filled
        before it started are listed without an average price (``unpriced``) rather than with a
        guessed one."""
        core = self._venue.core
        self._orders.load(core)
        self._unpriced = {oid for oid, view in self._orders.open.items() if view.cum_qty}
        self._unsubscribe = self._venue.subscribe(self._orders.apply)

    @property
    def core(self) -> Core:
        return self._venue.core

    @property
    def balances(self) -> Balances | None:
        return self._venue.risk

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

    def status(self) -> dict[str, Any]:
        return self._venue.status()

    @property
    def orders(self) -> OrderViews:
        if self._unsubscribe is None:
            self._start_orders()
        return self._orders

    @property
    def unpriced(self) -> set[int]:
        return self._unpriced

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None


class LedgerPort:
    """``gateway.admin.ports.AdminLedger`` over settlement and clearing's reconciliation."""

    def __init__(self, venue: Venue, settlement: Settlement) -> None:
        self._venue = venue
        self._settlement = settlement

    def status(self) -> dict[str, Any]:
        return self._settlement.status()

    async def reconcile(self, wait_s: int) -> dict[str, Any]:
        risk = self._venue.risk
        assert risk is not None
        try:
            at_seq, expected = await self._venue.read(
                lambda core: (core.last_seq, risk.ledger_view())
            )
        except VenueStopped as exc:
            raise Unavailable(str(exc)) from None
        url = self._settlement.config.url

        def work() -> ReconcileReport:
            engine = ledger_engine(url)
            try:
                wait_for_ledger(engine, at_seq, timeout_s=min(wait_s, 300))
                return reconcile(engine, expected, at_seq)
            finally:
                engine.dispose()

        try:
            report = await asyncio.to_thread(work)
        except LedgerError as exc:
            raise Unavailable(str(exc)) from None
        self._settlement.last_report = report  # the last reconciliation, for the metrics too
        return report.to_dict()


def set_settlement(app: web.Application, venue: Venue, settlement: Settlement) -> None:
    """Serve the ledger's status and reconciliation from ``settlement``."""
    set_ledger(app, LedgerPort(venue, settlement))


def staff_access(
    config: VenueConfig,
    audit: Callable[[StaffEvent], None] | None = None,
    *,
    secure_cookie: bool | None = None,
) -> StaffAccess:
    """The operator store and approvals under the data folder, with the configured policy;
    staff events (logins, refusals, approvals...) go to ``audit``. Raises
    ``StaffStoreError`` or ``ApprovalError`` when a store cannot be used."""
    directory = config.data_dir / STAFF_DIR
    admin = config.admin
    above = {
        asset: int(amount.scaleb(config.assets[asset]))
        for asset, amount in admin.approvals.adjustment_above.items()
        if asset in config.assets  # all of them, unless the venue keeps no balances
    }
    if secure_cookie is None:  # HTTPS, or off loopback (where TLS is required anyway)
        secure_cookie = admin.tls or not is_loopback(admin.host)
    return StaffAccess(
        store=OperatorStore(directory, on_event=audit),
        approvals=ApprovalStore(directory),
        audit=audit if audit is not None else (lambda event: None),
        secure_cookie=secure_cookie,
        policy=ApprovalPolicy(admin.approvals.required, above),
    )


def service_token(access: StaffAccess, ttl_s: int = 3600, by: str = "venue") -> str:
    """A service token with every role, for the venue's own tools (the demo, ``venue run
    --admin-token-file``, tests); shown once, stored hashed."""
    _, token = access.store.create_token(ROLES, ttl_s, by)
    return token


def tls_context(config: VenueConfig) -> ssl.SSLContext | None:
    """The admin API's TLS context when ``[admin]`` names the files."""
    admin = config.admin
    if admin.tls_cert_file is None or admin.tls_key_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(admin.tls_cert_file, admin.tls_key_file)
    return context


async def start_admin(
    venue: Venue,
    host: str,
    port: int,
    settlement: Settlement | None = None,
    keys: KeyStore | None = None,
    metrics: VenueMetrics | None = None,
    access: StaffAccess | None = None,
    audit: AuditChain | None = None,
    fix: FixGateway | None = None,
    alerts: AlertStore | None = None,
    surveillance: Callable[[], Surveillance | None] | None = None,
    custody: AdminCustody | None = None,
) -> tuple[web.AppRunner, str, int]:
    """Serve the admin API for ``venue``; returns the runner (``await runner.cleanup()`` to
    stop) and the address actually bound (``port`` 0 picks a free one). Raises ``OSError`` if
    it cannot bind. ``settlement`` is attached before the socket listens, so no request finds
    it missing. ``keys``: the process's API key store, shared with the REST door (opened here,
    ``venue.rest.open_keys``, when not given: raises ``KeyStoreError`` if it cannot be used).
    ``metrics``: the venue's metrics and readiness (``/metrics``, ``/ready``), which the caller
    shows its doors and tells when every part has started; when not given, metrics of the venue
    alone, ready whenever it runs. ``access``: who may call (``staff_access``; opened from the
    data folder, staff events unrecorded, when not given). ``audit``: the running audit chain,
    where the audit trail's exports are recorded (without it they are refused; the trail is read
    from disk either way). ``fix``: the FIX gateway, whose sessions the API then adds and
    disables at run time (``/v1/fix/sessions``). ``alerts``: surveillance's alert and case
    store (open, its writer started), served under ``/v1/surveillance`` (not served without
    it). ``surveillance``: the running detectors (``SurveillancePart.surveillance``, None until
    they caught up), whose order-to-trade counts ``/v1/surveillance/otr`` serves (a 503
    without them)."""
    config = venue.config
    own_metrics = metrics is None
    if metrics is None:
        metrics = VenueMetrics(venue)
        metrics.watch_settlement(settlement)
        metrics.started()
    app = make_app(
        VenuePort(venue),
        config.instruments,
        config.assets,
        clearing=config.clearing,
        keys=keys if keys is not None else open_keys(config),
        access=access if access is not None else staff_access(config),
        pages=(
            audit_page(config, audit),
            book_page(venue),
            otr_page(config, surveillance if surveillance is not None else lambda: None),
            *([alerts_page(config, alerts, venue)] if alerts is not None else []),
            *_PAGES,
        ),
        probes=metrics,
        fix=fix,
        custody=custody,
    )
    if own_metrics:

        async def close_metrics(_app: web.Application) -> None:
            metrics.close()

        app.on_cleanup.append(close_metrics)
    if settlement is not None:
        set_settlement(app, venue, settlement)
    return await serve(app, host, port, tls_context(config))
