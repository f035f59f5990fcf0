"""What a detector raises: an alert, the one shape the detectors, the alert store, the admin API
and the console share.

An alert names a behaviour, not an event: ``key`` identifies the behaviour (its type, symbol,
accounts and whatever the detector says makes it one: a trading day, a pair of accounts...), so
a detector that sees the behaviour again raises an alert with the same ``key`` and the store
updates the one alert (window widened, score and evidence replaced, ``count`` raised) instead of
adding another. Times are epoch milliseconds of the sequencer's stamps (never a wall clock), so a
batch run over a journal raises exactly the alerts the live venue raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["Alert", "AlertSink", "AlertType"]


class AlertType(StrEnum):
    WASH_TRADE = "WASH_TRADE"
    SPOOFING = "SPOOFING"
    LAYERING = "LAYERING"
    OTR_BREACH = "OTR_BREACH"
    AML_VELOCITY = "AML_VELOCITY"
    AML_STRUCTURING = "AML_STRUCTURING"
    AML_IN_OUT = "AML_IN_OUT"
    # raised by custody (later): on-chain events that need a compliance look
    HOT_WALLET_BAND = "HOT_WALLET_BAND"
    RESERVE_SHORTFALL = "RESERVE_SHORTFALL"
    DEPOSIT_REORG = "DEPOSIT_REORG"


@dataclass(frozen=True, slots=True)
class Alert:
    """One behaviour seen. ``symbol`` as the venue writes it (``BTC-USDT``; "" for money
    flows), ``accounts`` sorted, ``from_ms``/``to_ms`` the window the evidence covers, ``score``
    0 to 100 (how far past its threshold), ``evidence`` JSON-ready: ``{"orders": [...],
    "trades": [...], "books": [...], ...}`` with decimals as strings, ``first_seq``/``last_seq``
    the journal range it was raised from."""

    key: str
    type: AlertType
    symbol: str
    accounts: tuple[int, ...]
    from_ms: int
    to_ms: int
    score: float
    evidence: dict[str, Any] = field(default_factory=dict)
    first_seq: int = 0
    last_seq: int = 0
    summary: str = ""  # one line for people: "account 1001 traded 12 times with itself"

    def to_json(self) -> dict[str, Any]:
        """The admin API's shape (camelCase; the store adds its id, state and count)."""
        return {
            "key": self.key,
            "type": self.type.value,
            "symbol": self.symbol,
            "accounts": list(self.accounts),
            "fromTime": self.from_ms,
            "toTime": self.to_ms,
            "score": round(self.score, 2),
            "summary": self.summary,
            "firstSeq": self.first_seq,
            "lastSeq": self.last_seq,
            "evidence": self.evidence,
        }


class AlertSink:
    """Where detectors send alerts (the alert store implements it; tests collect them)."""

    def raise_alert(self, alert: Alert) -> None:
        raise NotImplementedError
