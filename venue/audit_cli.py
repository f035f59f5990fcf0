"""The audit chain's commands of the ``venue`` command line: ``venue audit verify`` and ``venue
audit rotate-key``. ``add_commands(subparsers)`` adds them; ``run(args, config)`` runs the one
parsed.

- ``venue audit verify [--config C] [--data-dir D]`` re-derives the chain from the journal and
  the audit store (``surveillance.verify``) and checks every signed checkpoint: one line per
  finding, naming the first entry that was changed, deleted, inserted or reordered, then a
  summary. It only reads, and may run while the venue runs.
- ``venue audit rotate-key`` makes a new checkpoint signing key; the running venue signs with it
  from its next checkpoint, and the old public key stays for the old checkpoints. With
  ``[custody]`` the key is made in the hot token (``venue.auditkey``: the PIN as for the venue,
  never printed), else in ``audit/checkpoint.key``. ``verify`` never needs the token.

Exit codes: 0 clean; 2 tampered (the chain, the journal and the checkpoints disagree); 1 the
files cannot be read; 3 bad configuration or arguments. Never a traceback.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from venue.config import DEFAULT_CONFIG_PATH, VenueConfig
from venue.exits import EXIT_FAILED, EXIT_OK, CliError

__all__ = ["EXIT_TAMPERED", "add_commands", "run"]

#: ``venue audit verify`` found a disagreement.
EXIT_TAMPERED = 2


def add_commands(subparsers: Any) -> None:
    """Add ``audit`` and its commands to ``subparsers`` (from ``add_subparsers``)."""
    audit = subparsers.add_parser("audit", help="verify the audit chain, rotate its signing key")
    commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = commands.add_parser(
        "verify", help="re-derive the audit chain from the journal and check its checkpoints"
    )
    rotate = commands.add_parser("rotate-key", help="a new checkpoint signing key from now on")
    for sub in (verify, rotate):
        sub.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH, help="TOML file")
        sub.add_argument("--data-dir", type=Path, help="overrides [venue] data_dir")


def run(args: argparse.Namespace, config: VenueConfig) -> int:
    if args.audit_command == "rotate-key":
        return rotate(config)
    return verify(config)


def verify(config: VenueConfig) -> int:
    from surveillance.verify import Unreadable, verify_chain

    try:
        report = verify_chain(config.data_dir)
    except Unreadable as exc:
        raise CliError(f"audit: cannot verify: {exc}", EXIT_FAILED) from None
    except OSError as exc:
        raise CliError(f"audit: cannot read: {exc.strerror or exc}", EXIT_FAILED) from None
    for line in report.tampered:
        print(f"audit: TAMPERED: {_one_line(line)}")
    for line in report.notes:
        print(f"audit: note: {_one_line(line)}")
    if not report.clean:
        print(f"audit: tampered; before the first bad entry: {report.summary()}")
        return EXIT_TAMPERED
    print(f"audit: clean: {report.summary()}")
    return EXIT_OK


def rotate(config: VenueConfig) -> int:
    from custody.hsm import HsmError
    from surveillance.audit import AUDIT_DIR
    from surveillance.checkpoint import CheckpointError, rotate_key
    from venue.auditkey import open_token_keys
    from venue.hsm import release_token

    where = "in a key file"
    try:
        keys = open_token_keys(config, create=False)
        if keys is None:
            kid = rotate_key(config.data_dir / AUDIT_DIR)
        else:
            try:
                kid = keys.rotate()
                where = f"in token {keys.token.label!r}"
            finally:
                release_token(keys.token)
    except HsmError as exc:
        raise CliError(f"audit: cannot use the token: {exc}", EXIT_FAILED) from None
    except CheckpointError as exc:
        raise CliError(f"audit: cannot make the key: {exc}", EXIT_FAILED) from None
    except OSError as exc:
        raise CliError(f"audit: cannot write the key: {exc.strerror or exc}", EXIT_FAILED) from None
    print(f"audit: new checkpoint signing key {kid} ({where})")
    return EXIT_OK


def _one_line(text: str) -> str:
    return " ".join(text.split())
