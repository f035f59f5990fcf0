"""Clearing's sections of the configuration file: ``[[assets]]``, ``[fees]``, ``[ledger]``,
``[kyc]`` and ``[risk]``.

All four are optional: without ``[[assets]]`` the venue runs matching only, with no balances,
and ``[fees]`` or ``[ledger]`` alone is refused. With it, every instrument's base and quote must
be listed and its lot and tick x lot must be whole minor units, which is why the reader is
given the instruments; the ledger's default database lives under the venue's ``data_dir``.
``[kyc]`` holds the know-your-customer rules clearing enforces (``clearing.risk``): the tier of
accounts no command has given one, and the file with the secret the KYC provider signs its
webhook calls with (read by the REST door; relative to ``data_dir``). ``[risk]`` holds the risk
stage's other rules: the order-to-trade ratio it may enforce (``clearing.risk.OtrLimit``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from clearing.fees import FeeConfig, FeeConfigError, parse_fees
from clearing.risk import AssetUnits, OtrLimit
from engine.config import ASSET_RE
from engine.configfile import ConfigError, Table, absolute
from engine.instrument import InstrumentSpec
from engine.types import KycTier, parse_kyc_tier

__all__ = [
    "ClearingConfig",
    "KycConfig",
    "LedgerConfig",
    "RiskConfig",
    "read_clearing",
    "read_kyc",
    "read_risk",
]


@dataclass(frozen=True, slots=True)
class KycConfig:
    """``[kyc]``."""

    #: the tier of every account no command has given one; INSTITUTIONAL (no limits) when the
    #: section is absent, as before tiers existed
    default_tier: KycTier = KycTier.INSTITUTIONAL
    #: the KYC provider's webhook secret (absolute); None: the webhook is not configured
    webhook_secret_file: Path | None = None


@dataclass(frozen=True, slots=True)
class RiskConfig:
    """``[risk]``."""

    #: refuse an account's new orders and replaces on an instrument for the rest of the UTC
    #: day once its order-to-trade ratio (number method) is over ``otr_max_number``
    otr_enforce: bool = False
    #: messages (orders, replaces, the member's cancellations) per executed order allowed
    otr_max_number: int = 500
    #: the account's messages on the instrument that day before its ratio is judged
    otr_min_messages: int = 1000

    def otr_limit(self) -> OtrLimit | None:
        """The limit the risk stage enforces; None when it enforces none."""
        if not self.otr_enforce:
            return None
        return OtrLimit(self.otr_max_number, self.otr_min_messages)


@dataclass(frozen=True, slots=True)
class LedgerConfig:
    """``[ledger]``."""

    url: str  # SQLAlchemy URL: sqlite:///... (the default, under data_dir) or postgresql+psycopg://
    batch_max: int  # most commands' events written in one database transaction
    reconcile_every_s: int  # the running venue checks the ledger against the core this often


@dataclass(frozen=True, slots=True)
class ClearingConfig:
    """What clearing read: the three sections together, since each depends on the one before."""

    #: asset -> decimals of its minor unit; empty: no clearing (a matching-only venue)
    assets: Mapping[str, int]
    fees: FeeConfig | None  # None: no [fees] section, no fees
    ledger: LedgerConfig | None  # None when there is no clearing


def read_clearing(
    root: Table, instruments: tuple[InstrumentSpec, ...], data_dir: Path
) -> ClearingConfig:
    """``[[assets]]``, ``[fees]`` and ``[ledger]``, checked against the instruments."""
    assets = _assets(root, instruments)
    fees = _fees(root, assets)
    ledger = _ledger(root, data_dir) if assets else None
    if not assets:
        for key in ("fees", "ledger"):
            if key in root:
                root.fail(key, "needs [[assets]]: there is no clearing without them")
    return ClearingConfig(assets=assets, fees=fees, ledger=ledger)


def _assets(root: Table, instruments: tuple[InstrumentSpec, ...]) -> dict[str, int]:
    """``[[assets]]``: each asset's code and the decimals of its minor unit. Optional: without
    it the venue runs matching only, with no balances. With it, every instrument's assets must
    be listed and its tick x lot and lot must be whole minor units."""
    if "assets" not in root:
        return {}
    assets: dict[str, int] = {}
    for table in root.tables("assets"):
        code = table.string("code")
        if not ASSET_RE.fullmatch(code):
            table.fail("code", f'{code!r} is not an asset code: 1 to 20 of A-Z, 0-9 (e.g. "BTC")')
        if code in assets:
            table.fail("code", f"{code!r} is listed twice")
        assets[code] = table.integer("decimals", minimum=0, maximum=18)
        table.finish()
    if not assets:
        root.fail("assets", "lists no asset")
    for index, spec in enumerate(instruments):
        try:
            AssetUnits(spec, assets)
        except ValueError as exc:
            raise ConfigError(root.source, f"instruments[{index}]", str(exc)) from None
    return assets


def _fees(root: Table, assets: Mapping[str, int]) -> FeeConfig | None:
    """``[fees]``: schedules and tiers (``clearing.fees`` documents them). Optional: no fees."""
    if "fees" not in root:
        return None
    table = root.table("fees")
    try:
        config = parse_fees(dict(table.items()), "fees")
    except FeeConfigError as exc:
        key, _, problem = str(exc).partition(": ")
        raise ConfigError(root.source, key, problem) from None
    for asset in config.reference_prices:
        if asset not in assets:
            root.fail(f"fees.reference_prices.{asset}", "not an asset listed in [[assets]]")
    return config


def _ledger(root: Table, data_dir: Path) -> LedgerConfig:
    """``[ledger]``, optional: where settlement writes (SQLite under data_dir by default)."""
    default = LedgerConfig(f"sqlite:///{data_dir / 'ledger.sqlite'}", 5000, 60)
    if "ledger" not in root:
        return default
    table = root.table("ledger")
    url = table.optional_string("url") or default.url
    if not url.startswith(("sqlite:///", "postgresql+psycopg://")):
        table.fail("url", "must start with sqlite:/// or postgresql+psycopg://")
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        relative = url.removeprefix("sqlite:///")
        url = f"sqlite:///{absolute(relative)}" if relative else default.url
    config = LedgerConfig(
        url=url,
        batch_max=table.optional_integer("batch_max", default.batch_max, 1, 1_000_000),
        reconcile_every_s=table.optional_integer(
            "reconcile_every_s", default.reconcile_every_s, 0, 86_400
        ),
    )
    table.finish()
    return config


def read_kyc(root: Table, data_dir: Path, assets: Mapping[str, int]) -> KycConfig:
    """``[kyc]``, optional: ``default_tier`` ("0".."3" or "INSTITUTIONAL") and
    ``webhook_secret_file`` (relative to ``data_dir``, or absolute). Needs ``[[assets]]``: tiers
    bound balances, which a matching-only venue does not keep."""
    if "kyc" not in root:
        return KycConfig()
    if not assets:
        root.fail("kyc", "needs [[assets]]: KYC limits bound balances, kept only with clearing")
    table = root.table("kyc")
    default = KycConfig().default_tier
    if "default_tier" in table:
        raw = table.value("default_tier")
        try:
            default = parse_kyc_tier(raw)
        except ValueError as exc:
            table.fail("default_tier", f"{exc}, got {raw!r}")
    secret = table.optional_string("webhook_secret_file")
    path = None
    if secret:
        path = Path(secret).expanduser()
        if not path.is_absolute():
            path = data_dir / path
    table.finish()
    return KycConfig(default_tier=default, webhook_secret_file=path)


def read_risk(root: Table, assets: Mapping[str, int]) -> RiskConfig:
    """``[risk]``, optional: ``otr_enforce`` (false), ``otr_max_number`` (500),
    ``otr_min_messages`` (1000). Enforcing needs ``[[assets]]``: the risk stage runs only with
    clearing."""
    if "risk" not in root:
        return RiskConfig()
    table = root.table("risk")
    default = RiskConfig()
    config = RiskConfig(
        otr_enforce=table.optional_boolean("otr_enforce", default.otr_enforce),
        otr_max_number=table.optional_integer(
            "otr_max_number", default.otr_max_number, 1, 1_000_000_000
        ),
        otr_min_messages=table.optional_integer(
            "otr_min_messages", default.otr_min_messages, 1, 1_000_000_000
        ),
    )
    if config.otr_enforce and not assets:
        table.fail("otr_enforce", "needs [[assets]]: the risk stage runs only with clearing")
    table.finish()
    return config
