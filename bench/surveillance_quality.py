"""How well the market-abuse detectors do on realistic flow: ``venue simulate``'s clean flow
(two makers quoting three levels a side over FIX and requoting as the fair price moves, 17
traders and a passive one over REST) with labelled abusive episodes of every kind mixed in, one
every ``--every`` simulated seconds in turn, driven in process on a simulated clock
(``bench.surveillance_flow``), deterministic from ``--seed``.

    python -m bench.surveillance_quality [--seconds 1800] [--seed 1] [--memory-at 100000,1000000]

Printed:

- recall per kind: episodes alerted (an alert of the kind's type naming an account of the
  episode) / episodes injected and acted out (the spoofer executed on the other side, the wash
  pair traded with each other: one that did not is shown apart); target >= 95 %;
- false alerts per 10,000 orders of the clean flow: alerts naming only accounts that never
  abused (each behaviour once: a key and its first seq), and every raise; target <= 1;
- batch throughput of every detector over the run's events (the journal's order, as
  ``venue surveil`` runs them); target >= 200,000 events/s;
- the detectors' state (every object reachable from the ``Surveillance``, the configuration
  aside) after 100,000, 1,000,000 and 2,000,000 events of the same flow continued (about 80
  simulated minutes: past the wash detector's one-hour window): bounded by the windows, not
  by the history; its largest part, per detector.

- the live lag (``bench.surveillance_live``): on a running venue under FIX load at
  ``--live-rate`` orders a second, from the cancel completing a spoofing episode (its
  sequencer stamp) to its alert readable from the alert store; target p99 <= 1 s.

Every part stops by itself (the live one after ``--live-seconds`` plus at most 10 s an episode);
the last line is JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections import Counter
from typing import Any

from bench.surveillance_flow import ABUSE_KINDS, Episode, FlowSettings, SimFlow
from bench.surveillance_live import live_lag
from engine.events import Event
from surveillance.alerts import Alert
from surveillance.detect import CollectingSink, Surveillance

KINDS = ("spoofing", "layering", "wash", "structuring", "in_out", "otr")


def deep_size(root: object, skip: tuple[object, ...] = ()) -> int:
    """Bytes of every object reachable from ``root`` (not types, modules, functions, nor
    what ``skip`` reaches)."""
    seen: set[int] = {id(x) for x in skip}
    stack = [root]
    total = 0
    leaf = (type, type(sys), type(deep_size), type(len))
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, leaf):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def detector_bytes(watch: Surveillance) -> dict[str, int]:
    """Bytes of the detectors' state in all, and of each detector's own part."""
    state = watch.state
    skip = (state.config, state.specs, state.sink)
    parts = {type(d).__name__: deep_size(d, (*skip, state)) for d in watch.detectors}
    return {"all": deep_size(watch, skip), "shared": deep_size(state, skip), **parts}


def recall(episodes: list[Episode], alerts: list[Alert]) -> dict[str, list[int]]:
    """kind -> [alerted, acted out, injected]: of the episodes that were acted out."""
    by_type: dict[str, list[Alert]] = {}
    for alert in alerts:
        by_type.setdefault(alert.type.value, []).append(alert)
    out: dict[str, list[int]] = {kind: [0, 0, 0] for kind in KINDS}
    for episode in episodes:
        counts = out[episode.kind]
        counts[2] += 1
        if not episode.acted:
            continue
        counts[1] += 1
        accounts = set(episode.accounts)
        if any(
            accounts & set(a.accounts) and a.last_seq >= episode.first_seq
            for a in by_type.get(ABUSE_KINDS[episode.kind], ())
        ):
            counts[0] += 1
    return out


def quality(seconds: float, seed: int, every: float) -> dict[str, Any]:
    flow = SimFlow(FlowSettings(seconds=seconds, seed=seed, abuses=KINDS, abuse_every_s=every))
    config = flow.config
    sink = CollectingSink()
    watch = Surveillance(config.surveillance, config.instruments, sink, config.assets)
    stream: list[tuple[int, int, list[Event]]] = []

    def record(seq: int, ts: int, events: list[Event]) -> None:
        stream.append((seq, ts, events))
        watch.on_events(seq, ts, events)

    flow.market.listeners.append(record)
    started = time.perf_counter()
    episodes = flow.run()
    wall = time.perf_counter() - started
    found = recall(episodes, sink.alerts)
    abusers = {a for e in episodes for a in e.accounts}
    false_raises = [a for a in sink.alerts if not set(a.accounts) & abusers]
    false_alerts = {(a.key, a.first_seq) for a in false_raises}
    orders = flow.market.orders
    events = sum(len(e) for _, _, e in stream)
    # throughput: a fresh set of detectors over the run's events, timed alone
    timed = Surveillance(config.surveillance, config.instruments, CollectingSink(), config.assets)
    gc.collect()
    t0 = time.perf_counter()
    on_events = timed.on_events
    for seq, ts, batch in stream:
        on_events(seq, ts, batch)
    elapsed = time.perf_counter() - t0
    return {
        "simulated_s": seconds,
        "seed": seed,
        "clean_orders": orders,
        "abuse_orders": flow.abuse_orders,
        "commands": len(stream),
        "events": events,
        "recall": {k: {"alerted": v[0], "acted": v[1], "injected": v[2]} for k, v in found.items()},
        "recall_pct": {k: round(100 * v[0] / v[1], 1) if v[1] else None for k, v in found.items()},
        "false_alerts": len(false_alerts),
        "false_raises": len(false_raises),
        "false_per_10k_orders": round(len(false_alerts) * 10_000 / max(orders, 1), 3),
        "false_kinds": dict(Counter(a.type.value for a in false_raises)),
        "batch_events_per_s": round(events / elapsed),
        "batch_us_per_command": round(elapsed / len(stream) * 1e6, 2),
        "flow_wall_s": round(wall, 1),
    }


def memory(marks_at: list[int], seed: int) -> dict[str, Any]:
    """The detectors' state after each of ``marks_at`` events of the same flow (with the
    episodes), fed live; the flow stops at the last mark."""
    flow = SimFlow(
        FlowSettings(seconds=86_000, seed=seed, abuses=KINDS, abuse_every_s=10.0)
    )  # stopped by the event count well before the simulated day ends
    config = flow.config
    watch = Surveillance(config.surveillance, config.instruments, CollectingSink(), config.assets)
    count = [0]
    marks = sorted(set(marks_at))
    sizes: dict[str, dict[str, int]] = {}
    stop = [False]

    def feed(seq: int, ts: int, events: list[Event]) -> None:
        watch.on_events(seq, ts, events)
        count[0] += len(events)
        if marks and count[0] >= marks[0]:
            sizes[str(marks.pop(0))] = detector_bytes(watch)
            stop[0] = not marks

    flow.market.listeners.append(feed)
    started = time.perf_counter()
    flow.run(until=lambda: stop[0])
    state = watch.state
    return {
        "detector_bytes_at_events": sizes,
        "events": count[0],
        "live_orders": len(state.orders),
        "episodes": len(watch.spoofing.episodes),
        "wall_s": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1800.0, help="simulated seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between episodes")
    parser.add_argument("--live-rate", type=int, default=7_500, help="FIX orders/s (0: no live)")
    parser.add_argument("--live-seconds", type=float, default=30.0)
    parser.add_argument(
        "--memory-at",
        default="100000,1000000,2000000,3000000",
        help="events after which the detectors' state is measured (2M: past the 1 h window)",
    )
    args = parser.parse_args()
    result = quality(args.seconds, args.seed, args.every)
    print(
        f"surveillance quality: {args.seconds:g} simulated s from seed {args.seed}: "
        f"{result['clean_orders']:,} clean orders, {result['abuse_orders']:,} abusive, "
        f"{result['events']:,} events"
    )
    for kind in KINDS:
        r = result["recall"][kind]
        print(
            f"  recall {kind:<12} {r['alerted']:>3} / {r['acted']:<3} "
            f"{result['recall_pct'][kind]} %"
            + (
                f" ({r['injected'] - r['acted']} not acted out)"
                if r["injected"] > r["acted"]
                else ""
            )
        )
    print(
        f"  false alerts: {result['false_alerts']} ({result['false_raises']} raises, "
        f"{result['false_kinds']}) = {result['false_per_10k_orders']} per 10,000 clean orders"
    )
    print(
        f"  batch: {result['batch_events_per_s']:,} events/s, "
        f"{result['batch_us_per_command']} us a command"
    )
    mem = memory([int(x) for x in args.memory_at.split(",")], args.seed)
    result["memory"] = mem
    sizes = ", ".join(
        f"{int(k):,} events: {v['all'] / 1e6:.2f} MB (wash {v['WashTrades'] / 1e6:.2f})"
        for k, v in mem["detector_bytes_at_events"].items()
    )
    print(f"  detector state: {sizes} ({mem['live_orders']} live orders, {mem['wall_s']} s)")
    if args.live_rate > 0:
        live = live_lag(args.live_rate, args.live_seconds)
        result["live"] = live
        load = live.get("load") or {}
        print(
            f"  live: {live['alerted']} / {live['episodes']} spoofing episodes alerted under FIX "
            f"load offered at {live['rate']:,}/s (acked {load.get('achieved', '?')}/s, ack p99 "
            f"{load.get('ack_p99_ms', '?')} ms): lag p50 {live['lag_ms_p50']} ms, "
            f"p99 {live['lag_ms_p99']} ms, max {live['lag_ms_max']} ms"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
