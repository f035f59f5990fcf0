"""Market-abuse detectors over the durable event stream.

``feed.Surveillance`` fans each command's events to the detectors, which raise
``surveillance.alerts.Alert`` to a sink: ``otr`` (order-to-trade ratio, RTS 9), ``wash`` (wash
trades: self, same owner, back and forth), ``spoofing`` (spoofing and layering), ``money``
(AML velocity, structuring, in and out). ``state`` is what they share (owners, open orders,
typical sizes); ``params`` reads ``[surveillance]``; ``batch`` runs them over the journal.
"""

from surveillance.detect.feed import CollectingSink, LatestSink, Surveillance
from surveillance.detect.params import SurveillanceConfig, read_surveillance

__all__ = [
    "CollectingSink",
    "LatestSink",
    "Surveillance",
    "SurveillanceConfig",
    "read_surveillance",
]
