"""REST and WebSocket in the Binance Spot API dialect: API keys, request signing, rate limits."""
