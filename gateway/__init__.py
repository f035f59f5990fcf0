"""Gateways: the doors participants come in through.

Owns FIX 4.4 (codec, session layer, message store, order entry, market data, drop copy), REST and
WebSocket following the Binance Spot API conventions (aiohttp), authentication and rate limits.
A gateway turns wire messages into commands for the sequencer and events back into execution
reports, responses and market data.

What exists so far: ``gateway.fix``, the FIX 4.4 wire codec (framing by BodyLength, CheckSum,
resynchronisation on garbled input, data fields, repeating groups, encoding with prebuilt
templates for execution reports, UTCTimestamps). The rest is filled in by later work.

May import ``engine`` (types, commands, events) only.
"""
