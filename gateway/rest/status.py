"""The venue's public status page on the REST port: is the API up, how fast it answers, and
the state of each instrument (``GET /status``, a page people look at; ``GET /status.json``, the
same for tools).

The API's latency is measured by the door itself on every request it answers (the time from
reading the request to its response, in the application's middleware): per UTC minute for the
last hour, p50, p99 and the count. A minute keeps at most :data:`SAMPLES_PER_MINUTE` samples
(past that, later ones overwrite earlier ones in turn: the figures of a busy minute are those of
a spread of its requests), so memory stays bounded whatever the traffic. The page
is server-rendered with an inline SVG chart: nothing is loaded from outside.
"""

from __future__ import annotations

import html

from aiohttp import web

from engine.core import Core
from engine.types import InstrumentState
from gateway.rest.context import SERVED
from gateway.rest.errors import compact

__all__ = ["add_status", "render"]

_STATES = {
    InstrumentState.OPEN: "TRADING",
    InstrumentState.CANCEL_ONLY: "CANCEL ONLY",
    InstrumentState.HALTED: "HALTED",
}


def _states(core: Core) -> dict[str, InstrumentState]:
    return {symbol: m.state for symbol, m in core.markets.items()}


async def _status(request: web.Request) -> dict[str, object]:
    served = request.app[SERVED]
    states = await served.venue.read(_states)
    now = served.venue.now_ms()
    window = served.latency
    return {
        "status": "UP",
        "serverTime": now,
        "uptimeS": max(0, (now - window.started_ms) // 1000),
        "instruments": [
            {
                "symbol": served.symbols.name(symbol),
                "venueSymbol": symbol,
                "status": _STATES.get(state, state.name),
            }
            for symbol, state in sorted(states.items())
        ],
        "latency": window.rows(),
    }


async def status_json(request: web.Request) -> web.Response:
    return web.json_response(await _status(request), dumps=compact)


async def status_page(request: web.Request) -> web.Response:
    body = await _status(request)
    return web.Response(text=render(body), content_type="text/html")


def render(status: dict[str, object]) -> str:
    """The page: the API's state and uptime, a chart of its latency, the instruments."""
    rows = status["latency"]
    instruments = status["instruments"]
    assert isinstance(rows, list) and isinstance(instruments, list)
    uptime = int(str(status["uptimeS"]))
    hours, rest = divmod(uptime, 3600)
    lines = "".join(
        f"<tr><td>{html.escape(str(i['symbol']))}</td>"
        f"<td class='{'ok' if i['status'] == 'TRADING' else 'off'}'>{html.escape(str(i['status']))}"
        "</td></tr>"
        for i in instruments
    )
    latest = rows[-1] if rows else None
    now_text = (
        f"p50 {latest['p50Ms']} ms, p99 {latest['p99Ms']} ms over {latest['requests']} requests "
        "this minute"
        if latest
        else "no requests yet"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Venue status</title>
<meta http-equiv="refresh" content="30">
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 48rem; }}
.ok {{ color: #18794e; font-weight: 600; }} .off {{ color: #b42318; font-weight: 600; }}
table {{ border-collapse: collapse; }} td, th {{ padding: .3rem 1rem .3rem 0; text-align: left; }}
svg {{ border: 1px solid #ddd; background: #fafafa; }}
</style></head><body>
<h1>Venue status: <span class="ok">{html.escape(str(status["status"]))}</span></h1>
<p>Up for {hours} h {rest // 60} min. API latency now: {html.escape(now_text)}.</p>
<h2>API latency, last hour (ms; p50 blue, p99 orange)</h2>
{_chart(rows)}
<h2>Instruments</h2>
<table><tr><th>symbol</th><th>state</th></tr>{lines}</table>
<p><a href="/status.json">status.json</a></p>
</body></html>
"""


def _chart(rows: list[dict[str, float | int]]) -> str:
    """An inline SVG of p50 and p99 per minute."""
    width, height, pad = 600, 160, 24
    if not rows:
        return f'<svg width="{width}" height="{height}" role="img"></svg>'
    top = max(float(r["p99Ms"]) for r in rows) or 1.0
    step = (width - 2 * pad) / max(1, len(rows) - 1)

    def points(key: str) -> str:
        return " ".join(
            f"{pad + i * step:.1f},{height - pad - float(r[key]) / top * (height - 2 * pad):.1f}"
            for i, r in enumerate(rows)
        )

    return (
        f'<svg width="{width}" height="{height}" role="img" aria-label="API latency">'
        f'<polyline fill="none" stroke="#1f6feb" stroke-width="2" points="{points("p50Ms")}"/>'
        f'<polyline fill="none" stroke="#e36209" stroke-width="2" points="{points("p99Ms")}"/>'
        f'<text x="{pad}" y="14" font-size="11">max {top:.1f} ms</text></svg>'
    )


def add_status(app: web.Application) -> None:
    app.router.add_get("/status", status_page)
    app.router.add_get("/status.json", status_json)
