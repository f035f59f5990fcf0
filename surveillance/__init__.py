"""Surveillance: watching the flow for abuse.

Owns the detectors over the event stream (order-to-trade ratio, wash trades, spoofing, layering),
alerts and cases, the order book replayed at any moment, the tamper-evident audit chain and the
compliance console.

May import ``engine`` only. Filled in by later work.
"""
