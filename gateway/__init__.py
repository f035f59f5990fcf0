"""Gateways: the doors participants come in through.

Owns FIX 4.4 (codec, session layer, message store, order entry, market data, drop copy), REST and
WebSocket following the Binance Spot API conventions (aiohttp), authentication and rate limits.
A gateway turns wire messages into commands for the sequencer and events back into execution
reports, responses and market data.

What exists: ``gateway.fix``, the FIX 4.4 gateway (codec, data dictionary, session layer and
message store, acceptor, order entry, drop copy, market data; fix_specs/README.md is its
contract). REST and WebSocket come later.

Its sections of the configuration file: ``[fix]`` and its ``[[fix.sessions]]``
(``gateway.fix.config``), ``[admin]`` (``gateway.adminconfig``).

May import ``engine`` (types, commands, events) only.
"""
