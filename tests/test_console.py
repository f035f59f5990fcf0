"""The staff console's shell as served (no browser): ``/`` leads to it, its page lists the
scripts of the pages other packages registered, its files come with a policy that allows this
origin only, nothing outside its folder is served, and its table of roles is the venue's."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import aiohttp

from gateway.staff.roles import PERMISSIONS_BY_ROLE
from venue.admin import start_admin
from venue.config import DEFAULT_CONFIG_PATH, AdminConfig, load_config
from venue.runtime import Venue


def test_the_console_is_served_from_the_admin_port(tmp_path: Path) -> None:
    config = dataclasses.replace(
        load_config(DEFAULT_CONFIG_PATH),
        data_dir=tmp_path / "data",
        admin=AdminConfig("127.0.0.1", 0),
        ledger=None,
    )

    async def body() -> None:
        venue = Venue(config)
        await venue.start()
        runner, host, port = await start_admin(venue, "127.0.0.1", 0)
        try:
            async with aiohttp.ClientSession(f"http://{host}:{port}") as http:
                for path in ("/", "/console"):
                    async with http.get(path, allow_redirects=False) as r:
                        assert (r.status, r.headers["Location"]) == (302, "/console/")
                async with http.get("/console/") as r:
                    assert r.status == 200 and r.content_type == "text/html"
                    policy = r.headers["Content-Security-Policy"]
                    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
                    page = await r.text()
                assert '<script src="/console/app.js" defer></script>' in page
                assert '<script src="/console/pages/audit.js" defer></script>' in page
                assert "<!-- page scripts -->" not in page
                assert "treasury.js" not in page  # listed by an admin API serving custody only
                files = [("app.js", "text/javascript"), ("style.css", "text/css")]
                for name, kind in [*files, ("treasury.js", "text/javascript")]:
                    async with http.get(f"/console/{name}") as r:
                        assert r.status == 200 and r.content_type == kind
                        assert "nosniff" in r.headers["X-Content-Type-Options"]
                async with http.get("/console/pages/audit.js") as r:
                    assert r.status == 200 and "page({" in await r.text()
                async with http.get("/console/roles.json") as r:
                    roles = await r.json()
                assert roles == {
                    role.value: sorted(perms) for role, perms in PERMISSIONS_BY_ROLE.items()
                }
                for path in (
                    "/console/index.html",
                    "/console/__init__.py",
                    "/console/..%2F__init__.py",
                    "/console/pages/../../app.py",
                    "/console/nothing.js",
                ):
                    async with http.get(path) as r:
                        assert r.status == 404, path
        finally:
            await runner.cleanup()
            await venue.stop()

    asyncio.run(asyncio.wait_for(body(), 30))
