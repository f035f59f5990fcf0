"""``venue surveil``: the market-abuse detectors over the journal, the code the live venue runs.

``venue surveil [--config C] [--data-dir D] [--from SEQ|ISO] [--to SEQ|ISO]`` replays the
journal's commands in the range (sequence numbers, or ISO 8601 times matched against the
commands' stamps: ``2026-01-02``, ``2026-01-02T10:00:00Z``; UTC without an offset) into the
detectors configured in ``[surveillance]`` and prints the alerts as JSON lines on stdout, the
latest state of each behaviour in the order they were first raised (what the alert store
holds); a summary goes to stderr. It only reads, and may run while the venue runs.

From the journal's start it prints exactly the alerts the live venue raised; from part-way,
the detectors start from the owners and open orders there with empty windows.

Exit codes: 0 done (alerts or not); 1 the data dir cannot be read; 2 the journal is corrupt;
3 bad configuration or arguments. Never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from venue.config import DEFAULT_CONFIG_PATH, VenueConfig
from venue.exits import EXIT_CONFIG, EXIT_CORRUPT, EXIT_FAILED, EXIT_OK, CliError

__all__ = ["add_commands", "run"]


def add_commands(subparsers: Any) -> None:
    """Add ``surveil`` to ``subparsers`` (from ``add_subparsers``)."""
    surveil = subparsers.add_parser(
        "surveil", help="run the market-abuse detectors over the journal; alerts as JSON lines"
    )
    surveil.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH, help="TOML file")
    surveil.add_argument("--data-dir", type=Path, help="overrides [venue] data_dir")
    surveil.add_argument(
        "--from", dest="start", metavar="SEQ|ISO", help="first command: a seq or an ISO time"
    )
    surveil.add_argument(
        "--to", dest="end", metavar="SEQ|ISO", help="last command: a seq or an ISO time"
    )


def run(args: argparse.Namespace, config: VenueConfig) -> int:
    from engine.replay import ReplayError
    from surveillance.detect import LatestSink, Surveillance
    from surveillance.detect.batch import BoundError, parse_bound, resolve
    from surveillance.detect.batch import run as run_batch
    from venue.runtime import make_core

    try:
        start = parse_bound(args.start) if args.start is not None else None
        end = parse_bound(args.end) if args.end is not None else None
    except BoundError as exc:
        raise CliError(f"surveil: --from/--to: {exc}", EXIT_CONFIG) from None
    if not config.data_dir.is_dir():
        raise CliError(f"surveil: data dir {config.data_dir} does not exist", EXIT_FAILED)
    sink = LatestSink()
    surveillance = Surveillance(config.surveillance, config.instruments, sink, dict(config.assets))
    try:
        first, last = resolve(config.data_dir, start, end)
        count = run_batch(config.data_dir, lambda: make_core(config), surveillance, first, last)
    except ReplayError as exc:
        raise CliError(f"surveil: cannot replay the journal: {exc}", EXIT_CORRUPT) from None
    alerts = sink.latest()
    for alert in alerts:
        print(json.dumps(alert.to_json(), separators=(",", ":")))
    span = f"seq {first} to {surveillance.last_seq}" if count else "no command"
    print(f"surveil: {count} commands ({span}), {len(alerts)} alerts", file=sys.stderr)
    return EXIT_OK
