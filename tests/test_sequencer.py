"""The sequencer: gap-free sequence numbers, time that never runs backwards."""

from __future__ import annotations

import pytest

from engine.commands import CancelOrder, Tick
from engine.sequencer import Sequencer


class FakeClock:
    def __init__(self, *times: int) -> None:
        self.times = list(times)

    def __call__(self) -> int:
        return self.times.pop(0)


def test_stamps_gap_free_sequence_and_clock_time() -> None:
    seq = Sequencer(41, 1_000, clock=FakeClock(2_000, 3_000))
    first = seq.stamp(Tick())
    second = seq.stamp(CancelOrder(1, "BTC-USDT", 7))
    assert (first.seq, first.ts) == (42, 2_000)
    assert (second.seq, second.ts) == (43, 3_000)
    assert (seq.last_seq, seq.last_ts) == (43, 3_000)


def test_time_never_runs_backwards_when_the_clock_does() -> None:
    seq = Sequencer(0, 0, clock=FakeClock(5_000, 4_000, 3_000, 6_000, 6_000))
    stamps = [seq.stamp(Tick()) for _ in range(5)]
    assert [c.seq for c in stamps] == [1, 2, 3, 4, 5]
    assert [c.ts for c in stamps] == [5_000, 5_000, 5_000, 6_000, 6_000]


def test_recovered_time_is_a_floor() -> None:
    # after a restart the wall clock may be behind the journal's last time
    seq = Sequencer(10, 9_000, clock=FakeClock(1_000, 1_000))
    assert seq.now() == 9_000
    assert seq.stamp(Tick()).ts == 9_000


def test_overwrites_whatever_the_gateway_left() -> None:
    cmd = Tick(seq=999, ts=999)
    Sequencer(0, 0, clock=FakeClock(7)).stamp(cmd)
    assert (cmd.seq, cmd.ts) == (1, 7)


def test_refuses_negative_start() -> None:
    with pytest.raises(ValueError):
        Sequencer(-1, 0)
