"""The staff commands of the ``venue`` command line: operators and service tokens, in the store
``gateway.staff.operators`` keeps under ``<data_dir>/staff``. ``add_commands(subparsers)``
adds them; ``run(args, config)`` runs the one parsed.

- ``venue operator add NAME --role ROLE [--role ROLE ...] [--ip CIDR ...] [--password-file
  PATH]`` adds an operator and prints their TOTP provisioning URI and its QR code this once (to
  be scanned into an authenticator app; it is never shown again).
- ``venue operator list``; ``disable NAME``; ``enable NAME`` (also lifts a lockout);
  ``reset NAME [--password-file PATH] [--totp]`` (a new password and/or TOTP secret).
- ``venue token create --roles R1,R2 --ttl 2h`` prints a service token this once;
  ``venue token list``; ``venue token revoke ID``.

A password is prompted for (twice, without echo) only on a terminal; otherwise it is read from
``--password-file`` (its first line), so it is never an argument that ``ps`` or a shell history
would show. It has at least 12 characters.

Each command takes ``--config`` and ``--data-dir`` and works while the venue runs: the store's
appends are safe between processes and the venue sees them at its next look. Each action is
fsynced before it is printed and recorded in the store's log, naming ``cli:<user>``. Every bad
input is one line on stderr and exit 3; a store that cannot be used, exit 1.
"""

from __future__ import annotations

import argparse
import getpass
import io
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from gateway.staff import STAFF_DIR
from gateway.staff.operators import (
    MAX_PASSWORD,
    MIN_PASSWORD,
    OperatorStore,
    StaffStoreError,
    check_ips,
    check_name,
)
from gateway.staff.roles import check_roles
from venue.config import DEFAULT_CONFIG_PATH, VenueConfig
from venue.exits import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, CliError
from venue.ledger_cli import format_table

__all__ = ["COMMANDS", "STAFF_DIR", "add_commands", "open_staff", "run"]

#: The top-level commands this module adds.
COMMANDS = frozenset({"operator", "token"})
_TTL = re.compile(r"([1-9][0-9]{0,7})([smhd]?)")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}


class _OneLineParser(argparse.ArgumentParser):
    """Bad arguments are one line on stderr and exit 3, as every other bad input."""

    def error(self, message: str) -> NoReturn:
        print(f"venue: error: {self.prog}: {' '.join(message.split())}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)


def open_staff(config: VenueConfig) -> OperatorStore:
    """The venue's staff store, ``<data_dir>/staff``. Raises ``StaffStoreError`` or
    ``OSError``."""
    return OperatorStore(config.data_dir / STAFF_DIR)


def add_commands(subparsers: Any) -> None:
    """Add ``operator`` and ``token`` and their commands to ``subparsers``."""
    operator = subparsers.add_parser("operator", help="add, list, disable and reset operators")
    ops = operator.add_subparsers(
        dest="operator_command", required=True, metavar="ACTION", parser_class=_OneLineParser
    )
    add = ops.add_parser("add", help="add an operator (the TOTP URI is shown once)")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--role", action="append", required=True, metavar="ROLE")
    add.add_argument("--ip", action="append", default=[], metavar="CIDR", help="allow only from")
    add.add_argument("--password-file", type=Path, metavar="PATH")
    listing = ops.add_parser("list", help="the operators (never a secret)")
    disable = ops.add_parser("disable", help="no more logins; sessions end")
    disable.add_argument("name", metavar="NAME")
    enable = ops.add_parser("enable", help="allow logins again (lifts a lockout)")
    enable.add_argument("name", metavar="NAME")
    reset = ops.add_parser("reset", help="a new password and/or TOTP secret")
    reset.add_argument("name", metavar="NAME")
    reset.add_argument("--password-file", type=Path, metavar="PATH")
    reset.add_argument("--totp", action="store_true", help="a new TOTP secret (URI shown once)")
    token = subparsers.add_parser("token", help="make, list and revoke service tokens")
    toks = token.add_subparsers(
        dest="token_command", required=True, metavar="ACTION", parser_class=_OneLineParser
    )
    create = toks.add_parser("create", help="a service token (shown once)")
    create.add_argument("--roles", required=True, metavar="R1,R2")
    create.add_argument("--ttl", required=True, metavar="2h", help="N[s|m|h|d]")
    token_list = toks.add_parser("list", help="the service tokens (never a token)")
    revoke = toks.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id", metavar="ID")
    for sub in (add, listing, disable, enable, reset, create, token_list, revoke):
        sub.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH, help="TOML file")
        sub.add_argument("--data-dir", type=Path, help="overrides [venue] data_dir")


def run(args: argparse.Namespace, config: VenueConfig) -> int:
    """Run the ``operator`` or ``token`` command ``args`` names against ``config``'s store."""
    if args.command == "token":
        if args.token_command == "create":
            return _token_create(args, config)
        if args.token_command == "list":
            return _token_list(config)
        return _token_revoke(args, config)
    action = args.operator_command
    if action == "add":
        return _add(args, config)
    if action == "list":
        return _list(config)
    if action == "reset":
        return _reset(args, config)
    name = _name(args.name)
    store = _store(config)
    if store.operator(name) is None:
        _bad(f"no operator {name}")
    _act(lambda: store.disable(name, _by()) if action == "disable" else store.enable(name, _by()))
    print(f"{action}d: {name}")
    return EXIT_OK


# -- helpers ----------------------------------------------------------------------------------


def _bad(message: str) -> NoReturn:
    raise CliError(message, EXIT_CONFIG)


def _by() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return f"cli:{user}"[:128]


def _name(text: str) -> str:
    try:
        return check_name(text)
    except StaffStoreError as exc:
        _bad(str(exc))


def _store(config: VenueConfig) -> OperatorStore:
    if not config.data_dir.is_dir():
        raise CliError(f"data dir {config.data_dir} does not exist", EXIT_FAILED)
    try:
        return open_staff(config)
    except StaffStoreError as exc:
        raise CliError(f"the staff store cannot be used: {exc}", EXIT_FAILED) from None
    except OSError as exc:
        raise CliError(f"the staff store cannot be opened: {exc}", EXIT_FAILED) from None


def _act(action: Any) -> Any:
    try:
        return action()
    except StaffStoreError as exc:
        _bad(str(exc))
    except OSError as exc:
        raise CliError(f"the staff store could not be changed: {exc}", EXIT_FAILED) from None


def _checked_password(password: str, where: str) -> str:
    if len(password) < MIN_PASSWORD:
        _bad(f"{where}: the password is shorter than {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        _bad(f"{where}: the password is longer than {MAX_PASSWORD} characters")
    return password


def _password(path: Path | None) -> str:
    """From ``path`` (its first line), else a prompt on a terminal; never an argument."""
    if path is not None:
        try:
            with path.open("rb") as f:
                raw = f.read(MAX_PASSWORD * 4 + 2)
        except OSError as exc:
            _bad(f"--password-file {path}: {exc.strerror or exc}")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            _bad(f"--password-file {path}: not UTF-8 text")
        return _checked_password(text.split("\n", 1)[0].rstrip("\r"), f"--password-file {path}")
    if not sys.stdin.isatty():
        _bad("no terminal to ask for the password on: give --password-file PATH")
    first = getpass.getpass("password: ")
    _checked_password(first, "password")
    if getpass.getpass("again: ") != first:
        _bad("the two passwords differ")
    return first


def _show_uri(uri: str) -> None:
    print(f"totp: {uri}")
    try:
        import qrcode

        code = qrcode.QRCode(border=1)
        code.add_data(uri)
        picture = io.StringIO()
        code.print_ascii(out=picture, invert=True)
        print(picture.getvalue(), end="")
    except ImportError:
        print("venue: qrcode is not installed: no QR code; enter the URI by hand", file=sys.stderr)
    print(
        "venue: the TOTP secret is shown this once; scan it now, it cannot be shown again",
        file=sys.stderr,
    )


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ms else "-"


# -- operators --------------------------------------------------------------------------------


def _add(args: argparse.Namespace, config: VenueConfig) -> int:
    name = _name(args.name)
    try:
        roles = check_roles(r.strip() for arg in args.role for r in arg.split(","))
        ips = check_ips(args.ip)
    except (ValueError, TypeError) as exc:
        _bad(str(exc))
    store = _store(config)
    if store.operator(name) is not None:
        _bad(f"operator {name} exists already")
    password = _password(args.password_file)
    uri: str = _act(lambda: store.add(name, roles, password, _by(), ips))
    print(f"operator: {name} ({','.join(sorted(roles))})")
    _show_uri(uri)
    return EXIT_OK


def _list(config: VenueConfig) -> int:
    store = _store(config)
    operators = store.operators()
    now = int(datetime.now(UTC).timestamp() * 1000)
    print(f"{len(operators)} operator(s)")
    rows = []
    for op in operators:
        if op.disabled:
            status = "disabled"
        elif op.locked_until_ms > now:
            status = f"locked until {_time(op.locked_until_ms)}"
        else:
            status = "enabled"
        ips = ",".join(op.ip_allowlist) or "any"
        rows.append([op.name, ",".join(sorted(op.roles)), ips, status, _time(op.created_ms)])
    if rows:
        for line in format_table(("name", "roles", "ipAllowlist", "status", "created"), rows):
            print(line)
    return EXIT_OK


def _reset(args: argparse.Namespace, config: VenueConfig) -> int:
    name = _name(args.name)
    if args.password_file is None and not args.totp and not sys.stdin.isatty():
        _bad("nothing to reset: give --password-file PATH and/or --totp")
    store = _store(config)
    if store.operator(name) is None:
        _bad(f"no operator {name}")
    password = None
    if args.password_file is not None or not args.totp:
        password = _password(args.password_file)
    uri = _act(lambda: store.reset(name, _by(), password=password, totp=args.totp))
    done = [what for what, yes in (("password", password), ("totp", args.totp)) if yes]
    print(f"reset: {name} ({', '.join(done)})")
    if uri is not None:
        _show_uri(uri)
    return EXIT_OK


# -- service tokens ---------------------------------------------------------------------------


def _ttl(text: str) -> int:
    match = _TTL.fullmatch(text.strip())
    if match is None:
        _bad(f"--ttl {text[:20]!r}: a whole number of s, m, h or d, like 2h")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


def _token_create(args: argparse.Namespace, config: VenueConfig) -> int:
    try:
        roles = check_roles(r.strip() for r in args.roles.split(","))
    except ValueError as exc:
        _bad(f"--roles: {exc}")
    ttl = _ttl(args.ttl)
    store = _store(config)
    made, token = _act(lambda: store.create_token(roles, ttl, _by()))
    print(f"id: {made.token_id}")
    print(f"token: {token}")
    print(f"roles: {','.join(sorted(made.roles))}; expires {_time(made.expires_ms)}")
    print("venue: the token is shown this once; it cannot be shown again", file=sys.stderr)
    return EXIT_OK


def _token_list(config: VenueConfig) -> int:
    tokens = _store(config).tokens()
    print(f"{len(tokens)} service token(s)")
    if tokens:
        rows = [
            [
                t.token_id,
                ",".join(sorted(t.roles)),
                _time(t.created_ms),
                _time(t.expires_ms),
                t.created_by,
                _time(t.revoked_ms),
            ]
            for t in tokens
        ]
        for line in format_table(("id", "roles", "created", "expires", "by", "revoked"), rows):
            print(line)
    return EXIT_OK


def _token_revoke(args: argparse.Namespace, config: VenueConfig) -> int:
    made = _act(lambda: _store(config).revoke_token(args.token_id, _by()))
    print(f"revoked: {made.token_id} (at {_time(made.revoked_ms)})")
    return EXIT_OK
