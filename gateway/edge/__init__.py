"""The edge every door shares: FIX, the admin API, and the REST and WebSocket doors to come.

A door parses its own wire format and hands the edge door-neutral requests; it never converts
units, checks values or chooses refusal codes itself:

- ``requests``: requests to commands (exact units through ``engine.units``, client order ids,
  what a replace keeps), and the lookup of the live order a replace or cancel names;
- ``refusals``: one refusal taxonomy (``engine.types.RejectReason`` plus the field at fault)
  and what each door says for it: FIX OrdRejReason / CxlRejReason, Binance ``{"code", "msg"}``.

Reads are answered from durable state only (``Venue.query`` / ``Venue.read`` in the
composition root sequence them with the commands). Imports the engine only.
"""
