"""The gateway's ``[admin]`` section of the configuration file: where the operators' admin API
listens, its TLS files, and what needs a second person (``[admin.approvals]``). Kept apart from
the admin API's handlers so that reading the file needs no web server."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from engine.configfile import ConfigError, Table

__all__ = [
    "AdminConfig",
    "ApprovalsConfig",
    "check_approval_assets",
    "is_loopback",
    "read_admin",
]


@dataclass(frozen=True, slots=True)
class ApprovalsConfig:
    """``required``: approvals a held request needs (m of the n approvers, never the requester);
    ``adjustment_above``: per asset, the largest balance adjustment one operator may make alone
    (an asset not listed: every adjustment waits for approval)."""

    required: int = 1
    adjustment_above: dict[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AdminConfig:
    host: str
    port: int  # 0: any free port
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    approvals: ApprovalsConfig = field(default_factory=ApprovalsConfig)

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or ``localhost`` (where TLS may be left off)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_admin(root: Table) -> AdminConfig:
    table = root.table("admin")
    host = table.string("host")
    port = table.integer("port", minimum=0, maximum=65535)
    cert = table.optional_string("tls_cert_file")
    key = table.optional_string("tls_key_file")
    if bool(cert) != bool(key):
        table.fail("tls_cert_file" if not cert else "tls_key_file", "TLS needs both files")
    if not cert and not is_loopback(host):
        table.fail(
            "host",
            f"{host!r} is not a loopback address: the admin API off loopback needs TLS "
            "(tls_cert_file and tls_key_file)",
        )
    approvals = ApprovalsConfig()
    if "approvals" in table:
        section = table.table("approvals")
        required = section.optional_integer("required", 1, 1, 16)
        above: dict[str, Decimal] = {}
        if "adjustment_above" in section:
            limits = section.table("adjustment_above")
            for asset, _ in limits.items():
                value = limits.decimal(asset)
                if value < 0:
                    limits.fail(asset, "must not be negative")
                above[asset] = value
        section.finish()
        approvals = ApprovalsConfig(required, above)
    admin = AdminConfig(
        host=host,
        port=port,
        tls_cert_file=Path(cert) if cert else None,
        tls_key_file=Path(key) if key else None,
        approvals=approvals,
    )
    table.finish()
    return admin


def check_approval_assets(admin: AdminConfig, assets: dict[str, int], source: str) -> None:
    """``[admin.approvals] adjustment_above`` names assets of ``[[assets]]`` only, each in the
    asset's units (``assets``: name -> decimals); ``ConfigError`` otherwise. A venue without
    assets keeps no balances and serves no adjustments: nothing to check."""
    if not assets:
        return
    for asset, amount in admin.approvals.adjustment_above.items():
        key = f"admin.approvals.adjustment_above.{asset}"
        if asset not in assets:
            raise ConfigError(source, key, "names no asset of [[assets]]")
        if amount.scaleb(assets[asset]) % 1:
            raise ConfigError(source, key, f"has more than {assets[asset]} decimals")
