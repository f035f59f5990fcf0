"""What the market-abuse detectors cost: ``Surveillance.on_events`` (every detector, with the
shipped ``[surveillance]`` thresholds) over the events a core with the risk stage produced for
``bench.engine``'s workload (25% cancels, 5% market orders, 1,000 funded accounts, one
instrument), in the order the venue publishes them. The core runs first, untimed; only the
detectors are timed, as they run in the venue's subscription callback.

    python -m bench.surveillance [--count 200000] [--spread-s 3600]

``--spread-s`` spreads the commands' stamps over that many seconds (the windows then hold what
an hour of such flow holds). Prints events and commands a second and microseconds a command;
the last line is JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from typing import Any

from bench.engine import FUNDING_COMMANDS, bench_spec, build_commands, new_core
from engine.events import Event
from surveillance.detect import LatestSink, Surveillance
from venue.config import DEFAULT_CONFIG_PATH, load_config


def stream(count: int, spread_s: int) -> list[tuple[int, int, list[Event]]]:
    core = new_core(risk=True)
    step = max(1, spread_s * 1_000_000_000 // max(count, 1))
    start = 1_700_000_000_000_000_000
    out: list[tuple[int, int, list[Event]]] = []
    for cmd in build_commands(count):
        cmd.seq += FUNDING_COMMANDS
        cmd.ts = start + cmd.seq * step
        out.append((cmd.seq, cmd.ts, core.apply(cmd)))
    return out


def run(count: int, spread_s: int) -> dict[str, Any]:
    events = stream(count, spread_s)
    config = load_config(DEFAULT_CONFIG_PATH)
    sink = LatestSink()
    surveillance = Surveillance(config.surveillance, [bench_spec()], sink, {"BTC": 8, "USDT": 8})
    total = sum(len(e) for _, _, e in events)
    gc.collect()
    started = time.perf_counter()
    on_events = surveillance.on_events
    for seq, ts, batch in events:
        on_events(seq, ts, batch)
    elapsed = time.perf_counter() - started
    kinds: dict[str, int] = {}
    for alert in sink.latest():
        kinds[alert.type.value] = kinds.get(alert.type.value, 0) + 1
    return {
        "commands": count,
        "events": total,
        "seconds": round(elapsed, 3),
        "events_per_s": round(total / elapsed),
        "commands_per_s": round(count / elapsed),
        "us_per_command": round(elapsed / count * 1e6, 2),
        "alerts": kinds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--spread-s", type=int, default=3600)
    args = parser.parse_args()
    result = run(args.count, args.spread_s)
    print(
        f"surveillance: {result['commands']:,} commands, {result['events']:,} events through "
        f"every detector in {result['seconds']} s"
    )
    print(
        f"  {result['events_per_s']:,} events/s, {result['commands_per_s']:,} commands/s, "
        f"{result['us_per_command']} us a command; alerts {result['alerts']}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
