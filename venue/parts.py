"""The venue process's parts and their life cycle: each starts and stops through one small
protocol, in order; a start that cannot finish stops what had started, in reverse order, so a
failure never leaves a socket open or a store locked.

The order is the point: nothing listens before the venue has recovered and every door is wired
(the ledger open, the FIX stores open, its reports caught up, the subscriptions made), so no
request meets a half-built venue, and no report of what it did misses a subscriber.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from engine.journal import JournalError
from engine.recovery import RecoveryError
from venue.config import VenueConfig
from venue.exits import EXIT_CONFIG, EXIT_CORRUPT, EXIT_FAILED, CliError

if TYPE_CHECKING:
    from custody.hsm import Token
    from gateway.admin.auth import StaffAccess
    from gateway.rest.keys import KeyStore
    from gateway.rest.kyc import OnRefused
    from gateway.rest.wallet import Wallet
    from gateway.staff.operators import StaffEvent as GatewayStaffEvent
    from surveillance.alerts import AlertSink
    from surveillance.chain import AuditChain
    from surveillance.detect import Surveillance
    from surveillance.store import AlertStore
    from venue.custody import CustodyPart
    from venue.fix import FixGateway
    from venue.metrics import VenueMetrics
    from venue.rest import RestGateway
    from venue.runtime import Venue
    from venue.settlement import Settlement

__all__ = [
    "AdminPart",
    "AlertStorePart",
    "AuditPart",
    "FixGatewayPart",
    "FixListenerPart",
    "KeysPart",
    "Part",
    "Parts",
    "RestPart",
    "SettlementPart",
    "SurveillancePart",
    "VenuePart",
]

log = logging.getLogger("venue.parts")


class Part(Protocol):
    """One piece of the running venue."""

    #: what it is, for logs
    name: str

    async def start(self) -> None:
        """Start; on failure raise, having undone its own partial start."""

    async def stop(self) -> None:
        """Stop; safe to call once after a successful start."""


class Parts:
    """The parts started so far, stopped in reverse order."""

    def __init__(self) -> None:
        self._started: list[Part] = []

    async def start(self, part: Part) -> None:
        """Start ``part`` after those already started; if it fails, stop them all (in reverse)
        and raise its error."""
        try:
            await part.start()
        except BaseException:
            await self.stop()
            raise
        self._started.append(part)
        log.debug("started %s", part.name)

    async def stop(self) -> None:
        """Stop every started part, the last started first; a failure to stop one is logged
        and the others still stop."""
        while self._started:
            part = self._started.pop()
            try:
                await part.stop()
            except Exception:
                log.exception("stopping %s failed", part.name)

    @property
    def names(self) -> list[str]:
        return [part.name for part in self._started]


# -- the parts of ``venue run``, in the order they start -------------------------------------------


class VenuePart:
    """The venue itself: recovery, then the sequencer, journal, core and timer."""

    name = "venue"

    def __init__(self, config: VenueConfig) -> None:
        from venue.runtime import Venue

        self.venue = Venue(config)

    async def start(self) -> None:
        from venue.runtime import StartError

        try:
            await self.venue.start()
        except RecoveryError as exc:
            raise CliError(f"the venue refuses to start: {exc}", EXIT_CORRUPT) from None
        except (StartError, JournalError, OSError) as exc:
            raise CliError(f"the venue cannot start: {exc}", EXIT_FAILED) from None

    async def stop(self) -> None:
        await self.venue.stop()


class AuditPart:
    """The audit chain, extended as commands become durable (``surveillance.chain``): caught up
    from the journal, then subscribed, before any door opens; nothing when ``[audit]`` has
    ``enabled = false``. With ``[custody]`` its checkpoints are signed by a key in the hot token
    (``venue.auditkey``, the token shared through ``venue.hsm``), else by the key file."""

    name = "audit chain"

    def __init__(self, venue: Venue, config: VenueConfig) -> None:
        self.venue = venue
        self.config = config
        self.chain: AuditChain | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._token: Token | None = None

    async def start(self) -> None:
        audit = self.config.audit
        if not audit.enabled:
            return
        from custody.hsm import HsmError
        from engine.recovery import JOURNAL_DIR
        from surveillance.audit import AuditStoreError
        from surveillance.chain import AuditChain
        from surveillance.checkpoint import CheckpointError
        from venue.auditkey import open_token_keys

        try:
            keys = open_token_keys(self.config)
        except HsmError as exc:
            raise CliError(f"the audit chain's token cannot be used: {exc}", EXIT_FAILED) from None
        except CheckpointError as exc:
            raise CliError(f"the audit chain cannot be used: {exc}", EXIT_CORRUPT) from None
        except OSError as exc:
            why = exc.strerror or str(exc)
            raise CliError(f"the audit chain's key cannot be read: {why}", EXIT_FAILED) from None
        self._token = keys.token if keys is not None else None
        chain = AuditChain(
            self.config.data_dir,
            self.config.data_dir / JOURNAL_DIR,
            checkpoint_every=audit.checkpoint_every,
            checkpoint_interval_s=audit.checkpoint_interval_s,
            fsync=self.config.journal.fsync,
            keys=keys,
        )
        try:
            # no await between the catch-up and the subscription: no batch falls in between
            caught = chain.open(self.venue.published_seq)
            self._unsubscribe = self.venue.subscribe_records(chain.on_batch)
        except (AuditStoreError, CheckpointError, JournalError) as exc:
            self._release()
            raise CliError(f"the audit chain cannot be used: {exc}", EXIT_CORRUPT) from None
        except OSError as exc:
            self._release()
            why = exc.strerror or str(exc)
            raise CliError(f"the audit chain cannot be opened: {why}", EXIT_FAILED) from None
        except BaseException:
            self._release()
            raise
        chain.start_timer()
        if caught:
            log.info("audit: chained %d commands from the journal", caught)
        self.chain = chain

    def refusals(self) -> OnRefused | None:
        """``on_refused(actor, action, subject, ip, outcome)`` recording a refused outside call
        (the KYC webhook's bad signatures) as a staff event of the chain; None without it."""
        chain = self.chain
        if chain is None:
            return None
        from surveillance.audit import StaffEvent

        venue = self.venue

        def record(actor: str, action: str, subject: str, ip: str, outcome: str) -> None:
            chain.record(StaffEvent(venue.now_ns(), actor, action, subject, ip, outcome))

        return record

    async def stop(self) -> None:
        if self.chain is None:
            self._release()  # the token, even when the chain was stopped by its owner already
            return
        # The venue stops first (the doors are closed by now): its last commands are chained
        # and the checkpoint taken at stop covers them.
        await self.venue.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()
        try:
            await self.chain.stop()
        finally:
            self._release()

    def _release(self) -> None:
        """Hand the token back (``venue.hsm``): the last part using it logs out."""
        token, self._token = self._token, None
        if token is not None:
            from venue.hsm import release_token

            release_token(token)


class AlertStorePart:
    """Surveillance's alert and case store (``surveillance.store``): opened (its tables made or
    upgraded) and its writer thread started before the admin API serves it and before any
    detector raises an alert; at stop, what is queued is written."""

    name = "alert store"

    def __init__(self, venue: Venue, config: VenueConfig) -> None:
        self.venue = venue
        self.config = config
        self.store: AlertStore | None = None

    async def start(self) -> None:
        from surveillance.store import AlertStore, StoreError
        from venue.settlement import redact_url

        url = self.config.alert_store.url_for(self.config.data_dir)
        try:
            store = await asyncio.to_thread(AlertStore.connect, url)
        except StoreError as exc:
            where = redact_url(url)
            raise CliError(
                f"the surveillance store {where} cannot be used: {exc}", EXIT_FAILED
            ) from None
        store.start()
        self.store = store

    async def stop(self) -> None:
        if self.store is None:
            return
        # The venue stops first (its doors are closed by now): what its last commands raised is
        # queued before the store writes the queue and closes.
        await self.venue.stop()
        await asyncio.to_thread(self.store.close)


class SurveillancePart:
    """The market-abuse detectors (``surveillance.detect``) on the durable events: caught up
    from the journal (in a worker thread; what the venue publishes meanwhile waits in a
    buffer) and subscribed before any door opens, raising alerts to ``sink`` (an in-memory
    ``LatestSink`` unless one is given). Nothing when ``[surveillance]`` has ``enabled =
    false``. The detectors run in the subscription callback, after the batch is durable and
    acknowledged: never on the order path."""

    name = "surveillance"

    def __init__(self, venue: Venue, config: VenueConfig, sink: AlertSink | None = None) -> None:
        self.venue = venue
        self.config = config
        self.sink = sink
        self.surveillance: Surveillance | None = None
        self.caught_up = 0  # commands replayed from the journal at start
        self._unsubscribe: Callable[[], None] | None = None

    async def start(self) -> None:
        config = self.config
        if not config.surveillance.enabled:
            return
        from engine.replay import ReplayError
        from surveillance.detect import LatestSink, Surveillance
        from surveillance.detect.batch import run
        from venue.runtime import make_core

        sink = self.sink if self.sink is not None else LatestSink()
        self.sink = sink
        surveillance = Surveillance(
            config.surveillance, config.instruments, sink, dict(config.assets)
        )
        early: list[tuple[int, int, list[Any]]] = []

        def buffer(seq: int, ts: int, events: list[Any]) -> None:
            early.append((seq, ts, events))

        # no await between reading the seq and subscribing: no batch falls in between
        until = self.venue.published_seq
        self._unsubscribe = self.venue.subscribe(buffer)
        try:
            self.caught_up = await asyncio.to_thread(
                run, config.data_dir, lambda: make_core(config), surveillance, 1, until
            )
        except ReplayError as exc:
            raise CliError(f"surveillance cannot replay the journal: {exc}", EXIT_CORRUPT) from None
        # and none between draining the buffer and subscribing the detectors themselves
        for seq, ts, events in early:
            surveillance.on_events(seq, ts, events)
        self._unsubscribe()
        self._unsubscribe = self.venue.subscribe(surveillance.on_events)
        self.surveillance = surveillance
        if self.caught_up:
            log.info("surveillance: caught up over %d commands", self.caught_up)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None


class SettlementPart:
    """Settlement into the ledger, when the venue keeps one (a no-op part otherwise)."""

    name = "settlement"

    def __init__(self, venue: Venue, config: VenueConfig) -> None:
        self.venue = venue
        self.config = config
        self.settlement: Settlement | None = None

    async def start(self) -> None:
        from venue.settlement import Settlement, redact_url

        ledger = self.config.ledger
        if ledger is None:
            return
        settlement = Settlement(self.venue, ledger, self.config.assets)
        try:
            await settlement.start()
        except Exception as exc:
            where = redact_url(ledger.url)
            raise CliError(f"the ledger {where} cannot be opened: {exc}", EXIT_FAILED) from None
        self.settlement = settlement
        print(f"venue: settling into the ledger {redact_url(ledger.url)}", flush=True)

    async def stop(self) -> None:
        if self.settlement is None:
            return
        # The venue stops first (its doors are closed by now): its last commands reach the
        # ledger before settlement drains and closes.
        await self.venue.stop()
        await self.settlement.stop()


class FixGatewayPart:
    """The FIX gateway wired to the venue (stores open, reports caught up, subscriptions made),
    not listening yet; nothing when the configuration has no ``[fix]``."""

    name = "fix gateway"

    def __init__(self, venue: Venue, config: VenueConfig) -> None:
        self.venue = venue
        self.config = config
        self.gateway: FixGateway | None = None

    async def start(self) -> None:
        if self.config.fix is None:
            return
        from gateway.fix.dictionary import DictionaryError
        from gateway.fix.store import StoreError
        from venue.fix import attach_gateway, build_gateway

        try:
            gateway = build_gateway(self.config.fix, self.venue)
        except DictionaryError as exc:
            raise CliError(f"the FIX dictionary cannot be used: {exc}", EXIT_CONFIG) from None
        except (StoreError, OSError) as exc:
            raise CliError(f"the FIX message store cannot be opened: {exc}", EXIT_FAILED) from None
        attach_gateway(gateway, self.venue)
        self.gateway = gateway

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.acceptor.stop()  # closes the sessions and their stores


class KeysPart:
    """The API key store (``<data_dir>/rest``): one per process, opened before the admin API
    and the REST door, which share it (keys are made before the door is enabled, so the
    admin API serves them without ``[rest]`` too)."""

    name = "API key store"

    def __init__(self, config: VenueConfig) -> None:
        self.config = config
        self.keys: KeyStore | None = None

    async def start(self) -> None:
        from gateway.rest.keys import KeyStoreError
        from venue.rest import open_keys

        try:
            self.keys = open_keys(self.config)
        except KeyStoreError as exc:
            raise CliError(f"the API key store cannot be used: {exc}", EXIT_FAILED) from None
        except OSError as exc:
            why = exc.strerror or str(exc)
            raise CliError(f"the API key store cannot be opened: {why}", EXIT_FAILED) from None

    async def stop(self) -> None:
        pass  # every action was fsynced when it returned


class AdminPart:
    """The admin API, listening (with the ledger, the key store and the staff stores attached
    before the socket opens); staff events go into the audit chain when it runs. With
    ``token_file``, a service token with every role is written there (mode 0600) for local
    tooling; ``token`` holds it for the venue's own tools (the demo)."""

    name = "admin API"

    def __init__(
        self,
        venue: Venue,
        config: VenueConfig,
        settlement: Settlement | None,
        keys: KeyStore | None = None,
        metrics: VenueMetrics | None = None,
        chain: AuditChain | None = None,
        token_file: Path | None = None,
        fix: FixGateway | None = None,
        alerts: AlertStore | None = None,
        surveillance: SurveillancePart | None = None,
        custody: CustodyPart | None = None,
    ) -> None:
        self.custody = custody
        self.venue = venue
        self.config = config
        self.settlement = settlement
        self.surveillance = surveillance
        self.keys = keys
        self.metrics = metrics
        self.chain = chain
        self.token_file = token_file
        self.fix = fix
        self.alerts = alerts
        self.url = ""
        self.token = ""
        self.access: StaffAccess | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        from gateway.staff.approvals import ApprovalError
        from gateway.staff.operators import StaffStoreError
        from venue.admin import service_token, staff_access, start_admin

        admin = self.config.admin
        audit = chain_staff_events(self.chain) if self.chain is not None else None
        try:
            self.access = staff_access(self.config, audit)
            if self.custody is not None:  # withdrawals needing approvers go to the same store
                self.custody.approvals = self.access.approvals
            self.token = service_token(self.access, ttl_s=7 * 86_400)
            if self.token_file is not None:
                write_secret_file(self.token_file, self.token + "\n")
        except (StaffStoreError, ApprovalError) as exc:
            raise CliError(f"the staff stores cannot be used: {exc}", EXIT_CORRUPT) from None
        except OSError as exc:
            why = exc.strerror or str(exc)
            raise CliError(f"the admin token cannot be written: {why}", EXIT_FAILED) from None
        try:
            self._runner, host, port = await start_admin(
                self.venue,
                admin.host,
                admin.port,
                self.settlement,
                self.keys,
                self.metrics,
                self.access,
                audit=self.chain,
                fix=self.fix,
                alerts=self.alerts,
                surveillance=self._detectors,
                custody=self.custody.admin if self.custody is not None else None,
            )
        except OSError as exc:
            why = exc.strerror or str(exc)
            where = f"{admin.host}:{admin.port}"
            raise CliError(f"the admin API cannot listen on {where}: {why}", EXIT_FAILED) from None
        scheme = "https" if admin.tls else "http"
        self.url = f"{scheme}://{host}:{port}"

    def _detectors(self) -> Surveillance | None:
        part = self.surveillance
        return part.surveillance if part is not None else None

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def chain_staff_events(chain: AuditChain) -> Callable[[GatewayStaffEvent], None]:
    """Staff events (from any thread: the operator store works in worker threads) chained on
    the loop, in the order they were made."""
    from surveillance.audit import StaffEvent

    loop = asyncio.get_running_loop()

    def record(event: GatewayStaffEvent) -> None:
        try:
            chain.record(
                StaffEvent(
                    event.time_ms * 1_000_000,
                    event.operator,
                    event.action,
                    event.subject,
                    event.ip,
                    event.outcome,
                )
            )
        except Exception as exc:  # a bad event must not fail the request it describes
            log.error("audit: a staff event cannot be chained: %s", exc)

    def from_anywhere(event: GatewayStaffEvent) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            record(event)
        else:
            loop.call_soon_threadsafe(record, event)

    return from_anywhere


def write_secret_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by its owner only (0600 from creation)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class RestPart:
    """The REST and WebSocket door: its read models rebuilt and subscribed, then listening;
    nothing when the configuration has no ``[rest]``."""

    name = "REST and WebSocket door"

    def __init__(
        self,
        venue: Venue,
        config: VenueConfig,
        keys: KeyStore | None = None,
        on_refused: OnRefused | None = None,
        wallet: Wallet | None = None,
    ) -> None:
        self.venue = venue
        self.config = config
        self.keys = keys
        self.on_refused = on_refused  # KYC webhook calls refused for their signature
        self.wallet = wallet  # custody's, for the /sapi/v1/capital paths
        self.gateway: RestGateway | None = None

    async def start(self) -> None:
        rest = self.config.rest
        if rest is None:
            return
        from gateway.rest.keys import KeyStoreError
        from gateway.rest.kyc import KycSecretError
        from venue.rest import RestGateway, extensions

        gateway = RestGateway(
            self.venue, rest, extensions(), self.keys, self.on_refused, self.wallet
        )
        try:
            gateway.build()
        except KeyStoreError as exc:
            raise CliError(f"the API key store cannot be used: {exc}", EXIT_FAILED) from None
        except KycSecretError as exc:
            raise CliError(f"the KYC webhook cannot be served: {exc}", EXIT_CONFIG) from None
        except OSError as exc:
            why = exc.strerror or str(exc)
            raise CliError(f"the REST door's data cannot be used: {why}", EXIT_FAILED) from None
        try:
            await gateway.start()
        except OSError as exc:
            why = exc.strerror or str(exc)
            where = f"{rest.host}:{rest.port}"
            raise CliError(f"REST cannot listen on {where}: {why}", EXIT_FAILED) from None
        self.gateway = gateway

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop()


class FixListenerPart:
    """The FIX acceptor's socket, opened last."""

    name = "FIX acceptor"

    def __init__(self, gateway: FixGateway | None) -> None:
        self.gateway = gateway
        self.address = ""

    async def start(self) -> None:
        gateway = self.gateway
        if gateway is None:
            return
        try:
            await gateway.acceptor.start()
        except OSError as exc:
            why = exc.strerror or str(exc)
            where = f"{gateway.acceptor.host}:{gateway.acceptor.port}"
            raise CliError(f"FIX cannot listen on {where}: {why}", EXIT_FAILED) from None
        self.address = f"{gateway.acceptor.host}:{gateway.acceptor.port}"

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.acceptor.stop()
