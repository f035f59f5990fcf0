"""A venue with its FIX and admin doors for a test: the shipped configuration with the FIX
sessions a test names, on free ports, in the test's data folder, without a ledger, and the
started venue with both doors listening."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from staff_auth import admin_headers

from gateway.rest.config import RestConfig
from venue.admin import start_admin
from venue.config import DEFAULT_CONFIG_PATH, FixSessionConfig, VenueConfig, load_config
from venue.fix import attach_gateway, build_gateway
from venue.metrics import VenueMetrics
from venue.rest import RestGateway, extensions
from venue.runtime import Venue


def fix_session(
    target: str, kind: str = "order_entry", accounts: tuple[int, ...] = (), **kw: Any
) -> FixSessionConfig:
    """A ``[[fix.sessions]]`` entry without credentials (the acceptor listens on loopback)."""
    values: dict[str, Any] = {
        "target_comp_id": target,
        "kind": kind,
        "accounts": accounts,
        "password_hash": "",
        "ed25519_public_key": "",
        "api_key": "",
        "cancel_on_disconnect": False,
        "max_md_subscriptions": 10,
        "reset_on_logon": False,
        "reset_on_logout": False,
        "reset_on_disconnect": False,
        "reset_time_utc": None,
        "throttle_per_s": 0,
        "throttle_logout_after_s": 10,
    }
    values.update(kw)
    return FixSessionConfig(**values)


def config_with_fix(data_dir: Path, *sessions: FixSessionConfig) -> VenueConfig:
    """The shipped configuration with ``sessions`` on a free FIX port, in ``data_dir``."""
    config = load_config(DEFAULT_CONFIG_PATH)
    assert config.fix is not None
    fix = dataclasses.replace(config.fix, port=0, sessions=sessions)
    return dataclasses.replace(config, data_dir=data_dir, fix=fix, ledger=None)


@dataclass
class Serving:
    """A started venue, its FIX acceptor's port and an HTTP client of its admin API; with the
    REST door, its URL and an HMAC key (key, secret) per account asked for."""

    venue: Venue
    fix_port: int
    http: aiohttp.ClientSession
    rest: RestGateway | None = None
    keys: dict[int, tuple[str, str]] = field(default_factory=dict)
    metrics: VenueMetrics | None = None

    @property
    def rest_url(self) -> str:
        assert self.rest is not None
        return self.rest.url


@asynccontextmanager
async def serving(
    config: VenueConfig, http_timeout: float = 30, rest_accounts: tuple[int, ...] = ()
) -> AsyncIterator[Serving]:
    """Start the venue, its FIX gateway (listening) and its admin API, and with
    ``rest_accounts`` the REST door (a free port, an HMAC key for each of those accounts); stop
    them all after."""
    venue = Venue(config)
    await venue.start()
    assert config.fix is not None
    gateway = build_gateway(config.fix, venue)
    unsubscribe = attach_gateway(gateway, venue)
    _, fix_port = await gateway.acceptor.start()
    rest = None
    keys: dict[int, tuple[str, str]] = {}
    if rest_accounts:
        rest_config = dataclasses.replace(config.rest or RestConfig(), port=0)
        rest = RestGateway(venue, rest_config, extensions())
        rest.build()
        assert rest.keys is not None
        for account in rest_accounts:
            key, secret = rest.keys.create_hmac(account, {"TRADE", "USER_DATA"}, "t", (), "test")
            keys[account] = (key.api_key, secret)
        await rest.start()
    metrics = VenueMetrics(venue)
    metrics.watch_fix(gateway)
    metrics.watch_rest(rest)
    runner, host, port = await start_admin(venue, "127.0.0.1", 0, metrics=metrics, fix=gateway)
    metrics.started()
    timeout = aiohttp.ClientTimeout(total=http_timeout)
    http = aiohttp.ClientSession(
        f"http://{host}:{port}", timeout=timeout, headers=admin_headers(venue.config)
    )
    try:
        yield Serving(venue, fix_port, http, rest, keys, metrics)
    finally:
        metrics.close()
        await http.close()
        await runner.cleanup()
        if rest is not None:
            await rest.stop()
        await gateway.acceptor.stop()
        unsubscribe()
        await venue.stop()
