"""The venue's configuration: a TOML file loaded into typed, frozen values.

``load_config(path)`` reads a file such as ``config/venue.toml`` and returns a ``VenueConfig``.
Every problem with the file raises ``ConfigError`` whose message names the file and the key, so
that the command line can print one line instead of a traceback.

This module only reads the file and dispatches: each package reads and checks its own sections
with the engine's shared reader (``engine.configfile``), and no key inside a section is named
here. ``[venue]``, ``[journal]`` and ``[[instruments]]`` are the engine's (``engine.config``);
``[[assets]]``, ``[fees]``, ``[ledger]`` and ``[kyc]`` clearing's (``clearing.config``);
``[admin]``, ``[fix]`` and ``[rest]`` the gateway's (``gateway.adminconfig``,
``gateway.fix.config``, ``gateway.rest.config``); ``[audit]`` and ``[surveillance]``
surveillance's (``surveillance.config``, ``surveillance.detect.params``), ``[surveillance_store]``
its alert and case store (``surveillance.storeconfig``); ``[custody]`` custody's
(``custody.config``). A top-level key no package reads is refused.

Relative paths resolve against the current working directory of the process that loads the file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from clearing.config import KycConfig, LedgerConfig, RiskConfig, read_clearing, read_kyc, read_risk
from clearing.fees import FeeConfig
from custody.config import CustodyConfig, read_custody
from engine.config import JournalConfig, read_instruments, read_journal, read_venue
from engine.configfile import ConfigError, Table
from engine.instrument import InstrumentSpec
from engine.types import StpMode
from gateway.adminconfig import AdminConfig, check_approval_assets, read_admin
from gateway.fix.config import FixConfig, FixSessionConfig, read_fix
from gateway.rest.config import RestConfig, read_rest
from surveillance.config import AuditConfig, read_audit
from surveillance.detect.params import SurveillanceConfig, read_surveillance
from surveillance.storeconfig import AlertStoreConfig, read_alert_store

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "AdminConfig",
    "AlertStoreConfig",
    "AuditConfig",
    "ConfigError",
    "CustodyConfig",
    "FixConfig",
    "FixSessionConfig",
    "JournalConfig",
    "KycConfig",
    "LedgerConfig",
    "RestConfig",
    "SurveillanceConfig",
    "VenueConfig",
    "load_config",
    "parse_config",
]

#: The embedded default configuration shipped with the repository.
DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config" / "venue.toml"


@dataclass(frozen=True, slots=True)
class VenueConfig:
    source: Path  # the file this was loaded from
    data_dir: Path  # absolute
    default_stp: StpMode  # never StpMode.DEFAULT
    session_end_utc: int  # seconds after midnight UTC at which DAY orders expire
    snapshot_every: int  # journal records between two snapshots
    journal: JournalConfig
    admin: AdminConfig
    instruments: tuple[InstrumentSpec, ...]
    #: asset -> decimals of its minor unit; empty: no clearing (a matching-only venue)
    assets: Mapping[str, int]
    fees: FeeConfig | None  # None: no [fees] section, no fees
    ledger: LedgerConfig | None  # None when there is no clearing
    fix: FixConfig | None = None  # None: no FIX acceptor
    rest: RestConfig | None = None  # None: no REST and WebSocket door
    audit: AuditConfig = field(default_factory=AuditConfig)  # on unless [audit] enabled = false
    kyc: KycConfig = field(default_factory=KycConfig)  # default tier INSTITUTIONAL, no webhook
    risk: RiskConfig = field(default_factory=RiskConfig)  # no order-to-trade limit enforced
    #: where alerts and cases are kept (SQLite under data_dir unless [surveillance_store] url)
    alert_store: AlertStoreConfig = field(default_factory=AlertStoreConfig)
    #: the detectors' thresholds; on unless [surveillance] enabled = false
    surveillance: SurveillanceConfig = field(default_factory=SurveillanceConfig)
    #: wallets, chains and the PKCS#11 token; None: no [custody] section, no wallets (the audit
    #: chain then signs with a key file)
    custody: CustodyConfig | None = None

    @property
    def clearing(self) -> bool:
        return bool(self.assets)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(spec.symbol for spec in self.instruments)

    def instrument(self, symbol: str) -> InstrumentSpec:
        """The spec of ``symbol``; ``KeyError`` if the venue does not list it."""
        for spec in self.instruments:
            if spec.symbol == symbol:
                return spec
        raise KeyError(symbol)


def load_config(path: str | Path) -> VenueConfig:
    """Read and check the TOML file at ``path``; raise ``ConfigError`` on any problem."""
    file = Path(path)
    source = str(file)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(source, "", "configuration file not found") from None
    except IsADirectoryError:
        raise ConfigError(source, "", "is a directory, not a configuration file") from None
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read the file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(source, "", f"not UTF-8 text (byte {exc.start})") from None
    return parse_config(text, source=file)


def parse_config(text: str, source: str | Path = "<string>") -> VenueConfig:
    """Check TOML ``text``; ``source`` names it in error messages."""
    name = str(source)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(name, "", f"not valid TOML: {exc}") from None
    root = Table(document, "", name)

    # The dispatch: each package reads the top-level keys it owns, in this order (the first
    # problem found is the one reported); whatever no package read is refused by finish().
    venue = read_venue(root)  # engine: [venue]
    journal = read_journal(root)  # engine: [journal]
    admin = read_admin(root)  # gateway: [admin]
    instruments = read_instruments(root)  # engine: [[instruments]]
    clearing = read_clearing(root, instruments, venue.data_dir)  # [[assets]], [fees], [ledger]
    kyc = read_kyc(root, venue.data_dir, clearing.assets)  # clearing: [kyc], optional
    risk = read_risk(root, clearing.assets)  # clearing: [risk], optional
    check_approval_assets(admin, dict(clearing.assets), name)  # gateway: amounts in asset units
    fix = read_fix(root)  # gateway: [fix], optional
    rest = read_rest(root)  # gateway: [rest], optional
    audit = read_audit(root)  # surveillance: [audit], optional
    alert_store = read_alert_store(root)  # surveillance: [surveillance_store]
    surveillance = read_surveillance(root, instruments, clearing.assets)  # optional
    custody = read_custody(root, clearing.assets, venue.data_dir)  # custody: [custody], optional
    root.finish()

    return VenueConfig(
        source=Path(source),
        data_dir=venue.data_dir,
        default_stp=venue.default_stp,
        session_end_utc=venue.session_end_utc,
        snapshot_every=venue.snapshot_every,
        journal=journal,
        admin=admin,
        instruments=instruments,
        assets=clearing.assets,
        fees=clearing.fees,
        ledger=clearing.ledger,
        fix=fix,
        rest=rest,
        audit=audit,
        kyc=kyc,
        risk=risk,
        alert_store=alert_store,
        surveillance=surveillance,
        custody=custody,
    )
