"""The venue's FIX acceptor, built from ``[fix]``: sessions, stores, dictionary, application.

The composition root for FIX: it turns :class:`venue.config.FixConfig` into
:class:`gateway.fix.session.Session` objects (one per ``[[fix.sessions]]``, each with its
message store under ``<data_dir>/fix``), their authentication, the application behind them
(the venue's order entry, market data and drop copy, or the conformance profile's echo) and a
listening :class:`gateway.fix.acceptor.FixAcceptor`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.replay import Replayer, ReplayError
from gateway.fix.acceptor import FixAcceptor
from gateway.fix.application import MarketData, VenueApplication
from gateway.fix.auth import authenticator, hash_password, password_check
from gateway.fix.config import FixSessionConfig
from gateway.fix.dictionary import DataDictionary, load_dictionary
from gateway.fix.echo import EchoApplication
from gateway.fix.marketdata import MarketDataHandler
from gateway.fix.orders import OrderEntry, SessionProfile
from gateway.fix.provisioned import ProvisionedSession, ProvisionedSessions, ProvisionError
from gateway.fix.session import Application, Session, SessionConfig
from gateway.fix.store import MessageStore, open_store
from venue.config import FixConfig
from venue.runtime import Venue, make_core

__all__ = ["FIX_STORE_DIR", "FixGateway", "build_gateway", "hash_password", "password_check"]

log = logging.getLogger("venue.fix")

FIX_STORE_DIR = "fix"
#: The complete FIX 4.4 dictionary: which message types exist at all (380=3 rather than 373=11).
_FULL_DICTIONARY = Path(__file__).resolve().parent.parent / "fix_specs" / "FIX44.xml"


REPORTED_SEQ_FILE = "reported_seq"


class ReportedSeq:
    """``<data_dir>/fix/reported_seq``: the journal seq whose reports are all in the sessions'
    stores, and the filled quantity and notional of the open orders with fills (AvgPx needs the
    notional, which the core does not keep). Written after the stores are flushed; a restart
    reports again what came after that seq and puts the notionals back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written: tuple[int, dict[int, tuple[int, int]]] | None = None

    def read(self) -> tuple[int, dict[int, tuple[int, int]]] | None:
        try:
            lines = self.path.read_text(encoding="ascii").split("\n")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            log.error("%s cannot be read (%s): reporting from the current state", self.path, exc)
            return None
        try:
            seq = int(lines[0])
            partials: dict[int, tuple[int, int]] = {}
            for line in lines[1:]:
                if line:
                    oid, cum, notional = (int(part) for part in line.split())
                    partials[oid] = (cum, notional)
        except ValueError:
            log.error("%s is damaged: reporting from the current state", self.path)
            return None
        self.written = (seq, partials)
        return seq, partials

    def write(self, seq: int, partials: dict[int, tuple[int, int]]) -> None:
        if self.written == (seq, partials):
            return
        lines = [
            str(seq),
            *(f"{oid} {cum} {notional}" for oid, (cum, notional) in partials.items()),
        ]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="ascii")
        os.replace(tmp, self.path)
        self.written = (seq, dict(partials))


@dataclass
class _Parts:
    """What a session added at run time is built from (the same as the configured ones)."""

    config: FixConfig
    dictionary: DataDictionary
    store_dir: Path | None
    application: Application
    profiles: dict[str, SessionProfile]
    sessions: dict[str, Session]
    orders: OrderEntry | None


class FixGateway:
    """The acceptor and, for the venue application, what must be told of every command; the
    sessions added at run time (``provisioned``, ``add_session``, ``disable_session``)."""

    def __init__(
        self,
        acceptor: FixAcceptor,
        application: VenueApplication | None,
        reported: ReportedSeq | None = None,
        parts: _Parts | None = None,
        provisioned: ProvisionedSessions | None = None,
    ) -> None:
        self.acceptor = acceptor
        self.application = application
        self.reported = reported
        self._parts = parts
        self.provisioned = provisioned
        acceptor.after_flush = self.checkpoint

    def configured(self) -> list[str]:
        """The SenderCompIDs of ``[[fix.sessions]]``."""
        return (
            [] if self._parts is None else [s.target_comp_id for s in self._parts.config.sessions]
        )

    async def add_session(self, cfg: FixSessionConfig, by: str) -> ProvisionedSession:
        """Add a session at run time (on the event loop; the file work in a thread): its
        message store opened (one disabled earlier in this process closed first: adding it
        again resumes its sequence numbers), then recorded (fsynced), then accepting Logons.
        ``ProvisionError`` for a name in use, ``StoreError`` or ``OSError`` when a file cannot
        be used; either way nothing is recorded and nothing changes."""
        parts, provisioned = self._parts, self.provisioned
        if parts is None or provisioned is None:
            raise ProvisionError("this FIX acceptor keeps no sessions added at run time")
        provisioned.check_free(cfg.target_comp_id)
        session_config = _session_config(parts.config, cfg)
        retired = self.acceptor.take_retired(cfg.target_comp_id)
        if retired is not None:
            await asyncio.to_thread(retired.store.close)
        store = await asyncio.to_thread(
            open_store, parts.store_dir, session_config.key, fsync=parts.config.store_fsync
        )
        try:
            made = await asyncio.to_thread(provisioned.add, cfg, by)
        except BaseException:
            await asyncio.to_thread(store.close)
            raise
        session = _register(parts, cfg, session_config, store)
        self.acceptor.add_session(session)
        log.info("FIX session %s added by %s", cfg.target_comp_id, by)
        return made

    def disable_session(self, target: str, by: str) -> ProvisionedSession:
        """Refuse the session's Logons from now on and end its connection, if any."""
        if self.provisioned is None:
            raise KeyError(target)
        made = self.provisioned.disable(target, by)
        self.acceptor.remove_session(target)
        log.info("FIX session %s disabled by %s", target, by)
        return made

    def checkpoint(self) -> None:
        """Record how far reports reached the (just flushed) stores."""
        app, reported = self.application, self.reported
        if app is None or reported is None:
            return
        try:
            reported.write(app.orders.reported_seq, app.orders.partials())
        except OSError as exc:
            log.error("cannot record the reported seq in %s: %s", reported.path, exc)


def build_gateway(config: FixConfig, venue: Venue) -> FixGateway:
    """Sessions, stores, application and acceptor; ``DictionaryError`` for a bad dictionary and
    ``StoreError`` for a store that cannot be opened. Not listening yet."""
    known = load_dictionary(_FULL_DICTIONARY).enum_values(35)
    dictionary: DataDictionary = load_dictionary(config.dictionary, known_msg_types=known)
    store_dir = venue.config.data_dir / FIX_STORE_DIR if config.store == "file" else None
    sessions: dict[str, Session] = {}
    profiles: dict[str, SessionProfile] = {}
    application: Application
    venue_app: VenueApplication | None = None
    configs = []
    provisioned = None
    all_sessions = list(config.sessions)
    if store_dir is not None:
        reserved = frozenset(s.target_comp_id for s in config.sessions)
        provisioned = ProvisionedSessions(store_dir, reserved)
        all_sessions += provisioned.enabled()
    for cfg in all_sessions:
        session_config = _session_config(config, cfg)
        configs.append(session_config)
        profiles[session_config.key] = _profile(cfg)
    if config.application == "echo":
        application = EchoApplication()
    else:
        orders = OrderEntry(
            venue, venue.config.instruments, profiles, sessions, venue.config.assets
        )
        market_data = _market_data(venue)
        venue_app = VenueApplication(profiles, orders, market_data)
        application = venue_app
    for session_config in configs:
        store = open_store(store_dir, session_config.key, fsync=config.store_fsync)
        sessions[session_config.key] = Session(session_config, dictionary, store, application)
    ssl_context = None
    if config.tls_cert is not None and config.tls_key is not None:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.minimum_version = ssl.TLSVersion.TLSv1_2
        ssl_context.load_cert_chain(config.tls_cert, config.tls_key)
    acceptor = FixAcceptor(
        sessions.values(),
        host=config.host,
        port=config.port,
        ssl_context=ssl_context,
        max_connections=config.max_connections,
        max_connections_per_ip=config.max_connections_per_ip,
        max_logon_failures_per_minute=config.max_logon_failures_per_minute,
        max_garbled_per_minute=config.max_garbled_per_minute,
    )
    reported = None
    if store_dir is not None and venue_app is not None:
        store_dir.mkdir(parents=True, exist_ok=True)
        reported = ReportedSeq(store_dir / REPORTED_SEQ_FILE)
    orders_of = venue_app.orders if venue_app is not None else None
    parts = _Parts(config, dictionary, store_dir, application, profiles, sessions, orders_of)
    return FixGateway(acceptor, venue_app, reported, parts, provisioned)


def _session_config(config: FixConfig, cfg: FixSessionConfig) -> SessionConfig:
    return SessionConfig(
        sender_comp_id=config.sender_comp_id,
        target_comp_id=cfg.target_comp_id,
        reset_on_logon=cfg.reset_on_logon,
        reset_on_logout=cfg.reset_on_logout,
        reset_on_disconnect=cfg.reset_on_disconnect,
        reset_time_utc=cfg.reset_time_utc,
        max_latency_s=float(config.max_latency_s),
        min_heartbeat_s=config.min_heartbeat_s,
        max_heartbeat_s=config.max_heartbeat_s,
        throttle_per_s=cfg.throttle_per_s,
        throttle_logout_after_s=cfg.throttle_logout_after_s,
        authenticate=authenticator(cfg),
    )


def _profile(cfg: FixSessionConfig) -> SessionProfile:
    return SessionProfile(
        kind=cfg.kind,
        accounts=frozenset(cfg.accounts),
        cancel_on_disconnect=cfg.cancel_on_disconnect,
        max_md_subscriptions=cfg.max_md_subscriptions,
    )


def _register(
    parts: _Parts, cfg: FixSessionConfig, session_config: SessionConfig, store: MessageStore
) -> Session:
    """A session made at run time, known to the application before it can log on."""
    parts.profiles[session_config.key] = _profile(cfg)
    session = Session(session_config, parts.dictionary, store, parts.application)
    parts.sessions[session_config.key] = session
    if parts.orders is not None:
        parts.orders.sessions_changed()
    return session


def _market_data(venue: Venue) -> MarketData:
    return MarketDataHandler(venue.core, {spec.symbol: spec for spec in venue.config.instruments})


def attach_gateway(gateway: FixGateway, venue: Venue) -> Callable[[], None]:
    """Subscribe the application to every durable command and, as a restart counts as a
    disconnect, cancel the open orders of sessions with cancel-on-disconnect. The unsubscriber."""
    app = gateway.application
    if app is None:
        return lambda: None
    last = venue.core.last_seq
    saved = gateway.reported.read() if gateway.reported is not None else None
    if saved is not None and saved[0] < last:
        since, partials = saved
        replayer = Replayer(venue.config.data_dir, lambda: make_core(venue.config))
        try:
            count = app.orders.catch_up(replayer, since, last, partials)
        except ReplayError as exc:
            log.error("reports after seq %d cannot be rebuilt: %s", since, exc)
            app.orders.load_open_orders()
        else:
            log.warning("reported again the %d commands after seq %d (PossResend)", count, since)
    else:
        app.orders.load_open_orders()
        if saved is not None:
            app.orders.restore_partials(saved[1])
    app.orders.reported_seq = last
    gateway.acceptor.flush()  # the stores hold what was reported again: record it
    unsubscribe = venue.subscribe_commands(app.on_command)
    for key, profile in app.profiles.items():
        if profile.kind == "order_entry" and profile.cancel_on_disconnect:
            app.orders.cancel_session_orders(key)
    return unsubscribe
