"""The staff console: a small web application the admin port serves at ``/console/``.

Static files of this folder (``index.html``, ``app.js``, ``style.css``, and ``treasury.js``,
the custody pages, listed only by an admin API that serves custody): no build step, no
library, nothing fetched from elsewhere. The pages are drawn in the browser from the admin
API's JSON, fetched from the same origin with the session cookie, so the pages themselves need
no login (they hold no data: their routes are ``PUBLIC``) and every datum is checked by the
endpoint that serves it (``gateway.admin.auth``).

Pages register themselves in the browser (``Console.page({...})`` in ``app.js``); a package
that owns pages of its own (surveillance, treasury...) serves its script through the
composition root and lists it with ``add_script``: the console's ``index.html`` loads it after
``app.js``.
"""

from __future__ import annotations

import html
from pathlib import Path

from aiohttp import web

from gateway.admin.auth import PUBLIC, add_route
from gateway.staff.roles import PERMISSIONS_BY_ROLE

__all__ = ["CONSOLE", "TREASURY", "add_console", "add_script"]

#: Where the console is served; every path under it is static.
CONSOLE = "/console/"
#: The treasury pages (custody's wallets, withdrawals, deposits): loaded when custody is served.
TREASURY = CONSOLE + "treasury.js"
_HERE = Path(__file__).resolve().parent
_FILES = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "treasury.js": "text/javascript; charset=utf-8",  # listed by the admin API with custody
}
_SCRIPTS = web.AppKey("console_scripts", list[str])
_PLACE = "<!-- page scripts -->"
#: The console's pages may run scripts of the same origin only, and be framed by nobody.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def add_console(app: web.Application) -> None:
    """Serve the console at ``/console/`` (and ``/`` redirecting there)."""
    app[_SCRIPTS] = []
    add_route(app, "GET", "/", _to_console, PUBLIC)
    add_route(app, "GET", "/console", _to_console, PUBLIC)
    add_route(app, "GET", CONSOLE, _index, PUBLIC)
    add_route(app, "GET", CONSOLE + "{name}", _file, PUBLIC)


def add_script(app: web.Application, url: str) -> None:
    """Load the script at ``url`` (same origin) in the console, after its own."""
    app[_SCRIPTS].append(url)


async def _to_console(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(CONSOLE)


async def _index(request: web.Request) -> web.StreamResponse:
    page = (_HERE / "index.html").read_text(encoding="utf-8")
    tags = "\n".join(
        f'<script src="{html.escape(url)}" defer></script>' for url in request.app[_SCRIPTS]
    )
    body = page.replace(_PLACE, tags)
    return web.Response(text=body, content_type="text/html", charset="utf-8", headers=_HEADERS)


async def _file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name == "roles.json":  # what each role may do, so the console shows each role its pages
        roles = {
            role.value: sorted(p.value for p in perms)
            for role, perms in PERMISSIONS_BY_ROLE.items()
        }
        return web.json_response(roles, headers=_HEADERS)
    content_type = _FILES.get(name)
    if content_type is None:
        raise web.HTTPNotFound()
    return web.FileResponse(_HERE / name, headers={**_HEADERS, "Content-Type": content_type})
