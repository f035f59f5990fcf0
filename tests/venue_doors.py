"""A venue with its FIX and admin doors, configured for a test: the shipped configuration with
the FIX sessions a test names, on free ports, in the test's data folder, without a ledger."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from venue.config import DEFAULT_CONFIG_PATH, FixSessionConfig, VenueConfig, load_config


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
