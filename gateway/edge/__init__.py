"""The edge every door shares: FIX, the admin API, and the REST and WebSocket doors to come.

A door parses its own wire format and hands the edge door-neutral requests; it never converts
units, checks values or chooses refusal codes itself:

- ``requests``: requests to commands (exact units through ``engine.units``, client order ids,
  what a replace keeps), and the lookup of the live order a replace or cancel names;
- ``refusals``: one refusal taxonomy (``engine.types.RejectReason`` plus the field at fault)
  and what each door says for it: FIX OrdRejReason / CxlRejReason, Binance ``{"code", "msg"}``.

Reads are answered from durable state only (``Venue.query`` / ``Venue.read`` in the
composition root sequence them with the commands). Imports the engine only.

- ``orders``: the order view every door renders (filled quantity, exact average price, quote
  quantity, fees), a read model fed by durable events; compiled with the engine's mypyc build
  (``engine/_native.py``), as FIX order entry reads it on every report.
"""

from engine._native import activate_package as _activate

#: True when the compiled modules (``orders``, ``requests``) are in use.
NATIVE = _activate("gateway/edge", __path__)
