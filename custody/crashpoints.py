"""Named steps where a test can make the venue kill itself (SIGKILL, no clean-up), to prove
that a crash at any step of a withdrawal never sends twice and never loses one.

``VENUE_CUSTODY_CRASH_AT=<step>`` in the venue's environment arms one step; production never
sets it. The steps are ``STEPS``; each is called right after the step's record is durable.
"""

from __future__ import annotations

import os
import signal

__all__ = ["ENV", "STEPS", "crash_point"]

ENV = "VENUE_CUSTODY_CRASH_AT"
#: requested: the withdrawal row written, its hold not yet asked; held: the hold durable;
#: batched: the batch and its members written, nothing signed; signed: the signed transaction
#: stored, not broadcast; broadcast: sent to the node, not confirmed; paid: a payout's
#: PayWithdrawal durable, the rest of the batch not yet recorded.
STEPS = ("requested", "held", "batched", "signed", "broadcast", "paid")


def crash_point(step: str) -> None:
    assert step in STEPS, step
    if os.environ.get(ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)
