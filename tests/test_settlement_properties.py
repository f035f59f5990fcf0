"""Random order flows with deposits and withdrawals, settled into the real ledger (SQLite and
PostgreSQL): every account's ledger balance equals the core's, at the end and as of earlier
sequence numbers, every asset and transaction sums to zero, nothing that may not be is negative,
and locked funds equal what open orders could spend (checked after every command by the risk
stage's invariants). The flows are those of ``test_risk_properties``: every order type, replaces,
cancels, self-trade prevention, freezes and fee schedules interleaved."""

from __future__ import annotations

import os
import random

import pytest
from test_risk_properties import ASSETS, SPECS, Runner, random_actions

from clearing.ledger.projector import Projector
from clearing.reconcile import reconcile
from clearing.risk import RiskEngine
from engine.core import Core
from engine.events import TradeSettled

SEEDS = int(os.environ.get("VENUE_SETTLEMENT_SEEDS", "3"))


@pytest.mark.parametrize("seed", range(SEEDS))
def test_ledger_equals_core_over_random_flows(ledger_url: str, seed: int) -> None:
    rng = random.Random(seed)
    runner = Runner(rng.choice(["received", "quote"]))
    checkpoints: list[tuple[int, dict[tuple[str, int, str], int]]] = []
    for i, action in enumerate(random_actions(rng, 400)):
        runner.run(action)
        if i % 97 == 0:
            checkpoints.append((runner.core.last_seq, runner.risk.ledger_view()))
    # the event stream the venue would publish: the same commands through a fresh core
    replay = Core(SPECS, risk=RiskEngine(SPECS, ASSETS))
    stream = [(c.seq, c.ts, replay.apply(c)) for c in runner.commands]
    assert any(isinstance(e, TradeSettled) for _, _, events in stream for e in events)
    with Projector(ledger_url, assets=ASSETS) as projector:
        projector.migrate()
        for start in range(0, len(stream), 53):
            projector.apply(stream[start : start + 53])
    report = reconcile(ledger_url, runner.risk.ledger_view(), runner.core.last_seq)
    assert report.ok, report.lines()
    for seq, view in checkpoints:
        earlier = reconcile(ledger_url, view, seq)
        assert earlier.ok, (seq, earlier.lines())
