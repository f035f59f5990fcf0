"""The API key commands of the ``venue`` command line: ``venue api-key create``, ``list`` and
``revoke``, for the Binance-dialect door's keys. ``add_commands(subparsers)`` adds them;
``run(args, config)`` runs the one parsed.

- ``venue api-key create --account N --permissions TRADE,USER_DATA [--label L] [--ip CIDR ...]
  [--public-key-file PEM]`` prints the new key; an HMAC key's secret is printed this once and
  can never be shown again (the store keeps it only sealed). With ``--public-key-file`` the key
  is Ed25519: requests are signed with the private half, which never leaves its owner.
- ``venue api-key list --account N``: the account's keys, live and revoked, never a secret.
- ``venue api-key revoke KEY``: revoke for good.

Each takes ``--config`` and ``--data-dir`` (the store is ``<data_dir>/rest``, the one the venue
uses). They work while the venue runs: the store's appends are safe between processes, and the
running venue sees a new key at its first use and a revocation within a second. Each action is
fsynced before it is printed and is its own audit record, naming ``cli:<user>``.

Every bad input is one line on stderr and exit 3; a store that cannot be used, exit 1.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from gateway.rest.keys import (
    MAX_PEM,
    ApiKey,
    KeyStore,
    KeyStoreError,
    check_grant,
    check_ips,
    check_label,
    check_permissions,
    check_public_key,
    is_key_format,
)
from venue.config import DEFAULT_CONFIG_PATH, VenueConfig
from venue.exits import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, CliError
from venue.ledger_cli import format_table

__all__ = ["add_commands", "run"]


class _OneLineParser(argparse.ArgumentParser):
    """Bad arguments are one line on stderr and exit 3, as every other bad input."""

    def error(self, message: str) -> NoReturn:
        print(f"venue: error: {self.prog}: {' '.join(message.split())}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)


def add_commands(subparsers: Any) -> None:
    """Add ``api-key`` and its commands to ``subparsers`` (from ``add_subparsers``)."""
    api = subparsers.add_parser("api-key", help="make, list and revoke the REST door's API keys")
    commands = api.add_subparsers(
        dest="api_key_command", required=True, metavar="ACTION", parser_class=_OneLineParser
    )
    create = commands.add_parser("create", help="make a key (an HMAC secret is shown once)")
    create.add_argument("--account", required=True, metavar="N")
    create.add_argument("--permissions", required=True, metavar="TRADE,USER_DATA")
    create.add_argument("--label", default="", metavar="TEXT")
    create.add_argument(
        "--ip", action="append", default=[], metavar="CIDR", help="allow only from (repeatable)"
    )
    create.add_argument(
        "--public-key-file", type=Path, metavar="PEM", help="an Ed25519 key: its public PEM"
    )
    listing = commands.add_parser("list", help="an account's keys (never a secret)")
    listing.add_argument("--account", required=True, metavar="N")
    revoke = commands.add_parser("revoke", help="revoke a key for good")
    revoke.add_argument("key", metavar="KEY")
    for sub in (create, listing, revoke):
        sub.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH, help="TOML file")
        sub.add_argument("--data-dir", type=Path, help="overrides [venue] data_dir")


def run(args: argparse.Namespace, config: VenueConfig) -> int:
    """Run the ``api-key`` command ``args`` names against ``config``'s store."""
    if args.api_key_command == "create":
        return _create(args, config)
    if args.api_key_command == "list":
        return _list(args, config)
    return _revoke(args, config)


def _bad(message: str) -> NoReturn:
    raise CliError(message, EXIT_CONFIG)


def _checked(option: str, check: Any, value: Any) -> Any:
    try:
        return check(value)
    except KeyStoreError as exc:
        _bad(f"{option}: {exc}")


def _account(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1 or len(text) > 19:
        _bad(f"--account {text[:40]!r}: must be an integer >= 1")
    return int(text)


def _store(config: VenueConfig) -> KeyStore:
    from venue.rest import open_keys

    if not config.data_dir.is_dir():
        raise CliError(f"data dir {config.data_dir} does not exist", EXIT_FAILED)
    try:
        return open_keys(config)
    except KeyStoreError as exc:
        raise CliError(f"the API key store cannot be used: {exc}", EXIT_FAILED) from None
    except OSError as exc:
        raise CliError(f"the API key store cannot be opened: {exc}", EXIT_FAILED) from None


def _by() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return f"cli:{user}"[:128]


def _create(args: argparse.Namespace, config: VenueConfig) -> int:
    account = _account(args.account)
    permissions = _checked(
        "--permissions", check_permissions, [p.strip() for p in args.permissions.split(",")]
    )
    label = _checked("--label", check_label, args.label)
    ips = _checked("--ip", check_ips, args.ip)
    _checked("--permissions", lambda p: check_grant(p, ips), permissions)
    pem = None
    if args.public_key_file is not None:
        path: Path = args.public_key_file
        try:
            with path.open("rb") as f:
                raw = f.read(MAX_PEM + 1)
        except OSError as exc:
            _bad(f"--public-key-file {path}: {exc.strerror or exc}")
        pem = raw.decode("utf-8", "replace")
        _checked(f"--public-key-file {path}", check_public_key, pem)
    store = _store(config)
    try:
        if pem is None:
            key, secret = store.create_hmac(account, permissions, label, ips, _by())
        else:
            key = store.create_ed25519(account, permissions, label, ips, pem, _by())
            secret = ""
    except (KeyStoreError, OSError) as exc:
        raise CliError(f"the key could not be made: {exc}", EXIT_FAILED) from None
    print(f"apiKey: {key.api_key}")
    if secret:
        print(f"secretKey: {secret}")
        print("venue: the secret key is shown this once; it cannot be shown again", file=sys.stderr)
    return EXIT_OK


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ms else "-"


def _row(key: ApiKey) -> list[str]:
    return [
        key.api_key,
        key.kind,
        ",".join(sorted(key.permissions)),
        key.label or "-",
        ",".join(key.ip_allowlist) or "any",
        _time(key.created_ms),
        key.created_by,
        _time(key.revoked_ms),
    ]


def _list(args: argparse.Namespace, config: VenueConfig) -> int:
    account = _account(args.account)
    keys = _store(config).for_account(account)
    print(f"account {account}: {len(keys)} API key(s)")
    if keys:
        columns = ("apiKey", "type", "permissions", "label", "ipAllowlist", "created", "by")
        for line in format_table((*columns, "revoked"), [_row(k) for k in keys]):
            print(line)
    return EXIT_OK


def _revoke(args: argparse.Namespace, config: VenueConfig) -> int:
    api_key: str = args.key
    if not is_key_format(api_key):
        _bad(f"{api_key[:16]!r}... is not an API key (64 letters and digits)")
    store = _store(config)
    if store.get(api_key) is None:
        _bad(f"no API key {api_key}: nothing revoked")
    try:
        key = store.revoke(api_key, _by())
    except (KeyStoreError, OSError) as exc:
        raise CliError(f"the key could not be revoked: {exc}", EXIT_FAILED) from None
    print(f"revoked: {key.api_key} (account {key.account}, at {_time(key.revoked_ms)})")
    return EXIT_OK
