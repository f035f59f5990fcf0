"""The venue's one exact codec between decimal text and integer units.

Inside the venue prices are ticks, quantities lots, quote amounts tick-lots
(``engine.instrument``) and money the asset's minor units. Every door (FIX bytes, JSON strings),
the configuration and the reports convert through :class:`UnitScale`, exactly and never
rounding: a value that is not a whole number of steps is refused (:class:`NotMultiple`), and a
value that is not a plain decimal (digits, at most one ``.``, a leading ``-`` only where the
caller allows it, no exponent) is :class:`Malformed`; one of more than :data:`MAX_DIGITS`
whole digits is :class:`OutOfRange` before any conversion. Integer arithmetic on the digits
only: ``Decimal`` costs several microseconds per value on the hot path, and the bound on the
digits keeps a hostile value from costing more.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = ["MAX_DIGITS", "Malformed", "NotMultiple", "OutOfRange", "UnitScale"]

_MAX_UNITS = 2**63 - 1
#: Significant whole digits beyond which a value is out of range whatever the step (a step of up
#: to 10**20 keeps 2**63 - 1 units within it): checked before any conversion, so a value of
#: thousands of digits costs nothing and never reaches ``int`` (which refuses over 4,300).
MAX_DIGITS = 40


class Malformed(ValueError):
    """Not a plain non-negative decimal."""


class NotMultiple(ValueError):
    """A well-formed decimal that is not a whole number of steps (or out of range)."""


class OutOfRange(NotMultiple):
    """A whole number of steps too large for a 64-bit integer."""


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

    def parse(self, text: str, *, signed: bool = False) -> int:
        """Whole steps in the decimal string ``text`` (JSON, configuration); ``signed`` allows
        a leading ``-``. :class:`Malformed` or :class:`NotMultiple` otherwise."""
        if not isinstance(text, str) or not text.isascii():
            raise Malformed(f"not a plain decimal: {str(text)[:32]!r}")
        return self.to_units(text.encode("ascii"), signed=signed)

    def to_units(self, value: bytes, *, signed: bool = False) -> int:
        """Whole steps in ``value``; :class:`Malformed` or :class:`NotMultiple` otherwise."""
        if signed and value[:1] == b"-":
            return -self.to_units(value[1:])
        whole, dot, fraction = value.partition(b".")
        if not (whole.isdigit() or (dot and not whole)) or (dot and not fraction.isdigit()):
            raise Malformed(f"not a plain decimal: {value[:32]!r}")
        whole = whole.lstrip(b"0")
        if len(whole) > MAX_DIGITS:
            raise OutOfRange(f"{_short(value)} is out of range")
        decimals = self.decimals
        extra = fraction[decimals:]
        if extra and extra.strip(b"0"):
            raise NotMultiple(f"{_short(value)} has more decimals than {format(self.step, 'f')}")
        fraction = fraction[:decimals]
        scaled = int((whole or b"0") + fraction + b"0" * (decimals - len(fraction)))
        units, rest = divmod(scaled, self.step_scaled)
        if rest:
            raise NotMultiple(f"{_short(value)} is not a multiple of {format(self.step, 'f')}")
        if units > _MAX_UNITS:
            raise OutOfRange(f"{_short(value)} is out of range")
        return units

    def text(self, units: int) -> str:
        """``units`` steps as a decimal string with the step's number of decimals."""
        return self.format(units).decode("ascii")

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
