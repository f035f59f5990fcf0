"""The latency of the requests the REST door answered, per UTC minute over the last hour: what
the public status page shows (``gateway.rest.status``). Recorded by the application's middleware
on every request; bounded: a minute keeps at most :data:`SAMPLES_PER_MINUTE` samples (past that,
later ones overwrite earlier ones in turn, so a busy minute's figures are those of a spread of
its requests) and :data:`MINUTES` minutes are kept."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

__all__ = ["MINUTES", "SAMPLES_PER_MINUTE", "LatencyWindow"]

#: Samples a minute keeps at most; the minutes kept.
SAMPLES_PER_MINUTE = 2000
MINUTES = 60


@dataclass(slots=True)
class _Minute:
    start_ms: int
    count: int = 0
    samples: list[float] = field(default_factory=list)


class LatencyWindow:
    """Request latencies per UTC minute over the last hour."""

    def __init__(self) -> None:
        self.minutes: deque[_Minute] = deque(maxlen=MINUTES)
        self.started_ms = int(time.time() * 1000)

    def record(self, now_ms: int, seconds: float) -> None:
        minute = now_ms - now_ms % 60_000
        minutes = self.minutes
        if not minutes or minutes[-1].start_ms != minute:
            minutes.append(_Minute(minute))
        current = minutes[-1]
        current.count += 1
        samples = current.samples
        if len(samples) < SAMPLES_PER_MINUTE:
            samples.append(seconds)
        else:  # a busy minute: later samples overwrite earlier ones in turn
            samples[current.count % SAMPLES_PER_MINUTE] = seconds

    def rows(self) -> list[dict[str, float | int]]:
        """Per minute, oldest first: its start, requests, p50 and p99 in milliseconds."""
        out: list[dict[str, float | int]] = []
        for minute in self.minutes:
            ordered = sorted(minute.samples)
            if not ordered:
                continue
            out.append(
                {
                    "minute": minute.start_ms,
                    "requests": minute.count,
                    "p50Ms": round(ordered[len(ordered) // 2] * 1000, 3),
                    "p99Ms": round(
                        ordered[min(len(ordered) - 1, len(ordered) * 99 // 100)] * 1000, 3
                    ),
                }
            )
        return out
