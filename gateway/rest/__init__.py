"""The REST and WebSocket door in the Binance Spot API dialect: an aiohttp application whose
handlers parse Binance's parameters, hand orders to the edge and answer reads from read models
fed by durable events (``history``: trades, aggregate trades, klines and tickers for the public
market-data endpoints and streams). The KYC provider's signed webhook (``kyc``) is served on the
same port. Imports the engine and the gateway only.
"""
