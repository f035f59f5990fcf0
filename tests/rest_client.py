"""A minimal signed client of the REST door for tests: Binance's HMAC-SHA256 signature over the
query string exactly as sent, the key in ``X-MBX-APIKEY``."""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

import aiohttp
import yarl

from gateway.rest.signing import sign_hmac


async def signed(
    http: aiohttp.ClientSession,
    base: str,
    method: str,
    path: str,
    key: tuple[str, str],
    **params: Any,
) -> tuple[int, Any]:
    """Send a signed request (parameters in the query string); (HTTP status, JSON body)."""
    params.setdefault("timestamp", str(int(time.time() * 1000)))
    query = urllib.parse.urlencode({k: str(v) for k, v in params.items()})
    query += "&signature=" + sign_hmac(key[1], query)
    headers = {"X-MBX-APIKEY": key[0]}
    url = yarl.URL(f"{base}{path}?{query}", encoded=True)  # sent exactly as signed
    async with http.request(method, url, headers=headers) as response:
        return response.status, await response.json()


async def public(http: aiohttp.ClientSession, base: str, path: str, **params: Any) -> Any:
    """A public GET: its JSON body (status 200 asserted)."""
    async with http.get(f"{base}{path}", params={k: str(v) for k, v in params.items()}) as r:
        body = await r.json()
        assert r.status == 200, (path, r.status, body)
        return body
