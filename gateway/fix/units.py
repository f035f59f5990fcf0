"""Exact conversion between FIX decimal strings and the venue's integer units.

Inside the venue prices are ticks, quantities lots and quote amounts tick-lots
(``engine.instrument``). The gateway converts every decimal it receives exactly and never
rounds: a value that is not a whole number of steps is refused, and a value that is not a plain
decimal (digits, at most one ``.``, no sign or exponent) is malformed. Integer arithmetic on the
digits only: ``Decimal`` costs several microseconds per value on the hot path.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = ["Malformed", "NotMultiple", "UnitScale"]

_MAX_UNITS = 2**63 - 1
#: Significant whole digits beyond which a value is out of range whatever the step (a step of up
#: to 10**20 keeps 2**63 - 1 units within it): checked before any conversion, so a value of
#: thousands of digits costs nothing and never reaches ``int`` (which refuses over 4,300).
_MAX_WHOLE_DIGITS = 40


class Malformed(ValueError):
    """Not a plain non-negative decimal."""


class NotMultiple(ValueError):
    """A well-formed decimal that is not a whole number of steps (or out of range)."""


class UnitScale:
    """One step size (a tick, a lot, a tick-lot): decimal bytes <-> whole steps."""

    __slots__ = ("_cache", "decimals", "step", "step_scaled")

    def __init__(self, step: Decimal) -> None:
        if step <= 0:
            raise ValueError(f"step must be positive, got {step}")
        exponent = step.normalize().as_tuple().exponent
        assert isinstance(exponent, int)
        self.decimals = max(0, -exponent)
        self.step = step
        self.step_scaled = int(step.scaleb(self.decimals))
        self._cache: dict[int, bytes] = {}

    def to_units(self, value: bytes) -> int:
        """Whole steps in ``value``; :class:`Malformed` or :class:`NotMultiple` otherwise."""
        whole, dot, fraction = value.partition(b".")
        if not (whole.isdigit() or (dot and not whole)) or (dot and not fraction.isdigit()):
            raise Malformed(f"not a plain decimal: {value[:32]!r}")
        whole = whole.lstrip(b"0")
        if len(whole) > _MAX_WHOLE_DIGITS:
            raise NotMultiple(f"{_short(value)} is out of range")
        decimals = self.decimals
        extra = fraction[decimals:]
        if extra and extra.strip(b"0"):
            raise NotMultiple(f"{_short(value)} has more decimals than {self.step}")
        fraction = fraction[:decimals]
        scaled = int((whole or b"0") + fraction + b"0" * (decimals - len(fraction)))
        units, rest = divmod(scaled, self.step_scaled)
        if rest:
            raise NotMultiple(f"{_short(value)} is not a multiple of {self.step}")
        if units > _MAX_UNITS:
            raise NotMultiple(f"{_short(value)} is out of range")
        return units

    def format(self, units: int) -> bytes:
        """``units`` steps as a decimal with the step's number of decimals (``b"95000.10"``)."""
        scaled = units * self.step_scaled
        decimals = self.decimals
        if not decimals:
            return b"%d" % scaled
        sign = b"-" if scaled < 0 else b""
        digits = b"%0*d" % (decimals + 1, abs(scaled))
        return sign + digits[:-decimals] + b"." + digits[-decimals:]


def _short(value: bytes) -> str:
    """``value`` for a refusal's text, cut so that a long one does not fill the report."""
    text = value[:40].decode("latin-1")
    return text if len(value) <= 40 else text + "..."
